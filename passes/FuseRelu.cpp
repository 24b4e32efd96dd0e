// fuse-relu: folds a ReLU, or a clip to [0, max] (ReLU6: MobileNet v2), into the conv2d, fc or
// batchnorm that produces its operand (the epilogue fusion of the design: max(0, .), and the cap,
// are applied to each result while it is still in a register, instead of a second pass over
// memory).
//   before: a verified function.
//   after:  every relu(p), and every clip(p) with min = 0 and max > 0, whose p has a relu
//           attribute (conv2d, fc, batchnorm) that is 0, used by nothing but that op and not
//           an output, is gone: p has relu=1 (and relu_max = the clip's max) and takes its
//           users (a conv is not called %relu1; p's comment names what it absorbed). Such a
//           relu or clip that is an output becomes p's op with those attributes under its
//           own name (outputs are the compiled function's interface), p left dead for DCE.
// The fused op computes exactly the unfused pair's bits: the same max(0, .) select, then
// clip's select for the cap (NaN stays NaN; interp and codegen share the definition).
// Runs after autodiff: relu_grad reads the ReLU's output (GradRules.cpp, eq. 14), so in a
// training step the pre-activation has the relu as its only user and fuses too; clip_grad
// reads the clip's input, so a training step's clips stay unfused. A fused op's own VJP (for
// IR written with relu=1) masks the adjoint first (maskFusedRelu).
#include "passes/Passes.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace cnnc {

namespace {

// The cap a relu or a clip n puts on its operand (+inf for a relu), or NaN when n is neither
// or a clip that is not a capped ReLU (a lower bound other than 0, or max <= 0).
double reluCap(const Node *n) {
  if (n->op == OpKind::Relu)
    return INFINITY;
  if (n->op == OpKind::Clip && n->getFloat("min") == 0.0 && n->getFloat("max") > 0.0)
    return n->getFloat("max");
  return NAN;
}

} // namespace

bool fuseRelu(Function &f) {
  bool changed = false;
  for (Node *n : f.nodeList()) {
    const double cap = reluCap(n);
    if (std::isnan(cap))
      continue;
    Node *p = n->operands[0];
    // the ops that take a ReLU epilogue are those with a `relu` attribute (Ops.def)
    if (!p->info().attr("relu") || p->getInt("relu") || f.useCount(p) != 1)
      continue;
    const char *what = std::isinf(cap) ? "ReLU" : "clip";
    const bool output = std::find(f.outputs().begin(), f.outputs().end(), n) != f.outputs().end();
    if (output) { // an output keeps its name: outputs are the compiled function's interface
      n->op = p->op;
      n->operands = p->operands;
      n->attrs = p->attrs;
      n->attrs["relu"] = int64_t(1);
      if (!std::isinf(cap))
        n->attrs["relu_max"] = cap;
      const std::string fused = fmt::format("fused {} epilogue", what);
      n->comment = p->comment.empty() ? fused : p->comment + "; " + fused;
    } else { // the conv/fc absorbs the ReLU and keeps its name: a conv is not called %relu1
      p->attrs["relu"] = int64_t(1);
      if (!std::isinf(cap))
        p->attrs["relu_max"] = cap;
      const std::string fused = fmt::format("fused {} epilogue (was %{})", what, n->name);
      p->comment = p->comment.empty() ? fused : p->comment + "; " + fused;
      f.replaceAllUses(n, p);
      f.removeIf([&](const Node *x) { return x == n; });
    }
    changed = true;
  }
  return changed;
}

} // namespace cnnc
