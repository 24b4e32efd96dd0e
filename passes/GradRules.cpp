// The vector-Jacobian products, one rule per op in the op table's order. Each returns, for
// every operand i with c.need[i], the contribution dz/d(operand i) given dy = dz/d(n), the
// seed's chain rule (eqs. 10-11) read right to left. Comments on the nodes cite the seed.
//
// Convolution is differentiated as the seed does it (section 6.3-6.7): through φ(x) = im2row,
// matrix products and row2im, all explicit in the IR, per group:
//   Y = φ(x) F                      (eq. 22; F is the weight as [G, M/G, C/G*kh*kw], transposed)
//   dF = φ(x)^T dY                  (eq. 35; computed as dY^T φ(x), already in weight layout)
//   dX = row2im(dY F^T)             (eqs. 45-46; row2im is the scatter-add over m^-1)
// The `fuse-conv-grad` pass (passes/FuseConvGrad.cpp) later replaces each chain by one
// conv2d_grad_filter / conv2d_grad_input op: tiled loops that never materialise φ(x) whole.
#include "passes/GradRules.h"
#include "passes/Autodiff.h"

#include <fmt/format.h>

#include <cmath>

namespace cnnc::grad {

namespace {

using Ints = std::vector<int64_t>;

[[noreturn]] void notDifferentiable(const Context &c) {
  throw Error(c.n.loc, fmt::format("%{} ({}): no gradient rule: it is not differentiable "
                                   "(second derivatives of backward ops are not supported)",
                                   c.n.name, c.n.info().mnemonic));
}

std::map<std::string, Attr> windowAttrs(const Node &n, std::initializer_list<const char *> names) {
  std::map<std::string, Attr> a;
  for (const char *k : names)
    if (n.info().attr(k))
      a[k] = n.get(k);
  return a;
}

Node *neg(Context &c, Node *x, const std::string &suffix) {
  return c.make(OpKind::Mul, suffix, {x, c.scalar(-1.0, suffix + ".m1")});
}

} // namespace

// An op without a gradient: its rule is the error, and kNoGradient (read by hasGradient, and so
// by the generated operator tables of the docs) says so, from the same line.
template <OpKind K> constexpr bool kNoGradient = false;
#define NO_GRADIENT(Enum)                                                                          \
  template <> constexpr bool kNoGradient<OpKind::Enum> = true;                                     \
  static std::vector<Node *> grad##Enum(Context &c) { notDifferentiable(c); }

// ---------------------------------------------------------------------------- rules --
static std::vector<Node *> gradInput(Context &) { return {}; }
static std::vector<Node *> gradParam(Context &) { return {}; }
static std::vector<Node *> gradConstant(Context &) { return {}; }

// A fused ReLU epilogue (relu=1, passes/FuseRelu.cpp) first masks the adjoint by the result,
// eq. 14, then the rule is the plain op's.
static void maskFusedRelu(Context &c) {
  if (!c.n.getInt("relu"))
    return;
  Node *y = const_cast<Node *>(&c.n);
  if (const double hi = c.n.getFloat("relu_max"); !std::isinf(hi)) // a fused clip: 0 < y < hi
    c.dy = c.make(OpKind::ClipGrad, "dpre", {c.dy, y}, {{"min", 0.0}, {"max", hi}},
                  "eq. 14, two bounds: y = clip(x) is inside (0, max) exactly where x is");
  else
    c.dy = c.make(OpKind::ReluGrad, "dpre", {c.dy, y}, {}, "eq. 14");
}

static std::vector<Node *> gradConv2d(Context &c) {
  maskFusedRelu(c);
  const Node &n = c.n;
  Node *x = c.operand(0), *w = c.operand(1);
  const Shape &xs = x->type.shape, &ws = w->type.shape, &ys = n.type.shape;
  int64_t g = n.getInt("groups"), mg = ws[0] / g, q = ws[1] * ws[2] * ws[3], p = ys[0] * ys[2] * ys[3];
  std::vector<Node *> out(n.operands.size(), nullptr);
  auto conv = windowAttrs(n, {"stride", "pads", "dilation", "groups"});
  conv["kernel"] = Ints{ws[2], ws[3]};
  // dY as the seed's matrix Y (one row per output pixel), per group: [G, N*Ho*Wo, M/G].
  Node *dy4 = c.reshape(c.dy, {ys[0], g, mg, ys[2] * ys[3]}, "dy.split",
                        "dz/dY, 1 of 3: [N,D,Ho,Wo] split as [N,groups,D/groups,Ho*Wo]");
  Node *dyT = c.make(OpKind::Transpose, "dy.t", {dy4}, {{"perm", Ints{1, 0, 3, 2}}},
                     "dz/dY, 2 of 3: pixels before channels, per group");
  Node *dyRows = c.reshape(dyT, {g, p, mg}, "dy.rows",
                           "dz/dY, 3 of 3: the seed's matrix, one row per output pixel (eq. 22's Y)");
  if (c.need[1]) {
    Node *phi = c.make(OpKind::Im2Row, "phi", {x}, conv, "eqs. 18-21");
    Node *dF = c.make(OpKind::MatMul, "dF", {dyRows, phi}, {{"trans_a", int64_t(1)}}, "eq. 35");
    out[1] = c.reshape(dF, ws, "dw", "dz/dF back in the kernels' layout f (F = f reshaped, eq. 22)");
  }
  if (c.need[0]) {
    Node *f = c.reshape(w, {g, mg, q}, "F", "the kernels as the seed's matrix F (eq. 22), per group");
    Node *dPhi = c.make(OpKind::MatMul, "dphi", {dyRows, f}, {}, "eq. 45");
    auto r2i = conv;
    r2i["input_shape"] = xs;
    out[0] = c.make(OpKind::Row2Im, "dx", {dPhi}, r2i, "eq. 46");
  }
  if (out.size() >= 3 && c.need[2])
    out[2] = c.make(OpKind::ReduceSum, "db", {c.dy}, {{"axes", Ints{0, 2, 3}}},
                    "bias (section 6.1 omits it): b_d is added at every pixel, so dz/db_d sums dz/dY's column d");
  if (out.size() == 4 && c.need[3])
    out[3] = c.dy; // the residual r is added as it is: dz/dr = dz/dY (after the ReLU's mask)
  return out;
}

static std::vector<Node *> gradMaxPool(Context &c) {
  return {c.make(OpKind::MaxPoolGrad, "dx", {c.dy, c.operand(0)},
                 windowAttrs(c.n, {"kernel", "stride", "pads", "dilation", "ceil_mode"}), "eq. 56")};
}

static std::vector<Node *> gradAvgPool(Context &c) {
  auto a = windowAttrs(c.n, {"kernel", "stride", "pads", "ceil_mode", "count_include_pad"});
  a["input_shape"] = c.operand(0)->type.shape;
  return {c.make(OpKind::AvgPoolGrad, "dx", {c.dy}, a, "eq. 49: each window's dy spread over its HW inputs")};
}

static std::vector<Node *> gradGlobalAvgPool(Context &c) {
  const Shape &xs = c.operand(0)->type.shape;
  int64_t area = 1;
  for (size_t i = 2; i < xs.size(); ++i)
    area *= xs[i];
  Node *e = c.make(OpKind::Expand, "dx.e", {c.dy}, {{"shape", xs}}, "eq. 49 over the whole map: dy to every pixel");
  return {c.make(OpKind::Mul, "dx", {e, c.scalar(1.0 / area, "inv_area")}, {}, "eq. 49: times 1/(HW)")};
}

static std::vector<Node *> gradRelu(Context &c) {
  // The mask [x > 0] read from y = max(0, x): the same set, and the pre-activation is not kept
  // alive for the backward pass, which lets fuse-relu fold the ReLU into its producer.
  return {c.make(OpKind::ReluGrad, "dx", {c.dy, const_cast<Node *>(&c.n)}, {}, "eq. 14")};
}
static std::vector<Node *> gradSigmoid(Context &c) {
  return {c.make(OpKind::SigmoidGrad, "dx", {c.dy, const_cast<Node *>(&c.n)}, {}, "section 5: y(1-y)")};
}
static std::vector<Node *> gradTanh(Context &c) {
  return {c.make(OpKind::TanhGrad, "dx", {c.dy, const_cast<Node *>(&c.n)}, {}, "dy (1 - y^2)")};
}
// y = log(1 + exp(x)): dy/dx = 1 / (1 + exp(-x)), the seed's logistic sigmoid (section 5),
// and by the chain rule (seed section 5: dz/dx = dz/dy dy/dx) dx = dy * sigmoid(x).
static std::vector<Node *> gradSoftplus(Context &c) {
  Node *s = c.make(OpKind::Sigmoid, "dsig", {c.operand(0)}, {}, "section 5: dy/dx = sigmoid(x)");
  return {c.make(OpKind::Mul, "dx", {c.dy, s}, {}, "section 5: dz/dx = dz/dy dy/dx")};
}

// Bounded activations: the gradient passes where the activation is not saturated, the
// seed's eq. 14 with two bounds instead of one.
static std::vector<Node *> gradClip(Context &c) {
  return {c.make(OpKind::ClipGrad, "dx", {c.dy, c.operand(0)},
                 {{"min", c.n.get("min")}, {"max", c.n.get("max")}}, "eq. 14, two bounds")};
}
// y = clip(alpha x + beta, 0, 1): dx = alpha dy where 0 < alpha x + beta < 1, i.e. where x
// lies strictly between the bounds (-beta)/alpha and (1-beta)/alpha (swapped for alpha < 0).
static std::vector<Node *> gradHardSigmoid(Context &c) {
  const double a = c.n.getFloat("alpha"), b = c.n.getFloat("beta");
  if (a == 0)
    return {c.make(OpKind::Mul, "dx", {c.dy, c.scalar(0.0, "zero")})};
  double lo = -b / a, hi = (1 - b) / a;
  if (a < 0)
    std::swap(lo, hi);
  Node *m = c.make(OpKind::ClipGrad, "dmask", {c.dy, c.operand(0)}, {{"min", lo}, {"max", hi}},
                   "eq. 14, two bounds: dy where the clip is not saturated");
  return {c.make(OpKind::Mul, "dx", {m, c.scalar(a, "alpha")}, {}, "times the slope alpha")};
}
// y = x h(x) with h = hard_sigmoid(x; 1/6, 1/2): dy/dx = h(x) + x/6 on (-3, 3), the product
// rule (PyTorch's hardswish_backward: 0 below -3, x/3 + 1/2 between, 1 above).
static std::vector<Node *> gradHardSwish(Context &c) {
  Node *x = c.operand(0);
  Node *h = c.make(OpKind::HardSigmoid, "h", {x}, {{"alpha", 1.0 / 6}}, "hard swish y = x h(x): h recomputed");
  Node *dyh = c.make(OpKind::Mul, "dyh", {c.dy, h}, {}, "product rule, 1 of 2: dy h(x)");
  Node *m = c.make(OpKind::ClipGrad, "dmask", {c.dy, x}, {{"min", -3.0}, {"max", 3.0}}, "eq. 14, two bounds: h's slope is 1/6 on (-3, 3)");
  Node *mx = c.make(OpKind::Mul, "dmx", {m, x}, {}, "product rule, 2 of 2: dy x h'(x) ...");
  Node *slope = c.make(OpKind::Mul, "dslope", {mx, c.scalar(1.0 / 6, "sixth")}, {}, "... with h'(x) = 1/6");
  return {c.make(OpKind::Add, "dx", {dyh, slope}, {}, "the product rule's two terms")};
}
// y = x for x > 0, alpha x otherwise: dx = alpha dy + (1 - alpha) relu_grad(dy, x) (eq. 14).
static std::vector<Node *> gradLeakyRelu(Context &c) {
  const double a = c.n.getFloat("alpha");
  Node *pos = c.make(OpKind::ReluGrad, "dpos", {c.dy, c.operand(0)}, {}, "eq. 14");
  Node *p = c.make(OpKind::Mul, "dposs", {pos, c.scalar(1 - a, "one_m_alpha")}, {}, "(1 - alpha) [x > 0] dy");
  Node *q = c.make(OpKind::Mul, "dneg", {c.dy, c.scalar(a, "alpha")}, {}, "alpha dy");
  return {c.make(OpKind::Add, "dx", {p, q}, {}, "leaky ReLU: eq. 14 with slope alpha below 0")};
}

// The exponential-linear units: y = s x above 0, s a (exp(x) - 1) at or below (s = 1 for elu,
// gamma for selu), so dy/dx = s above 0 and y + s a below: dx = s relu_grad(dy, x) (eq. 14's
// mask) plus the rest of dy times (y + s a).
static std::vector<Node *> expLinear(Context &c, double s, double a) {
  Node *pos = c.make(OpKind::ReluGrad, "dpos", {c.dy, c.operand(0)}, {}, "eq. 14");
  Node *rest = c.make(OpKind::Sub, "drest", {c.dy, pos});
  Node *slope = c.make(OpKind::Add, "dslope", {const_cast<Node *>(&c.n), c.scalar(s * a, "sa")});
  Node *below = c.make(OpKind::Mul, "dbelow", {rest, slope});
  Node *above = s == 1 ? pos : c.make(OpKind::Mul, "dabove", {pos, c.scalar(s, "scale")});
  return {c.make(OpKind::Add, "dx", {above, below})};
}
static std::vector<Node *> gradElu(Context &c) { return expLinear(c, 1.0, c.n.getFloat("alpha")); }
static std::vector<Node *> gradSelu(Context &c) {
  return expLinear(c, c.n.getFloat("gamma"), c.n.getFloat("alpha"));
}
// y = x above 0, slope x at or below: dx = relu_grad(dy, x) + (dy - relu_grad(dy, x)) slope,
// dslope = (dy - relu_grad(dy, x)) x summed over the dims the slope was broadcast along.
static std::vector<Node *> gradPRelu(Context &c) {
  Node *x = c.operand(0), *slope = c.operand(1);
  Node *pos = c.make(OpKind::ReluGrad, "dpos", {c.dy, x}, {}, "eq. 14");
  Node *rest = c.make(OpKind::Sub, "drest", {c.dy, pos});
  std::vector<Node *> out(2, nullptr);
  if (c.need[0])
    out[0] = c.make(OpKind::Add, "dx", {pos, c.make(OpKind::Mul, "dxneg", {rest, slope})});
  if (c.need[1])
    out[1] = c.sumTo(c.make(OpKind::Mul, "dslope.full", {rest, x}), slope->type.shape, "dslope");
  return out;
}
// d erf(x)/dx = 2/sqrt(pi) exp(-x^2).
static std::vector<Node *> gradErf(Context &c) {
  Node *x = c.operand(0);
  Node *xx = c.make(OpKind::Mul, "dxx", {x, x});
  Node *e = c.make(OpKind::Exp, "dexp", {c.make(OpKind::Neg, "dnxx", {xx})});
  Node *d = c.make(OpKind::Mul, "dderiv", {e, c.scalar(1.1283791670955126, "two_over_sqrt_pi")});
  return {c.make(OpKind::Mul, "dx", {c.dy, d})};
}
static std::vector<Node *> gradExp(Context &c) { // dy/dx = y
  return {c.make(OpKind::Mul, "dx", {c.dy, const_cast<Node *>(&c.n)})};
}
static std::vector<Node *> gradLog(Context &c) { // dy/dx = 1/x
  return {c.make(OpKind::Div, "dx", {c.dy, c.operand(0)})};
}
static std::vector<Node *> gradSqrt(Context &c) { // dy/dx = 1/(2y)
  Node *q = c.make(OpKind::Div, "dq", {c.dy, const_cast<Node *>(&c.n)});
  return {c.make(OpKind::Mul, "dx", {q, c.scalar(0.5, "half")})};
}
static std::vector<Node *> gradReciprocal(Context &c) { // dy/dx = -1/x^2 = -y^2
  Node *y = const_cast<Node *>(&c.n);
  Node *g = c.make(OpKind::Mul, "dyy2", {c.make(OpKind::Mul, "dy2", {y, y}), c.dy});
  return {c.make(OpKind::Neg, "dx", {g})};
}
static std::vector<Node *> gradNeg(Context &c) { return {c.make(OpKind::Neg, "dx", {c.dy})}; }
// dy/dx = sign(x), 0 at 0 (PyTorch's subgradient): the mask of eq. 14 on x minus the one on -x.
static std::vector<Node *> gradAbs(Context &c) {
  Node *x = c.operand(0);
  Node *pos = c.make(OpKind::ReluGrad, "dpos", {c.dy, x}, {}, "eq. 14");
  Node *below = c.make(OpKind::ReluGrad, "dneg", {c.dy, c.make(OpKind::Neg, "dnx", {x})}, {}, "eq. 14");
  return {c.make(OpKind::Sub, "dx", {pos, below})};
}

// y = x w^T + b: the seed's FC as a convolution with a kernel covering its input (section
// 6.8), so eqs. 35 and 45 with φ(x) = x: dw = dy^T x, dx = dy w.
static std::vector<Node *> gradFullyConnected(Context &c) {
  maskFusedRelu(c);
  std::vector<Node *> out(c.n.operands.size(), nullptr);
  if (c.need[0])
    out[0] = c.make(OpKind::MatMul, "dx", {c.dy, c.operand(1)}, {}, "eq. 45 (section 6.8)");
  if (c.need[1])
    out[1] = c.make(OpKind::MatMul, "dw", {c.dy, c.operand(0)}, {{"trans_a", int64_t(1)}}, "eq. 35 (section 6.8)");
  if (out.size() == 3 && c.need[2])
    out[2] = c.make(OpKind::ReduceSum, "db", {c.dy}, {{"axes", Ints{0}}},
                    "bias: added to every example's row, so dz/db sums dz/dy over the batch");
  return out;
}

// C = A' B' with A' = A or A^T, B' = B or B^T: dA' = dC B'^T, dB' = A'^T dC.
static std::vector<Node *> gradMatMul(Context &c) {
  bool ta = c.n.getInt("trans_a"), tb = c.n.getInt("trans_b");
  Node *a = c.operand(0), *b = c.operand(1);
  auto mm = [&](const char *name, Node *l, Node *r, bool tl, bool tr) {
    std::map<std::string, Attr> at;
    if (tl)
      at["trans_a"] = int64_t(1);
    if (tr)
      at["trans_b"] = int64_t(1);
    return c.make(OpKind::MatMul, name, {l, r}, at);
  };
  std::vector<Node *> out(2, nullptr);
  if (c.need[0])
    out[0] = ta ? mm("da", b, c.dy, tb, true) : mm("da", c.dy, b, false, !tb);
  if (c.need[1])
    out[1] = tb ? mm("db", c.dy, a, true, ta) : mm("db", a, c.dy, !ta, false);
  return out;
}

// ONNX's broadcasting MatMul: dA = dC B^T and dB = A^T dC per matrix, summed over the batch
// dimensions an operand was broadcast along.
static std::vector<Node *> gradBatchMatMul(Context &c) {
  Node *a = c.operand(0), *b = c.operand(1);
  if (a->type.rank() < 2 || b->type.rank() < 2)
    notDifferentiable(c);
  auto swapLast = [&](Node *x, const char *suffix) {
    Ints perm;
    for (int i = 0; i < x->type.rank(); ++i)
      perm.push_back(i);
    std::swap(perm[perm.size() - 1], perm[perm.size() - 2]);
    return c.make(OpKind::Transpose, suffix, {x}, {{"perm", perm}});
  };
  std::vector<Node *> out(2, nullptr);
  if (c.need[0])
    out[0] = c.sumTo(c.make(OpKind::BatchMatMul, "da.full", {c.dy, swapLast(b, "bT")}), a->type.shape, "da");
  if (c.need[1])
    out[1] = c.sumTo(c.make(OpKind::BatchMatMul, "db.full", {swapLast(a, "aT"), c.dy}), b->type.shape, "db");
  return out;
}

static std::vector<Node *> gradAdd(Context &c) {
  std::vector<Node *> out(2, nullptr);
  for (int i = 0; i < 2; ++i)
    if (c.need[i])
      out[i] = c.sumTo(c.dy, c.operand(i)->type.shape, i ? "db" : "da");
  return out;
}

static std::vector<Node *> gradSub(Context &c) {
  std::vector<Node *> out(2, nullptr);
  if (c.need[0])
    out[0] = c.sumTo(c.dy, c.operand(0)->type.shape, "da");
  if (c.need[1])
    out[1] = c.sumTo(neg(c, c.dy, "dy.neg"), c.operand(1)->type.shape, "db");
  return out;
}

static std::vector<Node *> gradMul(Context &c) {
  std::vector<Node *> out(2, nullptr);
  if (c.need[0])
    out[0] = c.sumTo(c.make(OpKind::Mul, "da.full", {c.dy, c.operand(1)}), c.operand(0)->type.shape, "da");
  if (c.need[1])
    out[1] = c.sumTo(c.make(OpKind::Mul, "db.full", {c.dy, c.operand(0)}), c.operand(1)->type.shape, "db");
  return out;
}

// y = a / b: da = dy / b, db = -dy * y / b.
static std::vector<Node *> gradDiv(Context &c) {
  std::vector<Node *> out(2, nullptr);
  Node *b = c.operand(1);
  if (c.need[0])
    out[0] = c.sumTo(c.make(OpKind::Div, "da.full", {c.dy, b}), c.operand(0)->type.shape, "da");
  if (c.need[1]) {
    Node *t = c.make(OpKind::Mul, "db.dyy", {c.dy, const_cast<Node *>(&c.n)});
    Node *u = c.make(OpKind::Div, "db.q", {t, b});
    out[1] = c.sumTo(neg(c, u, "db.full"), b->type.shape, "db");
  }
  return out;
}

// y = a^b: da = dy b a^(b-1), db = dy y log(a) (PyTorch's formulas; NaN for db where a < 0).
static std::vector<Node *> gradPow(Context &c) {
  Node *a = c.operand(0), *b = c.operand(1);
  std::vector<Node *> out(2, nullptr);
  if (c.need[0]) {
    Node *p = c.make(OpKind::Pow, "da.pow", {a, c.make(OpKind::Sub, "da.bm1", {b, c.scalar(1.0, "one")})});
    Node *g = c.make(OpKind::Mul, "da.full", {c.make(OpKind::Mul, "da.dyb", {c.dy, b}), p});
    out[0] = c.sumTo(g, a->type.shape, "da");
  }
  if (c.need[1]) {
    Node *g = c.make(OpKind::Mul, "db.dyy", {c.dy, const_cast<Node *>(&c.n)});
    out[1] = c.sumTo(c.make(OpKind::Mul, "db.full", {g, c.make(OpKind::Log, "db.log", {a})}), b->type.shape, "db");
  }
  return out;
}
// max/min route dy to the operand that won (eq. 14's mask on a - b), and split it evenly on a
// tie, as PyTorch's maximum/minimum do; each part is summed over its broadcast dims.
static std::vector<Node *> minMax(Context &c, bool isMax) {
  Node *a = c.operand(0), *b = c.operand(1);
  Node *aWins = c.make(OpKind::ReluGrad, "da.win", {c.dy, c.make(OpKind::Sub, "amb", {isMax ? a : b, isMax ? b : a})});
  Node *bWins = c.make(OpKind::ReluGrad, "db.win", {c.dy, c.make(OpKind::Sub, "bma", {isMax ? b : a, isMax ? a : b})});
  Node *tie = c.make(OpKind::Sub, "tie", {c.make(OpKind::Sub, "tie.a", {c.dy, aWins}), bWins});
  Node *half = c.make(OpKind::Mul, "tie.half", {tie, c.scalar(0.5, "half")});
  std::vector<Node *> out(2, nullptr);
  if (c.need[0])
    out[0] = c.sumTo(c.make(OpKind::Add, "da.full", {aWins, half}), a->type.shape, "da");
  if (c.need[1])
    out[1] = c.sumTo(c.make(OpKind::Add, "db.full", {bWins, half}), b->type.shape, "db");
  return out;
}
static std::vector<Node *> gradMax(Context &c) { return minMax(c, true); }
static std::vector<Node *> gradMin(Context &c) { return minMax(c, false); }

static std::vector<Node *> gradConcat(Context &c) {
  int64_t axis = c.n.getInt("axis");
  if (axis < 0)
    axis += c.n.type.rank();
  std::vector<Node *> out(c.n.operands.size(), nullptr);
  int64_t start = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    int64_t len = c.operand(i)->type.shape[axis];
    if (c.need[i])
      out[i] = c.make(OpKind::Slice, fmt::format("dxs{}", i), {c.dy},
                      {{"axis", axis}, {"start", start}, {"end", start + len}},
                      "each concatenated input gets its own slice of dy");
    start += len;
  }
  return out;
}

static std::vector<Node *> gradFlatten(Context &c) { return {c.reshape(c.dy, c.operand(0)->type.shape, "dx")}; }
static std::vector<Node *> gradReshape(Context &c) { return {c.reshape(c.dy, c.operand(0)->type.shape, "dx")}; }
static std::vector<Node *> gradIdentity(Context &c) { return {c.dy}; }

static std::vector<Node *> gradSoftmax(Context &c) {
  return {c.make(OpKind::SoftmaxGrad, "dx", {c.dy, const_cast<Node *>(&c.n)}, {{"axis", c.n.get("axis")}})};
}
static std::vector<Node *> gradLogSoftmax(Context &c) {
  return {c.make(OpKind::LogSoftmaxGrad, "dx", {c.dy, const_cast<Node *>(&c.n)}, {{"axis", c.n.get("axis")}})};
}

// y = (x - mean) * scale / sqrt(var + eps) + bias, per channel. In training, mean and var
// are bn_mean/bn_var of x itself, whose own rules complete the familiar batch-norm gradient.
static std::vector<Node *> gradBatchNorm(Context &c) {
  maskFusedRelu(c);
  std::vector<Node *> out(5, nullptr);
  std::vector<Node *> ops{c.dy, c.operand(0), c.operand(1), c.operand(3), c.operand(4)};
  const char *wrt[] = {"x", "scale", nullptr, "mean", "var"};
  for (int i : {0, 1, 3, 4})
    if (c.need[i])
      out[i] = c.make(OpKind::BatchNormGrad, std::string("d") + wrt[i], ops,
                      {{"wrt", std::string(wrt[i])}, {"epsilon", c.n.get("epsilon")}},
                      fmt::format("batch norm, dz/d{} (eqs. 10-11 through the normalisation)", wrt[i]));
  if (c.need[2]) {
    Ints axes{0};
    for (int d = 2; d < c.n.type.rank(); ++d)
      axes.push_back(d);
    out[2] = c.make(OpKind::ReduceSum, "dbias", {c.dy}, {{"axes", axes}},
                    "batch norm's bias is added at every pixel: dz/dbias sums dy per channel");
  }
  return out;
}

static std::vector<Node *> gradBnMean(Context &c) {
  return {c.make(OpKind::BnMeanGrad, "dx", {c.dy, c.operand(0)}, {}, "the batch mean's gradient: dmean/(NHW) everywhere")};
}

static std::vector<Node *> gradBnVar(Context &c) {
  std::vector<Node *> out(2, nullptr);
  if (c.need[0])
    out[0] = c.make(OpKind::BnVarGrad, "dx", {c.dy, c.operand(0), c.operand(1)}, {{"wrt", std::string("x")}},
                    "the batch variance's gradient wrt x: 2 (x - mean) dvar/(NHW)");
  if (c.need[1])
    out[1] = c.make(OpKind::BnVarGrad, "dmean", {c.dy, c.operand(0), c.operand(1)}, {{"wrt", std::string("mean")}},
                    "the batch variance's gradient wrt its mean");
  return out;
}

// Inverted dropout multiplies by the same mask/(1-rate) it applied: its gradient is the same
// dropout (same seed, same step) applied to dy.
static std::vector<Node *> gradDropout(Context &c) {
  std::vector<Node *> ops{c.dy};
  if (c.n.operands.size() == 2)
    ops.push_back(c.operand(1));
  std::vector<Node *> out(c.n.operands.size(), nullptr);
  out[0] = c.make(OpKind::Dropout, "dx", ops, c.n.attrs, "the same mask and scale applied to dy");
  return out;
}

static std::vector<Node *> gradSoftmaxXent(Context &c) {
  return {c.make(OpKind::SoftmaxXentGrad, "dx", {c.dy, c.operand(0), c.operand(1)}, {}, "softmax + cross-entropy, fused"),
          nullptr};
}

static std::vector<Node *> gradL2Loss(Context &c) {
  std::vector<Node *> out(2, nullptr);
  Node *d = c.make(OpKind::L2LossGrad, "dpred", {c.dy, c.operand(0), c.operand(1)}, {}, "eq. 6: x - t");
  if (c.need[0])
    out[0] = d;
  if (c.need[1])
    out[1] = neg(c, d, "dtarget");
  return out;
}

// ONNX's general SoftmaxCrossEntropyLoss is imported for inference; training adds cnnc's own
// softmax_xent loss (docs/training.md).
NO_GRADIENT(SoftmaxXentNd)
NO_GRADIENT(CountCorrect)

static std::vector<Node *> gradTranspose(Context &c) {
  Ints perm = c.n.getInts("perm"), inv(perm.size());
  for (size_t i = 0; i < perm.size(); ++i)
    inv[perm[i]] = (int64_t)i;
  return {c.make(OpKind::Transpose, "dx", {c.dy}, {{"perm", inv}}, "the inverse permutation moves dy back")};
}

static std::vector<Node *> gradExpand(Context &c) { return {c.sumTo(c.dy, c.operand(0)->type.shape, "dx")}; }

static std::vector<Node *> gradReduceSum(Context &c) {
  const Shape &xs = c.operand(0)->type.shape;
  Shape kept = xs;
  for (int64_t a : c.n.getInts("axes"))
    kept[a < 0 ? a + (int64_t)xs.size() : a] = 1;
  Node *k = c.reshape(c.dy, kept, "dy.keep");
  return {c.make(OpKind::Expand, "dx", {k}, {{"shape", xs}}, "every summed element gets the sum's dy")};
}

// reduce_max/reduce_min: torch.amax's rule, dy shared evenly among the tied extrema,
// dx = mask * dy / count with mask = [x == y] (1 at every element equal to its extremum;
// the seed's max pooling, eq. 53-56, sends dy to one winner instead: that is max_pool's rule,
// not amax's). Composed of existing ops, so every backend and thread count has it.
static std::vector<Node *> gradExtremum(Context &c) {
  const Shape &xs = c.operand(0)->type.shape;
  Shape kept = xs;
  Ints axes;
  for (int64_t a : c.n.getInts("axes")) {
    kept[a < 0 ? a + (int64_t)xs.size() : a] = 1;
    axes.push_back(a);
  }
  Node *y = c.reshape(const_cast<Node *>(&c.n), kept, "y.keep");
  Node *mask = c.make(OpKind::EqualMask, "tie", {c.operand(0), y}, {}, "the tied extrema");
  Node *cnt = c.make(OpKind::ReduceSum, "ties", {mask}, {{"axes", axes}, {"keepdims", int64_t(1)}});
  Node *share = c.make(OpKind::Div, "share", {c.reshape(c.dy, kept, "dy.keep"), cnt},
                       {}, "dy split evenly among the ties");
  return {c.make(OpKind::Mul, "dx", {mask, share})};
}
static std::vector<Node *> gradReduceMax(Context &c) { return gradExtremum(c); }
static std::vector<Node *> gradReduceMin(Context &c) { return gradExtremum(c); }
// An index is piecewise constant: nothing differentiable consumes it (no op takes an i64 as
// a float), so autodiff never asks; the rule says why if it does.
template <> constexpr bool kNoGradient<OpKind::ArgMax> = true;
static std::vector<Node *> gradArgMax(Context &c) {
  throw Error(c.n.loc, fmt::format("%{} (argmax): an index is not differentiable: the loss must "
                                   "not depend on it for --train (argmax is piecewise constant)",
                                   c.n.name));
}
NO_GRADIENT(EqualMask)

// A slice's adjoint puts dy back in place and zeros elsewhere: pad with 0 (section 6.1's
// zero padding) by the parts cut off.
static std::vector<Node *> gradSlice(Context &c) {
  const Shape &xs = c.operand(0)->type.shape;
  const int r = (int)xs.size();
  int64_t axis = c.n.getInt("axis");
  axis = axis < 0 ? axis + r : axis;
  Ints pads(2 * r, 0);
  pads[axis] = c.n.getInt("start");
  pads[axis + r] = xs[axis] - c.n.getInt("end");
  return {c.make(OpKind::Pad, "dx", {c.dy}, {{"pads", pads}})};
}

// pad copies (constant: the interior, reflect/edge: also mirrored or repeated positions):
// its adjoint adds every copy back to its source.
static std::vector<Node *> gradPad(Context &c) {
  return {c.make(OpKind::PadGrad, "dx", {c.dy}, {{"pads", c.n.get("pads")}, {"mode", c.n.get("mode")}})};
}
NO_GRADIENT(PadGrad)
NO_GRADIENT(ClipGrad)

// im2row and row2im are each other's adjoints (seed eq. 37: vec(φ(x)) = M vec(x), and M^T).
static std::vector<Node *> gradIm2Row(Context &c) {
  auto a = windowAttrs(c.n, {"kernel", "stride", "pads", "dilation", "groups"});
  a["input_shape"] = c.operand(0)->type.shape;
  return {c.make(OpKind::Row2Im, "dx", {c.dy}, a, "eq. 46")};
}
static std::vector<Node *> gradRow2Im(Context &c) {
  return {c.make(OpKind::Im2Row, "drows", {c.dy}, windowAttrs(c.n, {"kernel", "stride", "pads", "dilation", "groups"}),
                 "eq. 37")};
}

// n/(n-1) depends on x's shape only: no gradient flows to x (nothing to add).
static std::vector<Node *> gradBnUnbias(Context &) { return {nullptr}; }
NO_GRADIENT(ReluGrad)
NO_GRADIENT(SigmoidGrad)
NO_GRADIENT(TanhGrad)
NO_GRADIENT(MaxPoolGrad)
NO_GRADIENT(AvgPoolGrad)
NO_GRADIENT(SoftmaxGrad)
NO_GRADIENT(LogSoftmaxGrad)
NO_GRADIENT(BatchNormGrad)
NO_GRADIENT(BnMeanGrad)
NO_GRADIENT(BnVarGrad)
NO_GRADIENT(BnTrainGrad)
NO_GRADIENT(SoftmaxXentGrad)
NO_GRADIENT(L2LossGrad)
// The fused filter gradient exists only after autodiff (passes/FuseConvGrad.cpp runs after
// `grad`), so autodiff never asks for its VJP; an .ir file that differentiates it is told so
// like any other backward op.
NO_GRADIENT(Conv2dGradFilter)
// conv2d_grad_input is also a forward op: ONNX ConvTranspose and the .cnn `deconv` layer.
// It is linear in both operands, and the conv's bilinear identities
// <conv2d(g, w), x> = <g, conv2d_grad_input(x, w)> = <w, conv2d_grad_filter(g, x)>
// (seed eqs. 35, 45-46) give its adjoints: dx = conv2d(dy, w), dw = conv2d_grad_filter(dy, x).
static std::vector<Node *> gradConv2dGradInput(Context &c) {
  auto conv = windowAttrs(c.n, {"stride", "pads", "dilation", "groups"});
  std::vector<Node *> out(2, nullptr);
  if (c.need[0])
    out[0] = c.make(OpKind::Conv2d, "dx", {c.dy, c.operand(1)}, conv, "eqs. 45-46, adjoint");
  if (c.need[1]) {
    const Shape &ws = c.operand(1)->type.shape;
    conv["kernel"] = Ints{ws[2], ws[3]};
    out[1] = c.make(OpKind::Conv2dGradFilter, "dw", {c.dy, c.operand(0)}, conv, "eq. 35");
  }
  return out;
}
NO_GRADIENT(FilterFlip)
NO_GRADIENT(Update)

// [op-table] The gradient rules: one `grad<Enum>` per op of Ops.def (a missing one is a build
// error naming it; an op without a gradient says so: notDifferentiable).
std::vector<Node *> vjp(Context &c) {
  switch (c.n.op) {
#define OP(Enum, Mnemonic, Operands, Attrs, Traits, Doc, Example)                                   \
  case OpKind::Enum:                                                                               \
    return grad##Enum(c);
#include "ir/Ops.def"
#undef OP
  }
  CNNC_INTERNAL("bad op kind");
}

bool hasGradient(OpKind k) {
  switch (k) {
#define OP(Enum, Mnemonic, Operands, Attrs, Traits, Doc, Example)                                   \
  case OpKind::Enum:                                                                               \
    return !kNoGradient<OpKind::Enum>;
#include "ir/Ops.def"
#undef OP
  }
  CNNC_INTERNAL("bad op kind");
}

} // namespace cnnc::grad
