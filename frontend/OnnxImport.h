// The ONNX frontend: `.onnx` models (opsets 6 to 17) imported into one IR function, and IR
// functions exported back as ONNX inference models (opset 13). docs/onnx.md is the manual.
//
// Names: every ONNX value becomes an IR node whose SSA name is the ONNX name sanitized to
// [A-Za-z0-9_.$-] and made unique; `irName` / `onnxName` map between the two so that the CLI
// can take inputs and report outputs by their ONNX names.
#pragma once

#include "frontend/OnnxTensor.h"
#include "ir/IR.h"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace cnnc {

struct OnnxOptions {
  /// Binds symbolic (dim_param) leading dimensions of the graph inputs: the batch size.
  int64_t batch = 1;
  /// Binds/overrides the spatial size [H, W] of every 4-D graph input.
  std::optional<std::pair<int64_t, int64_t>> inputHW;
  /// Full shapes of graph inputs by ONNX name; overrides everything else.
  std::map<std::string, Shape> inputShapes;
  /// Values of graph inputs bound at compile time, by ONNX name: cnnc's shapes are static,
  /// so an input that feeds a shape (Reshape's `shape`) must be known when compiling.
  std::map<std::string, OnnxTensor> constInputs;
  /// Training graph: batch normalization uses batch statistics, dropout draws masks, and
  /// when the model has no loss, `loss` is appended on its single output.
  bool training = false;
  /// "softmax_xent" or "softmax" (adds an i32 input %label; a trailing Softmax is dropped,
  /// its input becomes the logits) or "l2" (adds an input %target shaped like the output);
  /// "" = none: a training import of a model without a loss is an error.
  std::string loss = "softmax_xent";
};

struct OnnxModel {
  std::unique_ptr<Module> module;
  /// Initializer values of the params, by SSA name: the model's trained weights.
  std::map<std::string, OnnxTensor> weights;
  /// ONNX value name -> IR SSA name, and back (graph inputs, outputs, initializers).
  std::map<std::string, std::string> irName, onnxName;
  int64_t opset = 0;
};

/// Reads and imports a model. Every unsupported operator, attribute value or tensor type is
/// collected and reported together in one cnnc::Error (node name, op type, attribute); a
/// truncated or corrupt file is reported as such. The function is shape-inferred and
/// verified.
OnnxModel importOnnx(const std::string &path, const OnnxOptions &opts = {});
OnnxModel importOnnxBytes(const std::string &bytes, const std::string &filename,
                          const OnnxOptions &opts = {});
/// A training build from one read and parse of the file (`opts.training` is ignored): the
/// module holds @infer (an inference import: running statistics, dropout off), then the
/// training-mode function named "train" (the `grad` pass makes it @train_step).
OnnxModel importOnnxForTraining(const std::string &path, const OnnxOptions &opts = {});

/// One ONNX operator the importer reads: the IR ops it may become and what it reads.
struct OnnxOperatorDoc {
  std::string opType;
  std::vector<OpKind> becomes; // empty: folded into a constant at import
  std::string attributes;
};
/// Every operator the importer reads (its lowering table), by name (frontend/OnnxOpsDoc.cpp;
/// an internal error if that list and the lowering table differ).
std::vector<OnnxOperatorDoc> onnxOperatorDocs();

/// Sanitizes an ONNX name into an IR SSA name (no uniqueness).
std::string sanitizeOnnxName(const std::string &name);

struct OnnxExportOptions {
  int64_t opset = 13; // raised to 14 when a reshape has allowzero=1 (see exportOpset)
  std::string producer = "cnnc";
  bool check = true; // run the ONNX checker (onnx::checker::check_model)
};

/// Writes f as an ONNX inference model: params become initializers (from `weights`, by SSA
/// name), constants Constant nodes. Throws cnnc::Error on ops with no ONNX form (training
/// ops, losses other than softmax_xent) or if the checker rejects the result.
void exportOnnx(const Function &f, const std::map<std::string, OnnxTensor> &weights,
                const std::string &path, const OnnxExportOptions &opts = {});
/// The opset export writes for f: opts.opset, or 14 if a reshape carries allowzero=1
/// (Reshape's allowzero attribute is new in opset 14).
int64_t exportOpset(const Function &f, const OnnxExportOptions &opts = {});
std::string exportOnnxBytes(const Function &f, const std::map<std::string, OnnxTensor> &weights,
                            const OnnxExportOptions &opts = {});

} // namespace cnnc
