// The default pipeline, in order, each entry saying why it is where it is. Memory planning and
// the per-op physical layouts are code generation's (codegen/Plan.cpp, docs/layout.md).
#include "passes/Autodiff.h"
#include "passes/Passes.h"

#include <fmt/format.h>

namespace cnnc {

const std::vector<PassInfo> &defaultPipeline() {
  static const std::vector<PassInfo> passes = {
      {"grad", "training: append the backward pass and the SGD update while the graph is whole",
       [](Function &f) {
         for (const Node *o : f.outputs())
           if (o->info().loss) {
             buildTrainStep(f); // the training-mode function; @infer has no loss
             return true;
           }
         return false;
       },
       true},
      {"simplify", "fold no-ops (identity, inference dropout) so later passes see real work",
       simplify},
      {"fuse-conv-grad",
       "conv2d's gradient chains become tiled ops that never materialise φ(x); after simplify so "
       "the chains are bare, before dce so the bypassed im2row/matmul nodes go",
       fuseConvGrad},
      {"grad-input-as-conv",
       "a stride-1 conv2d_grad_input is a conv2d of dY with the flipped filter (eq. 46): it then "
       "runs on the forward kernel; after fuse-conv-grad, which makes the node, before fuse-relu",
       gradInputAsConv},
      {"fuse-bn-grad",
       "training BN's input gradient in one pass instead of three terms and their sums; after "
       "simplify (bare chains), before dce (which drops the bypassed terms)",
       fuseBatchNormGrad},
      {"fold-bn",
       "inference BN after a conv/fc is a per-channel affine map: fold it into the weights "
       "(before fuse-relu, so conv+BN+ReLU ends as one op)",
       foldBatchNorm},
      {"fuse-residual",
       "add(conv, r) becomes the conv with r added in its epilogue (ResNet's block ends); after "
       "fold-bn, which leaves the conv's result to the add, before fuse-relu, so conv+add+ReLU "
       "ends as one op",
       fuseResidual},
      {"fuse-relu",
       "after autodiff (which reads ReLU outputs only): conv/fc/batchnorm + ReLU become one op "
       "whose epilogue clamps in registers",
       fuseRelu},
      {"dce", "drop what no output needs, including nodes simplify bypassed", eliminateDeadCode},
  };
  return passes;
}

void runPipeline(Module &m, const PipelineOptions &opts) {
  const auto &passes = defaultPipeline();
  if (!opts.stopAfter.empty()) {
    bool known = opts.stopAfter == "input";
    for (const PassInfo &p : passes)
      known |= p.name == opts.stopAfter;
    if (!known) {
      std::vector<std::string> names{"input"};
      for (const PassInfo &p : passes)
        names.push_back(p.name);
      throw Error(fmt::format("unknown pass '{}' (passes: {})", opts.stopAfter, fmt::join(names, ", ")));
    }
  }
  if (opts.afterPass)
    opts.afterPass("input", m);
  if (opts.stopAfter == "input")
    return;
  for (const PassInfo &p : passes) {
    if (p.trainingOnly && !opts.training) {
      if (p.name == opts.stopAfter)
        throw Error(fmt::format("--emit={} needs a training build (--train)", p.name));
      continue;
    }
    bool changed = false;
    for (const auto &f : m.functions())
      changed |= p.run(*f);
    if (p.trainingOnly && !changed)
      buildTrainStep(*m.functions().back()); // no function has a loss: this reports it
    if (opts.verifyEach)
      verify(m);
    if (changed && opts.afterPass)
      opts.afterPass(p.name, m);
    if (!changed && opts.unchanged)
      opts.unchanged(p.name);
    if (p.name == opts.stopAfter)
      return;
  }
}

} // namespace cnnc
