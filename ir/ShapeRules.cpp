// Shape rules: one `infer<Op>` per op of Ops.def, deriving the result type from the operands
// and attributes, and rejecting every inconsistency with a message that names the node.
// Output sizes follow ONNX/PyTorch (floor division; ceil_mode's last window must start inside
// the input or its leading padding).
#include "ir/IR.h"

#include <fmt/format.h>

#include <numeric>

namespace cnnc {

namespace {

[[noreturn]] void fail(const Node &n, const std::string &msg) {
  throw Error(n.loc, fmt::format("%{} ({}): {}", n.name, n.info().mnemonic, msg));
}

const TensorType &in(const Node &n, size_t i) { return n.operands.at(i)->type; }

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
  int64_t span = dilation * (k - 1) + 1;
  int64_t avail = size + padBegin + padEnd;
  if (span > avail)
    fail(n, fmt::format("window of {} {} (kernel {}, dilation {}) is larger than its padded input "
                        "{} ({} + padding {}+{})",
                        span, axis, k, dilation, avail, size, padBegin, padEnd));
  int64_t out = (avail - span) / stride + 1;
  if (ceil) {
    out = (avail - span + stride - 1) / stride + 1;
    if ((out - 1) * stride >= size + padBegin)
      --out;
  }
  return out;
}

int64_t normAxis(const Node &n, int64_t axis, int rank, bool allowEnd = false) {
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

} // namespace

// ---------------------------------------------------------------------------- rules --
static TensorType inferSource(const Node &n) { return n.type; }
static TensorType inferInput(const Node &n) { return inferSource(n); }
static TensorType inferParam(const Node &n) { return inferSource(n); }
static TensorType inferConstant(const Node &n) {
  auto v = n.getFloats("value");
  if ((int64_t)v.size() != 1 && (int64_t)v.size() != n.type.numel())
    fail(n, fmt::format("'value' has {} entries; a {} constant needs 1 or {}", v.size(),
                        n.type.str(), n.type.numel()));
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
  if (w[1] * g != x[1])
    fail(n, fmt::format("the weight {} expects {} input channels (x groups {}), the input has {}",
                        shapeStr(w), w[1] * g, g, x[1]));
  if (n.operands.size() == 3 && in(n, 2).shape != Shape{w[0]})
    fail(n, fmt::format("the bias must be [{}], got {}", w[0], shapeStr(in(n, 2).shape)));
  auto s = pairAttr(n, "stride", 1), d = pairAttr(n, "dilation", 1);
  auto p = padsAttr(n);
  return {in(n, 0).dtype,
          {x[0], w[0], windowOut(n, "rows", x[2], p[0], p[2], w[2], s[0], d[0], false),
           windowOut(n, "columns", x[3], p[1], p[3], w[3], s[1], d[1], false)}};
}

static TensorType inferMaxPool(const Node &n) { return pool(n, true); }
static TensorType inferAvgPool(const Node &n) { return pool(n, false); }
static TensorType inferGlobalAvgPool(const Node &n) {
  requireFloat(n);
  if (in(n, 0).rank() < 3)
    fail(n, fmt::format("the input must be at least 3-D [N,C,spatial...], got {}", in(n, 0).str()));
  TensorType t = in(n, 0);
  for (size_t i = 2; i < t.shape.size(); ++i)
    t.shape[i] = 1;
  return t;
}

static TensorType inferRelu(const Node &n) { requireFloat(n); return same(n); }
static TensorType inferSigmoid(const Node &n) { requireFloat(n); return same(n); }
static TensorType inferTanh(const Node &n) { requireFloat(n); return same(n); }
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
  requireRank(n, 0, 2, "a");
  requireRank(n, 1, 2, "b");
  Shape a = in(n, 0).shape, b = in(n, 1).shape;
  if (n.getInt("trans_a"))
    std::swap(a[0], a[1]);
  if (n.getInt("trans_b"))
    std::swap(b[0], b[1]);
  if (a[1] != b[0])
    fail(n, fmt::format("inner dimensions differ: {} x {} (after transposes)", shapeStr(a), shapeStr(b)));
  return {in(n, 0).dtype, {a[0], b[1]}};
}

static TensorType inferAdd(const Node &n) { return broadcast(n); }
static TensorType inferSub(const Node &n) { return broadcast(n); }
static TensorType inferMul(const Node &n) { return broadcast(n); }
static TensorType inferDiv(const Node &n) { return broadcast(n); }

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
    t.shape[axis] += s[axis];
  }
  return t;
}

static TensorType inferFlatten(const Node &n) {
  const TensorType &x = in(n, 0);
  int64_t axis = normAxis(n, n.getInt("axis"), x.rank(), true);
  int64_t a = 1, b = 1;
  for (int i = 0; i < x.rank(); ++i)
    (i < axis ? a : b) *= x.shape[i];
  return {x.dtype, {a, b}};
}

static TensorType inferReshape(const Node &n) {
  const TensorType &x = in(n, 0);
  Shape s = n.getInts("shape");
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == 0) {
      if (i >= x.shape.size())
        fail(n, fmt::format("shape entry {} is 0 (copy) but the input has only {} dims", i, x.rank()));
      s[i] = x.shape[i];
    }
    if (s[i] == -1) {
      if (infer >= 0)
        fail(n, "'shape' may hold at most one -1");
      infer = (int)i;
    } else if (s[i] < 0) {
      fail(n, fmt::format("bad 'shape' entry {}", s[i]));
    } else {
      known *= s[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || x.numel() % known)
      fail(n, fmt::format("cannot reshape {} into {}", x.str(), attrStr(n.getInts("shape"))));
    s[infer] = x.numel() / known;
  }
  TensorType t{x.dtype, s};
  if (t.numel() != x.numel())
    fail(n, fmt::format("cannot reshape {} ({} elements) into {} ({} elements)", x.str(), x.numel(),
                        shapeStr(s), t.numel()));
  return t;
}

static TensorType inferSoftmax(const Node &n) {
  requireFloat(n);
  normAxis(n, n.getInt("axis"), in(n, 0).rank());
  return same(n);
}
static TensorType inferLogSoftmax(const Node &n) { return inferSoftmax(n); }

static void requirePerChannel(const Node &n, size_t from) {
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
static TensorType inferBnMean(const Node &n) {
  requireFloat(n);
  if (in(n, 0).rank() < 2)
    fail(n, fmt::format("the input must be at least 2-D [N,C,...], got {}", in(n, 0).str()));
  return {in(n, 0).dtype, {in(n, 0).shape[1]}};
}
static TensorType inferBnVar(const Node &n) {
  TensorType t = inferBnMean(n);
  requirePerChannel(n, 1);
  return t;
}

static TensorType inferDropout(const Node &n) {
  requireFloat(n);
  double r = n.getFloat("rate");
  if (!(r >= 0 && r < 1))
    fail(n, fmt::format("'rate' must be in [0, 1), got {}", r));
  return same(n);
}

static TensorType inferSoftmaxXent(const Node &n) {
  const TensorType &x = in(n, 0), &l = in(n, 1);
  if (!isFloat(x.dtype) || x.rank() != 2)
    fail(n, fmt::format("the logits must be a 2-D float tensor [N,classes], got {}", x.str()));
  if (l.dtype != DType::I32 || l.shape != Shape{x.shape[0]})
    fail(n, fmt::format("the labels must be i32[{}] (one class index per example), got {}",
                        x.shape[0], l.str()));
  return {x.dtype, {}};
}

static TensorType inferL2Loss(const Node &n) {
  requireFloat(n);
  requireSameDType(n);
  if (in(n, 0).shape != in(n, 1).shape)
    fail(n, fmt::format("prediction {} and target {} differ in shape", in(n, 0).str(), in(n, 1).str()));
  if (in(n, 0).rank() < 1)
    fail(n, "the prediction needs a batch dimension");
  return {in(n, 0).dtype, {}};
}

namespace detail {
void checkSignature(const Node &n);
}

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
