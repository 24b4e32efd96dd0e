// The ONNX importer's driver: reads the ModelProto, binds the graph inputs' symbolic
// dimensions, turns initializers into params (float) or import-time constants (integer),
// lowers every node through the operator table (OnnxOps.cpp) and names the outputs.
//
// Problems are collected, not fatal: an unsupported operator, attribute value or tensor type
// is recorded (node name, op type, attribute) and lowering continues with the nodes that do
// not depend on it, so that one message lists everything the model needs. Only then is the
// function verified.
#include "frontend/OnnxImporter.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace cnnc {

std::string sanitizeOnnxName(const std::string &name) {
  std::string s;
  for (char c : name)
    s += std::isalnum((unsigned char)c) || c == '_' || c == '.' || c == '$' || c == '-' ? c : '_';
  return s.empty() ? "v" : s;
}

namespace onnximp {

std::string Importer::freshName(const std::string &onnx) {
  std::string base = sanitizeOnnxName(onnx), s = base;
  for (int i = 1; f.find(s) || onnxName.count(s); ++i)
    s = fmt::format("{}.{}", base, i);
  irName[onnx] = s;
  onnxName[s] = onnx;
  return s;
}

Node *Importer::constantNode(const OnnxTensor &t, const std::string &name) {
  Node *n = f.add(OpKind::Constant, name, {}, {{"value", t.values}}, TensorType{t.dtype, t.shape},
                  {}, /*uniquify=*/true);
  if (t.values.empty()) // a zero-element constant: the splat form keeps `value` non-empty
    n->attrs["value"] = std::vector<double>{0.0};
  n->type = inferType(*n);
  return n;
}

Node *Importer::materialize(const std::string &name) {
  if (auto it = values.find(name); it != values.end())
    return it->second;
  auto c = consts.find(name);
  if (c == consts.end())
    throw Error(fmt::format("value '{}' is used before it is defined", name));
  Node *n = constantNode(c->second, irName.count(name) ? irName[name] : freshName(name));
  values[name] = n;
  return n;
}

// ---------------------------------------------------------------------------- NodeCtx --
int64_t NodeCtx::opset() const {
  return im.opset;
}

const onnx::AttributeProto *NodeCtx::attr(const std::string &name) {
  for (const auto &a : p.attribute())
    if (a.name() == name) {
      used.insert(name);
      return &a;
    }
  return nullptr;
}
bool NodeCtx::has(const std::string &name) const {
  for (const auto &a : p.attribute())
    if (a.name() == name)
      return true;
  return false;
}
int64_t NodeCtx::getInt(const std::string &name, int64_t def) {
  const auto *a = attr(name);
  if (!a)
    return def;
  if (a->type() != onnx::AttributeProto::INT && !a->has_i())
    unsupported(fmt::format("attribute '{}' must be an int", name));
  return a->i();
}
double NodeCtx::getFloat(const std::string &name, double def) {
  const auto *a = attr(name);
  if (!a)
    return def;
  if (a->type() != onnx::AttributeProto::FLOAT && !a->has_f())
    unsupported(fmt::format("attribute '{}' must be a float", name));
  return a->f();
}
std::vector<int64_t> NodeCtx::getInts(const std::string &name, std::vector<int64_t> def) {
  const auto *a = attr(name);
  if (!a)
    return def;
  return {a->ints().begin(), a->ints().end()};
}
std::string NodeCtx::getStr(const std::string &name, const std::string &def) {
  const auto *a = attr(name);
  return a ? a->s() : def;
}

int NodeCtx::numInputs() const {
  int n = p.input_size();
  while (n > 0 && p.input(n - 1).empty())
    --n;
  return n;
}
bool NodeCtx::hasInput(int i) const {
  return i < p.input_size() && !p.input(i).empty();
}
Node *NodeCtx::in(int i) {
  if (!hasInput(i))
    throw Error(fmt::format("input {} is missing", i));
  return im.materialize(p.input(i));
}
const OnnxTensor *NodeCtx::constIn(int i) {
  if (!hasInput(i))
    return nullptr;
  auto it = im.consts.find(p.input(i));
  return it == im.consts.end() ? nullptr : &it->second;
}
const OnnxTensor *NodeCtx::knownIn(int i) {
  const OnnxTensor *t = constIn(i);
  if (!t && hasInput(i) && im.weights && in(i)->op == OpKind::Param)
    if (auto it = im.weights->find(in(i)->name); it != im.weights->end())
      t = &it->second;
  return t;
}
int NodeCtx::numOutputs() const {
  int n = p.output_size();
  while (n > 0 && p.output(n - 1).empty())
    --n;
  return n;
}
bool NodeCtx::wantsOutput(int i) const {
  return i < p.output_size() && !p.output(i).empty();
}

void NodeCtx::out(int i, Node *n) {
  if (!wantsOutput(i))
    return;
  const std::string &name = p.output(i);
  if (im.values.count(name) || im.consts.count(name))
    throw Error(fmt::format("value '{}' is defined twice", name));
  // The node takes the output's name unless it already is another ONNX value (an output
  // that only forwards a value, e.g. Identity folded away): then an identity names it.
  if (im.onnxName.count(n->name))
    n = emit(OpKind::Identity, "", {n});
  std::string target = im.freshName(name);
  if (n->name != target) {
    // Renaming in place is safe: the node is new and not yet an output. It keeps its
    // position: a node this lowering emitted after it may already use it (training-mode
    // BatchNormalization names its batch mean, used by the normalisation, as output 3).
    Node *renamed = im.f.add(n->op, target, n->operands, n->attrs, n->type, n->loc);
    renamed->comment = n->comment;
    im.f.moveBefore(renamed, n);
    im.f.replaceAllUses(n, renamed);
    im.f.removeIf([&](Node *x) { return x == n; });
    n = renamed;
  }
  im.values[name] = n;
}

void NodeCtx::outConst(int i, OnnxTensor t) {
  if (!wantsOutput(i))
    return;
  const std::string &name = p.output(i);
  if (im.values.count(name) || im.consts.count(name))
    throw Error(fmt::format("value '{}' is defined twice", name));
  im.consts[name] = std::move(t);
}

Node *NodeCtx::emit(OpKind op, const std::string &suffix, std::vector<Node *> operands,
                    std::map<std::string, Attr> attrs) {
  std::string base = sanitizeOnnxName(p.output_size() ? p.output(0) : p.op_type());
  Node *n = im.f.add(op, suffix.empty() ? base + ".t" : base + "." + suffix, std::move(operands),
                     std::move(attrs), {}, {}, /*uniquify=*/true);
  n->comment = p.name().empty() ? p.op_type() : fmt::format("{} '{}'", p.op_type(), p.name());
  return n;
}

Node *NodeCtx::scalar(double v, DType dt) {
  OnnxTensor t;
  t.dtype = dt;
  t.values = {v};
  std::string base = sanitizeOnnxName(p.output_size() ? p.output(0) : p.op_type());
  return im.constantNode(t, base + ".k");
}

// ---------------------------------------------------------------------------- import --
namespace {

std::string nodeLabel(const onnx::NodeProto &n, int index) {
  if (!n.name().empty())
    return fmt::format("node '{}' ({})", n.name(), n.op_type());
  return fmt::format("node #{} ({}{})", index, n.op_type(),
                     n.output_size() ? fmt::format(", output '{}'", n.output(0)) : "");
}

int64_t defaultOpset(const onnx::ModelProto &m, std::vector<std::string> &problems) {
  int64_t opset = -1;
  for (const auto &o : m.opset_import())
    if (o.domain().empty() || o.domain() == "ai.onnx")
      opset = o.version();
  if (opset < 0) {
    problems.push_back("the model imports no version of the default ONNX operator set");
    return 17;
  }
  // Opsets 6 to 17 are the target; 1 to 5 differ from 6 only in operators cnnc does not
  // support or in attributes the lowerings read the opset-6 way (consumed_inputs, is_test).
  if (opset < 1 || opset > 17)
    problems.push_back(fmt::format("opset {}: cnnc reads opsets up to 17", opset));
  return opset;
}

} // namespace

static void bindInputs(Importer &im, const onnx::GraphProto &g, const std::set<std::string> &inits,
                       std::vector<std::string> &problems, std::set<std::string> &poisoned) {
  std::map<std::string, const onnx::TensorProto *> initProtos;
  for (const auto &t : g.initializer())
    initProtos.emplace(t.name(), &t);
  for (const auto &vi : g.input()) {
    if (inits.count(vi.name())) {
      // an initializer listed as an input (IR version < 4): a parameter, whose declared
      // shape (when fully given) must be the initializer's
      const onnx::TensorProto &t = *initProtos.at(vi.name());
      if (vi.type().has_tensor_type() && vi.type().tensor_type().has_shape()) {
        const auto &dims = vi.type().tensor_type().shape().dim();
        Shape declared, actual(t.dims().begin(), t.dims().end());
        for (const auto &d : dims)
          if (d.has_dim_value())
            declared.push_back(d.dim_value());
        if ((int)declared.size() == dims.size() && declared != actual)
          problems.push_back(fmt::format("graph input '{}' declares the shape {} but its "
                                         "initializer has {}",
                                         vi.name(), shapeStr(declared), shapeStr(actual)));
      }
      continue;
    }
    if (auto c = im.opts.constInputs.find(vi.name()); c != im.opts.constInputs.end()) {
      im.consts[vi.name()] = c->second; // bound at compile time (e.g. a Reshape's shape)
      continue;
    }
    std::string what = fmt::format("graph input '{}'", vi.name());
    if (!vi.type().has_tensor_type()) {
      problems.push_back(what +
                         ": only tensor inputs are supported (not sequences, maps or optionals)");
      continue;
    }
    const auto &tt = vi.type().tensor_type();
    auto dt = dtypeFromOnnx(tt.elem_type());
    if (!dt) {
      problems.push_back(
          fmt::format("{}: {} tensors are not supported", what, onnxElemTypeName(tt.elem_type())));
      continue;
    }
    Shape shape;
    bool ok = true;
    if (auto it = im.opts.inputShapes.find(vi.name()); it != im.opts.inputShapes.end()) {
      shape = it->second;
    } else {
      if (!tt.has_shape()) {
        problems.push_back(what + ": its shape is not declared; give it with --input-shape");
        continue;
      }
      const int rank = tt.shape().dim_size();
      for (int d = 0; d < rank; ++d) {
        const auto &dim = tt.shape().dim(d);
        bool symbolic = !dim.has_dim_value();
        int64_t v = dim.dim_value();
        if (rank == 4 && d >= 2 && im.opts.inputHW)
          v = d == 2 ? im.opts.inputHW->first : im.opts.inputHW->second;
        else if (symbolic && d == 0)
          v = im.opts.batch;
        else if (symbolic) {
          problems.push_back(fmt::format("{}: dimension {} is symbolic ('{}'); bind it with "
                                         "--input-shape",
                                         what, d, dim.dim_param()));
          ok = false;
        }
        shape.push_back(v);
      }
    }
    for (int64_t d : shape) // 0 is a zero-size dim (an empty tensor), which cnnc supports
      if (d < 0 && ok) {
        problems.push_back(
            fmt::format("{}: shape {} has a negative dimension", what, shapeStr(shape)));
        ok = false;
      }
    if (!ok) {
      poisoned.insert(vi.name());
      continue;
    }
    Node *n = im.f.add(OpKind::Input, im.freshName(vi.name()), {}, {}, TensorType{*dt, shape});
    im.values[vi.name()] = n;
  }
}

onnx::ModelProto parseProto(const std::string &bytes, const std::string &filename) {
  onnx::ModelProto m;
  if (bytes.empty())
    throw Error(fmt::format("'{}': empty file, not an ONNX model", filename));
  if (!m.ParseFromString(bytes))
    throw Error(fmt::format("'{}': not a valid ONNX model (the protobuf data is truncated or "
                            "corrupt)",
                            filename));
  if (!m.has_graph() || m.ir_version() <= 0)
    throw Error(fmt::format("'{}': not a valid ONNX model (no {}; the file is truncated or not "
                            "ONNX)",
                            filename, m.has_graph() ? "IR version" : "graph"));
  return m;
}

OnnxModel importProto(const onnx::ModelProto &m, const std::string &filename,
                      const OnnxOptions &opts) {
  if (opts.batch < 1)
    throw Error(fmt::format("the batch size must be positive, got {}", opts.batch));
  std::vector<std::string> problems;
  OnnxModel out;
  out.module = std::make_unique<Module>();
  const onnx::GraphProto &g = m.graph();
  std::string fname = sanitizeOnnxName(g.name().empty() ? "onnx_model" : g.name());
  if (std::isdigit((unsigned char)fname[0]))
    fname = "net" + fname;
  Function &f = out.module->addFunction(fname);
  Importer im(f, opts, defaultOpset(m, problems), filename);
  out.opset = im.opset;
  im.weights = &out.weights;

  // Initializers: float tensors are the model's weights (params), integer ones shapes and
  // indices known at import time.
  std::set<std::string> inits;
  for (const auto &t : g.initializer()) {
    if (!inits.insert(t.name()).second) {
      problems.push_back(fmt::format("initializer '{}' is defined twice", t.name()));
      continue;
    }
    try {
      OnnxTensor v = onnxio::fromProto(t, fmt::format("initializer '{}'", t.name()));
      if (isFloat(v.dtype)) {
        Node *n =
            f.add(OpKind::Param, im.freshName(t.name()), {}, {}, TensorType{v.dtype, v.shape});
        im.values[t.name()] = n;
        out.weights[n->name] = std::move(v);
      } else {
        im.consts[t.name()] = std::move(v);
      }
    } catch (const Error &e) {
      problems.push_back(e.what());
    }
  }
  if (g.sparse_initializer_size())
    problems.push_back("sparse initializers are not supported");
  // Nodes, in order (ONNX requires a topological order). A value that could not be defined is
  // "poisoned": the nodes that use it are skipped, not reported again.
  std::set<std::string> poisoned;
  bindInputs(im, g, inits, problems, poisoned);
  for (const auto &[name, t] : opts.constInputs)
    if (std::none_of(g.input().begin(), g.input().end(),
                     [&](const auto &vi) { return vi.name() == name; }))
      problems.push_back(fmt::format("a value is given for '{}', but the graph has no input of "
                                     "that name",
                                     name));
  const auto &table = loweringTable();
  for (int i = 0; i < g.node_size(); ++i) {
    const onnx::NodeProto &p = g.node(i);
    std::string label = nodeLabel(p, i);
    auto poison = [&] {
      for (const auto &o : p.output())
        poisoned.insert(o);
    };
    if (!p.domain().empty() && p.domain() != "ai.onnx") {
      problems.push_back(
          fmt::format("{}: operator domain '{}' is not supported", label, p.domain()));
      poison();
      continue;
    }
    auto it = table.find(p.op_type());
    if (it == table.end()) {
      problems.push_back(fmt::format("{}: operator {} is not supported", label, p.op_type()));
      poison();
      continue;
    }
    bool blocked = false;
    for (const auto &in : p.input())
      if (!in.empty() && poisoned.count(in))
        blocked = true;
    if (blocked) {
      poison();
      continue;
    }
    NodeCtx ctx(im, p);
    try {
      for (const auto &in : p.input())
        if (!in.empty() && !im.values.count(in) && !im.consts.count(in))
          throw Error(fmt::format("input '{}' is not defined by an earlier node, an initializer or "
                                  "a graph input",
                                  in));
      it->second(ctx);
      for (const auto &a : p.attribute())
        if (!ctx.used.count(a.name()))
          throw Unsupported(fmt::format("attribute '{}' is not supported", a.name()));
      for (int o = 0; o < ctx.numOutputs(); ++o)
        if (ctx.wantsOutput(o) && !im.values.count(p.output(o)) && !im.consts.count(p.output(o)))
          throw Unsupported(fmt::format("output {} ('{}') is not supported", o, p.output(o)));
    } catch (const Unsupported &e) {
      problems.push_back(fmt::format("{}: {}", label, e.what()));
      poison();
    } catch (const Error &e) {
      problems.push_back(fmt::format("{}: {}", label, e.what()));
      poison();
    }
  }

  for (const auto &vi : g.output()) {
    if (poisoned.count(vi.name()))
      continue;
    try {
      Node *n = im.materialize(vi.name());
      f.outputs().push_back(n);
    } catch (const Error &e) {
      problems.push_back(fmt::format("graph output '{}': {}", vi.name(), e.what()));
    }
  }
  if (!problems.empty())
    throw Error(fmt::format("'{}': cannot import this ONNX model ({} problem{}):\n  {}", filename,
                            problems.size(), problems.size() == 1 ? "" : "s",
                            fmt::join(problems, "\n  ")));
  if (f.outputs().empty())
    throw Error(fmt::format("'{}': the graph has no outputs", filename));

  if (opts.training) {
    bool hasLoss = false;
    for (const Node *o : f.outputs())
      hasLoss |= o->info().loss;
    if (!hasLoss) {
      if (f.outputs().size() != 1)
        throw Error(fmt::format("'{}': training adds a loss on the model's output, but it has {} "
                                "outputs",
                                filename, f.outputs().size()));
      Node *y = f.outputs()[0];
      const int64_t n0 = y->type.rank() ? y->type.shape[0] : 1;
      Node *loss = nullptr;
      if (opts.loss.empty())
        throw Error(fmt::format("'{}': training needs a loss and the model computes none: name "
                                "the loss to add on its output with --loss softmax (class "
                                "labels) or --loss l2",
                                filename));
      if (opts.loss == "softmax_xent" || opts.loss == "softmax") {
        if (y->op == OpKind::Softmax && y->type.rank() == 2 && y->getInt("axis") % 2 == 1)
          y = y->operands[0]; // the loss applies its own softmax to the logits
        if (y->type.rank() != 2) {
          y = f.add(OpKind::Flatten, "loss.flat", {y}, {}, {}, {}, true);
        }
        Node *label = f.add(OpKind::Input, "label", {}, {}, TensorType{DType::I32, {n0}}, {}, true);
        loss = f.add(OpKind::SoftmaxXent, "loss", {y, label}, {}, {}, {}, true);
      } else if (opts.loss == "l2") {
        Node *t = f.add(OpKind::Input, "target", {}, {}, y->type, {}, true);
        loss = f.add(OpKind::L2Loss, "loss", {y, t}, {}, {}, {}, true);
      } else {
        throw Error(fmt::format("unknown loss '{}' (softmax or l2)", opts.loss));
      }
      f.outputs() = {loss};
    }
  }
  // after the loss: buildTrainStep keeps them (the state it updates besides SGD's)
  f.outputs().insert(f.outputs().end(), im.stateUpdates.begin(), im.stateUpdates.end());
  // Values that no output needs (e.g. an unused Dropout ratio) stay: DCE removes them.
  verify(f);
  for (const auto &[onnx, ir] : im.irName)
    if (f.find(ir)) {
      out.irName[onnx] = ir;
      out.onnxName[ir] = onnx;
    }
  return out;
}

} // namespace onnximp

OnnxModel importOnnxBytes(const std::string &bytes, const std::string &filename,
                          const OnnxOptions &opts) {
  if (opts.batch < 1) // (before reading anything)
    throw Error(fmt::format("the batch size must be positive, got {}", opts.batch));
  return onnximp::importProto(onnximp::parseProto(bytes, filename), filename, opts);
}

OnnxModel importOnnx(const std::string &path, const OnnxOptions &opts) {
  return importOnnxBytes(onnxio::readFileBytes(path), path, opts);
}

OnnxModel importOnnxForTraining(const std::string &path, const OnnxOptions &opts) {
  if (opts.batch < 1)
    throw Error(fmt::format("the batch size must be positive, got {}", opts.batch));
  const onnx::ModelProto proto = onnximp::parseProto(onnxio::readFileBytes(path), path);
  OnnxOptions io = opts, to = opts;
  io.training = false, to.training = true;
  OnnxModel out = onnximp::importProto(proto, path, io);
  out.module->main().setRole(FunctionRole::Infer);
  OnnxModel train = onnximp::importProto(proto, path, to);
  // Both functions name their params alike (the initializers), so weights and names are the
  // training import's (a superset: the loss may add inputs, never params).
  std::unique_ptr<Function> f = train.module->release(train.module->main().name());
  f->setName("train");
  out.module->adopt(std::move(f));
  out.weights = std::move(train.weights);
  out.irName = std::move(train.irName);
  out.onnxName = std::move(train.onnxName);
  return out;
}

} // namespace cnnc
