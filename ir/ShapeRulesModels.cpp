// Shape rules of the ops that imported CNNs bring (torchvision's families): the bounded,
// leaky and smooth activations, elementwise math, and padding. Same contract as ShapeRules.cpp, whose op-table switch calls
// these: derive the result type, reject every inconsistency naming the node.
#include "ir/IR.h"

#include <fmt/format.h>

namespace cnnc {

namespace {

[[noreturn]] void fail(const Node &n, const std::string &msg) {
  throw Error(n.loc, fmt::format("%{} ({}): {}", n.name, n.info().mnemonic, msg));
}

const TensorType &in(const Node &n, size_t i) { return n.operands.at(i)->type; }

void requireFloatInput(const Node &n) {
  if (!isFloat(in(n, 0).dtype))
    fail(n, fmt::format("the input must be a floating-point tensor, got {}", in(n, 0).str()));
}

TensorType sameFloat(const Node &n) {
  requireFloatInput(n);
  return in(n, 0);
}

// min <= max, neither NaN (an empty interval has no clip; ONNX leaves it undefined).
void requireBounds(const Node &n) {
  double lo = n.getFloat("min"), hi = n.getFloat("max");
  if (!(lo <= hi))
    fail(n, fmt::format("'min' ({}) must not exceed 'max' ({})", lo, hi));
}

// pads [begins..., ends...], one pair per dim, non-negative; reflect needs pad < dim (one
// mirror image), reflect and edge need a non-empty dim to copy from.
Shape padded(const Node &n, const Shape &x, int sign) {
  auto p = n.getInts("pads");
  const size_t r = x.size();
  if (p.size() != 2 * r)
    fail(n, fmt::format("'pads' needs {} values (a begin and an end per dim of {}), got {}", 2 * r,
                        shapeStr(x), p.size()));
  for (int64_t v : p)
    if (v < 0)
      fail(n, fmt::format("'pads' must be non-negative (crop with slice), got {}", attrStr(p)));
  std::string mode = n.getStr("mode");
  if (mode != "constant" && mode != "reflect" && mode != "edge")
    fail(n, fmt::format("'mode' must be \"constant\", \"reflect\" or \"edge\", got \"{}\"", mode));
  Shape out = x;
  for (size_t d = 0; d < r; ++d) {
    const int64_t base = sign > 0 ? x[d] : x[d] - p[d] - p[d + r];
    if (sign < 0 && base < 0)
      fail(n, fmt::format("dy {} is smaller than its pads {}", shapeStr(x), attrStr(p)));
    if (p[d] + p[d + r] > 0 && mode != "constant") {
      if (base == 0)
        fail(n, fmt::format("{} padding of an empty dim {} has nothing to copy", mode, d));
      if (mode == "reflect" && (p[d] >= base || p[d + r] >= base))
        fail(n, fmt::format("reflect pads {} must be smaller than dim {} ({})", attrStr(p), d, base));
    }
    out[d] = sign > 0 ? x[d] + p[d] + p[d + r] : base;
  }
  return out;
}

} // namespace

TensorType inferClip(const Node &n) {
  requireFloatInput(n);
  requireBounds(n);
  return in(n, 0);
}
TensorType inferHardSigmoid(const Node &n) {
  requireFloatInput(n);
  return in(n, 0);
}
TensorType inferHardSwish(const Node &n) {
  requireFloatInput(n);
  return in(n, 0);
}
TensorType inferLeakyRelu(const Node &n) {
  requireFloatInput(n);
  return in(n, 0);
}
// The smooth activations and elementwise math of imported models: a float tensor in, its type out.
TensorType inferElu(const Node &n) { return sameFloat(n); }
TensorType inferSelu(const Node &n) { return sameFloat(n); }
TensorType inferErf(const Node &n) { return sameFloat(n); }
TensorType inferExp(const Node &n) { return sameFloat(n); }
TensorType inferLog(const Node &n) { return sameFloat(n); }
TensorType inferSqrt(const Node &n) { return sameFloat(n); }
TensorType inferReciprocal(const Node &n) { return sameFloat(n); }
TensorType inferNeg(const Node &n) { return sameFloat(n); }
TensorType inferAbs(const Node &n) { return sameFloat(n); }
TensorType inferClipGrad(const Node &n) {
  requireFloatInput(n);
  requireBounds(n);
  if (in(n, 0) != in(n, 1))
    fail(n, fmt::format("dy {} and x {} differ", in(n, 0).str(), in(n, 1).str()));
  return in(n, 1);
}
TensorType inferPad(const Node &n) {
  requireFloatInput(n);
  return {in(n, 0).dtype, padded(n, in(n, 0).shape, 1)};
}
TensorType inferPadGrad(const Node &n) {
  requireFloatInput(n);
  return {in(n, 0).dtype, padded(n, in(n, 0).shape, -1)};
}

} // namespace cnnc
