// The normalisations published CNNs and their decoders use, imported as compositions of the
// core ops (reduce_sum, sub, mul, sqrt, reciprocal, add, avgpool, pow), so that their
// gradients (`--train`), their lowering on every backend and thread count, and their export
// come from those ops' rules; nothing below adds a kernel:
//   InstanceNormalization  y = scale (x - mu) / sqrt(var + eps) + B, mu and var per (n, c)
//                          over the spatial dims (biased variance, as ONNX and PyTorch);
//   LayerNormalization     the same over the dims from `axis` on, Scale and B broadcasting
//                          to them; its optional Mean and InvStdDev outputs are
//                          identities of the intermediates (keepdims shape);
//   LRN                    y = x / (bias + alpha/size sum_{window} x^2)^beta over a window of
//                          `size` channels (AlexNet's and GoogLeNet's originals): the window
//                          sum is a stride-1 average pool of x^2 over the channel axis that
//                          counts its zero padding, i.e. sum/size.
#include "frontend/OnnxImporter.h"

#include <fmt/format.h>

namespace cnnc::onnximp {

namespace {

using Ints = std::vector<int64_t>;

struct Normalised {
  Node *centred, *mean, *invStd;
};

// (x - mean) and 1/sqrt(var + eps) over `axes`, keepdims: the shared core.
Normalised normalise(NodeCtx &c, Node *x, const Ints &axes, double eps) {
  int64_t count = 1;
  for (int64_t a : axes)
    count *= x->type.shape[a];
  if (count == 0)
    c.unsupported(fmt::format("the statistics over an empty extent of {} are undefined",
                              x->type.str()));
  const DType dt = x->type.dtype;
  const std::map<std::string, Attr> keep{{"axes", axes}, {"keepdims", int64_t(1)}};
  Node *inv = c.scalar(1.0 / (double)count, dt);
  Node *mean = c.emit(OpKind::Mul, "mean", {c.emit(OpKind::ReduceSum, "sum", {x}, keep), inv});
  Node *d = c.emit(OpKind::Sub, "centred", {x, mean});
  Node *sq = c.emit(OpKind::Mul, "sq", {d, d});
  Node *var = c.emit(OpKind::Mul, "var", {c.emit(OpKind::ReduceSum, "sqsum", {sq}, keep), inv});
  Node *ve = c.emit(OpKind::Add, "var.eps", {var, c.scalar(eps, dt)});
  Node *is = c.emit(OpKind::Reciprocal, "invstd", {c.emit(OpKind::Sqrt, "std", {ve})});
  return {d, mean, is};
}

void lowerInstanceNorm(NodeCtx &c) {
  Node *x = c.in(0), *scale = c.in(1), *bias = c.in(2);
  const int64_t r = x->type.rank();
  if (r < 3)
    c.unsupported(fmt::format("needs an [N,C,spatial...] input, got {}", x->type.str()));
  const int64_t C = x->type.shape[1];
  if (scale->type.shape != Shape{C} || bias->type.shape != Shape{C})
    c.unsupported(fmt::format("scale {} and B {} must be [{}]", scale->type.str(),
                              bias->type.str(), C));
  Ints axes, perChannel(r - 1, 1);
  for (int64_t d = 2; d < r; ++d)
    axes.push_back(d);
  perChannel[0] = C;
  const std::map<std::string, Attr> shape{{"shape", perChannel}};
  Normalised n = normalise(c, x, axes, c.getFloat("epsilon", 1e-5));
  Node *y = c.emit(OpKind::Mul, "norm", {n.centred, n.invStd});
  y = c.emit(OpKind::Mul, "scaled", {y, c.emit(OpKind::Reshape, "scale", {scale}, shape)});
  c.out(0, c.emit(OpKind::Add, "", {y, c.emit(OpKind::Reshape, "bias", {bias}, shape)}));
}

void lowerLayerNorm(NodeCtx &c) {
  Node *x = c.in(0);
  const int64_t r = x->type.rank();
  int64_t axis = c.getInt("axis", -1);
  if (axis < -r || axis >= r)
    c.unsupported(fmt::format("axis {} is out of range for rank {}", axis, r));
  axis = axis < 0 ? axis + r : axis;
  if (c.getInt("stash_type", 1) != 1)
    c.unsupported("stash_type other than 1 (float statistics)");
  Ints axes;
  for (int64_t d = axis; d < r; ++d)
    axes.push_back(d);
  Normalised n = normalise(c, x, axes, c.getFloat("epsilon", 1e-5));
  Node *y = c.emit(OpKind::Mul, "norm", {n.centred, n.invStd});
  y = c.emit(OpKind::Mul, c.hasInput(2) ? "scaled" : "", {y, c.in(1)});
  if (c.hasInput(2))
    y = c.emit(OpKind::Add, "", {y, c.in(2)});
  if (y->type.shape != x->type.shape)
    c.unsupported(fmt::format("Scale and B must broadcast to X {}", x->type.str()));
  c.out(0, y);
  // the statistics as outputs of their own (out() names a node after its ONNX output, and
  // these are already used under their own names)
  if (c.wantsOutput(1))
    c.out(1, c.emit(OpKind::Identity, "mean.out", {n.mean}));
  if (c.wantsOutput(2))
    c.out(2, c.emit(OpKind::Identity, "invstd.out", {n.invStd}));
}

void lowerLrn(NodeCtx &c) {
  Node *x = c.in(0);
  const Shape &xs = x->type.shape;
  if (xs.size() < 3)
    c.unsupported(fmt::format("needs an [N,C,spatial...] input, got {}", x->type.str()));
  const int64_t size = c.getInt("size", 0);
  if (size < 1)
    c.unsupported(fmt::format("size {} must be >= 1", size));
  const double alpha = c.getFloat("alpha", 1e-4), beta = c.getFloat("beta", 0.75),
               bias = c.getFloat("bias", 1.0);
  int64_t inner = 1;
  for (size_t d = 2; d < xs.size(); ++d)
    inner *= xs[d];
  const DType dt = x->type.dtype;
  // x^2 as [N, 1, C, H*W]: the channel window becomes a (size x 1) pooling window.
  Node *sq = c.emit(OpKind::Mul, "sq", {x, x});
  Node *planes = c.emit(OpKind::Reshape, "sq.planes", {sq}, {{"shape", Ints{xs[0], 1, xs[1], inner}}});
  const int64_t before = (size - 1) / 2, after = size - 1 - before; // ONNX: floor and ceil
  Node *avg = c.emit(OpKind::AvgPool, "window", {planes},
                     {{"kernel", Ints{size, 1}},
                      {"stride", Ints{1, 1}}, // as AveragePool's import writes them, so that an
                      {"ceil_mode", int64_t(0)}, // exported LRN reimports to the same attributes
                      {"pads", Ints{before, 0, after, 0}},
                      {"count_include_pad", int64_t(1)}});
  Node *win = c.emit(OpKind::Reshape, "window.x", {avg}, {{"shape", Ints(xs.begin(), xs.end())}});
  // alpha/size * sum = alpha * the window's mean
  Node *den = c.emit(OpKind::Mul, "scaled", {win, c.scalar(alpha, dt)});
  den = c.emit(OpKind::Add, "base", {den, c.scalar(bias, dt)});
  den = c.emit(OpKind::Pow, "den", {den, c.scalar(beta, dt)});
  c.out(0, c.emit(OpKind::Div, "", {x, den}));
}

} // namespace

void addNormLowerings(std::map<std::string, LowerFn> &t) {
  t["InstanceNormalization"] = lowerInstanceNorm;
  t["LayerNormalization"] = lowerLayerNorm;
  t["LRN"] = lowerLrn;
}

} // namespace cnnc::onnximp
