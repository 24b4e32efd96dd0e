// The ONNX operator table: one lowering per supported op_type, opsets 6 to 17, reading every
// attribute the operator defines. An attribute value cnnc cannot honour is `unsupported`
// (collected by the driver); an attribute that is never read is reported as unsupported too.
//
// Opset differences handled here: Softmax/LogSoftmax < 13 coerce the input to 2-D at `axis`
// (default 1), >= 13 work on one axis (default -1); BatchNormalization 6 has `is_test`, 7-13
// infer training from the output count, >= 14 have `training_mode`; Dropout 6 has `is_test`,
// >= 12 takes ratio and training_mode as inputs; Add/Sub/Mul/Div 6 broadcast only with
// `broadcast=1`, aligned at `axis`; Reshape 5+ takes the shape as an input; Gemm 6 has
// `broadcast`.
#include "frontend/OnnxImporter.h"

#include <fmt/format.h>

#include <cmath>

namespace cnnc::onnximp {

namespace {

std::string listStr(const std::vector<int64_t> &v) {
  return fmt::format("[{}]", fmt::join(v, ","));
}

// Pads [top, left, bottom, right] of a 2-D window op, from `pads` or `auto_pad`.
std::vector<int64_t> windowPads(NodeCtx &c, const Shape &x, const std::vector<int64_t> &k,
                                const std::vector<int64_t> &s, const std::vector<int64_t> &d) {
  std::string autoPad = c.getStr("auto_pad", "NOTSET");
  std::vector<int64_t> pads = c.getInts("pads", {0, 0, 0, 0});
  if (pads.size() != 4)
    c.unsupported(
        fmt::format("attribute 'pads' {} needs 4 values for a 2-D window", listStr(pads)));
  if (autoPad == "NOTSET")
    return pads;
  if (autoPad == "VALID")
    return {0, 0, 0, 0};
  if (autoPad != "SAME_UPPER" && autoPad != "SAME_LOWER")
    c.unsupported(fmt::format("attribute 'auto_pad' = '{}' is not supported", autoPad));
  std::vector<int64_t> p(4);
  for (int i = 0; i < 2; ++i) {
    int64_t in = x[2 + i], out = (in + s[i] - 1) / s[i];
    int64_t total = std::max<int64_t>(0, (out - 1) * s[i] + (k[i] - 1) * d[i] + 1 - in);
    int64_t small = total / 2, big = total - small;
    p[i] = autoPad == "SAME_UPPER" ? small : big;
    p[i + 2] = autoPad == "SAME_UPPER" ? big : small;
  }
  return p;
}

std::vector<int64_t> pair(NodeCtx &c, const char *name, int64_t def) {
  auto v = c.getInts(name, {def, def});
  if (v.size() != 2)
    c.unsupported(fmt::format("attribute '{}' {} needs 2 values (only 2-D windows are supported)",
                              name, listStr(v)));
  return v;
}

void require4D(NodeCtx &c, int i, const char *what) {
  if (c.typeIn(i).rank() != 4)
    c.unsupported(fmt::format("{} of rank {} ({}): only 2-D spatial {} (4-D tensors) is supported",
                              c.p.input(i), c.typeIn(i).rank(), c.typeIn(i).str(), what));
}

void lowerConv(NodeCtx &c) {
  require4D(c, 0, "convolution");
  require4D(c, 1, "convolution");
  const Shape &x = c.typeIn(0).shape, &w = c.typeIn(1).shape;
  auto ks = c.getInts("kernel_shape", {w[2], w[3]});
  if (ks != std::vector<int64_t>{w[2], w[3]})
    c.unsupported(fmt::format("attribute 'kernel_shape' {} differs from the weight's {}x{}",
                              listStr(ks), w[2], w[3]));
  auto s = pair(c, "strides", 1), d = pair(c, "dilations", 1);
  auto pads = windowPads(c, x, {w[2], w[3]}, s, d);
  std::vector<Node *> ops = {c.in(0), c.in(1)};
  if (c.hasInput(2))
    ops.push_back(c.in(2));
  c.out(0,
        c.emit(OpKind::Conv2d, "", ops,
               {{"stride", s}, {"pads", pads}, {"dilation", d}, {"groups", c.getInt("group", 1)}}));
}

// ConvTranspose is the input gradient of a convolution (seed eqs. 45-46: dX = row2im(dY F^T)),
// so it imports as conv2d_grad_input of x with the weight [C, M/group, kh, kw] (the conv's
// [M', C'/group, kh, kw] with M' = C): the output is the conv's input shape,
// s (H - 1) + output_padding + (k - 1) d + 1 - pads per axis. output_shape (or auto_pad)
// fixes the total padding instead, split as the ONNX specification says. The bias is added
// as [M, 1, 1].
void lowerConvTranspose(NodeCtx &c) {
  require4D(c, 0, "transposed convolution");
  require4D(c, 1, "transposed convolution");
  const Shape &x = c.typeIn(0).shape, &w = c.typeIn(1).shape;
  auto ks = c.getInts("kernel_shape", {w[2], w[3]});
  if (ks != std::vector<int64_t>{w[2], w[3]})
    c.unsupported(fmt::format("attribute 'kernel_shape' {} differs from the weight's {}x{}",
                              listStr(ks), w[2], w[3]));
  auto s = pair(c, "strides", 1), d = pair(c, "dilations", 1), op = pair(c, "output_padding", 0);
  const int64_t g = c.getInt("group", 1);
  std::vector<int64_t> pads = c.getInts("pads", {0, 0, 0, 0});
  if (pads.size() != 4)
    c.unsupported(fmt::format("attribute 'pads' {} needs 4 values for a 2-D window", listStr(pads)));
  const std::string autoPad = c.getStr("auto_pad", "NOTSET");
  std::vector<int64_t> outShape = c.getInts("output_shape", {});
  if (outShape.empty() && (autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER"))
    outShape = {x[2] * s[0], x[3] * s[1]};
  else if (autoPad == "VALID")
    pads = {0, 0, 0, 0};
  else if (autoPad != "NOTSET" && autoPad != "SAME_UPPER" && autoPad != "SAME_LOWER")
    c.unsupported(fmt::format("attribute 'auto_pad' = '{}' is not supported", autoPad));
  if (outShape.size() > 2) // [N, C, H, W] is allowed too
    outShape.erase(outShape.begin(), outShape.end() - 2);
  if (!outShape.empty() && outShape.size() != 2)
    c.unsupported(fmt::format("attribute 'output_shape' {} needs 2 values", listStr(outShape)));
  std::vector<int64_t> y(2);
  for (int i = 0; i < 2; ++i) {
    const int64_t full = s[i] * (x[2 + i] - 1) + op[i] + (w[2 + i] - 1) * d[i] + 1;
    if (!outShape.empty()) { // the specification's split, in floor division
      const int64_t total = full - outShape[i], half = total >= 0 ? total / 2 : -((1 - total) / 2);
      pads[i] = autoPad == "SAME_UPPER" ? half : total - half;
      pads[i + 2] = total - pads[i];
      if (pads[i] < 0)
        c.unsupported(fmt::format("output_shape {} needs negative leading padding", listStr(outShape)));
    }
    y[i] = full - pads[i] - pads[i + 2];
    pads[i + 2] = std::max<int64_t>(pads[i + 2], 0); // a negative end pad: zero rows past the
                                                     // last window (as output_padding)
  }
  for (int i = 0; i < 2; ++i)
    if (op[i] >= s[i])
      c.unsupported(fmt::format("output_padding {} must be smaller than the stride {}", listStr(op),
                                listStr(s)));
  const Shape inShape{x[0], w[1] * g, y[0], y[1]};
  Node *out = c.emit(OpKind::Conv2dGradInput, c.hasInput(2) ? "t" : "", {c.in(0), c.in(1)},
                     {{"input_shape", inShape}, {"stride", s}, {"pads", pads}, {"dilation", d}, {"groups", g}});
  if (c.hasInput(2)) {
    Node *b = c.emit(OpKind::Reshape, "b", {c.in(2)}, reshapeAttrs({inShape[1], 1, 1}));
    out = c.emit(OpKind::Add, "", {out, b});
  }
  c.out(0, out);
}

void lowerPool(NodeCtx &c, bool max) {
  require4D(c, 0, "pooling");
  auto k = c.getInts("kernel_shape");
  if (k.size() != 2)
    c.unsupported(fmt::format("attribute 'kernel_shape' {} needs 2 values", listStr(k)));
  auto s = pair(c, "strides", 1);
  auto d = max ? pair(c, "dilations", 1) : std::vector<int64_t>{1, 1};
  auto pads = windowPads(c, c.typeIn(0).shape, k, s, d);
  std::map<std::string, Attr> a = {
      {"kernel", k}, {"stride", s}, {"pads", pads}, {"ceil_mode", c.getInt("ceil_mode", 0)}};
  if (max) {
    a["dilation"] = d;
    if (c.getInt("storage_order", 0) != 0 && c.wantsOutput(1))
      c.unsupported("attribute 'storage_order' = 1 (column-major indices) is not supported");
    if (c.wantsOutput(1))
      c.unsupported("output 1 (Indices, int64) is not supported");
  } else {
    a["count_include_pad"] = c.getInt("count_include_pad", 0);
  }
  c.out(0, c.emit(max ? OpKind::MaxPool : OpKind::AvgPool, "", {c.in(0)}, a));
}

void lowerGlobalAvgPool(NodeCtx &c) {
  require4D(c, 0, "pooling");
  c.out(0, c.emit(OpKind::GlobalAvgPool, "", {c.in(0)}));
}

// A Direct op: one ONNX input per operand, in order (the shape rule checks the count).
void direct(NodeCtx &c, OpKind op) {
  std::vector<Node *> ops;
  for (int i = 0; i < c.numInputs(); ++i)
    ops.push_back(c.in(i));
  c.out(0, c.emit(op, "", ops));
}

// ---- import-time folding of elementwise arithmetic on constants ----------------------------
bool foldBinary(NodeCtx &c, char op) {
  const OnnxTensor *a = c.constIn(0), *b = c.constIn(1);
  if (!a || !b || a->dtype != b->dtype)
    return false;
  OnnxTensor r;
  r.dtype = a->dtype;
  size_t rank = std::max(a->shape.size(), b->shape.size());
  Shape sa(rank - a->shape.size(), 1), sb(rank - b->shape.size(), 1);
  sa.insert(sa.end(), a->shape.begin(), a->shape.end());
  sb.insert(sb.end(), b->shape.begin(), b->shape.end());
  for (size_t i = 0; i < rank; ++i) {
    if (sa[i] != sb[i] && sa[i] != 1 && sb[i] != 1)
      return false;
    r.shape.push_back(sa[i] == 1 ? sb[i] : sa[i]);
  }
  r.values.resize(r.numel());
  for (int64_t i = 0; i < r.numel(); ++i) {
    int64_t rem = i, ia = 0, ib = 0, stA = 1, stB = 1;
    for (int d = (int)rank - 1; d >= 0; --d) {
      int64_t idx = rem % r.shape[d];
      rem /= r.shape[d];
      ia += (sa[d] == 1 ? 0 : idx) * stA, stA *= sa[d];
      ib += (sb[d] == 1 ? 0 : idx) * stB, stB *= sb[d];
    }
    double x = a->values[ia], y = b->values[ib], z = 0;
    switch (op) {
    case '+':
      z = x + y;
      break;
    case '-':
      z = x - y;
      break;
    case '*':
      z = x * y;
      break;
    default:
      if (!isFloat(r.dtype) && y == 0)
        return false;
      z = isFloat(r.dtype) ? x / y : std::trunc(x / y);
    }
    r.values[i] = r.dtype == DType::F32 ? (double)(float)z : z;
  }
  c.outConst(0, std::move(r));
  return true;
}

void lowerBinary(NodeCtx &c, OpKind op, char sym) {
  if (c.opset() < 7) {
    c.ignore("consumed_inputs");
    bool bcast = c.getInt("broadcast", 0) != 0;
    Node *a = c.in(0), *b = c.in(1);
    if (!bcast) {
      if (a->type.shape != b->type.shape)
        c.unsupported(fmt::format("shapes {} and {} differ and 'broadcast' is not set",
                                  a->type.str(), b->type.str()));
    } else if (c.has("axis") && b->type.rank() < a->type.rank()) {
      // Opset 6 aligns b at `axis` of a, not at the trailing dimensions: append ones.
      int64_t axis = c.getInt("axis", 0);
      if (axis < 0)
        axis += a->type.rank();
      if (axis < 0 || axis + b->type.rank() > a->type.rank())
        c.unsupported(fmt::format("attribute 'axis' = {} does not fit {} into {}", axis,
                                  b->type.str(), a->type.str()));
      Shape s = b->type.shape;
      s.resize(a->type.rank() - axis, 1);
      b = c.emit(OpKind::Reshape, "b", {b}, reshapeAttrs(s));
    }
    c.getInt("axis", 0);
    c.out(0, c.emit(op, "", {a, b}));
    return;
  }
  if (foldBinary(c, sym))
    return;
  c.out(0, c.emit(op, "", {c.in(0), c.in(1)}));
}

// ---- dense ----------------------------------------------------------------------------------
void lowerGemm(NodeCtx &c) {
  double alpha = c.getFloat("alpha", 1.0), beta = c.getFloat("beta", 1.0);
  bool ta = c.getInt("transA", 0), tb = c.getInt("transB", 0);
  if (c.opset() < 7)
    c.getInt("broadcast", 0); // numpy broadcasting of C is a superset
  Node *a = c.in(0), *b = c.in(1);
  if (a->type.rank() != 2 || b->type.rank() != 2)
    c.unsupported("A and B must be 2-D");
  const int64_t n = tb ? b->type.shape[0] : b->type.shape[1];
  DType dt = a->type.dtype;
  // The common Linear layer (transB, unscaled, bias [N]) is cnnc's fc op.
  if (!ta && tb && alpha == 1.0 && beta == 1.0 && c.hasInput(2) && c.typeIn(2).shape == Shape{n}) {
    c.out(0, c.emit(OpKind::FullyConnected, "", {a, b, c.in(2)}));
    return;
  }
  Node *y =
      c.emit(OpKind::MatMul, "mm", {a, b}, {{"trans_a", (int64_t)ta}, {"trans_b", (int64_t)tb}});
  if (alpha != 1.0)
    y = c.emit(OpKind::Mul, "alpha", {y, c.scalar(alpha, dt)});
  if (c.hasInput(2) && beta != 0.0) {
    Node *cc = c.in(2);
    if (beta != 1.0)
      cc = c.emit(OpKind::Mul, "beta", {cc, c.scalar(beta, dt)});
    y = c.emit(OpKind::Add, "", {y, cc});
  }
  c.out(0, y);
}

void lowerMatMul(NodeCtx &c) {
  Node *a = c.in(0), *b = c.in(1);
  int ra = a->type.rank(), rb = b->type.rank();
  if (ra == 0 || rb == 0)
    c.unsupported("MatMul of a scalar");
  // numpy: a 1-D a is a row vector, a 1-D b a column vector; the added axis is dropped.
  Shape outShape;
  if (ra == 1)
    a = c.emit(OpKind::Reshape, "a2", {a}, reshapeAttrs({1, a->type.shape[0]}));
  if (rb == 1)
    b = c.emit(OpKind::Reshape, "b2", {b}, reshapeAttrs({b->type.shape[0], 1}));
  Node *y;
  if (a->type.rank() == 2 && b->type.rank() == 2)
    y = c.emit(OpKind::MatMul, ra == 1 || rb == 1 ? "mm" : "", {a, b});
  else
    y = c.emit(OpKind::BatchMatMul, ra == 1 || rb == 1 ? "mm" : "", {a, b});
  if (ra == 1 || rb == 1) {
    Shape s = y->type.shape;
    if (rb == 1)
      s.erase(s.end() - 1);
    if (ra == 1)
      s.erase(s.end() - (rb == 1 ? 1 : 2));
    y = c.emit(OpKind::Reshape, "", {y}, reshapeAttrs(s));
  }
  c.out(0, y);
}

// ---- shape ----------------------------------------------------------------------------------
int64_t normAxis(NodeCtx &c, int64_t axis, int64_t rank, bool allowEnd = false) {
  int64_t hi = allowEnd ? rank : rank - 1;
  if (axis < -rank || axis > hi)
    c.unsupported(fmt::format("attribute 'axis' = {} is out of range for rank {}", axis, rank));
  return axis < 0 ? axis + rank : axis;
}

void lowerFlatten(NodeCtx &c) {
  int64_t axis = normAxis(c, c.getInt("axis", 1), c.typeIn(0).rank(), true);
  c.out(0, c.emit(OpKind::Flatten, "", {c.in(0)}, {{"axis", axis}}));
}

void lowerReshape(NodeCtx &c) {
  std::vector<int64_t> spec;
  if (c.opset() < 5) {
    spec = c.getInts("shape");
  } else {
    const OnnxTensor *s = c.constIn(1);
    if (!s)
      c.unsupported("the shape input must be known at compile time (an initializer or Constant)");
    for (double v : s->values) {
      if (!(v >= -9223372036854775808.0 && v < 9223372036854775808.0)) // folded arithmetic
        c.unsupported(fmt::format("shape entry {} is not a 64-bit integer", v));
      spec.push_back((int64_t)v);
    }
  }
  // The IR's reshape has ONNX's semantics (0 copies the input's dim, or with allowzero=1 is a
  // literal 0; one -1 is inferred), so the spec goes through as written and the one shape
  // rule resolves it; a bad spec becomes an import problem that names this ONNX node.
  Node *x = c.in(0);
  std::map<std::string, Attr> attrs{{"shape", spec}};
  if (c.opset() >= 14 && c.getInt("allowzero", 0) != 0)
    attrs["allowzero"] = c.getInt("allowzero", 0);
  Node probe;
  probe.op = OpKind::Reshape, probe.name = "reshape", probe.operands = {x}, probe.attrs = attrs;
  TensorType t;
  try {
    t = inferType(probe);
  } catch (const Error &e) { // the rule's reason, without the probe's "%reshape (reshape): "
    std::string why = e.what();
    why = why.substr(why.find("): ") == std::string::npos ? 0 : why.find("): ") + 3);
    c.unsupported(fmt::format("cannot reshape {} into {}: {}", x->type.str(), listStr(spec), why));
  }
  if (const OnnxTensor *v = c.constIn(0)) { // fold
    OnnxTensor r = *v;
    r.shape = t.shape;
    c.outConst(0, r);
    return;
  }
  c.out(0, c.emit(OpKind::Reshape, "", {x}, attrs));
}

void lowerConcat(NodeCtx &c) {
  std::vector<Node *> xs;
  for (int i = 0; i < c.numInputs(); ++i)
    if (c.hasInput(i))
      xs.push_back(c.in(i));
  if (xs.empty())
    c.unsupported("no inputs");
  if (!c.has("axis")) // required in every opset; the checker refuses a Concat without it
    c.unsupported("the required attribute 'axis' is missing");
  int64_t axis = normAxis(c, c.getInt("axis", 1), xs[0]->type.rank());
  c.out(0, c.emit(OpKind::Concat, "", xs, {{"axis", axis}}));
}

void lowerIdentity(NodeCtx &c) {
  if (const OnnxTensor *v = c.constIn(0)) {
    c.outConst(0, *v);
    return;
  }
  c.out(0, c.emit(OpKind::Identity, "", {c.in(0)}));
}

void lowerConstant(NodeCtx &c) {
  OnnxTensor t;
  if (const auto *a = c.attr("value")) {
    t = onnxio::fromProto(a->t(), "attribute 'value'");
  } else if (const auto *a = c.attr("value_float")) {
    t.values = {a->f()};
  } else if (const auto *a = c.attr("value_floats")) {
    t.values.assign(a->floats().begin(), a->floats().end());
    t.shape = {(int64_t)t.values.size()};
  } else if (const auto *a = c.attr("value_int")) {
    t.dtype = DType::I64, t.values = {(double)a->i()};
  } else if (const auto *a = c.attr("value_ints")) {
    t.dtype = DType::I64;
    t.values.assign(a->ints().begin(), a->ints().end());
    t.shape = {(int64_t)t.values.size()};
  } else {
    for (const char *k : {"sparse_value", "value_string", "value_strings"})
      if (c.attr(k))
        c.unsupported(fmt::format("attribute '{}' is not supported", k));
    c.unsupported("no value attribute");
  }
  c.outConst(0, std::move(t));
}

// ---- normalisation --------------------------------------------------------------------------
void lowerSoftmax(NodeCtx &c, bool log) {
  OpKind op = log ? OpKind::LogSoftmax : OpKind::Softmax;
  Node *x = c.in(0);
  int64_t rank = x->type.rank();
  if (c.opset() >= 13) {
    int64_t axis = normAxis(c, c.getInt("axis", -1), rank);
    c.out(0, c.emit(op, "", {x}, {{"axis", axis}}));
    return;
  }
  // Before opset 13: the input is coerced to 2-D [prod(d<axis), prod(d>=axis)].
  int64_t axis = normAxis(c, c.getInt("axis", 1), rank);
  if (rank == 2 && axis == 1) {
    c.out(0, c.emit(op, "", {x}, {{"axis", int64_t(1)}}));
    return;
  }
  Node *flat = c.emit(OpKind::Flatten, "flat", {x}, {{"axis", axis}});
  Node *y = c.emit(op, "2d", {flat}, {{"axis", int64_t(1)}});
  c.out(0, c.emit(OpKind::Reshape, "", {y}, reshapeAttrs(x->type.shape)));
}

// A training import's batch norm keeps its running statistics (initializers, the params
// @infer normalises with) as the training step's state, the way PyTorch's BatchNorm2d does
// and its exporter leaves out (outputs 1 and 2 of a training-mode node are unused):
//   r <- momentum r + (1 - momentum) batch_stat,  the variance unbiased (n/(n-1), bn_unbias)
// with ONNX's `momentum` (PyTorch's 1 - momentum). The ONNX text's running_var uses the
// biased variance; PyTorch, whose checkpoints these states must match, the unbiased one.
// SGD leaves the params alone (trainable=0); the training step returns the updates.
static void updateRunningStats(NodeCtx &c, Node *x, Node *mean, Node *var, Node *bm, Node *bv,
                               double momentum) {
  for (Node *u : c.im.stateUpdates)
    if (u->operands[0] == mean || u->operands[0] == var)
      c.unsupported(fmt::format("training: running statistic %{} is shared with an earlier "
                                "BatchNormalization (it would be updated twice)",
                                u->operands[0]->name));
  mean->attrs["trainable"] = var->attrs["trainable"] = int64_t(0);
  DType dt = x->type.dtype;
  Node *keep = c.scalar(momentum, dt), *rate = c.scalar(1 - momentum, dt);
  Node *rateU = c.emit(OpKind::Mul, "rate_unbiased", {c.emit(OpKind::BnUnbias, "unbias", {x}), rate});
  Node *m = c.emit(OpKind::Add, "running_mean",
                   {c.emit(OpKind::Mul, "mean_keep", {mean, keep}), c.emit(OpKind::Mul, "mean_batch", {bm, rate})});
  Node *v = c.emit(OpKind::Add, "running_var",
                   {c.emit(OpKind::Mul, "var_keep", {var, keep}), c.emit(OpKind::Mul, "var_batch", {bv, rateU})});
  for (auto [r, value] : {std::pair{mean, m}, std::pair{var, v}}) {
    Node *u = c.im.f.add(OpKind::Update, r->name + ".next", {r, value}, {}, {}, {}, /*uniquify=*/true);
    u->comment = value->comment;
    c.im.stateUpdates.push_back(u);
  }
}

void lowerBatchNorm(NodeCtx &c) {
  double eps = c.getFloat("epsilon", 1e-5), momentum = c.getFloat("momentum", 0.9);
  bool training;
  if (c.opset() < 7) {
    c.ignore("consumed_inputs");
    training = c.getInt("is_test", 0) == 0;
  } else if (c.opset() < 14) {
    training = c.numOutputs() > 1;
  } else {
    training = c.getInt("training_mode", 0) != 0;
  }
  if (c.opset() < 9 && c.getInt("spatial", 1) != 1)
    c.unsupported("attribute 'spatial' = 0 (per-activation statistics) is not supported");
  training = training || c.im.opts.training;
  Node *x = c.in(0), *scale = c.in(1), *bias = c.in(2), *mean = c.in(3), *var = c.in(4);
  if (!training) {
    if (c.numOutputs() > 1)
      c.unsupported("outputs beyond Y in inference mode are not supported");
    c.out(0, c.emit(OpKind::BatchNorm, "", {x, scale, bias, mean, var}, {{"epsilon", eps}}));
    return;
  }
  Node *bm = c.emit(OpKind::BnMean, "bmean", {x});
  Node *bv = c.emit(OpKind::BnVar, "bvar", {x, bm});
  Node *y = c.emit(OpKind::BatchNorm, "", {x, scale, bias, bm, bv}, {{"epsilon", eps}});
  c.out(0, y);
  if (c.im.opts.training && mean->op == OpKind::Param && var->op == OpKind::Param)
    updateRunningStats(c, x, mean, var, bm, bv, momentum);
  if (c.numOutputs() > 1) {
    // running = running * momentum + batch * (1 - momentum)
    DType dt = x->type.dtype;
    auto running = [&](Node *r, Node *b, const char *sfx) {
      Node *k = c.emit(OpKind::Mul, std::string(sfx) + ".keep", {r, c.scalar(momentum, dt)});
      Node *n = c.emit(OpKind::Mul, std::string(sfx) + ".new", {b, c.scalar(1 - momentum, dt)});
      return c.emit(OpKind::Add, sfx, {k, n});
    };
    c.out(1, running(mean, bm, "rmean"));
    c.out(2, running(var, bv, "rvar"));
    c.out(3, bm);
    c.out(4, bv);
  }
}

void lowerDropout(NodeCtx &c) {
  double rate = 0.5;
  bool training = false;
  if (c.opset() < 7) {
    c.ignore("consumed_inputs");
    training = c.getInt("is_test", 0) == 0;
  }
  if (c.opset() < 12) {
    rate = c.getFloat("ratio", 0.5);
  } else {
    if (c.hasInput(1)) {
      // a constant or an initializer (PyTorch's export): its value is checked below
      const OnnxTensor *r = c.knownIn(1);
      if (r && r->values.size() == 1)
        rate = r->values[0];
      else if (c.im.opts.training)
        c.unsupported("the ratio input must be known at compile time for training");
    }
    if (c.hasInput(2)) {
      const OnnxTensor *t = c.constIn(2);
      if (!t || t->values.size() != 1)
        c.unsupported("the training_mode input must be known at compile time");
      training = t->values[0] != 0;
    }
  }
  // Opset 6's is_test=0 in a model converted for inference is the common case; cnnc decides
  // training by its own option unless the graph pins training_mode.
  if (c.opset() < 7)
    training = false;
  training = training || c.im.opts.training;
  if (!(rate >= 0 && rate < 1)) // ONNX: [0, 1); 1 would scale the kept nothing by 1/0
    c.unsupported(fmt::format("the ratio must be in [0, 1), got {}", rate));
  int64_t seed = c.getInt("seed", 0);
  if (c.wantsOutput(1))
    c.unsupported("output 1 (mask, bool) is not supported");
  if (!training) {
    c.out(0, c.emit(OpKind::Dropout, "", {c.in(0)}, {{"rate", rate}}));
    return;
  }
  c.out(0, c.emit(OpKind::Dropout, "", {c.in(0)},
                  {{"rate", rate}, {"training", int64_t(1)}, {"seed", seed}}));
}

// ---- loss -----------------------------------------------------------------------------------
void lowerSoftmaxCrossEntropy(NodeCtx &c) {
  std::string reduction = c.getStr("reduction", "mean");
  if (reduction != "mean" && reduction != "sum" && reduction != "none")
    c.unsupported(fmt::format("attribute 'reduction' = '{}' is not supported", reduction));
  Node *x = c.in(0), *labels = c.in(1);
  bool hasIgnore = c.has("ignore_index");
  int64_t ignore = c.getInt("ignore_index", 0);
  bool simple = x->type.rank() == 2 && reduction == "mean" && !hasIgnore && !c.hasInput(2);
  if (simple) {
    c.out(0, c.emit(OpKind::SoftmaxXent, "", {x, labels}));
  } else {
    std::vector<Node *> ops = {x, labels};
    if (c.hasInput(2))
      ops.push_back(c.in(2));
    std::map<std::string, Attr> a = {{"reduction", reduction}};
    if (hasIgnore)
      a["ignore_index"] = std::vector<int64_t>{ignore};
    c.out(0, c.emit(OpKind::SoftmaxXentNd, "", ops, a));
  }
  if (c.wantsOutput(1))
    c.out(1, c.emit(OpKind::LogSoftmax, "logp", {x}, {{"axis", int64_t(1)}}));
}

} // namespace

const std::map<std::string, LowerFn> &loweringTable() {
  static const std::map<std::string, LowerFn> t = [] {
    std::map<std::string, LowerFn> t = {
      {"Conv", lowerConv},
      {"ConvTranspose", lowerConvTranspose},
      {"MaxPool", [](NodeCtx &c) { lowerPool(c, true); }},
      {"AveragePool", [](NodeCtx &c) { lowerPool(c, false); }},
      {"GlobalAveragePool", lowerGlobalAvgPool},
      {"Gemm", lowerGemm},
      {"MatMul", lowerMatMul},
      {"Add", [](NodeCtx &c) { lowerBinary(c, OpKind::Add, '+'); }},
      {"Sub", [](NodeCtx &c) { lowerBinary(c, OpKind::Sub, '-'); }},
      {"Mul", [](NodeCtx &c) { lowerBinary(c, OpKind::Mul, '*'); }},
      {"Div", [](NodeCtx &c) { lowerBinary(c, OpKind::Div, '/'); }},
      {"Flatten", lowerFlatten},
      {"Reshape", lowerReshape},
      {"Softmax", [](NodeCtx &c) { lowerSoftmax(c, false); }},
      {"LogSoftmax", [](NodeCtx &c) { lowerSoftmax(c, true); }},
      {"BatchNormalization", lowerBatchNorm},
      {"Dropout", lowerDropout},
      {"Concat", lowerConcat},
      {"Identity", lowerIdentity},
      {"Constant", lowerConstant},
      {"SoftmaxCrossEntropyLoss", lowerSoftmaxCrossEntropy},
    };
    addModelLowerings(t);
    for (const OpInfo &op : allOps()) // the Direct ops of onnxForm
      if (OnnxForm form = onnxForm(op.kind); form.kind == OnnxForm::Direct)
        t[form.opType] = [k = op.kind](NodeCtx &c) {
          c.ignore("consumed_inputs"); // opset 6's, on the elementwise ops
          direct(c, k);
        };
    return t;
  }();
  return t;
}

} // namespace cnnc::onnximp
