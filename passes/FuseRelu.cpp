// fuse-relu: folds a ReLU into the conv2d or fc that produces its operand (the epilogue
// fusion of the design: the max(0, .) is applied to each result while it is still in a
// register, instead of a second pass over memory).
//   before: a verified function.
//   after:  every relu(p) whose p has a relu attribute (conv2d, fc) that is 0, used by nothing but that relu
//           and not an output, is that conv2d/fc itself with relu=1, under the relu's name
//           (users, outputs and the adjoints autodiff built keep referring to the same SSA
//           name); p is left dead for DCE.
// Runs after autodiff: relu_grad reads the ReLU's output (GradRules.cpp, eq. 14), so in a
// training step the pre-activation has the relu as its only user and fuses too. A fused op's
// own VJP (for IR written with relu=1) masks the adjoint first (maskFusedRelu).
#include "passes/Passes.h"

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
    n->op = p->op;
    n->operands = p->operands;
    n->attrs = p->attrs;
    n->attrs["relu"] = int64_t(1);
    n->comment = p->comment.empty() ? "fused ReLU epilogue" : p->comment + "; fused ReLU epilogue";
    changed = true;
  }
  return changed;
}

} // namespace cnnc
