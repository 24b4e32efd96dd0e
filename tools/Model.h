// Loading models and their weights for the CLI: the glue between frontends, the IR, the
// runtime's weight files and the interpreter's tensors.
#pragma once

#include "frontend/CnnFrontend.h"
#include "interp/Interpreter.h"
#include "ir/IR.h"
#include "runtime/Npz.h"

#include <map>
#include <memory>
#include <string>

namespace cnnc::tools {

struct LoadOptions {
  CnnOptions cnn; // batch, input size, width multiplier, training mode
};

/// Reads a model by its extension: `.cnn` (network description) or `.ir` (textual IR, e.g.
/// the output of `cnnc dump`). Throws cnnc::Error with a location on any mistake.
std::unique_ptr<Module> loadModel(const std::string &path, const LoadOptions &opts);

using Feeds = std::map<std::string, interp::Tensor<double>>;

/// Initial parameter values by each param's `init` scheme, seeded.
Feeds initParams(const Function &f, uint64_t seed);
/// Parameters from a weights file (.npz, one array per parameter, named by SSA name). Every
/// param of f must be present with its exact shape; arrays the model does not use are an
/// error too (a weights file for another model is almost always a mistake).
Feeds loadParams(const Function &f, const std::string &path);
void saveParams(const Function &f, const Feeds &params, const std::string &path);

interp::Tensor<double> toTensor(const rt::Array &a);
rt::Array fromTensor(const interp::Tensor<double> &t, DType dtype);

} // namespace cnnc::tools
