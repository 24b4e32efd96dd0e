// Loading models and their weights for the CLI: the glue between frontends, the IR, the
// runtime's weight files and the interpreter's tensors.
#pragma once

#include "frontend/CnnFrontend.h"
#include "frontend/OnnxTensor.h"
#include "interp/Interpreter.h"
#include "ir/IR.h"
#include "io/Npz.h"

#include <map>
#include <memory>
#include <string>

namespace cnnc::tools {

struct LoadOptions {
  CnnOptions cnn; // batch, input size, width multiplier, training mode
  /// ONNX models in training mode: the loss added on the output when the model has none
  /// ("softmax_xent"/"softmax" or "l2"; "" = none, an error for a model without a loss).
  /// A training load of an .onnx gives @infer plus the training function, as for .cnn.
  std::string loss = "softmax_xent";
  /// ONNX graph inputs bound at compile time (e.g. a Reshape's shape), by ONNX name.
  std::map<std::string, OnnxTensor> onnxConstInputs;
};

/// Reads a model by its extension: `.cnn` (network description), `.ir` (textual IR, e.g.
/// the output of `cnnc dump`) or `.onnx`. Throws cnnc::Error with a location on any mistake.
std::unique_ptr<Module> loadModel(const std::string &path, const LoadOptions &opts);

using Feeds = std::map<std::string, interp::Tensor<double>>;

/// A model with what its file carries besides the IR: an ONNX model's initializers (its
/// trained weights) and the map between ONNX value names and IR SSA names.
struct LoadedModel {
  std::unique_ptr<Module> module;
  Feeds weights; // empty unless the file holds weights
  std::map<std::string, std::string> irName, onnxName;
  /// The IR name of a value the user named by its ONNX or its IR name ("" if neither).
  std::string resolve(const std::string &name) const;
  /// How to show an IR value to the user: its ONNX name when it has one.
  std::string display(const std::string &irName) const;
};
/// loadModel plus `.onnx` (docs/onnx.md) and the file's weights.
LoadedModel loadModelFile(const std::string &path, const LoadOptions &opts);

/// A tensor file by extension: `.npy`, or `.pb` (an ONNX TensorProto).
io::Array readTensorFile(const std::string &path);
void writeTensorFile(const std::string &path, const io::Array &a);

/// Initial parameter values by each param's `init` scheme, seeded.
Feeds initParams(const Function &f, uint64_t seed);
/// Parameters from a weights file (.npz, one array per parameter, named by SSA name). Every
/// param of f must be present with its exact shape; arrays the model does not use are an
/// error too (a weights file for another model is almost always a mistake).
Feeds loadParams(const Function &f, const std::string &path);
void saveParams(const Function &f, const Feeds &params, const std::string &path);

interp::Tensor<double> toTensor(const io::Array &a);
io::Array fromTensor(const interp::Tensor<double> &t, DType dtype);

} // namespace cnnc::tools
