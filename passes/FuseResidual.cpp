// fuse-residual: folds a residual connection, add(conv2d(...), r), into the conv's epilogue
// (conv2d's optional operand r): each result gets r added while it is still in a register,
// instead of a second pass that reads both tensors and writes a third (ResNet: every block
// ends in one). The ReLU after the add then fuses too (fuse-relu runs next).
//   before: a verified function.
//   after:  every add(p, r) or add(r, p), where p is a conv2d with a bias, no residual and
//           relu=0 that nothing else uses and is not an output, r has the add's type (no
//           broadcasting) and the add is not an output, is gone: p takes r as its fourth
//           operand, moves to where the add was (r may be computed after p: ResNet's
//           downsampling conv), keeps its name and takes the add's users. p's comment names
//           the add it absorbed.
// Runs after fold-bn (a conv whose BN is still to be folded has the BN as its user, not an
// add) and after autodiff: the backward pass reads neither the conv's result nor the add's,
// only the ReLU's output, which the fused conv then computes.
#include "passes/Passes.h"

#include <fmt/format.h>

#include <algorithm>

namespace cnnc {

namespace {

bool fusable(const Function &f, const Node *p) {
  return p->op == OpKind::Conv2d && p->operands.size() == 3 && !p->getInt("relu") &&
         f.useCount(p) == 1 &&
         std::find(f.outputs().begin(), f.outputs().end(), p) == f.outputs().end();
}

} // namespace

bool fuseResidual(Function &f) {
  bool changed = false;
  for (Node *n : f.nodeList()) {
    if (n->op != OpKind::Add || n->operands[0] == n->operands[1] ||
        std::find(f.outputs().begin(), f.outputs().end(), n) != f.outputs().end())
      continue;
    for (int i = 0; i < 2; ++i) {
      Node *p = n->operands[i], *r = n->operands[1 - i];
      if (!fusable(f, p) || r->type != n->type || p->type != n->type)
        continue;
      f.moveBefore(p, n); // after r, wherever r is computed
      p->operands.push_back(r);
      const std::string fused = fmt::format("fused residual add (was %{})", n->name);
      p->comment = p->comment.empty() ? fused : p->comment + "; " + fused;
      f.replaceAllUses(n, p);
      f.removeIf([&](const Node *x) { return x == n; });
      changed = true;
      break;
    }
  }
  return changed;
}

} // namespace cnnc
