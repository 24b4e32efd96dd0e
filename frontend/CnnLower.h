// Pass 2 of the `.cnn` frontend: statements -> nodes of one IR function.
//
// Invariants while lowering: every node made so far is shape-inferred (inferType) and located
// at its line (Node::loc = the layer keyword's file:line:col); `layers_` maps each layer name
// defined so far to the node that carries its result; `prev_` is the previous line's result,
// the default input. Any mistake throws one cnnc::Error at the offending token.
// Internal to frontend/.
#pragma once

#include "frontend/CnnArgs.h"
#include "frontend/CnnFrontend.h"

#include <map>

namespace cnnc::cnn {

/// The `.cnn` form of each op of ir/Ops.def: the per-op table (cnnForm, CnnLayers.cpp; one
/// entry per op, a missing one fails the build). Simple: a parameterless one-input layer
/// `keyword` that is exactly the op; Layer: made by the lowering of layer `keyword` (with
/// arguments, in CnnLayers.cpp / CnnLower.cpp); None: no .cnn syntax (IR or ONNX only, or
/// made by passes).
struct CnnForm {
  enum Kind { Simple, Layer, None } kind;
  const char *keyword = nullptr;
};
CnnForm cnnForm(OpKind k);

class Lowerer {
public:
  Lowerer(Function &f, const CnnOptions &opts, const Diag &diag, NameAllocator &names)
      : f_(f), opts_(opts), d_(diag), names_(names) {}

  /// Lowers all statements and sets the function's name and outputs.
  void run(const std::vector<Stmt> &stmts);

private:
  void network(const Stmt &s, bool layersSeen);
  void input(const Stmt &s);
  void layer(const Stmt &s);
  std::vector<Node *> resolveInputs(const Stmt &s);

  // One per layer keyword (CnnLayers.cpp); each returns the layer's result node.
  Node *conv(const Stmt &s, Node *x);
  Node *deconv(const Stmt &s, Node *x);
  Node *upsample(const Stmt &s, Node *x);
  Node *pool(const Stmt &s, Node *x);
  Node *fc(const Stmt &s, Node *x);
  Node *bn(const Stmt &s, Node *x);
  Node *dropout(const Stmt &s, Node *x);
  Node *activation(const Stmt &s, Node *x); // relu6, leakyrelu
  Node *pad(const Stmt &s, Node *x);
  Node *loss(const Stmt &s, Node *x);
  Node *merge(const Stmt &s, const std::vector<Node *> &xs); // add, concat

  // Node construction: `make` infers the type and re-reports the IR's shape errors at the
  // layer's line; `param`/`source` declare a source node's type.
  Node *make(const Stmt &s, OpKind op, const std::string &name, std::vector<Node *> operands,
             std::map<std::string, Attr> attrs = {});
  Node *param(const Stmt &s, const std::string &name, Shape shape, const std::string &init);
  Node *source(const Stmt &s, OpKind op, const std::string &name, TensorType t);
  /// Rank-4 input check with a message naming the layer and what it got.
  void requireImage(const Stmt &s, Node *x);
  /// A [N, C, ...] input flattened to [N, K] (a `<name>.flat` node) when it has more dims.
  Node *flattened(const Stmt &s, Node *x);
  /// Output channels after the width multiplier (for layers marked `widen`).
  int64_t widened(int64_t c) const;
  /// Where a layer with one input takes it from: the input token if named, else the keyword.
  const Token &inputToken(const Stmt &s) const;
  Loc loc(const Stmt &s) const { return d_.loc(s, s.kind); }

  Function &f_;
  const CnnOptions &opts_;
  const Diag &d_;
  NameAllocator &names_;
  std::map<std::string, Node *> layers_;
  std::map<std::string, int> definedOn_; // every name of pass 1 -> its line
  Node *prev_ = nullptr;
  const Stmt *lossStmt_ = nullptr;
  Node *lossNode_ = nullptr;
};

} // namespace cnnc::cnn
