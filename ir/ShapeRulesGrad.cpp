// Shape rules of the gradient ops that autodiff (passes/GradRules.cpp) and the passes emit:
// each derives its result from dy and the forward values, and rejects a dy that is not
// exactly the forward result's shape. Same contract as ShapeRules.cpp, whose op-table switch
// calls these.
#include "ir/IR.h"
#include "ir/ShapeRuleUtil.h"

#include <fmt/format.h>

namespace cnnc {

using namespace shape;

TensorType inferSoftmaxXent(const Node &n); // ShapeRules.cpp

static TensorType sameAsOperand(const Node &n, size_t i, const char *what) {
  requireFloat(n);
  requireSameDType(n);
  if (in(n, 0).shape != in(n, i).shape)
    fail(n, fmt::format("dy {} and {} {} differ in shape", in(n, 0).str(), what, in(n, i).str()));
  return in(n, i);
}
TensorType inferReluGrad(const Node &n) { return sameAsOperand(n, 1, "x"); }
TensorType inferSigmoidGrad(const Node &n) { return sameAsOperand(n, 1, "y"); }
TensorType inferTanhGrad(const Node &n) { return sameAsOperand(n, 1, "y"); }
TensorType inferSoftmaxGrad(const Node &n) {
  normAxis(n, n.getInt("axis"), in(n, 0).rank());
  return sameAsOperand(n, 1, "y");
}
TensorType inferLogSoftmaxGrad(const Node &n) { return inferSoftmaxGrad(n); }

TensorType inferMaxPoolGrad(const Node &n) {
  requireFloat(n);
  requireSameDType(n);
  requireRank(n, 1, 4, "x");
  const Shape &x = in(n, 1).shape;
  auto k = pairAttr(n, "kernel", 1), s = pairAttr(n, "stride", 1), d = pairAttr(n, "dilation", 1);
  auto p = padsAttr(n);
  bool ceil = n.getInt("ceil_mode") != 0;
  Shape y{x[0], x[1], windowOut(n, "rows", x[2], p[0], p[2], k[0], s[0], d[0], ceil),
          windowOut(n, "columns", x[3], p[1], p[3], k[1], s[1], d[1], ceil)};
  if (in(n, 0).shape != y)
    fail(n, fmt::format("dy must be {} (the pooled shape of x), got {}", shapeStr(y), shapeStr(in(n, 0).shape)));
  return in(n, 1);
}

TensorType inferAvgPoolGrad(const Node &n) {
  requireFloat(n);
  Shape x = inputShapeAttr(n, 4);
  auto k = pairAttr(n, "kernel", 1), s = pairAttr(n, "stride", 1);
  auto p = padsAttr(n);
  bool ceil = n.getInt("ceil_mode") != 0;
  Shape y{x[0], x[1], windowOut(n, "rows", x[2], p[0], p[2], k[0], s[0], 1, ceil),
          windowOut(n, "columns", x[3], p[1], p[3], k[1], s[1], 1, ceil)};
  if (in(n, 0).shape != y)
    fail(n, fmt::format("dy must be {} (the pooled shape of input_shape), got {}", shapeStr(y),
                        shapeStr(in(n, 0).shape)));
  return {in(n, 0).dtype, x};
}

// batchnorm_grad's and bn_train_grad's operands: dy and x alike, [N,C,...], then per-channel
// vectors; a positive epsilon
static void requireBnGrad(const Node &n) {
  requireFloat(n);
  requireSameDType(n);
  if (in(n, 0).shape != in(n, 1).shape || in(n, 1).rank() < 2)
    fail(n, fmt::format("dy {} and x {} must have the same shape [N,C,...]", in(n, 0).str(), in(n, 1).str()));
  requirePerChannel(n, 2);
  if (n.getFloat("epsilon") <= 0)
    fail(n, "'epsilon' must be positive");
}

TensorType inferBatchNormGrad(const Node &n) {
  requireBnGrad(n);
  std::string wrt = n.getStr("wrt");
  if (wrt == "x")
    return in(n, 1);
  if (wrt == "scale" || wrt == "mean" || wrt == "var")
    return in(n, 2);
  fail(n, fmt::format("'wrt' must be \"x\", \"scale\", \"mean\" or \"var\", got \"{}\"", wrt));
}

TensorType inferBnTrainGrad(const Node &n) {
  requireBnGrad(n);
  requireNonEmptyStatistic(n, in(n, 1));
  return in(n, 1);
}

TensorType inferBnMeanGrad(const Node &n) {
  requireFloat(n);
  if (in(n, 1).rank() < 2 || in(n, 0).shape != Shape{in(n, 1).shape[1]})
    fail(n, fmt::format("dmean must be one value per channel of x {}, got {}", in(n, 1).str(), in(n, 0).str()));
  requireNonEmptyStatistic(n, in(n, 1));
  return in(n, 1);
}

TensorType inferBnVarGrad(const Node &n) {
  requireFloat(n);
  if (in(n, 1).rank() < 2)
    fail(n, fmt::format("x must be [N,C,...], got {}", in(n, 1).str()));
  Shape c{in(n, 1).shape[1]};
  if (in(n, 0).shape != c || in(n, 2).shape != c)
    fail(n, fmt::format("dvar and mean must be [{}]", c[0]));
  requireNonEmptyStatistic(n, in(n, 1));
  std::string wrt = n.getStr("wrt");
  if (wrt == "x")
    return in(n, 1);
  if (wrt == "mean")
    return in(n, 2);
  fail(n, fmt::format("'wrt' must be \"x\" or \"mean\", got \"{}\"", wrt));
}

static void requireScalarSeed(const Node &n) {
  if (in(n, 0).rank() != 0 || !isFloat(in(n, 0).dtype))
    fail(n, fmt::format("dz must be a float scalar, got {}", in(n, 0).str()));
}
TensorType inferSoftmaxXentGrad(const Node &n) {
  requireScalarSeed(n);
  Node probe = n; // the forward rule checks logits and labels
  probe.operands.erase(probe.operands.begin());
  probe.op = OpKind::SoftmaxXent;
  inferSoftmaxXent(probe);
  return in(n, 1);
}
TensorType inferL2LossGrad(const Node &n) {
  requireScalarSeed(n);
  if (in(n, 1).shape != in(n, 2).shape || in(n, 1).dtype != in(n, 2).dtype)
    fail(n, fmt::format("prediction {} and target {} differ", in(n, 1).str(), in(n, 2).str()));
  if (in(n, 1).rank() < 1 || in(n, 1).shape[0] == 0)
    fail(n, fmt::format("the loss averages over the batch, and {} has none", in(n, 1).str()));
  return in(n, 1);
}

// The fused conv2d gradients (passes/FuseConvGrad.cpp): dy must be exactly conv2d's output
// shape for the given input shape, kernel and window attributes.
static void requireConvDy(const Node &n, const Shape &x, int64_t m, int64_t kh, int64_t kw,
                          const TensorType &dy) {
  int64_t g = n.getInt("groups");
  if (g < 1 || x[1] % g || m % g)
    fail(n, fmt::format("groups={} must be >= 1 and divide the {} input and {} output channels", g,
                        x[1], m));
  auto s = pairAttr(n, "stride", 1), d = pairAttr(n, "dilation", 1);
  auto p = padsAttr(n);
  Shape y{x[0], m, windowOut(n, "rows", x[2], p[0], p[2], kh, s[0], d[0], false),
          windowOut(n, "columns", x[3], p[1], p[3], kw, s[1], d[1], false)};
  if (dy.shape != y)
    fail(n, fmt::format("dy must be {} (conv2d's output for input {}), got {}", shapeStr(y),
                        shapeStr(x), dy.str()));
}

TensorType inferConv2dGradFilter(const Node &n) {
  requireFloat(n);
  requireSameDType(n);
  requireRank(n, 0, 4, "x");
  requireRank(n, 1, 4, "dy");
  const Shape &x = in(n, 0).shape;
  auto k = pairAttr(n, "kernel", 1);
  const int64_t m = in(n, 1).shape[1], g = n.getInt("groups");
  requireConvDy(n, x, m, k[0], k[1], in(n, 1));
  return {in(n, 0).dtype, {m, x[1] / g, k[0], k[1]}};
}

TensorType inferConv2dGradInput(const Node &n) {
  requireFloat(n);
  requireSameDType(n);
  requireRank(n, 0, 4, "dy");
  requireRank(n, 1, 4, "the weight");
  Shape x = inputShapeAttr(n, 4);
  const Shape &w = in(n, 1).shape;
  const int64_t g = n.getInt("groups");
  if (g >= 1 && w[1] * g != x[1])
    fail(n, fmt::format("the weight {} expects {} input channels (x groups {}), input_shape has {}",
                        shapeStr(w), w[1] * g, g, x[1]));
  requireConvDy(n, x, w[0], w[2], w[3], in(n, 0));
  return {in(n, 0).dtype, x};
}

TensorType inferFilterFlip(const Node &n) {
  requireFloat(n);
  requireRank(n, 0, 4, "the weight");
  const Shape &w = in(n, 0).shape;
  const int64_t g = n.getInt("groups");
  if (g < 1 || w[0] % g != 0)
    fail(n, fmt::format("groups={} must be >= 1 and divide the weight's {} output channels", g, w[0]));
  return {in(n, 0).dtype, {w[1] * g, w[0] / g, w[2], w[3]}};
}

TensorType inferUpdate(const Node &n) {
  if (n.operands[0]->op != OpKind::Param)
    fail(n, fmt::format("the first operand must be a param, got %{} ({})", n.operands[0]->name,
                        n.operands[0]->info().mnemonic));
  if (in(n, 0) != in(n, 1))
    fail(n, fmt::format("the new value {} must have the param's type {}", in(n, 1).str(), in(n, 0).str()));
  return in(n, 0);
}

} // namespace cnnc
