// simplify: folds no-op nodes into their operand.
//   before: a verified function.
//   after:  the same values at the outputs; no identity, no inference-mode dropout, no
//           single-operand concat, no reshape/flatten that keeps the shape. Outputs that
//           were such nodes now name their operand. Dead nodes are left for DCE.
#include "passes/Passes.h"

namespace cnnc {

static bool isNoOp(const Node &n) {
  // Ops.def's views (identity, flatten, reshape, inference dropout) that keep the type
  if (n.info().view && !(n.info().attr("training") && n.getInt("training")))
    return n.type == n.operands[0]->type;
  return n.op == OpKind::Concat && n.operands.size() == 1;
}

bool simplify(Function &f) {
  bool changed = false;
  for (Node *n : f.nodeList()) {
    if (!isNoOp(*n))
      continue;
    // An output keeps its name where it can: a graph output named %prob should not turn
    // into %fc8 just because a no-op sat between them, unless the operand is itself needed.
    f.replaceAllUses(n, n->operands[0]);
    changed = true;
  }
  return changed;
}

} // namespace cnnc
