// The `.cnn` network description (docs/cnn-format.md): a hand-written, line-per-layer text
// close to the seed's Table 2, lowered to one IR function.
#pragma once

#include "ir/IR.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cnnc {

struct CnnOptions {
  int64_t batch = 1;
  /// Overrides the spatial size [H, W] the model declares for its input (runs VGG-16 at a
  /// small size in tests); channels stay as declared.
  std::optional<std::pair<int64_t, int64_t>> inputHW;
  /// The SK-s width multiplier s (seed Exercise 6(f)): scales the output channels of every
  /// layer the model marks as `widen`-able; 1 = as written.
  double width = 1.0;
  /// Inference: batch norm uses running statistics, dropout is the identity, a loss layer
  /// becomes its prediction (softmax). Training: batch norm uses batch statistics (bn_mean /
  /// bn_var), dropout draws masks, and the loss layer adds a `label` input and returns the loss.
  bool training = false;
  /// The model's seed for stochastic layers: each dropout's mask seed is a hash of its layer
  /// name mixed with this, so masks differ between layers and between runs seeded apart,
  /// and a given (seed, step) always draws the same mask.
  uint64_t seed = 0;
};

/// Parses and lowers a model. Every mistake throws one cnnc::Error with file:line:col, the
/// offending line and a caret. The result is shape-inferred and verified.
std::unique_ptr<Module> parseCnn(std::string_view text, const std::string &filename,
                                 const CnnOptions &opts = {});
std::unique_ptr<Module> parseCnnFile(const std::string &path, const CnnOptions &opts = {});
/// A training build from one read and parse of the file (`opts.training` is ignored): the
/// module holds @infer (inference mode: running statistics, dropout off, the loss layer's
/// prediction), then the training-mode function, named after the network (the `grad` pass
/// makes it @train_step).
std::unique_ptr<Module> parseCnnFileForTraining(const std::string &path, const CnnOptions &opts = {});

} // namespace cnnc
