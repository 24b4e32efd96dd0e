// Shape rules: one `infer<Op>` per op of Ops.def, deriving the result type from the operands
// and attributes, and rejecting every inconsistency with a message that names the node.
// Output sizes follow ONNX/PyTorch (floor division; ceil_mode's last window must start inside
// the input or its leading padding).
//
// Zero-size tensors (a 0 dimension) are values like any other: elementwise ops, views,
// concatenation and the batch dimension of every op give empty results, and sums over an
// empty extent are 0 (numpy: matmul/fc with K = 0, conv2d with no input channels gives its
// bias, reduce_sum). What has no value over nothing is rejected here, by name: sliding a
// window over an empty image, a mean (global_avgpool, bn_mean/bn_var, the losses' batch
// average) or a max/argmax (softmax_xent, count_correct) over an empty set.
#include "ir/Checked.h"
#include "ir/IR.h"
#include "ir/ShapeRuleUtil.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>

namespace cnnc {

namespace shape {

[[noreturn]] void fail(const Node &n, const std::string &msg) {
  throw Error(n.loc, fmt::format("%{} ({}): {}", n.name, n.info().mnemonic, msg));
}

const TensorType &in(const Node &n, size_t i) { return n.operands.at(i)->type; }

// Checked size arithmetic (ir/Checked.h): attributes and declared shapes are user input, so
// an overflow is the node's error, never undefined behaviour.
int64_t add(const Node &n, int64_t a, int64_t b) {
  if (auto r = checkedAdd(a, b))
    return *r;
  fail(n, fmt::format("sizes overflow 64-bit arithmetic ({} + {})", a, b));
}
int64_t mul(const Node &n, int64_t a, int64_t b) {
  if (auto r = checkedMul(a, b))
    return *r;
  fail(n, fmt::format("sizes overflow 64-bit arithmetic ({} * {})", a, b));
}
int64_t numel(const Node &n, const Shape &s) {
  if (auto r = checkedProduct(s))
    return *r;
  fail(n, fmt::format("the element count of {} overflows 64-bit arithmetic", shapeStr(s)));
}

void requireRank(const Node &n, size_t i, int rank, const char *what) {
  if (in(n, i).rank() != rank)
    fail(n, fmt::format("{} must be {}-D, got {}", what, rank, in(n, i).str()));
}

void requireFloat(const Node &n) {
  for (size_t i = 0; i < n.operands.size(); ++i)
    if (!isFloat(in(n, i).dtype))
      fail(n, fmt::format("operand {} (%{}) must be a floating-point tensor, got {}", i,
                          n.operands[i]->name, in(n, i).str()));
}

void requireSameDType(const Node &n) {
  for (size_t i = 1; i < n.operands.size(); ++i)
    if (in(n, i).dtype != in(n, 0).dtype)
      fail(n, fmt::format("operands have different element types ({} and {})", in(n, 0).str(),
                          in(n, i).str()));
}

std::vector<int64_t> pairAttr(const Node &n, const char *name, int64_t min) {
  auto v = n.getInts(name);
  if (v.size() != 2)
    fail(n, fmt::format("'{}' needs 2 values (rows, columns), got {}", name, v.size()));
  for (int64_t x : v)
    if (x < min)
      fail(n, fmt::format("'{}' values must be >= {}, got {}", name, min, attrStr(v)));
  return v;
}

std::vector<int64_t> padsAttr(const Node &n) {
  auto p = n.getInts("pads");
  if (p.size() != 4)
    fail(n, fmt::format("'pads' needs 4 values [top,left,bottom,right], got {}", p.size()));
  for (int64_t x : p)
    if (x < 0)
      fail(n, fmt::format("'pads' must be non-negative, got {}", attrStr(p)));
  return p;
}

// Output extent of a sliding window over `size` (+ padding), floor or ceil mode.
int64_t windowOut(const Node &n, const char *axis, int64_t size, int64_t padBegin, int64_t padEnd,
                  int64_t k, int64_t stride, int64_t dilation, bool ceil) {
  // Every window would lie in the padding: a max of nothing, an average over no input.
  if (size == 0)
    fail(n, fmt::format("the input has no {} (a window cannot slide over an empty image)", axis));
  int64_t span = add(n, mul(n, dilation, k - 1), 1);
  int64_t avail = add(n, add(n, size, padBegin), padEnd);
  if (span > avail)
    fail(n, fmt::format("window of {} {} (kernel {}, dilation {}) is larger than its padded input "
                        "{} ({} + padding {}+{})",
                        span, axis, k, dilation, avail, size, padBegin, padEnd));
  int64_t out = (avail - span) / stride + 1;
  if (ceil) {
    out = (avail - span) / stride + ((avail - span) % stride != 0) + 1;
    // (out - 1) * stride <= avail - span + stride - 1 may still exceed 64 bits: checked
    if (mul(n, out - 1, stride) >= size + padBegin)
      --out;
  }
  return out;
}

int64_t normAxis(const Node &n, int64_t axis, int rank, bool allowEnd) {
  int64_t r = rank + (allowEnd ? 1 : 0);
  if (axis < -rank || axis >= r)
    fail(n, fmt::format("axis {} is out of range for a {}-D tensor", axis, rank));
  return axis < 0 ? axis + rank : axis;
}

TensorType same(const Node &n) { return in(n, 0); }

TensorType pool(const Node &n, bool hasDilation) {
  requireFloat(n);
  requireRank(n, 0, 4, "the input");
  auto k = pairAttr(n, "kernel", 1), s = pairAttr(n, "stride", 1);
  auto d = hasDilation ? pairAttr(n, "dilation", 1) : std::vector<int64_t>{1, 1};
  auto p = padsAttr(n);
  // A pad as large as the window puts whole windows in the padding: -inf rows for max, a
  // division by zero or a mean of padding for avg. PyTorch refuses pad > kernel/2; ONNX
  // models (and the conformance tests) use pads up to the window, so cnnc refuses pad >=
  // window, which is exactly where windows of padding alone begin.
  for (int i = 0; i < 4; ++i) {
    int64_t window = add(n, mul(n, d[i % 2], k[i % 2] - 1), 1);
    if (p[i] >= window)
      fail(n, fmt::format("padding {} (pads {}) is not smaller than the {} window ({}): windows "
                          "would lie entirely in the padding",
                          p[i], attrStr(p), i % 2 ? "column" : "row", window));
  }
  bool ceil = n.getInt("ceil_mode") != 0;
  const Shape &x = in(n, 0).shape;
  return {in(n, 0).dtype,
          {x[0], x[1], windowOut(n, "rows", x[2], p[0], p[2], k[0], s[0], d[0], ceil),
           windowOut(n, "columns", x[3], p[1], p[3], k[1], s[1], d[1], ceil)}};
}

TensorType broadcast(const Node &n) {
  requireSameDType(n);
  const Shape &a = in(n, 0).shape, &b = in(n, 1).shape;
  size_t r = std::max(a.size(), b.size());
  Shape out(r);
  for (size_t i = 0; i < r; ++i) {
    int64_t da = i + a.size() >= r ? a[i + a.size() - r] : 1;
    int64_t db = i + b.size() >= r ? b[i + b.size() - r] : 1;
    if (da != db && da != 1 && db != 1)
      fail(n, fmt::format("shapes {} and {} do not broadcast", shapeStr(a), shapeStr(b)));
    out[i] = da == 1 ? db : da;
  }
  return {in(n, 0).dtype, out};
}

} // namespace shape

using namespace shape;

// ---------------------------------------------------------------------------- rules --
static TensorType inferSource(const Node &n) { return n.type; }
static TensorType inferInput(const Node &n) { return inferSource(n); }
static TensorType inferParam(const Node &n) { return inferSource(n); }
static TensorType inferConstant(const Node &n) {
  auto v = n.getFloats("value");
  if ((int64_t)v.size() != 1 && (int64_t)v.size() != n.type.numel())
    fail(n, fmt::format("'value' has {} entries; a {} constant needs 1 or {}", v.size(),
                        n.type.str(), n.type.numel()));
  // Integer constants hold integers their type can represent (1.5 or 3e40 would be truncated
  // or undefined when converted).
  if (!isFloat(n.type.dtype)) {
    const double lo = n.type.dtype == DType::I32 ? -2147483648.0 : -9223372036854775808.0;
    for (double x : v)
      if (!(x >= lo && x < -lo) || x != std::floor(x))
        fail(n, fmt::format("the {} constant holds {}, which is not an integer of its type",
                            dtypeName(n.type.dtype), x));
  }
  return n.type;
}

static TensorType inferConv2d(const Node &n) {
  requireFloat(n);
  requireSameDType(n);
  requireRank(n, 0, 4, "the input");
  requireRank(n, 1, 4, "the weight");
  const Shape &x = in(n, 0).shape, &w = in(n, 1).shape;
  int64_t g = n.getInt("groups");
  if (g < 1)
    fail(n, fmt::format("'groups' must be >= 1, got {}", g));
  if (x[1] % g || w[0] % g)
    fail(n, fmt::format("{} input channels and {} output channels must both divide by groups={}",
                        x[1], w[0], g));
  if (mul(n, w[1], g) != x[1])
    fail(n, fmt::format("the weight {} expects {} input channels (x groups {}), the input has {}",
                        shapeStr(w), w[1] * g, g, x[1]));
  if (n.operands.size() >= 3 && in(n, 2).shape != Shape{w[0]})
    fail(n, fmt::format("the bias must be [{}], got {}", w[0], shapeStr(in(n, 2).shape)));
  if (w[2] < 1 || w[3] < 1)
    fail(n, fmt::format("the kernel must be at least 1x1, the weight is {}", shapeStr(w)));
  auto s = pairAttr(n, "stride", 1), d = pairAttr(n, "dilation", 1);
  auto p = padsAttr(n);
  TensorType y{in(n, 0).dtype,
               {x[0], w[0], windowOut(n, "rows", x[2], p[0], p[2], w[2], s[0], d[0], false),
                windowOut(n, "columns", x[3], p[1], p[3], w[3], s[1], d[1], false)}};
  if (n.operands.size() == 4 && in(n, 3).shape != y.shape) // no broadcasting: fuse-residual's add had none
    fail(n, fmt::format("the residual r must have the result's shape {}, got {}", shapeStr(y.shape),
                        shapeStr(in(n, 3).shape)));
  return y;
}

static TensorType inferMaxPool(const Node &n) { return pool(n, true); }
static TensorType inferAvgPool(const Node &n) { return pool(n, false); }
static TensorType inferGlobalAvgPool(const Node &n) {
  requireFloat(n);
  if (in(n, 0).rank() < 3)
    fail(n, fmt::format("the input must be at least 3-D [N,C,spatial...], got {}", in(n, 0).str()));
  TensorType t = in(n, 0);
  for (size_t i = 2; i < t.shape.size(); ++i) {
    if (t.shape[i] == 0)
      fail(n, fmt::format("the mean over an empty spatial extent is undefined ({})", t.str()));
    t.shape[i] = 1;
  }
  return t;
}

static TensorType inferRelu(const Node &n) { requireFloat(n); return same(n); }
static TensorType inferSigmoid(const Node &n) { requireFloat(n); return same(n); }
static TensorType inferTanh(const Node &n) { requireFloat(n); return same(n); }
static TensorType inferSoftplus(const Node &n) { requireFloat(n); return same(n); }
static TensorType inferIdentity(const Node &n) { return same(n); }

static TensorType inferFullyConnected(const Node &n) {
  requireFloat(n);
  requireSameDType(n);
  requireRank(n, 0, 2, "the input (flatten it first)");
  requireRank(n, 1, 2, "the weight");
  const Shape &x = in(n, 0).shape, &w = in(n, 1).shape;
  if (w[1] != x[1])
    fail(n, fmt::format("the weight {} expects {} input features, the input {} has {}", shapeStr(w),
                        w[1], shapeStr(x), x[1]));
  if (n.operands.size() == 3 && in(n, 2).shape != Shape{w[0]})
    fail(n, fmt::format("the bias must be [{}], got {}", w[0], shapeStr(in(n, 2).shape)));
  return {in(n, 0).dtype, {x[0], w[0]}};
}

static TensorType inferMatMul(const Node &n) {
  requireFloat(n);
  requireSameDType(n);
  int r = in(n, 0).rank();
  if ((r != 2 && r != 3) || in(n, 1).rank() != r)
    fail(n, fmt::format("operands must both be 2-D, or both 3-D (a batch of matrices), got {} and {}",
                        in(n, 0).str(), in(n, 1).str()));
  Shape a = in(n, 0).shape, b = in(n, 1).shape;
  if (r == 3 && a[0] != b[0])
    fail(n, fmt::format("batch sizes differ: {} and {}", a[0], b[0]));
  if (n.getInt("trans_a"))
    std::swap(a[r - 2], a[r - 1]);
  if (n.getInt("trans_b"))
    std::swap(b[r - 2], b[r - 1]);
  if (a[r - 1] != b[r - 2])
    fail(n, fmt::format("inner dimensions differ: {} x {} (after transposes)", shapeStr(a), shapeStr(b)));
  Shape out = a;
  out[r - 1] = b[r - 1];
  return {in(n, 0).dtype, out};
}

static TensorType inferBatchMatMul(const Node &n) {
  requireFloat(n);
  requireSameDType(n);
  const Shape &a = in(n, 0).shape, &b = in(n, 1).shape;
  if (a.size() < 2 || b.size() < 2)
    fail(n, fmt::format("both operands must be at least 2-D, got {} and {}", shapeStr(a), shapeStr(b)));
  if (a[a.size() - 1] != b[b.size() - 2])
    fail(n, fmt::format("inner dimensions differ: {} x {}", shapeStr(a), shapeStr(b)));
  size_t r = std::max(a.size(), b.size());
  Shape out(r);
  for (size_t i = 0; i + 2 < r; ++i) {
    int64_t da = i + a.size() >= r ? a[i + a.size() - r] : 1;
    int64_t db = i + b.size() >= r ? b[i + b.size() - r] : 1;
    if (da != db && da != 1 && db != 1)
      fail(n, fmt::format("batch dimensions of {} and {} do not broadcast", shapeStr(a), shapeStr(b)));
    out[i] = da == 1 ? db : da;
  }
  out[r - 2] = a[a.size() - 2];
  out[r - 1] = b[b.size() - 1];
  return {in(n, 0).dtype, out};
}

static TensorType inferAdd(const Node &n) { return broadcast(n); }
static TensorType inferSub(const Node &n) { return broadcast(n); }
static TensorType inferMul(const Node &n) { return broadcast(n); }
static TensorType inferDiv(const Node &n) { return broadcast(n); }
static TensorType inferPow(const Node &n) { requireFloat(n); return broadcast(n); }
static TensorType inferMax(const Node &n) { requireFloat(n); return broadcast(n); }
static TensorType inferMin(const Node &n) { requireFloat(n); return broadcast(n); }
// ONNX PRelu broadcasts the slope to x only (unidirectional): the result is x's type.
static TensorType inferPRelu(const Node &n) {
  requireFloat(n);
  if (broadcast(n) != in(n, 0))
    fail(n, fmt::format("slope {} must broadcast to x {}", in(n, 1).str(), in(n, 0).str()));
  return in(n, 0);
}

static TensorType inferConcat(const Node &n) {
  requireSameDType(n);
  int rank = in(n, 0).rank();
  int64_t axis = normAxis(n, n.getInt("axis"), rank);
  TensorType t = in(n, 0);
  for (size_t i = 1; i < n.operands.size(); ++i) {
    const Shape &s = in(n, i).shape;
    bool ok = (int)s.size() == rank;
    for (int d = 0; ok && d < rank; ++d)
      ok = d == axis || s[d] == t.shape[d];
    if (!ok)
      fail(n, fmt::format("cannot concatenate {} and {} along axis {}", shapeStr(t.shape),
                          shapeStr(s), axis));
    t.shape[axis] = add(n, t.shape[axis], s[axis]);
  }
  return t;
}

static TensorType inferFlatten(const Node &n) {
  const TensorType &x = in(n, 0);
  int64_t axis = normAxis(n, n.getInt("axis"), x.rank(), true);
  int64_t a = 1, b = 1;
  for (int i = 0; i < x.rank(); ++i)
    (i < axis ? a : b) = mul(n, i < axis ? a : b, x.shape[i]);
  return {x.dtype, {a, b}};
}

// ONNX Reshape: 0 copies the input's dim at that index (allowzero=0) or is a literal 0
// (allowzero=1); -1 is inferred, which needs the other entries' product to be nonzero (the
// inference is ambiguous otherwise: numpy and ONNX reject it too).
static TensorType inferReshape(const Node &n) {
  const TensorType &x = in(n, 0);
  const Shape spec = n.getInts("shape");
  const int64_t allowZero = n.getInt("allowzero");
  if (allowZero != 0 && allowZero != 1)
    fail(n, fmt::format("'allowzero' must be 0 or 1, got {}", allowZero));
  Shape s = spec;
  int infer = -1;
  int64_t known = 1;
  bool literalZero = false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == 0 && allowZero) {
      literalZero = true;
    } else if (s[i] == 0) {
      if (i >= x.shape.size())
        fail(n, fmt::format("shape entry {} is 0 (copy the input's dim) but the input {} has only "
                            "{} dims",
                            i, x.str(), x.rank()));
      s[i] = x.shape[i];
    }
    if (s[i] == -1) {
      if (infer >= 0)
        fail(n, "'shape' may hold at most one -1");
      infer = (int)i;
    } else if (s[i] < 0) {
      fail(n, fmt::format("bad 'shape' entry {}", s[i]));
    } else {
      known = mul(n, known, s[i]);
    }
  }
  if (infer >= 0 && literalZero)
    fail(n, fmt::format("'shape' {} holds both 0 and -1 with allowzero=1 (ONNX Reshape forbids it)",
                        attrStr(spec)));
  if (infer >= 0) {
    if (known == 0)
      fail(n, fmt::format("cannot infer the -1 of {} for {}: the other entries multiply to 0",
                          attrStr(spec), x.str()));
    if (numel(n, x.shape) % known)
      fail(n, fmt::format("cannot reshape {} into {}", x.str(), attrStr(spec)));
    s[infer] = numel(n, x.shape) / known;
  }
  TensorType t{x.dtype, s};
  if (numel(n, s) != numel(n, x.shape))
    fail(n, fmt::format("cannot reshape {} ({} elements) into {} ({} elements)", x.str(), x.numel(),
                        shapeStr(s), t.numel()));
  return t;
}

std::map<std::string, Attr> reshapeAttrs(const Shape &shape) {
  std::map<std::string, Attr> a{{"shape", shape}};
  if (std::find(shape.begin(), shape.end(), 0) != shape.end())
    a["allowzero"] = int64_t(1);
  return a;
}

static TensorType inferSoftmax(const Node &n) {
  requireFloat(n);
  normAxis(n, n.getInt("axis"), in(n, 0).rank());
  return same(n);
}
static TensorType inferLogSoftmax(const Node &n) { return inferSoftmax(n); }

void shape::requirePerChannel(const Node &n, size_t from) {
  int64_t c = in(n, 0).shape[1];
  for (size_t i = from; i < n.operands.size(); ++i)
    if (in(n, i).shape != Shape{c})
      fail(n, fmt::format("operand {} (%{}) must be [{}] (one value per channel), got {}", i,
                          n.operands[i]->name, c, shapeStr(in(n, i).shape)));
}

static TensorType inferBatchNorm(const Node &n) {
  requireFloat(n);
  requireSameDType(n);
  if (in(n, 0).rank() < 2)
    fail(n, fmt::format("the input must be at least 2-D [N,C,...], got {}", in(n, 0).str()));
  requirePerChannel(n, 1);
  if (n.getFloat("epsilon") <= 0)
    fail(n, "'epsilon' must be positive");
  return same(n);
}
// bn_mean/bn_var and their gradients divide by N*H*W: with channels but no elements per
// channel, the statistic is 0/0.
void shape::requireNonEmptyStatistic(const Node &n, const TensorType &x) {
  if (x.shape[1] && !x.numel())
    fail(n, fmt::format("a batch statistic over an empty batch is undefined ({})", x.str()));
}

static TensorType inferBnMean(const Node &n) {
  requireFloat(n);
  if (in(n, 0).rank() < 2)
    fail(n, fmt::format("the input must be at least 2-D [N,C,...], got {}", in(n, 0).str()));
  requireNonEmptyStatistic(n, in(n, 0));
  return {in(n, 0).dtype, {in(n, 0).shape[1]}};
}
static TensorType inferBnVar(const Node &n) {
  TensorType t = inferBnMean(n);
  requirePerChannel(n, 1);
  return t;
}

static TensorType inferBnUnbias(const Node &n) {
  return {inferBnMean(n).dtype, {}};
}

static TensorType inferDropout(const Node &n) {
  if (!isFloat(in(n, 0).dtype))
    fail(n, fmt::format("the input must be a floating-point tensor, got {}", in(n, 0).str()));
  if (n.operands.size() == 2 && (in(n, 1).dtype != DType::I64 || in(n, 1).rank() != 0))
    fail(n, fmt::format("the step must be an i64[] scalar, got {}", in(n, 1).str()));
  double r = n.getFloat("rate");
  if (!(r >= 0 && r < 1))
    fail(n, fmt::format("'rate' must be in [0, 1), got {}", r));
  return same(n);
}

// Logits [N,classes] and labels [N], shared by softmax_xent and count_correct.
static void checkLogitsLabels(const Node &n) {
  const TensorType &x = in(n, 0), &l = in(n, 1);
  if (!isFloat(x.dtype) || x.rank() != 2)
    fail(n, fmt::format("the logits must be a 2-D float tensor [N,classes], got {}", x.str()));
  if ((l.dtype != DType::I32 && l.dtype != DType::I64) || l.shape != Shape{x.shape[0]})
    fail(n, fmt::format("the labels must be i32[{}] or i64 (one class index per example), got {}",
                        x.shape[0], l.str()));
  if (x.shape[1] == 0)
    fail(n, fmt::format("the logits {} have no classes", x.str()));
}

static void requireNonEmptyBatch(const Node &n) {
  if (in(n, 0).shape[0] == 0)
    fail(n, fmt::format("the loss averages over the batch, and {} is an empty batch", in(n, 0).str()));
}

TensorType inferSoftmaxXent(const Node &n) { // (also softmax_xent_grad's check)
  checkLogitsLabels(n);
  requireNonEmptyBatch(n);
  return {in(n, 0).dtype, {}};
}

static TensorType inferSoftmaxXentNd(const Node &n) {
  const TensorType &x = in(n, 0), &l = in(n, 1);
  if (!isFloat(x.dtype) || x.rank() < 2)
    fail(n, fmt::format("the logits must be a float tensor [N,C,d...], got {}", x.str()));
  Shape ls = x.shape;
  ls.erase(ls.begin() + 1);
  if ((l.dtype != DType::I32 && l.dtype != DType::I64) || l.shape != ls)
    fail(n, fmt::format("the labels must be i32 or i64 {} (the logits' shape without C), got {}",
                        shapeStr(ls), l.str()));
  if (n.operands.size() == 3 &&
      (in(n, 2).dtype != x.dtype || in(n, 2).shape != Shape{x.shape[1]}))
    fail(n, fmt::format("the weights must be {}[{}] (one per class), got {}", dtypeName(x.dtype),
                        x.shape[1], in(n, 2).str()));
  std::string r = n.getStr("reduction");
  if (r != "mean" && r != "sum" && r != "none")
    fail(n, fmt::format("'reduction' must be \"mean\", \"sum\" or \"none\", got \"{}\"", r));
  if (n.getInts("ignore_index").size() > 1)
    fail(n, "'ignore_index' holds at most one label");
  if (x.shape[1] == 0)
    fail(n, fmt::format("the logits {} have no classes", x.str()));
  if (r == "mean" && l.numel() == 0)
    fail(n, fmt::format("reduction \"mean\" over no labels (logits {}) is undefined", x.str()));
  return {x.dtype, r == "none" ? ls : Shape{}};
}

static TensorType inferL2Loss(const Node &n) {
  requireFloat(n);
  requireSameDType(n);
  if (in(n, 0).shape != in(n, 1).shape)
    fail(n, fmt::format("prediction {} and target {} differ in shape", in(n, 0).str(), in(n, 1).str()));
  if (in(n, 0).rank() < 1)
    fail(n, "the prediction needs a batch dimension");
  requireNonEmptyBatch(n);
  return {in(n, 0).dtype, {}};
}

static TensorType inferCountCorrect(const Node &n) {
  checkLogitsLabels(n); // an empty batch counts 0
  return {DType::I32, {}};
}

static TensorType inferTranspose(const Node &n) {
  const TensorType &x = in(n, 0);
  auto perm = n.getInts("perm");
  std::vector<bool> seen(x.rank(), false);
  if ((int)perm.size() != x.rank())
    fail(n, fmt::format("'perm' {} must list each of the {} dims once", attrStr(perm), x.rank()));
  Shape out;
  for (int64_t p : perm) {
    if (p < 0 || p >= x.rank() || seen[p])
      fail(n, fmt::format("'perm' {} must list each of the {} dims once", attrStr(perm), x.rank()));
    seen[p] = true;
    out.push_back(x.shape[p]);
  }
  return {x.dtype, out};
}

static TensorType inferExpand(const Node &n) {
  const Shape &x = in(n, 0).shape;
  Shape s = n.getInts("shape");
  bool ok = s.size() >= x.size();
  for (size_t i = 0; ok && i < x.size(); ++i) {
    int64_t d = x[x.size() - 1 - i], t = s[s.size() - 1 - i];
    ok = d == t || d == 1;
  }
  for (int64_t d : s) // numpy: a 0 dim broadcasts from 1 or 0 only, which the loop checked
    ok = ok && d >= 0;
  if (!ok)
    fail(n, fmt::format("cannot broadcast {} to {}", shapeStr(x), attrStr(s)));
  return {in(n, 0).dtype, s};
}

TensorType inferReduceSum(const Node &n) {
  const TensorType &x = in(n, 0);
  std::vector<bool> reduce(x.rank(), false);
  for (int64_t a : n.getInts("axes")) {
    int64_t ax = normAxis(n, a, x.rank());
    if (reduce[ax])
      fail(n, fmt::format("axis {} is listed twice", a));
    reduce[ax] = true;
  }
  bool keep = n.getInt("keepdims") != 0;
  Shape out;
  for (int i = 0; i < x.rank(); ++i)
    if (!reduce[i])
      out.push_back(x.shape[i]);
    else if (keep)
      out.push_back(1);
  return {x.dtype, out};
}

static TensorType inferSlice(const Node &n) {
  TensorType t = in(n, 0);
  int64_t axis = normAxis(n, n.getInt("axis"), t.rank());
  int64_t s = n.getInt("start"), e = n.getInt("end");
  if (s < 0 || e > t.shape[axis] || s >= e)
    fail(n, fmt::format("slice [{}, {}) is empty or outside 0..{} of axis {}", s, e, t.shape[axis], axis));
  t.shape[axis] = e - s;
  return t;
}

// Shared by im2row/row2im: the per-group matrix shape for an input x [N,C,H,W].
static Shape im2rowShape(const Node &n, const Shape &x) {
  auto k = pairAttr(n, "kernel", 1), s = pairAttr(n, "stride", 1), d = pairAttr(n, "dilation", 1);
  auto p = padsAttr(n);
  int64_t g = n.getInt("groups");
  if (g < 1 || x[1] % g)
    fail(n, fmt::format("groups={} must be >= 1 and divide the {} channels", g, x[1]));
  int64_t ho = windowOut(n, "rows", x[2], p[0], p[2], k[0], s[0], d[0], false);
  int64_t wo = windowOut(n, "columns", x[3], p[1], p[3], k[1], s[1], d[1], false);
  return {g, mul(n, mul(n, x[0], ho), wo), mul(n, mul(n, x[1] / g, k[0]), k[1])};
}

static TensorType inferIm2Row(const Node &n) {
  requireFloat(n);
  requireRank(n, 0, 4, "the input");
  return {in(n, 0).dtype, im2rowShape(n, in(n, 0).shape)};
}

Shape shape::inputShapeAttr(const Node &n, int rank) {
  Shape s = n.getInts("input_shape");
  if ((int)s.size() != rank)
    fail(n, fmt::format("'input_shape' must have {} entries, got {}", rank, attrStr(s)));
  for (int64_t d : s)
    if (d < 0)
      fail(n, fmt::format("'input_shape' sizes must be non-negative, got {}", attrStr(s)));
  return s;
}

static TensorType inferRow2Im(const Node &n) {
  requireFloat(n);
  Shape x = inputShapeAttr(n, 4);
  Shape rows = im2rowShape(n, x);
  if (in(n, 0).shape != rows)
    fail(n, fmt::format("rows must be {} for input_shape {}, got {}", shapeStr(rows), shapeStr(x),
                        shapeStr(in(n, 0).shape)));
  return {in(n, 0).dtype, x};
}

// ShapeRulesGrad.cpp: the gradient ops autodiff and the passes emit.
TensorType inferReluGrad(const Node &n);
TensorType inferSigmoidGrad(const Node &n);
TensorType inferTanhGrad(const Node &n);
TensorType inferSoftmaxGrad(const Node &n);
TensorType inferLogSoftmaxGrad(const Node &n);
TensorType inferMaxPoolGrad(const Node &n);
TensorType inferAvgPoolGrad(const Node &n);
TensorType inferBatchNormGrad(const Node &n);
TensorType inferBnMeanGrad(const Node &n);
TensorType inferBnVarGrad(const Node &n);
TensorType inferBnTrainGrad(const Node &n);
TensorType inferSoftmaxXentGrad(const Node &n);
TensorType inferL2LossGrad(const Node &n);
TensorType inferConv2dGradFilter(const Node &n);
TensorType inferConv2dGradInput(const Node &n);
TensorType inferFilterFlip(const Node &n);
TensorType inferUpdate(const Node &n);

// ShapeRulesModels.cpp: the activations and padding of imported models.
TensorType inferClip(const Node &n);
TensorType inferHardSigmoid(const Node &n);
TensorType inferHardSwish(const Node &n);
TensorType inferLeakyRelu(const Node &n);
TensorType inferElu(const Node &n);
TensorType inferSelu(const Node &n);
TensorType inferErf(const Node &n);
TensorType inferExp(const Node &n);
TensorType inferLog(const Node &n);
TensorType inferSqrt(const Node &n);
TensorType inferReciprocal(const Node &n);
TensorType inferNeg(const Node &n);
TensorType inferAbs(const Node &n);
TensorType inferClipGrad(const Node &n);
TensorType inferPad(const Node &n);
TensorType inferPadGrad(const Node &n);
TensorType inferReduceMax(const Node &n);
TensorType inferReduceMin(const Node &n);
TensorType inferArgMax(const Node &n);
TensorType inferEqualMask(const Node &n);

namespace detail {
void checkSignature(const Node &n);
}

// [op-table] The shape rules: one `infer<Enum>` per op of Ops.def (a missing one is a build
// error naming it).
TensorType inferType(const Node &n) {
  detail::checkSignature(n);
  switch (n.op) {
#define OP(Enum, Mnemonic, Operands, Attrs, Traits, Doc, Example)                                   \
  case OpKind::Enum:                                                                               \
    return infer##Enum(n);
#include "ir/Ops.def"
#undef OP
  }
  CNNC_INTERNAL("bad op kind");
}

} // namespace cnnc
