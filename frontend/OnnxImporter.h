// Private to the ONNX importer: the state of one import (OnnxImport.cpp) and the per-node
// context the operator lowerings (OnnxOps.cpp) work through.
//
// Values: every ONNX value name maps to an IR node (`values`) and/or a tensor known at import
// time (`consts`: Constant nodes, integer initializers, folded subgraphs). A constant becomes
// an IR `constant` node only when an op needs it as a tensor operand; shape operands
// (Reshape's `shape`) are read from `consts` directly.
#pragma once

#include "frontend/OnnxImport.h"
#include "frontend/OnnxForm.h"
#include "frontend/OnnxProto.h"

#include <functional>
#include <set>
#include <stdexcept>

namespace cnnc::onnximp {

/// An operator or attribute value cnnc does not support: collected, not fatal at once.
struct Unsupported : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Importer;

class NodeCtx {
public:
  NodeCtx(Importer &im, const onnx::NodeProto &p) : im(im), p(p) {}
  Importer &im;
  const onnx::NodeProto &p;

  int64_t opset() const;
  // Attributes. Reading one marks it as understood; any attribute left unread is reported.
  bool has(const std::string &name) const;
  int64_t getInt(const std::string &name, int64_t def);
  double getFloat(const std::string &name, double def);
  std::vector<int64_t> getInts(const std::string &name, std::vector<int64_t> def = {});
  std::string getStr(const std::string &name, const std::string &def);
  const onnx::AttributeProto *attr(const std::string &name);  // nullptr if absent
  void ignore(const std::string &name) { used.insert(name); } // accepted, no effect

  int numInputs() const; // trailing empty names dropped
  bool hasInput(int i) const;
  Node *in(int i);                  // the input as an IR node (materializing constants)
  const OnnxTensor *constIn(int i); // the input's value if known at import time
  /// constIn, else a float initializer's value (PyTorch writes Clip's bounds and Dropout's
  /// ratio as initializers): what an input that must be known at compile time may be.
  const OnnxTensor *knownIn(int i);
  const TensorType &typeIn(int i) { return in(i)->type; }
  int numOutputs() const; // trailing empty names dropped
  bool wantsOutput(int i) const;
  /// Defines output i as n, renaming n to the output's IR name.
  void out(int i, Node *n);
  void outConst(int i, OnnxTensor t);

  /// A new node named after output 0 plus `suffix` (uniquified); typed by its shape rule.
  Node *emit(OpKind op, const std::string &suffix, std::vector<Node *> operands,
             std::map<std::string, Attr> attrs = {});
  Node *scalar(double v, DType dt); // f32[] constant
  [[noreturn]] void unsupported(const std::string &msg) const { throw Unsupported(msg); }

  std::set<std::string> used;
};

using LowerFn = std::function<void(NodeCtx &)>;
/// The operator table (OnnxOps.cpp): op_type -> lowering; it includes every Direct op of
/// onnxForm.
const std::map<std::string, LowerFn> &loweringTable();
/// The operators of published CNNs (OnnxOpsModels.cpp), added to the table by loweringTable.
void addModelLowerings(std::map<std::string, LowerFn> &t);
/// InstanceNormalization, LayerNormalization and LRN (OnnxNorm.cpp), added by
/// addModelLowerings.
void addNormLowerings(std::map<std::string, LowerFn> &t);
/// Resize and Upsample (OnnxResize.cpp), added by addModelLowerings.
void lowerResize(NodeCtx &c);


class Importer {
public:
  Importer(Function &f, const OnnxOptions &opts, int64_t opset, const std::string &file)
      : f(f), opts(opts), opset(opset), file(file) {}
  Function &f;
  const OnnxOptions &opts;
  int64_t opset;
  std::string file;

  std::map<std::string, Node *> values;
  std::map<std::string, OnnxTensor> consts;
  /// The float initializers' values by IR param name (the model's weights), for operator
  /// inputs that must be known at import time (Clip's bounds, Pad's value).
  const std::map<std::string, OnnxTensor> *weights = nullptr;
  std::map<std::string, std::string> irName, onnxName;
  /// A training import's state updates (BatchNormalization's running statistics): `update`
  /// nodes the imported function returns after its loss, which the training step keeps.
  std::vector<Node *> stateUpdates;

  /// A fresh SSA name for an ONNX value name.
  std::string freshName(const std::string &onnxName);
  Node *materialize(const std::string &name); // IR node for a value (constant node if needed)
  Node *constantNode(const OnnxTensor &t, const std::string &name);
};

} // namespace cnnc::onnximp
