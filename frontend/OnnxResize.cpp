// ONNX Resize (opsets 10-13) and Upsample (7-9) of 4-D images, nearest and linear, in every
// coordinate mode PyTorch exports (asymmetric for nn.Upsample's nearest, pytorch_half_pixel
// and align_corners for bilinear) and the others ONNX defines except tf_crop_and_resize.
//
// Resizing is separable and its source positions are known at import: along each spatial
// axis the output is a fixed linear map of the input, out = M^T in with M [in, out] holding
// the nearest pixel's 1 or the two linear weights (clamped at the edges, as ONNX's reference
// pads by the edge value). So Resize imports as two `batch_matmul`s by constant matrices,
// H first then W: (M_h^T X) M_w — exact, differentiable and lowered by existing ops. The
// common case, nearest upsampling by integer factors (each pixel repeated k times), imports
// instead as reshape [N,C,H,1,W,1] -> expand [N,C,H,kh,W,kw] -> reshape, without products.
#include "frontend/OnnxImporter.h"

#include <fmt/format.h>

#include <cmath>

namespace cnnc::onnximp {

namespace {

struct Axis {
  std::vector<int64_t> nearest;             // nearest: source index per output position
  std::vector<double> matrix;               // [in, out], row-major
  int64_t in = 0, out = 0;
  int64_t repeat = 0;                       // k > 0 when nearest[o] == o / k for all o
};

// The source coordinate of output position o (ONNX's coordinate_transformation_mode).
double sourceCoord(NodeCtx &c, const std::string &mode, int64_t o, double scale, int64_t in, int64_t out) {
  if (mode == "half_pixel")
    return (o + 0.5) / scale - 0.5;
  if (mode == "tf_half_pixel_for_nn")
    return (o + 0.5) / scale;
  if (mode == "pytorch_half_pixel")
    return out > 1 ? (o + 0.5) / scale - 0.5 : 0.0;
  if (mode == "align_corners") { // ONNX's reference: the length scale*in, not the rounded size
    const double len = scale * (double)in;
    return out == 1 || len == 1 ? 0.0 : (double)o * (double)(in - 1) / (len - 1);
  }
  if (mode == "asymmetric")
    return o / scale;
  c.unsupported(fmt::format("coordinate_transformation_mode '{}' is not supported", mode));
}

int64_t nearestIndex(NodeCtx &c, const std::string &rule, double x) {
  if (rule == "round_prefer_floor")
    return x - std::floor(x) == 0.5 ? (int64_t)std::floor(x) : (int64_t)std::round(x);
  if (rule == "round_prefer_ceil")
    return x - std::floor(x) == 0.5 ? (int64_t)std::ceil(x) : (int64_t)std::round(x);
  if (rule == "floor")
    return (int64_t)std::floor(x);
  if (rule == "ceil")
    return (int64_t)std::ceil(x);
  c.unsupported(fmt::format("nearest_mode '{}' is not supported", rule));
}

Axis axisMap(NodeCtx &c, bool linear, const std::string &coord, const std::string &rule, int64_t in,
             int64_t out, double scale) {
  Axis a;
  a.in = in, a.out = out;
  a.matrix.assign(in * out, 0.0);
  auto clamp = [&](int64_t i) { return std::min(std::max<int64_t>(i, 0), in - 1); };
  for (int64_t o = 0; o < out; ++o) {
    const double x = sourceCoord(c, coord, o, scale, in, out);
    if (!linear) {
      const int64_t i = clamp(nearestIndex(c, rule, x));
      a.nearest.push_back(i);
      a.matrix[i * out + o] = 1.0;
      continue;
    }
    const double x0 = std::floor(x), r = x - x0;
    a.matrix[clamp((int64_t)x0) * out + o] += 1.0 - r;
    a.matrix[clamp((int64_t)x0 + 1) * out + o] += r;
  }
  if (!linear && out % in == 0) {
    a.repeat = out / in;
    for (int64_t o = 0; o < out && a.repeat; ++o)
      if (a.nearest[o] != o / a.repeat)
        a.repeat = 0;
  }
  return a;
}

std::vector<double> floatsIn(NodeCtx &c, int i, const char *what) {
  if (!c.hasInput(i))
    return {};
  const OnnxTensor *t = c.knownIn(i);
  if (!t)
    c.unsupported(fmt::format("the {} input must be known at compile time", what));
  return t->values;
}

} // namespace

void lowerResize(NodeCtx &c) {
  const bool upsample = c.p.op_type() == "Upsample";
  Node *x = c.in(0);
  if (x->type.rank() != 4)
    c.unsupported(fmt::format("only 4-D images are resized, got {}", x->type.str()));
  const Shape &xs = x->type.shape;
  const std::string mode = c.getStr("mode", "nearest");
  if (mode != "nearest" && mode != "linear" && !(upsample && mode == "bilinear"))
    c.unsupported(fmt::format("mode '{}' is not supported (nearest and linear are)", mode));
  const bool linear = mode != "nearest";
  // Upsample and Resize 10: asymmetric coordinates, nearest rounds down (ONNX's Upsample).
  const bool old = upsample || c.opset() < 11;
  const std::string coord = old ? "asymmetric" : c.getStr("coordinate_transformation_mode", "half_pixel");
  const std::string rule = old ? "floor" : c.getStr("nearest_mode", "round_prefer_floor");
  if (!old) {
    c.getFloat("cubic_coeff_a", -0.75);      // cubic only
    c.getFloat("extrapolation_value", 0.0); // tf_crop_and_resize only
    if (c.getInt("exclude_outside", 0) != 0)
      c.unsupported("attribute 'exclude_outside' = 1 is not supported");
  }
  std::vector<double> scales;
  if (upsample && c.opset() < 9) { // Upsample 7: scales as an attribute
    if (const onnx::AttributeProto *a = c.attr("scales"))
      scales.assign(a->floats().begin(), a->floats().end());
  } else
    scales = floatsIn(c, old ? 1 : 2, "scales");
  std::vector<double> sizes = old ? std::vector<double>{} : floatsIn(c, 3, "sizes");
  Shape out = xs;
  std::vector<double> sc(4, 1.0);
  if (!sizes.empty()) {
    if (sizes.size() != 4)
      c.unsupported(fmt::format("'sizes' needs 4 values, got {}", sizes.size()));
    for (int d = 0; d < 4; ++d)
      out[d] = (int64_t)sizes[d], sc[d] = (double)out[d] / (double)xs[d];
  } else {
    if (scales.size() != 4)
      c.unsupported(fmt::format("'scales' needs 4 values (or 'sizes' given), got {}", scales.size()));
    for (int d = 0; d < 4; ++d)
      sc[d] = scales[d], out[d] = (int64_t)std::floor(xs[d] * scales[d]);
  }
  if (out[0] != xs[0] || out[1] != xs[1])
    c.unsupported("only the spatial dims (2 and 3) are resized: batch and channel scales must be 1");
  if (out[2] < 1 || out[3] < 1)
    c.unsupported(fmt::format("the output {} is empty", shapeStr(out)));
  Axis h = axisMap(c, linear, coord, rule, xs[2], out[2], sc[2]);
  Axis w = axisMap(c, linear, coord, rule, xs[3], out[3], sc[3]);
  if (h.repeat && w.repeat) { // nearest by integer factors: repeat pixels
    Node *r = c.emit(OpKind::Reshape, "r6", {x}, reshapeAttrs({xs[0], xs[1], xs[2], 1, xs[3], 1}));
    Node *e = c.emit(OpKind::Expand, "rep", {r}, {{"shape", Shape{xs[0], xs[1], xs[2], h.repeat, xs[3], w.repeat}}});
    c.out(0, c.emit(OpKind::Reshape, "", {e}, reshapeAttrs(out)));
    return;
  }
  const std::string base = sanitizeOnnxName(c.p.output(0));
  Node *y = x;
  if (!(xs[2] == out[2] && h.nearest.size() && h.repeat == 1)) { // rows: M_h^T [Ho, H] X
    std::vector<double> mt(h.out * h.in);
    for (int64_t i = 0; i < h.in; ++i)
      for (int64_t o = 0; o < h.out; ++o)
        mt[o * h.in + i] = h.matrix[i * h.out + o];
    Node *m = c.im.constantNode(OnnxTensor{"", DType::F32, {h.out, h.in}, mt}, base + ".rows");
    y = c.emit(OpKind::BatchMatMul, "h", {m, y});
  }
  if (!(xs[3] == out[3] && w.nearest.size() && w.repeat == 1)) { // columns: Y M_w [W, Wo]
    Node *m = c.im.constantNode(OnnxTensor{"", DType::F32, {w.in, w.out}, w.matrix}, base + ".cols");
    y = c.emit(OpKind::BatchMatMul, "w", {y, m});
  }
  c.out(0, y == x ? c.emit(OpKind::Identity, "", {x}) : y);
}

} // namespace cnnc::onnximp
