// Pass 2 driver: statements in order, inputs resolved by name, nodes made and shape-checked.
// The per-layer lowerings are in CnnLayers.cpp.
#include "frontend/CnnLower.h"

#include <algorithm>
#include <cmath>

namespace cnnc::cnn {

// Tensors beyond 2^40 elements (4 TiB of f32) are surely a typo; refusing them early also
// keeps every later numel/bytes product far from int64 overflow.
static constexpr double kMaxElements = 1099511627776.0;

static bool tooLarge(const Shape &s) {
  double n = 1;
  for (int64_t d : s)
    n *= (double)d;
  return n > kMaxElements;
}

// The layers with arguments (CnnLayers.cpp) and the merges; the parameterless one-input
// layers come from the per-op table (cnnForm).
static const std::vector<std::string> kArgLayers = {"conv", "pool", "fc", "bn", "dropout", "loss",
                                                     "relu6", "leakyrelu", "pad", "deconv",
                                                     "upsample"};

// The keywords `layer` understands, for "did you mean" hints.
static std::vector<std::string> layerKinds() {
  std::vector<std::string> k = {"input", "network"};
  k.insert(k.end(), kArgLayers.begin(), kArgLayers.end());
  for (const std::string &s : simpleLayerKeywords())
    k.push_back(s);
  k.insert(k.end(), {"add", "concat"});
  return k;
}

static std::optional<OpKind> simpleLayerOp(const std::string &keyword) {
  for (const OpInfo &op : allOps())
    if (CnnForm f = cnnForm(op.kind); f.kind == CnnForm::Simple && keyword == f.keyword)
      return op.kind;
  return std::nullopt;
}

void Lowerer::run(const std::vector<Stmt> &stmts) {
  for (const Stmt &s : stmts)
    if (!s.nodeName.empty())
      definedOn_.emplace(s.nodeName, s.line);
  bool layersSeen = false;
  for (const Stmt &s : stmts) {
    if (s.kind.text == "network") {
      network(s, layersSeen);
      continue;
    }
    layersSeen = true;
    if (s.kind.text == "input")
      input(s);
    else
      layer(s);
  }
  if (!prev_)
    throw Error(formatDiagnostic(Loc{d_.file(), 1, 1},
                                 "no 'input' line: a network starts with 'input NAME CxHxW'"));
  if (prev_->op == OpKind::Input && !lossStmt_) {
    const Stmt &last = stmts.back();
    d_.error(last, last.kind, "the network ends with an input: its last line must be a layer");
  }
  f_.outputs() = {lossNode_ ? lossNode_ : prev_};
}

void Lowerer::network(const Stmt &s, bool layersSeen) {
  if (s.hasName || s.hasInputs)
    d_.error(s, s.hasName ? s.name : s.arrow, "write 'network NAME'");
  if (layersSeen)
    d_.error(s, s.kind, "'network' must come before the input and the layers");
  if (s.args.size() != 1 || !isIdent(s.args[0].text))
    d_.error(s, s.args.empty() ? s.kind : s.args[0],
             "'network' takes one name (letters, digits and '_')");
  f_.setName(s.args[0].text);
}

void Lowerer::input(const Stmt &s) {
  if (s.hasName)
    d_.error(s, s.name, "an input is named after the keyword: 'input NAME CxHxW'");
  if (s.hasInputs)
    d_.error(s, s.arrow, "an input has no inputs");
  Args a(s, d_);
  const Token &name = a.take("a name and its dimensions, e.g. 'input data 3x224x224'");
  if (!isIdent(name.text))
    d_.error(s, name, "bad input name '" + name.text + "': letters, digits and '_'");
  const Token &dimsTok = a.take("its dimensions per example, e.g. 3x224x224");
  std::vector<int64_t> dims = a.dims(dimsTok);
  if (!a.done())
    d_.error(s, a.take(""),
             "unexpected '" + s.args[2].text + "': 'input NAME CxHxW' has no options");
  if (opts_.inputHW && dims.size() == 3) {
    dims[1] = opts_.inputHW->first;
    dims[2] = opts_.inputHW->second;
  }
  Shape shape{opts_.batch};
  shape.insert(shape.end(), dims.begin(), dims.end());
  prev_ = source(s, OpKind::Input, name.text, {DType::F32, shape});
  layers_[name.text] = prev_;
}

void Lowerer::layer(const Stmt &s) {
  if (lossStmt_)
    d_.error(s, s.kind,
             "a layer after the loss (line " + std::to_string(lossStmt_->line) +
                 "): the loss must be the last layer");
  const std::string &k = s.kind.text;
  bool isMerge = k == "add" || k == "concat";
  const std::optional<OpKind> simple = simpleLayerOp(k);
  if (!isMerge && !simple && std::find(kArgLayers.begin(), kArgLayers.end(), k) == kArgLayers.end()) {
    std::string msg = "unknown layer '" + k + "'";
    static const std::vector<std::string> kinds = layerKinds();
    if (std::string hint = closest(k, kinds); !hint.empty())
      msg += " (did you mean '" + hint + "'?)";
    d_.error(s, s.kind, msg);
  }
  std::vector<Node *> xs = resolveInputs(s);
  Node *out = nullptr;
  if (isMerge) {
    out = merge(s, xs);
  } else {
    if (xs.size() != 1)
      d_.error(s, s.inputs[1], "'" + k + "' takes one input, got " + std::to_string(xs.size()));
    Node *x = xs[0];
    if (k == "conv")
      out = conv(s, x);
    else if (k == "deconv")
      out = deconv(s, x);
    else if (k == "upsample")
      out = upsample(s, x);
    else if (k == "pool")
      out = pool(s, x);
    else if (k == "fc")
      out = fc(s, x);
    else if (k == "bn")
      out = bn(s, x);
    else if (k == "dropout")
      out = dropout(s, x);
    else if (k == "loss")
      out = loss(s, x);
    else if (k == "relu6" || k == "leakyrelu")
      out = activation(s, x);
    else if (k == "pad")
      out = pad(s, x);
    else { // parameterless one-input layers
      Args a(s, d_);
      if (!a.done())
        a.unknownOption(a.option(), {});
      if (k == "gap")
        requireImage(s, x);
      out = make(s, *simple, s.nodeName, {x});
    }
  }
  layers_[s.nodeName] = out;
  prev_ = out;
}

std::vector<Node *> Lowerer::resolveInputs(const Stmt &s) {
  if (!s.hasInputs) {
    if (!prev_)
      d_.error(s, s.kind,
               "'" + s.kind.text + "' has no input: the network starts with 'input NAME CxHxW'");
    return {prev_};
  }
  std::vector<Node *> xs;
  for (const Token &t : s.inputs) {
    if (auto it = layers_.find(t.text); it != layers_.end()) {
      xs.push_back(it->second);
      continue;
    }
    auto def = definedOn_.find(t.text);
    if (t.text == s.nodeName)
      d_.error(s, t, "layer '" + t.text + "' uses itself as its input (a cycle)");
    if (def != definedOn_.end())
      d_.error(s, t,
               "'" + t.text + "' is defined later, on line " + std::to_string(def->second) +
                   ": a layer can only use layers above it (no cycles or forward references)");
    std::vector<std::string> known;
    for (auto &[n, node] : layers_)
      known.push_back(n);
    std::string msg = "unknown input '" + t.text + "'";
    if (std::string hint = closest(t.text, known); !hint.empty())
      msg += " (did you mean '" + hint + "'?)";
    d_.error(s, t, msg + ": no layer or input above has that name");
  }
  return xs;
}

Node *Lowerer::make(const Stmt &s, OpKind op, const std::string &name, std::vector<Node *> operands,
                    std::map<std::string, Attr> attrs) {
  // Created without a location so that the IR's message is just "%name (op): problem"; we
  // add the .cnn location, the line and the caret ourselves.
  Node *n = nullptr;
  try {
    n = f_.add(op, name, std::move(operands), std::move(attrs)); // (the shape rule runs here)
  } catch (const Error &e) {
    std::string msg = e.what();
    msg = msg.substr(0, msg.find('\n'));
    if (msg.rfind("error: ", 0) == 0)
      msg = msg.substr(7);
    d_.error(s, s.kind, msg);
  }
  if (tooLarge(n->type.shape))
    d_.error(s, s.kind, "the result " + n->type.str() + " is too large");
  n->loc = loc(s);
  return n;
}

Node *Lowerer::source(const Stmt &s, OpKind op, const std::string &name, TensorType t) {
  if (tooLarge(t.shape))
    d_.error(s, s.kind, "'" + name + "' would be " + t.str() + ": too large");
  return f_.add(op, name, {}, {}, std::move(t), loc(s));
}

Node *Lowerer::param(const Stmt &s, const std::string &name, Shape shape, const std::string &init) {
  Node *p = source(s, OpKind::Param, name, {DType::F32, std::move(shape)});
  p->attrs["init"] = init;
  return p;
}

void Lowerer::requireImage(const Stmt &s, Node *x) {
  if (x->type.rank() != 4)
    d_.error(s, inputToken(s),
             "'" + s.kind.text + "' needs an image input [N,C,H,W], but '" + x->name + "' is " +
                 x->type.str());
}

Node *Lowerer::flattened(const Stmt &s, Node *x) {
  if (x->type.rank() <= 2)
    return x;
  return make(s, OpKind::Flatten, s.nodeName + ".flat", {x});
}

int64_t Lowerer::widened(int64_t c) const {
  return std::max<int64_t>(1, std::llround(opts_.width * (double)c));
}

const Token &Lowerer::inputToken(const Stmt &s) const {
  return s.hasInputs ? s.inputs[0] : s.kind;
}

} // namespace cnnc::cnn
