// Random small valid models from the op table (docs/hardening.md, "The differential
// fuzzer"): the model generator behind fuzz_diff, reusable by tools and tests. Every choice
// (ops, operands, shapes, attributes, which outputs, training or not, the feeds' seed) is
// read from a byte string, so a fuzzer's input or a committed seed file replays exactly; an
// exhausted string reads as zeros, so every byte string gives a model.
//
// Invariants of what it builds:
//  - the function verifies (every node is added through its shape rule; a choice the rule
//    refuses is dropped, not kept), and every tensor holds at most kMaxElements elements;
//  - inputs of ops with a restricted domain (log, sqrt, reciprocal, div's divisor, pow's
//    base) are fresh inputs named `pos*`, which randomFeeds fills from [0.5, 2]: the
//    comparison then tests the kernels, not the conditioning of log near 0;
//  - a training model has exactly one output, l2_loss(last value, %target), and only ops
//    that have a gradient rule (passes/Autodiff.h): buildTrainStep turns it into a step.
#pragma once

#include "interp/Interpreter.h"
#include "ir/IR.h"

#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace cnnc::fuzz {

inline constexpr int64_t kMaxElements = 4096;

struct RandomModel {
  std::unique_ptr<Module> module; // one function, the forward model (with its loss if training)
  bool training = false;
  bool specials = false; // the feeds put NaN and infinities into %x
  uint64_t feedSeed = 0;
};

/// The model the bytes describe (never throws for any bytes).
RandomModel randomModel(std::string_view bytes);

/// Feeds for every input and param of f, as f32 values held in f64: inputs uniform in
/// [-1, 1], `pos*` inputs in [0.5, 2], params scaled by their fan-in, `*var` params in
/// [0.5, 1.5]; with `specials`, a few elements of %x are NaN, +inf or -inf.
std::map<std::string, interp::Tensor<double>> randomFeeds(const Function &f, uint64_t seed,
                                                          bool specials);

} // namespace cnnc::fuzz
