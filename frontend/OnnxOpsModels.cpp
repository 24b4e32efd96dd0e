// The ONNX operators that published CNNs add to the core table (OnnxOps.cpp): bounded and
// leaky activations (Clip, HardSigmoid, HardSwish, LeakyRelu, Elu, Selu), variadic
// elementwise ops (Max, Min, Sum, Mean), padding, reductions
// (ReduceMean, ReduceSum, ReduceL2, ReduceMax, ReduceMin, GlobalMaxPool, ArgMax), shape movement (Transpose, Slice, Split, Squeeze, Unsqueeze,
// Expand), and the static-shape subgraphs PyTorch's exporter leaves behind (Shape, Gather,
// Cast, ConstantOfShape, Range, and Concat/Slice/Squeeze/Unsqueeze of their results), which
// are folded at import into constants.
//
// Opset differences handled here: Clip < 11 takes min/max as attributes, >= 11 as inputs; Pad
// < 11 takes pads/value as attributes, >= 11 as inputs; Slice < 10 takes starts/ends/axes as
// attributes, >= 10 as inputs (with steps); Split, Squeeze, Unsqueeze and ReduceSum take
// their axes/split as attributes before 13 and as inputs from 13 on; Shape 15 has start/end.
#include "frontend/OnnxImporter.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

namespace cnnc::onnximp {

namespace {

using Ints = std::vector<int64_t>;
constexpr double kInf = std::numeric_limits<double>::infinity();

std::string listStr(const Ints &v) {
  return fmt::format("[{}]", fmt::join(v, ","));
}

// An integer input known at import time (initializer, Constant, folded subgraph).
Ints intsIn(NodeCtx &c, int i, const char *what) {
  const OnnxTensor *t = c.constIn(i);
  if (!t)
    c.unsupported(fmt::format("the {} input must be known at compile time (an initializer or "
                              "Constant)",
                              what));
  Ints out;
  for (double v : t->values) {
    // (a double outside int64's range would make the conversion undefined: found by fuzzing)
    if (!(v >= -9.2233720368547758e18 && v < 9.2233720368547758e18) || v != std::floor(v))
      c.unsupported(fmt::format("the {} input holds {}, not a 64-bit integer", what, v));
    out.push_back((int64_t)v);
  }
  return out;
}

// A scalar input known at import time (a constant, or a float initializer: PyTorch writes
// Clip's bounds as initializers), or `def` when the optional input is absent.
double scalarIn(NodeCtx &c, int i, const char *what, double def) {
  if (!c.hasInput(i))
    return def;
  const OnnxTensor *t = c.knownIn(i);
  if (!t || t->values.size() != 1)
    c.unsupported(fmt::format("the {} input must be a scalar known at compile time", what));
  return t->values[0];
}

// The shape of input i without materializing a constant.
Shape shapeIn(NodeCtx &c, int i) {
  if (const OnnxTensor *t = c.constIn(i))
    return t->shape;
  return c.typeIn(i).shape;
}

int64_t axisIn(NodeCtx &c, int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= rank)
    c.unsupported(fmt::format("axis {} is out of range for rank {}", axis, rank));
  return axis < 0 ? axis + rank : axis;
}

// Axes as an attribute (before `inputFrom`) or input 1 (from it on); nullopt when absent.
std::optional<Ints> axesOf(NodeCtx &c, int64_t inputFrom, const char *name = "axes") {
  if (c.opset() < inputFrom)
    return c.has(name) ? std::optional<Ints>(c.getInts(name)) : std::nullopt;
  if (!c.hasInput(1))
    return std::nullopt;
  return intsIn(c, 1, name);
}

// The IR node for a reshaped value, or the folded constant when the input is known.
void reshapeOut(NodeCtx &c, const Shape &s) {
  if (const OnnxTensor *v = c.constIn(0)) {
    OnnxTensor r = *v;
    r.shape = s;
    c.outConst(0, std::move(r));
    return;
  }
  c.out(0, c.emit(OpKind::Reshape, "", {c.in(0)}, reshapeAttrs(s)));
}

// ---- activations ------------------------------------------------------------------------------
void lowerClip(NodeCtx &c) {
  double lo = -kInf, hi = kInf;
  if (c.opset() < 11) {
    c.ignore("consumed_inputs");
    lo = c.getFloat("min", -kInf), hi = c.getFloat("max", kInf);
  } else {
    lo = scalarIn(c, 1, "min", -kInf), hi = scalarIn(c, 2, "max", kInf);
  }
  std::map<std::string, Attr> a;
  if (lo != -kInf)
    a["min"] = lo;
  if (hi != kInf)
    a["max"] = hi;
  if (!(lo <= hi))
    c.unsupported(fmt::format("min {} exceeds max {}", lo, hi));
  c.out(0, c.emit(OpKind::Clip, "", {c.in(0)}, a));
}

void lowerHardSigmoid(NodeCtx &c) {
  c.ignore("consumed_inputs");
  c.out(0, c.emit(OpKind::HardSigmoid, "", {c.in(0)},
                  {{"alpha", c.getFloat("alpha", 0.2)}, {"beta", c.getFloat("beta", 0.5)}}));
}

// Before opset 7 a slope of one value per channel applies along axis 1 (PyTorch's old
// exporter writes it as [C]); from 7 on it broadcasts numpy-style, so [C] becomes [C,1,...,1].
void lowerPRelu(NodeCtx &c) {
  Node *x = c.in(0), *s = c.in(1);
  const Shape &xs = x->type.shape, &ss = s->type.shape;
  if (c.opset() < 7 && ss.size() == 1 && xs.size() > 2 && ss[0] == xs[1] && ss[0] != xs.back()) {
    Shape per(xs.size() - 1, 1);
    per[0] = ss[0];
    s = c.emit(OpKind::Reshape, "slope", {s}, reshapeAttrs(per));
  }
  c.ignore("consumed_inputs");
  c.out(0, c.emit(OpKind::PRelu, "", {x, s}));
}

void lowerElu(NodeCtx &c) {
  c.out(0, c.emit(OpKind::Elu, "", {c.in(0)}, {{"alpha", c.getFloat("alpha", 1.0)}}));
}

// ONNX's defaults are these f32 constants (PyTorch's selu, rounded to float).
void lowerSelu(NodeCtx &c) {
  c.out(0, c.emit(OpKind::Selu, "", {c.in(0)},
                  {{"alpha", c.getFloat("alpha", 1.67326319217681884765625)},
                   {"gamma", c.getFloat("gamma", 1.05070102214813232421875)}}));
}

// Max/Min/Sum/Mean of one or more inputs, broadcasting: a left-to-right chain of the binary
// op (numpy broadcasting is associative in shape), Mean scaled by 1/count afterwards.
void lowerVariadic(NodeCtx &c, OpKind op, bool mean) {
  const int k = c.numInputs();
  if (k < 1)
    c.unsupported("needs at least one input");
  Node *acc = c.in(0);
  for (int i = 1; i < k; ++i)
    acc = c.emit(op, fmt::format("{}", i), {acc, c.in(i)});
  if (mean && k > 1)
    acc = c.emit(OpKind::Mul, "", {acc, c.scalar(1.0 / k, acc->type.dtype)});
  if (k == 1)
    acc = c.emit(OpKind::Identity, "", {acc});
  c.out(0, acc);
}

void lowerLeakyRelu(NodeCtx &c) {
  c.ignore("consumed_inputs");
  c.out(0, c.emit(OpKind::LeakyRelu, "", {c.in(0)}, {{"alpha", c.getFloat("alpha", 0.01)}}));
}

// ---- padding ----------------------------------------------------------------------------------
void lowerPad(NodeCtx &c) {
  std::string mode = c.getStr("mode", "constant");
  Ints pads;
  double value = 0;
  if (c.opset() < 11) {
    pads = c.getInts("pads");
    value = c.getFloat("value", 0.0);
  } else {
    pads = intsIn(c, 1, "pads");
    value = scalarIn(c, 2, "constant_value", 0.0);
  }
  if (c.opset() >= 18 && c.hasInput(3))
    c.unsupported("the axes input is not supported");
  if (mode != "constant" && mode != "reflect" && mode != "edge")
    c.unsupported(fmt::format("mode '{}' is not supported", mode));
  for (int64_t p : pads)
    if (p < 0)
      c.unsupported(fmt::format("negative pads {} (cropping) are not supported", listStr(pads)));
  Node *x = c.in(0);
  if (std::all_of(pads.begin(), pads.end(), [](int64_t p) { return p == 0; }) &&
      pads.size() == 2 * (size_t)x->type.rank()) {
    c.out(0, c.emit(OpKind::Identity, "", {x})); // PyTorch's AveragePool prologue at pad 0
    return;
  }
  std::map<std::string, Attr> a{{"pads", pads}, {"mode", mode}};
  if (mode == "constant")
    a["value"] = value;
  c.out(0, c.emit(OpKind::Pad, "", {x}, a));
}

// ---- reductions -------------------------------------------------------------------------------
// ReduceMean = reduce_sum times 1/count: the mean of the seed's global average pooling
// without a new kernel (and the same gradient, through reduce_sum and mul). ReduceMax and
// ReduceMin are reduce_max/reduce_min (their axes are an input from opset 18 on).
void lowerReduce(NodeCtx &c, OpKind k, bool mean = false, bool l2 = false) {
  Node *x = c.in(0);
  const int64_t r = x->type.rank();
  bool keep = c.getInt("keepdims", 1) != 0;
  std::optional<Ints> axes = axesOf(c, mean || l2 || k != OpKind::ReduceSum ? 18 : 13);
  if (!mean && c.opset() >= 13 && c.getInt("noop_with_empty_axes", 0) && (!axes || axes->empty())) {
    c.out(0, c.emit(OpKind::Identity, "", {x}));
    return;
  }
  Ints ax;
  if (!axes || axes->empty())
    for (int64_t d = 0; d < r; ++d)
      ax.push_back(d);
  else
    for (int64_t a : *axes)
      ax.push_back(axisIn(c, a, r));
  int64_t count = 1;
  for (int64_t a : ax)
    count *= x->type.shape[a];
  if (mean && count == 0)
    c.unsupported(fmt::format("the mean over an empty extent of {} is undefined", x->type.str()));
  if (l2) // ReduceL2: sqrt(sum x^2)
    x = c.emit(OpKind::Mul, "sq", {x, x});
  Node *y = c.emit(k, mean || l2 ? "sum" : "", {x}, {{"axes", ax}, {"keepdims", int64_t(keep)}});
  if (l2)
    y = c.emit(OpKind::Sqrt, "", {y});
  if (mean)
    y = c.emit(OpKind::Mul, "", {y, c.scalar(1.0 / (double)count, x->type.dtype)});
  c.out(0, y);
}

// GlobalMaxPool: the seed's max pooling (eq. 48) with one window covering every spatial dim.
void lowerGlobalMaxPool(NodeCtx &c) {
  Node *x = c.in(0);
  if (x->type.rank() < 3)
    c.unsupported(fmt::format("needs an [N,C,spatial...] input, got {}", x->type.str()));
  Ints ax;
  for (int64_t d = 2; d < x->type.rank(); ++d)
    ax.push_back(d);
  c.out(0, c.emit(OpKind::ReduceMax, "", {x}, {{"axes", ax}, {"keepdims", int64_t(1)}}));
}

void lowerArgMax(NodeCtx &c) {
  Node *x = c.in(0);
  const int64_t axis = axisIn(c, c.getInt("axis", 0), x->type.rank());
  c.out(0, c.emit(OpKind::ArgMax, "", {x},
                  {{"axis", axis},
                   {"keepdims", int64_t(c.getInt("keepdims", 1) != 0)},
                   {"select_last_index", int64_t(c.getInt("select_last_index", 0) != 0)}}));
}

// ---- shape movement ---------------------------------------------------------------------------
// DepthToSpace / SpaceToDepth / Tile are data movement: reshape -> transpose/expand -> reshape
// (exact, differentiable through the existing ops, exported as those ops).
void lowerDepthToSpace(NodeCtx &c, bool toSpace) {
  Node *x = c.in(0);
  if (x->type.rank() != 4)
    c.unsupported(fmt::format("needs a 4-D input, got {}", x->type.str()));
  const Shape &s = x->type.shape;
  const int64_t b = c.getInt("blocksize", 0), n = s[0], ch = s[1], h = s[2], w = s[3];
  if (b < 1)
    c.unsupported(fmt::format("blocksize {} must be >= 1", b));
  Node *y;
  if (toSpace) {
    const bool crd = c.getStr("mode", "DCR") == "CRD";
    if (ch % (b * b))
      c.unsupported(fmt::format("{} channels are not a multiple of blocksize^2 = {}", ch, b * b));
    const int64_t cb = ch / (b * b);
    Node *r = c.emit(OpKind::Reshape, "r6", {x}, reshapeAttrs(crd ? Shape{n, cb, b, b, h, w} : Shape{n, b, b, cb, h, w}));
    Node *t = c.emit(OpKind::Transpose, "t", {r}, {{"perm", crd ? Ints{0, 1, 4, 2, 5, 3} : Ints{0, 3, 4, 1, 5, 2}}});
    y = c.emit(OpKind::Reshape, "", {t}, reshapeAttrs({n, cb, h * b, w * b}));
  } else {
    if (h % b || w % b)
      c.unsupported(fmt::format("{}x{} is not a multiple of blocksize {}", h, w, b));
    Node *r = c.emit(OpKind::Reshape, "r6", {x}, reshapeAttrs({n, ch, h / b, b, w / b, b}));
    Node *t = c.emit(OpKind::Transpose, "t", {r}, {{"perm", Ints{0, 3, 5, 1, 2, 4}}});
    y = c.emit(OpKind::Reshape, "", {t}, reshapeAttrs({n, ch * b * b, h / b, w / b}));
  }
  c.out(0, y);
}

// Tile: each dim d repeated k_d times as a whole: [d0, d1] -> [1, d0, 1, d1] -> expand
// [k0, d0, k1, d1] -> [k0*d0, k1*d1].
void lowerTile(NodeCtx &c) {
  Node *x = c.in(0);
  const Shape &s = x->type.shape;
  Ints k = intsIn(c, 1, "repeats");
  if (k.size() != s.size())
    c.unsupported(fmt::format("repeats {} needs one value per dim of {}", listStr(k), x->type.str()));
  Shape split, rep, out;
  for (size_t d = 0; d < s.size(); ++d) {
    if (k[d] < 0)
      c.unsupported(fmt::format("repeats {} must be non-negative", listStr(k)));
    split.insert(split.end(), {1, s[d]});
    rep.insert(rep.end(), {k[d], s[d]});
    out.push_back(k[d] * s[d]);
  }
  Node *r = c.emit(OpKind::Reshape, "split", {x}, reshapeAttrs(split));
  Node *e = c.emit(OpKind::Expand, "rep", {r}, {{"shape", rep}});
  c.out(0, c.emit(OpKind::Reshape, "", {e}, reshapeAttrs(out)));
}

void lowerTranspose(NodeCtx &c) {
  Shape xs = shapeIn(c, 0);
  Ints perm = c.getInts("perm", {});
  if (perm.empty())
    for (int64_t d = (int64_t)xs.size() - 1; d >= 0; --d)
      perm.push_back(d);
  c.out(0, c.emit(OpKind::Transpose, "", {c.in(0)}, {{"perm", perm}}));
}

void lowerSqueeze(NodeCtx &c) {
  Shape xs = shapeIn(c, 0), s;
  std::optional<Ints> axes = axesOf(c, 13);
  std::vector<bool> drop(xs.size(), false);
  if (!axes) {
    for (size_t d = 0; d < xs.size(); ++d)
      drop[d] = xs[d] == 1;
  } else {
    for (int64_t a : *axes) {
      int64_t d = axisIn(c, a, (int64_t)xs.size());
      if (xs[d] != 1)
        c.unsupported(fmt::format("axis {} of {} is not 1", a, shapeStr(xs)));
      drop[d] = true;
    }
  }
  for (size_t d = 0; d < xs.size(); ++d)
    if (!drop[d])
      s.push_back(xs[d]);
  reshapeOut(c, s);
}

void lowerUnsqueeze(NodeCtx &c) {
  Shape xs = shapeIn(c, 0);
  std::optional<Ints> axes = axesOf(c, 13);
  if (!axes)
    c.unsupported("no axes");
  const int64_t r = (int64_t)(xs.size() + axes->size());
  std::vector<bool> added(r, false);
  for (int64_t a : *axes) {
    int64_t d = axisIn(c, a, r);
    if (added[d])
      c.unsupported(fmt::format("axis {} is listed twice", a));
    added[d] = true;
  }
  Shape s;
  for (int64_t d = 0, k = 0; d < r; ++d)
    s.push_back(added[d] ? 1 : xs[k++]);
  reshapeOut(c, s);
}

// One row-major copy of the elements [start, end) along `axis` of a known tensor.
OnnxTensor sliceConst(const OnnxTensor &t, int64_t axis, int64_t start, int64_t end) {
  OnnxTensor r = t;
  r.shape[axis] = end - start;
  int64_t inner = 1, outer = 1;
  for (size_t d = axis + 1; d < t.shape.size(); ++d)
    inner *= t.shape[d];
  for (int64_t d = 0; d < axis; ++d)
    outer *= t.shape[d];
  r.values.clear();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = start * inner; i < end * inner; ++i)
      r.values.push_back(t.values[(o * t.shape[axis]) * inner + i]);
  return r;
}

// Slices along each axis (one IR slice per axis that is cut); a known input is sliced here,
// and an empty slice is a zero-size constant (the IR's slice is never empty).
void sliceOut(NodeCtx &c, int out, const std::vector<std::array<int64_t, 3>> &cuts) {
  Shape shape = shapeIn(c, 0);
  bool empty = false;
  for (auto [axis, s, e] : cuts) {
    shape[axis] = e - s;
    empty |= e == s;
  }
  if (empty) {
    OnnxTensor z;
    z.dtype = c.constIn(0) ? c.constIn(0)->dtype : c.typeIn(0).dtype;
    z.shape = shape;
    c.outConst(out, std::move(z));
    return;
  }
  if (const OnnxTensor *v = c.constIn(0)) {
    OnnxTensor r = *v;
    for (auto [axis, s, e] : cuts)
      r = sliceConst(r, axis, s, e);
    c.outConst(out, std::move(r));
    return;
  }
  Node *y = c.in(0);
  for (auto [axis, s, e] : cuts)
    y = c.emit(OpKind::Slice, fmt::format("s{}", axis), {y},
               {{"axis", axis}, {"start", s}, {"end", e}});
  c.out(out, cuts.empty() ? c.emit(OpKind::Identity, "", {y}) : y);
}

void lowerSlice(NodeCtx &c) {
  Shape xs = shapeIn(c, 0);
  const int64_t r = (int64_t)xs.size();
  Ints starts, ends, axes, steps;
  if (c.opset() < 10) {
    starts = c.getInts("starts"), ends = c.getInts("ends"), axes = c.getInts("axes", {});
  } else {
    starts = intsIn(c, 1, "starts"), ends = intsIn(c, 2, "ends");
    if (c.hasInput(3))
      axes = intsIn(c, 3, "axes");
    if (c.hasInput(4))
      steps = intsIn(c, 4, "steps");
  }
  if (axes.empty())
    for (size_t i = 0; i < starts.size(); ++i)
      axes.push_back((int64_t)i);
  if (starts.size() != ends.size() || axes.size() != starts.size() ||
      (!steps.empty() && steps.size() != starts.size()))
    c.unsupported("starts, ends, axes and steps differ in length");
  std::vector<std::array<int64_t, 3>> cuts;
  for (size_t i = 0; i < axes.size(); ++i) {
    if (!steps.empty() && steps[i] != 1)
      c.unsupported(fmt::format("step {} is not supported (only 1)", steps[i]));
    const int64_t a = axisIn(c, axes[i], r), n = xs[a];
    // ONNX: negative bounds count from the end; both are clamped into [0, n]
    auto bound = [&](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + n : v, 0, n); };
    const int64_t s = bound(starts[i]), e = std::max(s, bound(ends[i])); // e == s: empty
    if (s != 0 || e != n)
      cuts.push_back({a, s, e});
  }
  sliceOut(c, 0, cuts);
}

void lowerSplit(NodeCtx &c) {
  Shape xs = shapeIn(c, 0);
  const int64_t a = axisIn(c, c.getInt("axis", 0), (int64_t)xs.size());
  Ints split;
  if (c.opset() < 13)
    split = c.getInts("split", {});
  else if (c.hasInput(1))
    split = intsIn(c, 1, "split");
  const int64_t k = c.numOutputs(), n = xs[a];
  if (split.empty()) {
    if (k == 0 || n % k)
      c.unsupported(fmt::format("{} outputs cannot split axis {} of {} equally", k, a, n));
    split.assign(k, n / k);
  }
  int64_t start = 0;
  for (size_t i = 0; i < split.size(); ++i) {
    if (split[i] < 0)
      c.unsupported(fmt::format("split {} has a negative part", listStr(split)));
    if (c.wantsOutput((int)i))
      sliceOut(c, (int)i, {{a, start, start + split[i]}});
    start += split[i];
  }
  if (start != n || (int64_t)split.size() != k)
    c.unsupported(fmt::format("split {} does not cover axis {} ({} long) with {} outputs",
                              listStr(split), a, n, k));
}

void lowerExpand(NodeCtx &c) {
  Shape xs = shapeIn(c, 0);
  Ints want = intsIn(c, 1, "shape");
  // bidirectional numpy broadcasting of x's shape and `want`
  const size_t r = std::max(xs.size(), want.size());
  Shape out(r);
  for (size_t i = 0; i < r; ++i) {
    int64_t a = i + xs.size() >= r ? xs[i + xs.size() - r] : 1;
    int64_t b = i + want.size() >= r ? want[i + want.size() - r] : 1;
    if (a != b && a != 1 && b != 1)
      c.unsupported(fmt::format("cannot broadcast {} to {}", shapeStr(xs), listStr(want)));
    out[i] = a == 1 ? b : a;
  }
  c.out(0, c.emit(OpKind::Expand, "", {c.in(0)}, {{"shape", out}}));
}

// ---- folding of static-shape subgraphs --------------------------------------------------------
void lowerShape(NodeCtx &c) {
  Shape xs = shapeIn(c, 0);
  const int64_t r = (int64_t)xs.size();
  int64_t s = c.getInt("start", 0), e = c.getInt("end", r);
  s = std::clamp<int64_t>(s < 0 ? s + r : s, 0, r), e = std::clamp<int64_t>(e < 0 ? e + r : e, 0, r);
  OnnxTensor t;
  t.dtype = DType::I64;
  for (int64_t d = s; d < e; ++d)
    t.values.push_back((double)xs[d]);
  t.shape = {(int64_t)t.values.size()};
  c.outConst(0, std::move(t));
}

void lowerGather(NodeCtx &c) {
  const OnnxTensor *data = c.constIn(0), *idx = c.constIn(1);
  if (!data || !idx)
    c.unsupported("only a Gather of tensors known at compile time (shapes) is supported");
  const int64_t r = (int64_t)data->shape.size();
  const int64_t a = axisIn(c, c.getInt("axis", 0), r);
  int64_t outer = 1, inner = 1, n = data->shape[a];
  for (int64_t d = 0; d < a; ++d)
    outer *= data->shape[d];
  for (int64_t d = a + 1; d < r; ++d)
    inner *= data->shape[d];
  OnnxTensor t;
  t.dtype = data->dtype;
  t.shape.assign(data->shape.begin(), data->shape.begin() + a);
  t.shape.insert(t.shape.end(), idx->shape.begin(), idx->shape.end());
  t.shape.insert(t.shape.end(), data->shape.begin() + a + 1, data->shape.end());
  for (int64_t o = 0; o < outer; ++o)
    for (double iv : idx->values) {
      int64_t i = (int64_t)iv < 0 ? (int64_t)iv + n : (int64_t)iv;
      if (i < 0 || i >= n)
        c.unsupported(fmt::format("index {} is out of range for {} entries", iv, n));
      for (int64_t k = 0; k < inner; ++k)
        t.values.push_back(data->values[(o * n + i) * inner + k]);
    }
  c.outConst(0, std::move(t));
}

void lowerCast(NodeCtx &c) {
  const int64_t to = c.getInt("to", 1);
  std::optional<DType> dt = dtypeFromOnnx((int)to);
  if (!dt)
    c.unsupported(fmt::format("casting to {} is not supported", onnxElemTypeName((int)to)));
  if (const OnnxTensor *v = c.constIn(0)) {
    OnnxTensor t = *v;
    t.dtype = *dt;
    for (double &x : t.values)
      x = isFloat(*dt) ? (*dt == DType::F32 ? (double)(float)x : x) : std::trunc(x);
    c.outConst(0, std::move(t));
    return;
  }
  if (c.typeIn(0).dtype != *dt)
    c.unsupported(fmt::format("a Cast of a computed {} tensor to {} is not supported",
                              dtypeName(c.typeIn(0).dtype), dtypeName(*dt)));
  c.out(0, c.emit(OpKind::Identity, "", {c.in(0)}));
}

void lowerConstantOfShape(NodeCtx &c) {
  Ints s = intsIn(c, 0, "shape");
  OnnxTensor t;
  double v = 0;
  if (const auto *a = c.attr("value")) {
    OnnxTensor one = onnxio::fromProto(a->t(), "attribute 'value'");
    if (one.values.size() != 1)
      c.unsupported("attribute 'value' must hold one element");
    t.dtype = one.dtype, v = one.values[0];
  }
  t.shape = s;
  t.values.assign((size_t)t.numel(), v);
  c.outConst(0, std::move(t));
}

void lowerRange(NodeCtx &c) {
  const OnnxTensor *s = c.constIn(0), *l = c.constIn(1), *d = c.constIn(2);
  if (!s || !l || !d)
    c.unsupported("only a Range of values known at compile time is supported");
  const double start = s->values.at(0), limit = l->values.at(0), delta = d->values.at(0);
  if (delta == 0)
    c.unsupported("delta is 0");
  OnnxTensor t;
  t.dtype = s->dtype;
  const int64_t n = std::max<int64_t>(0, (int64_t)std::ceil((limit - start) / delta));
  for (int64_t i = 0; i < n; ++i)
    t.values.push_back(start + (double)i * delta);
  t.shape = {n};
  c.outConst(0, std::move(t));
}

// Concat of known tensors (shape vectors built from Shape/Gather/Unsqueeze) folds.
bool foldConcat(NodeCtx &c) {
  std::vector<const OnnxTensor *> xs;
  for (int i = 0; i < c.numInputs(); ++i)
    if (c.hasInput(i)) {
      const OnnxTensor *t = c.constIn(i);
      if (!t)
        return false;
      xs.push_back(t);
    }
  if (xs.empty() || xs[0]->shape.empty())
    return false;
  const int64_t a = axisIn(c, c.getInt("axis", 0), (int64_t)xs[0]->shape.size());
  OnnxTensor r = *xs[0];
  int64_t outer = 1;
  for (int64_t d = 0; d < a; ++d)
    outer *= r.shape[d];
  r.shape[a] = 0;
  for (const OnnxTensor *t : xs) {
    if (t->shape.size() != r.shape.size() || t->dtype != r.dtype)
      return false;
    r.shape[a] += t->shape[a];
  }
  r.values.clear();
  for (int64_t o = 0; o < outer; ++o)
    for (const OnnxTensor *t : xs) {
      const int64_t chunk = t->numel() / std::max<int64_t>(outer, 1);
      r.values.insert(r.values.end(), t->values.begin() + o * chunk,
                      t->values.begin() + (o + 1) * chunk);
    }
  c.outConst(0, std::move(r));
  return true;
}

} // namespace

void addModelLowerings(std::map<std::string, LowerFn> &t) {
  t["Clip"] = lowerClip;
  t["HardSigmoid"] = lowerHardSigmoid;
  t["LeakyRelu"] = lowerLeakyRelu;
  t["Resize"] = lowerResize;
  t["Upsample"] = lowerResize;
  t["Elu"] = lowerElu;
  t["PRelu"] = lowerPRelu;
  t["Selu"] = lowerSelu;
  t["Max"] = [](NodeCtx &c) { lowerVariadic(c, OpKind::Max, false); };
  t["Min"] = [](NodeCtx &c) { lowerVariadic(c, OpKind::Min, false); };
  t["Sum"] = [](NodeCtx &c) { lowerVariadic(c, OpKind::Add, false); };
  t["Mean"] = [](NodeCtx &c) { lowerVariadic(c, OpKind::Add, true); };
  t["Pad"] = lowerPad;
  t["ReduceMean"] = [](NodeCtx &c) { lowerReduce(c, OpKind::ReduceSum, true); };
  t["ReduceSum"] = [](NodeCtx &c) { lowerReduce(c, OpKind::ReduceSum); };
  t["ReduceL2"] = [](NodeCtx &c) { lowerReduce(c, OpKind::ReduceSum, false, true); };
  t["ReduceMax"] = [](NodeCtx &c) { lowerReduce(c, OpKind::ReduceMax); };
  t["ReduceMin"] = [](NodeCtx &c) { lowerReduce(c, OpKind::ReduceMin); };
  t["GlobalMaxPool"] = lowerGlobalMaxPool;
  t["ArgMax"] = lowerArgMax;
  addNormLowerings(t);
  t["DepthToSpace"] = [](NodeCtx &c) { lowerDepthToSpace(c, true); };
  t["SpaceToDepth"] = [](NodeCtx &c) { lowerDepthToSpace(c, false); };
  t["Tile"] = lowerTile;
  t["Transpose"] = lowerTranspose;
  t["Squeeze"] = lowerSqueeze;
  t["Unsqueeze"] = lowerUnsqueeze;
  t["Slice"] = lowerSlice;
  t["Split"] = lowerSplit;
  t["Expand"] = lowerExpand;
  t["Shape"] = lowerShape;
  t["Gather"] = lowerGather;
  t["Cast"] = lowerCast;
  t["ConstantOfShape"] = lowerConstantOfShape;
  t["Range"] = lowerRange;
  t["Concat"] = [base = t.at("Concat")](NodeCtx &c) {
    if (!foldConcat(c))
      base(c);
  };
}

} // namespace cnnc::onnximp
