// The `.cnn` layers with arguments, each lowered to its IR nodes (docs/cnn-format.md lists the
// defaults). Checks that can name a better token than the layer keyword are done here, before
// the IR's shape rule would catch the same mistake: a window larger than its padded input
// points at the kernel, a groups mismatch at `groups`, a shape mismatch at the input name.
#include "frontend/CnnLower.h"

#include <algorithm>

namespace cnnc::cnn {

// [op-table] The per-op .cnn table: one entry per op of ir/Ops.def. The switch has no default, and
// -Werror=switch makes a missing op a build error that names it.
CnnForm cnnForm(OpKind k) {
  auto simple = [](const char *kw) { return CnnForm{CnnForm::Simple, kw}; };
  auto layer = [](const char *kw) { return CnnForm{CnnForm::Layer, kw}; };
  const CnnForm none{CnnForm::None};
  switch (k) {
  case OpKind::Relu:
    return simple("relu");
  case OpKind::Sigmoid:
    return simple("sigmoid");
  case OpKind::Tanh:
    return simple("tanh");
  case OpKind::Softplus:
    return simple("softplus");
  case OpKind::Softmax:
    return simple("softmax");
  case OpKind::LogSoftmax:
    return simple("logsoftmax");
  case OpKind::Flatten:
    return simple("flatten");
  case OpKind::GlobalAvgPool:
    return simple("gap");
  case OpKind::HardSwish:
    return simple("hardswish");
  case OpKind::HardSigmoid:
    return simple("hardsigmoid"); // ONNX's default slope 0.2; PyTorch's is 1/6 (import it)
  case OpKind::Elu:
    return simple("elu"); // alpha 1, PyTorch's nn.ELU()
  case OpKind::Selu:
    return simple("selu");
  case OpKind::Clip:
    return layer("relu6");
  case OpKind::LeakyRelu:
    return layer("leakyrelu");
  case OpKind::Pad:
    return layer("pad");
  case OpKind::Conv2dGradInput: // also the backward op of conv
    return layer("deconv");
  case OpKind::Input:
    return layer("input");
  case OpKind::Param: // the layers' weights
  case OpKind::Conv2d:
    return layer("conv");
  case OpKind::MaxPool:
  case OpKind::AvgPool:
    return layer("pool");
  case OpKind::FullyConnected:
    return layer("fc");
  case OpKind::BatchNorm:
  case OpKind::BnMean: // training mode
  case OpKind::BnVar:
  case OpKind::BnUnbias:
    return layer("bn");
  case OpKind::Dropout:
    return layer("dropout");
  case OpKind::Add:
    return layer("add");
  case OpKind::Concat:
    return layer("concat");
  case OpKind::SoftmaxXent:
  case OpKind::L2Loss:
    return layer("loss");
  case OpKind::Constant:
  case OpKind::MatMul:
  case OpKind::BatchMatMul:
  case OpKind::Sub:
  case OpKind::Mul:
  case OpKind::Div:
  case OpKind::Reshape:
  case OpKind::Identity:
  case OpKind::SoftmaxXentNd:
  case OpKind::CountCorrect:
  case OpKind::Transpose:
  case OpKind::Expand:
  case OpKind::ReduceSum:
  case OpKind::ReduceMax:
  case OpKind::ReduceMin:
  case OpKind::ArgMax:
  case OpKind::EqualMask:
  case OpKind::Slice:
  case OpKind::Im2Row:
  case OpKind::Row2Im:
  case OpKind::ReluGrad:
  case OpKind::SigmoidGrad:
  case OpKind::TanhGrad:
  case OpKind::MaxPoolGrad:
  case OpKind::AvgPoolGrad:
  case OpKind::SoftmaxGrad:
  case OpKind::LogSoftmaxGrad:
  case OpKind::BatchNormGrad:
  case OpKind::BnMeanGrad:
  case OpKind::BnVarGrad:
  case OpKind::BnTrainGrad:
  case OpKind::SoftmaxXentGrad:
  case OpKind::L2LossGrad:
  case OpKind::Conv2dGradFilter:
  case OpKind::FilterFlip:
  case OpKind::Update:
  case OpKind::ClipGrad:
  case OpKind::PadGrad:
  case OpKind::PRelu: // a learned slope: import it from ONNX
  case OpKind::Erf:
  case OpKind::Exp:
  case OpKind::Log:
  case OpKind::Sqrt:
  case OpKind::Reciprocal:
  case OpKind::Neg:
  case OpKind::Abs:
  case OpKind::Pow:
  case OpKind::Max:
  case OpKind::Min:
    return none; // no .cnn syntax
  }
  CNNC_INTERNAL("bad op kind");
}

std::vector<std::string> simpleLayerKeywords() {
  std::vector<std::string> out;
  for (const OpInfo &op : allOps())
    if (CnnForm f = cnnForm(op.kind); f.kind == CnnForm::Simple)
      out.push_back(f.keyword);
  return out;
}

static std::string dims2(int64_t h, int64_t w) {
  return std::to_string(h) + "x" + std::to_string(w);
}

// The seed's eq. (15) window, dilated to extent (k-1)*d+1, must fit its padded input.
static void windowFits(const Diag &d, const Stmt &s, const Token &kTok, const Node *x,
                       std::array<int64_t, 2> ext, const std::array<int64_t, 4> &p) {
  int64_t ph = x->type.shape[2] + p[0] + p[2], pw = x->type.shape[3] + p[1] + p[3];
  if (ext[0] > ph || ext[1] > pw)
    d.error(s, kTok,
            "the " + dims2(ext[0], ext[1]) + " window is larger than its padded input " +
                dims2(ph, pw) + " ('" + x->name + "' is " + x->type.str() + ")");
}

static std::map<std::string, Attr> windowAttrs(std::array<int64_t, 2> stride,
                                               const std::array<int64_t, 4> &pads) {
  std::map<std::string, Attr> attrs;
  if (stride != std::array<int64_t, 2>{1, 1})
    attrs["stride"] = std::vector<int64_t>{stride[0], stride[1]};
  if (pads != std::array<int64_t, 4>{0, 0, 0, 0})
    attrs["pads"] = std::vector<int64_t>(pads.begin(), pads.end());
  return attrs;
}

Node *Lowerer::conv(const Stmt &s, Node *x) {
  Args a(s, d_);
  const Token &cTok = a.take("its output channels and kernel, e.g. 'conv 64 3x3'");
  int64_t cout = a.positive(cTok, "channel count");
  const Token &kTok = a.take("a kernel size, e.g. 'conv 64 3x3'");
  auto k = a.pair(kTok, "kernel size", false);
  std::array<int64_t, 2> stride{1, 1}, dil{1, 1};
  PadSpec pad;
  int64_t groups = 1;
  const Token *groupsTok = &s.kind;
  bool bias = true, widen = false;
  std::string init = "gauss(0.01)"; // MatConvNet's 0.01*randn (seed Exercise 6)
  while (!a.done()) {
    const Token &o = a.option();
    if (o.text == "stride")
      stride = a.pair(a.value(o), "stride", true);
    else if (o.text == "pad")
      pad = a.pads(a.value(o));
    else if (o.text == "dilation")
      dil = a.pair(a.value(o), "dilation", true);
    else if (o.text == "groups")
      groupsTok = &a.value(o), groups = a.positive(*groupsTok, "groups");
    else if (o.text == "init")
      init = a.initScheme(a.value(o));
    else if (o.text == "nobias")
      bias = false;
    else if (o.text == "widen")
      widen = true;
    else
      a.unknownOption(o, {"stride", "pad", "dilation", "groups", "init", "nobias", "widen"});
  }
  requireImage(s, x);
  if (widen)
    cout = widened(cout);
  int64_t cin = x->type.shape[1];
  if (cin % groups || cout % groups)
    d_.error(s, *groupsTok,
             "groups=" + std::to_string(groups) + " must divide both the input channels (" +
                 std::to_string(cin) + ") and the output channels (" + std::to_string(cout) +
                 (widen ? ", after widening" : "") + ")");
  std::array<int64_t, 2> ext{(k[0] - 1) * dil[0] + 1, (k[1] - 1) * dil[1] + 1};
  std::array<int64_t, 4> pads = pad.same ? samePads(ext[0], ext[1]) : pad.pads;
  windowFits(d_, s, kTok, x, ext, pads);

  std::vector<Node *> ops{x, param(s, s.nodeName + ".w", {cout, cin / groups, k[0], k[1]}, init)};
  if (bias)
    ops.push_back(param(s, s.nodeName + ".b", {cout}, "zeros"));
  auto attrs = windowAttrs(stride, pads);
  if (dil != std::array<int64_t, 2>{1, 1})
    attrs["dilation"] = std::vector<int64_t>{dil[0], dil[1]};
  if (groups != 1)
    attrs["groups"] = groups;
  return make(s, OpKind::Conv2d, s.nodeName, ops, attrs);
}

// deconv C KxK: the transposed convolution (PyTorch's ConvTranspose2d), i.e. the input
// gradient of a conv (seed eqs. 45-46) applied as a forward op, conv2d_grad_input, whose
// output is the conv's input: s (H - 1) + outpad + (K - 1) + 1 - pads per axis. The weight
// is [Cin, C/groups, Kh, Kw] (the conv's layout with its roles swapped); the bias [C] is
// added reshaped to [C, 1, 1].
Node *Lowerer::deconv(const Stmt &s, Node *x) {
  Args a(s, d_);
  const Token &cTok = a.take("its output channels and kernel, e.g. 'deconv 64 2x2 stride 2'");
  int64_t cout = a.positive(cTok, "channel count");
  const Token &kTok = a.take("a kernel size, e.g. 'deconv 64 2x2 stride 2'");
  auto k = a.pair(kTok, "kernel size", false);
  std::array<int64_t, 2> stride{1, 1};
  PadSpec pad;
  int64_t groups = 1, outpad = 0;
  const Token *groupsTok = &s.kind, *outpadTok = nullptr;
  bool bias = true;
  std::string init = "gauss(0.01)";
  while (!a.done()) {
    const Token &o = a.option();
    if (o.text == "stride")
      stride = a.pair(a.value(o), "stride", true);
    else if (o.text == "pad") {
      const Token &v = a.value(o);
      pad = a.pads(v);
      if (pad.same)
        d_.error(s, v, "'pad same' is a conv's rule; give deconv's pads as numbers");
    } else if (o.text == "outpad") {
      outpadTok = &a.value(o);
      double v = a.number(*outpadTok, "outpad");
      if (v < 0 || v != (double)(int64_t)v)
        d_.error(s, *outpadTok, "outpad must be a non-negative integer, got " + outpadTok->text);
      outpad = (int64_t)v;
    } else if (o.text == "groups")
      groupsTok = &a.value(o), groups = a.positive(*groupsTok, "groups");
    else if (o.text == "init")
      init = a.initScheme(a.value(o));
    else if (o.text == "nobias")
      bias = false;
    else
      a.unknownOption(o, {"stride", "pad", "outpad", "groups", "init", "nobias"});
  }
  requireImage(s, x);
  const int64_t cin = x->type.shape[1];
  if (cin % groups || cout % groups)
    d_.error(s, *groupsTok,
             "groups=" + std::to_string(groups) + " must divide both the input channels (" +
                 std::to_string(cin) + ") and the output channels (" + std::to_string(cout) + ")");
  if (outpadTok && outpad >= std::min(stride[0], stride[1]))
    d_.error(s, *outpadTok, "outpad must be smaller than the stride");
  const std::array<int64_t, 4> &p = pad.pads;
  std::array<int64_t, 2> out{};
  for (int i = 0; i < 2; ++i) {
    out[i] = stride[i] * (x->type.shape[2 + i] - 1) + outpad + k[i] - p[i] - p[i + 2];
    if (out[i] < 1)
      d_.error(s, kTok, "the pads leave no output (" + std::to_string(out[i]) + " " +
                            (i ? "columns" : "rows") + ")");
  }
  Node *w = param(s, s.nodeName + ".w", {cin, cout / groups, k[0], k[1]}, init);
  auto attrs = windowAttrs(stride, p);
  attrs["input_shape"] = Shape{x->type.shape[0], cout, out[0], out[1]};
  if (groups != 1)
    attrs["groups"] = groups;
  if (!bias)
    return make(s, OpKind::Conv2dGradInput, s.nodeName, {x, w}, attrs);
  Node *t = make(s, OpKind::Conv2dGradInput, s.nodeName + ".t", {x, w}, attrs);
  Node *b = param(s, s.nodeName + ".b", {cout}, "zeros");
  Node *b3 = make(s, OpKind::Reshape, s.nodeName + ".b3", {b}, reshapeAttrs({cout, 1, 1}));
  return make(s, OpKind::Add, s.nodeName, {t, b3});
}

// upsample K (or KhxKw): nearest-neighbour upsampling by integer factors, each pixel repeated
// Kh x Kw times (PyTorch's nn.Upsample(scale_factor=K), ONNX Resize nearest/asymmetric):
// reshape [N,C,H,1,W,1] -> expand [N,C,H,Kh,W,Kw] -> reshape [N,C,H*Kh,W*Kw]. Its gradient
// sums each block (expand's adjoint).
Node *Lowerer::upsample(const Stmt &s, Node *x) {
  Args a(s, d_);
  auto k = a.pair(a.take("a factor, e.g. 'upsample 2'"), "factor", true);
  if (!a.done())
    a.unknownOption(a.option(), {});
  requireImage(s, x);
  const Shape &xs = x->type.shape;
  Node *r = make(s, OpKind::Reshape, s.nodeName + ".r6", {x}, reshapeAttrs({xs[0], xs[1], xs[2], 1, xs[3], 1}));
  Node *e = make(s, OpKind::Expand, s.nodeName + ".rep", {r},
                 {{"shape", Shape{xs[0], xs[1], xs[2], k[0], xs[3], k[1]}}});
  return make(s, OpKind::Reshape, s.nodeName, {e}, reshapeAttrs({xs[0], xs[1], xs[2] * k[0], xs[3] * k[1]}));
}

Node *Lowerer::pool(const Stmt &s, Node *x) {
  Args a(s, d_);
  const Token &tTok = a.take("a type and a window, e.g. 'pool max 2x2'");
  if (tTok.text != "max" && tTok.text != "avg")
    d_.error(s, tTok, "bad pooling type '" + tTok.text + "': expected 'max' or 'avg'");
  bool isMax = tTok.text == "max";
  const Token &kTok = a.take("a window size, e.g. 'pool max 2x2'");
  auto k = a.pair(kTok, "window size", false);
  std::array<int64_t, 2> stride = k; // the seed's non-overlapping default (section 7)
  PadSpec pad;
  bool ceil = false, countPad = false;
  while (!a.done()) {
    const Token &o = a.option();
    if (o.text == "stride")
      stride = a.pair(a.value(o), "stride", true);
    else if (o.text == "pad")
      pad = a.pads(a.value(o));
    else if (o.text == "ceil")
      ceil = true;
    else if (o.text == "countpad" && !isMax)
      countPad = true;
    else if (isMax)
      a.unknownOption(o, {"stride", "pad", "ceil"});
    else
      a.unknownOption(o, {"stride", "pad", "ceil", "countpad"});
  }
  requireImage(s, x);
  std::array<int64_t, 4> pads = pad.same ? samePads(k[0], k[1]) : pad.pads;
  windowFits(d_, s, kTok, x, k, pads);
  auto attrs = windowAttrs(stride, pads);
  attrs["kernel"] = std::vector<int64_t>{k[0], k[1]};
  if (ceil)
    attrs["ceil_mode"] = int64_t(1);
  if (countPad)
    attrs["count_include_pad"] = int64_t(1);
  return make(s, isMax ? OpKind::MaxPool : OpKind::AvgPool, s.nodeName, {x}, attrs);
}

Node *Lowerer::fc(const Stmt &s, Node *x) {
  Args a(s, d_);
  int64_t m = a.positive(a.take("its output size, e.g. 'fc 4096'"), "output size");
  bool bias = true, widen = false;
  std::string init = "gauss(0.01)";
  while (!a.done()) {
    const Token &o = a.option();
    if (o.text == "init")
      init = a.initScheme(a.value(o));
    else if (o.text == "nobias")
      bias = false;
    else if (o.text == "widen")
      widen = true;
    else
      a.unknownOption(o, {"init", "nobias", "widen"});
  }
  if (x->type.rank() < 2)
    d_.error(s, inputToken(s),
             "'fc' needs an input [N,K] or [N,C,H,W], but '" + x->name + "' is " + x->type.str());
  if (widen)
    m = widened(m);
  // The seed's FC as a convolution covering its whole input (section 6.8) is, in row-major
  // N×C×H×W, exactly flatten + matrix product; the weight is [M, C*H*W].
  Node *flat = flattened(s, x);
  std::vector<Node *> ops{flat, param(s, s.nodeName + ".w", {m, flat->type.shape[1]}, init)};
  if (bias)
    ops.push_back(param(s, s.nodeName + ".b", {m}, "zeros"));
  return make(s, OpKind::FullyConnected, s.nodeName, ops);
}

Node *Lowerer::bn(const Stmt &s, Node *x) {
  Args a(s, d_);
  double eps = 1e-5;
  while (!a.done()) {
    const Token &o = a.option();
    if (o.text != "eps")
      a.unknownOption(o, {"eps"});
    const Token &v = a.value(o);
    eps = a.number(v, "eps");
    if (eps <= 0)
      d_.error(s, v, "eps must be positive, got " + v.text);
  }
  if (x->type.rank() < 2)
    d_.error(s, inputToken(s),
             "'bn' needs an input [N,C,...], but '" + x->name + "' is " + x->type.str());
  Shape c{x->type.shape[1]};
  const std::string &n = s.nodeName;
  Node *scale = param(s, n + ".scale", c, "ones"), *bias = param(s, n + ".bias", c, "zeros");
  // The running statistics exist in both modes so that both graphs have the same parameters;
  // in training they are unused by the graph (the trainer updates them).
  Node *mean = param(s, n + ".mean", c, "zeros"), *var = param(s, n + ".var", c, "ones");
  // Running statistics are state, not weights: SGD leaves them to the training step's
  // moving average (docs/training.md).
  mean->attrs["trainable"] = var->attrs["trainable"] = int64_t(0);
  if (opts_.training) {
    mean = make(s, OpKind::BnMean, n + ".bmean", {x});
    var = make(s, OpKind::BnVar, n + ".bvar", {x, mean});
  }
  std::map<std::string, Attr> attrs;
  if (eps != 1e-5)
    attrs["epsilon"] = eps;
  return make(s, OpKind::BatchNorm, n, {x, scale, bias, mean, var}, attrs);
}

// FNV-1a of the layer name, mixed with the model seed (splitmix64's finaliser): a dropout
// mask's seed is stable across edits elsewhere in the file, and seed 0 keeps the plain hash.
static int64_t stableSeed(const std::string &name, uint64_t modelSeed) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : name)
    h = (h ^ c) * 1099511628211ull;
  if (modelSeed) {
    uint64_t z = modelSeed + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    h ^= z ^ (z >> 31);
  }
  return (int64_t)(h & 0x7fffffff);
}

Node *Lowerer::dropout(const Stmt &s, Node *x) {
  Args a(s, d_);
  double rate = 0.5;
  if (!a.done()) {
    const Token &r = a.take("");
    rate = a.number(r, "dropout rate");
    if (!(rate >= 0 && rate < 1))
      d_.error(s, r, "the dropout rate must be in [0, 1), got " + r.text);
  }
  if (!a.done())
    a.unknownOption(a.option(), {});
  std::map<std::string, Attr> attrs{{"rate", rate}};
  if (opts_.training) {
    attrs["training"] = int64_t(1);
    attrs["seed"] = stableSeed(s.nodeName, opts_.seed);
  }
  return make(s, OpKind::Dropout, s.nodeName, {x}, attrs);
}

// relu6: clip to [0, 6] (MobileNet v2); leakyrelu [alpha]: slope alpha below 0 (0.01).
Node *Lowerer::activation(const Stmt &s, Node *x) {
  Args a(s, d_);
  std::map<std::string, Attr> attrs;
  OpKind op = OpKind::Clip;
  if (s.kind.text == "relu6") {
    attrs = {{"min", 0.0}, {"max", 6.0}};
  } else {
    op = OpKind::LeakyRelu;
    if (!a.done()) {
      const Token &t = a.take("");
      attrs["alpha"] = a.number(t, "leaky slope");
    }
  }
  if (!a.done())
    a.unknownOption(a.option(), {});
  return make(s, op, s.nodeName, {x}, attrs);
}

// pad P | V,H | T,L,B,R [mode constant|reflect|edge] [value V]: pads rows and columns of an
// image (the seed's section 6.1 padding as a layer of its own).
Node *Lowerer::pad(const Stmt &s, Node *x) {
  Args a(s, d_);
  const Token &pTok = a.take("the padding, e.g. 'pad 1' or 'pad 1,2' or 'pad 0,0,1,1'");
  PadSpec p = a.pads(pTok);
  if (p.same)
    d_.error(s, pTok, "'pad same' needs a window: give the padding as P, V,H or T,L,B,R");
  std::string mode = "constant";
  double value = 0;
  while (!a.done()) {
    const Token &o = a.option();
    if (o.text == "mode") {
      const Token &m = a.value(o);
      if (m.text != "constant" && m.text != "reflect" && m.text != "edge")
        d_.error(s, m, "bad pad mode '" + m.text + "': expected 'constant', 'reflect' or 'edge'");
      mode = m.text;
    } else if (o.text == "value") {
      value = a.number(a.value(o), "pad value");
    } else {
      a.unknownOption(o, {"mode", "value"});
    }
  }
  requireImage(s, x);
  const auto &q = p.pads;
  if (mode == "reflect" &&
      (std::max(q[0], q[2]) >= x->type.shape[2] || std::max(q[1], q[3]) >= x->type.shape[3]))
    d_.error(s, pTok, "reflect padding must be smaller than the image ('" + x->name + "' is " +
                          x->type.str() + ")");
  std::map<std::string, Attr> attrs{
      {"pads", std::vector<int64_t>{0, 0, q[0], q[1], 0, 0, q[2], q[3]}}};
  if (mode != "constant")
    attrs["mode"] = mode;
  if (value != 0)
    attrs["value"] = value;
  return make(s, OpKind::Pad, s.nodeName, {x}, attrs);
}

Node *Lowerer::loss(const Stmt &s, Node *x) {
  Args a(s, d_);
  const Token &t = a.take("a type: 'loss softmax' or 'loss l2'");
  if (t.text != "softmax" && t.text != "l2")
    d_.error(s, t, "unknown loss '" + t.text + "': expected 'softmax' or 'l2'");
  if (!a.done())
    a.unknownOption(a.option(), {});
  lossStmt_ = &s;
  if (t.text == "softmax") {
    Node *label = opts_.training ? source(s, OpKind::Input, names_.fresh("label", false),
                                          {DType::I32, {opts_.batch}})
                                 : nullptr;
    // Class scores may come as [N,K,1,1] from a 1x1 convolution (MatConvNet style).
    Node *logits = flattened(s, x);
    if (!label)
      return make(s, OpKind::Softmax, s.nodeName, {logits});
    return lossNode_ = make(s, OpKind::SoftmaxXent, s.nodeName, {logits, label});
  }
  if (!opts_.training)
    return x; // the prediction is the output
  Node *target = source(s, OpKind::Input, names_.fresh("target", false), x->type);
  return lossNode_ = make(s, OpKind::L2Loss, s.nodeName, {x, target});
}

Node *Lowerer::merge(const Stmt &s, const std::vector<Node *> &xs) {
  const std::string &k = s.kind.text;
  bool isAdd = k == "add";
  if (!s.hasInputs || xs.size() < 2 || (isAdd && xs.size() != 2))
    d_.error(s, s.hasInputs ? s.arrow : s.kind,
             isAdd ? "'add' takes two inputs: 'add < A B'"
                   : "'concat' takes two or more inputs: 'concat < A B ...'");
  Args a(s, d_);
  if (!a.done())
    a.unknownOption(a.option(), {});
  // Residual sums must match exactly (no broadcasting: a mismatch is a mistake in a .cnn);
  // concatenation may differ only in channels.
  const Shape &first = xs[0]->type.shape;
  for (size_t i = 1; i < xs.size(); ++i) {
    Shape other = xs[i]->type.shape, ref = first;
    if (!isAdd && other.size() == ref.size() && ref.size() >= 2)
      other[1] = ref[1];
    if (other != ref || ref.size() < 2)
      d_.error(s, s.inputs[i],
               "'" + k + "' inputs differ in " + (isAdd ? "shape" : "shape outside the channels") +
                   ": '" + xs[0]->name + "' is " + xs[0]->type.str() + " but '" + xs[i]->name +
                   "' is " + xs[i]->type.str());
  }
  return make(s, isAdd ? OpKind::Add : OpKind::Concat, s.nodeName, xs);
}

} // namespace cnnc::cnn
