// The pass pipeline. Each pass is one file, one entry function, its invariants stated at the
// top of the file; the pipeline (Pipeline.cpp) is the ordered list, readable top to bottom.
#pragma once

#include "ir/IR.h"

#include <functional>
#include <string>
#include <vector>

namespace cnnc {

/// Removes nodes whose values no output needs. Returns true if it changed f.
bool eliminateDeadCode(Function &f);
/// Folds away no-op nodes: identity, inference-mode dropout, single-input concat,
/// reshape/flatten to the same shape. Returns true if it changed f.
bool simplify(Function &f);
/// Replaces autodiff's im2row/matmul/row2im chains of conv2d's gradients by the fused
/// conv2d_grad_filter / conv2d_grad_input ops (FuseConvGrad.cpp). Returns true if it changed f.
bool fuseConvGrad(Function &f);
/// Rewrites stride-1 conv2d_grad_input as conv2d(dy, filter_flip(w)) so that backward-data
/// runs on the forward conv kernel (GradInputAsConv.cpp). Returns true if it changed f.
bool gradInputAsConv(Function &f);
/// Batch norm's input gradient over batch statistics as one bn_train_grad instead of
/// autodiff's three terms and their sums (FuseBatchNormGrad.cpp). Returns true if it changed f.
bool fuseBatchNormGrad(Function &f);
/// Folds inference batch normalization into the conv2d/fc before it (passes/FoldBatchNorm.cpp).
bool foldBatchNorm(Function &f);
/// Folds add(conv2d, r) into the conv's residual operand r (passes/FuseResidual.cpp).
bool fuseResidual(Function &f);
/// Folds relu(conv2d|fc) into the producer's relu=1 epilogue (passes/FuseRelu.cpp).
bool fuseRelu(Function &f);

struct PassInfo {
  std::string name; // as --print-after / --stop-after name it
  std::string why;  // one line: why it runs at this point
  std::function<bool(Function &)> run;
  bool trainingOnly = false; // runs only when building a training step
};

/// The default pipeline for inference, in order.
const std::vector<PassInfo> &defaultPipeline();

struct PipelineOptions {
  /// Called after each pass that changed the IR (and once for the input, with "input"),
  /// e.g. to print the IR after every pass.
  std::function<void(const std::string &pass, const Module &m)> afterPass;
  /// Called after each pass that ran and changed nothing (`cnnc dump --print-changed`).
  std::function<void(const std::string &pass)> unchanged;
  /// Stop after this pass ("" = run all). Unknown names are an error.
  std::string stopAfter;
  bool verifyEach = true; // run the verifier after each pass (cheap; catches pass bugs early)
  /// The module holds a training-mode forward function: the `grad` pass turns it into
  /// @train_step (autodiff + SGD, passes/Autodiff.h) before the other passes run.
  bool training = false;
};

/// Runs the pipeline on every function of m.
void runPipeline(Module &m, const PipelineOptions &opts = {});

} // namespace cnnc
