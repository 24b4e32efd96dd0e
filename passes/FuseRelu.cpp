// fuse-relu: folds a ReLU into the conv2d, fc or batchnorm that produces its operand (the epilogue
// fusion of the design: the max(0, .) is applied to each result while it is still in a
// register, instead of a second pass over memory).
//   before: a verified function.
//   after:  every relu(p) whose p has a relu attribute (conv2d, fc, batchnorm) that is 0, used by nothing but that relu
//           and not an output, is gone: p has relu=1 and takes its users (a conv is not
//           called %relu1; p's comment names the ReLU it absorbed). A relu that is an
//           output becomes p's op with relu=1 under its own name (outputs are the compiled
//           function's interface), p left dead for DCE.
// Runs after autodiff: relu_grad reads the ReLU's output (GradRules.cpp, eq. 14), so in a
// training step the pre-activation has the relu as its only user and fuses too. A fused op's
// own VJP (for IR written with relu=1) masks the adjoint first (maskFusedRelu).
#include "passes/Passes.h"

#include <fmt/format.h>

#include <algorithm>

namespace cnnc {

bool fuseRelu(Function &f) {
  bool changed = false;
  for (Node *n : f.nodeList()) {
    if (n->op != OpKind::Relu)
      continue;
    Node *p = n->operands[0];
    // the ops that take a ReLU epilogue are those with a `relu` attribute (Ops.def)
    if (!p->info().attr("relu") || p->getInt("relu") || f.useCount(p) != 1)
      continue;
    const bool output = std::find(f.outputs().begin(), f.outputs().end(), n) != f.outputs().end();
    if (output) { // an output keeps its name: outputs are the compiled function's interface
      n->op = p->op;
      n->operands = p->operands;
      n->attrs = p->attrs;
      n->attrs["relu"] = int64_t(1);
      n->comment = p->comment.empty() ? "fused ReLU epilogue" : p->comment + "; fused ReLU epilogue";
    } else { // the conv/fc absorbs the ReLU and keeps its name: a conv is not called %relu1
      p->attrs["relu"] = int64_t(1);
      const std::string fused = fmt::format("fused ReLU epilogue (was %{})", n->name);
      p->comment = p->comment.empty() ? fused : p->comment + "; " + fused;
      f.replaceAllUses(n, p);
      f.removeIf([&](const Node *x) { return x == n; });
    }
    changed = true;
  }
  return changed;
}

} // namespace cnnc
