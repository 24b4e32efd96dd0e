// fold-bn: folds an inference-mode batch normalization into the conv2d or fc before it.
//   before: a verified function.
//   after:  every batchnorm(p, scale, bias, mean, var) whose statistics are params or
//           constants (running statistics, not a batch's bn_mean/bn_var), and whose p is a
//           conv2d/fc without a fused ReLU used by nothing else and not an output, is
//           gone, p computing it with folded weights in its place (an output BN is instead
//           p's op under the BN's name, p left dead for DCE):
//             a  = scale / sqrt(var + eps)        per output channel
//             w' = w · a   (a along w's dim 0),   b' = (b − mean) · a + bias
//           so that conv(x, w') + b' = BN(conv(x, w) + b) (conv is linear in w; seed eq. 15).
//           The per-channel terms are themselves batchnorm nodes on [1, M] tensors (a is the
//           BN of ones with zero mean and bias; b' is the BN of b), so the fold is exact IR
//           with the op's own definition, recomputed per call from whatever the params hold
//           (cnnc_set_param needs no re-fold).
// Runs before fuse-relu, so conv → BN → ReLU ends as one conv2d with relu=1 (a BN that IR
// text gives relu=1 hands it to p).
#include "passes/Passes.h"

#include <fmt/format.h>

#include <algorithm>

namespace cnnc {

static bool isStatic(const Node *n) { return n->op == OpKind::Param || n->op == OpKind::Constant; }

bool foldBatchNorm(Function &f) {
  bool changed = false;
  for (Node *bn : f.nodeList()) {
    if (bn->op != OpKind::BatchNorm)
      continue;
    Node *p = bn->operands[0];
    if ((p->op != OpKind::Conv2d && p->op != OpKind::FullyConnected) || p->getInt("relu") ||
        p->operands.size() > 3 || f.useCount(p) != 1) // (a residual added after the conv: not a scale of its weights)
      continue;
    bool stats = true;
    for (size_t i = 1; i < 5; ++i)
      stats &= isStatic(bn->operands[i]);
    if (!stats)
      continue;
    Node *w = p->operands[1];
    const int64_t M = w->type.shape[0];
    const DType dt = p->type.dtype;
    // Appends a node located at the BN and moves it just before the BN (its operands are p's
    // and the BN's, which precede it, or nodes this fold made there).
    auto make = [&](OpKind op, const std::string &suffix, std::vector<Node *> ops,
                    std::map<std::string, Attr> attrs = {}, std::optional<TensorType> type = {}) {
      Node *n = f.add(op, bn->name + ".fold." + suffix, std::move(ops), std::move(attrs), type,
                      bn->loc, true);
      f.moveBefore(n, bn);
      return n;
    };
    auto splat = [&](double v, const std::string &suffix, Shape shape) {
      return make(OpKind::Constant, suffix, {}, {{"value", std::vector<double>{v}}},
                  TensorType{dt, std::move(shape)});
    };
    const Attr eps = bn->get("epsilon");
    auto bnOf = [&](Node *x, Node *bias, Node *mean, const std::string &suffix) {
      return make(OpKind::BatchNorm, suffix, {x, bn->operands[1], bias, mean, bn->operands[4]},
                  {{"epsilon", eps}});
    };
    Node *zeros = splat(0.0, "zeros", {M});
    Node *a = bnOf(splat(1.0, "ones", {1, M}), zeros, zeros, "a"); // [1, M]: one "example"
    Shape as(w->type.shape.size(), 1);
    as[0] = M;
    Node *a4 = make(OpKind::Reshape, "a.w", {a}, {{"shape", as}});
    Node *w2 = make(OpKind::Mul, "w", {w, a4});
    Node *b = p->operands.size() > 2 ? make(OpKind::Reshape, "b0", {p->operands[2]}, {{"shape", Shape{1, M}}})
                                     : splat(0.0, "b0", {1, M});
    Node *b2 = make(OpKind::Reshape, "b", {bnOf(b, bn->operands[2], bn->operands[3], "b1")},
                    {{"shape", Shape{M}}});
    if (std::find(f.outputs().begin(), f.outputs().end(), bn) == f.outputs().end()) {
      // p takes the folded weights and the BN's place and users: the node keeps the name of
      // what it computes, a conv/fc (an output BN keeps its name: the function's interface)
      f.moveBefore(p, bn);
      p->operands = {p->operands[0], w2, b2};
      p->attrs["relu"] = bn->get("relu"); // a fused ReLU (IR written so) moves with the BN
      p->attrs["relu_max"] = bn->get("relu_max");
      p->comment = fmt::format("batch norm %{} folded into the weights", bn->name);
      f.replaceAllUses(bn, p);
      f.removeIf([&](const Node *x) { return x == bn; });
    } else {
      const Attr relu = bn->get("relu"), reluMax = bn->get("relu_max");
      bn->op = p->op;
      bn->operands = {p->operands[0], w2, b2};
      bn->attrs = p->attrs;
      bn->attrs["relu"] = relu;
      bn->attrs["relu_max"] = reluMax;
      bn->comment = "batch norm folded into the weights";
    }
    changed = true;
  }
  return changed;
}

} // namespace cnnc
