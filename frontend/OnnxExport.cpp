// ONNX export: an IR function as an ONNX inference model (opset 13, or 14 when a reshape
// needs Reshape's allowzero attribute; IR version 7), checked
// by the ONNX checker. Each IR op maps to the ONNX op it was imported from (fc -> Gemm with
// transB, conv2d -> Conv, ...), so that `import(export(f))` evaluates the same operations in
// the same order: the round trip reproduces the interpreter's outputs bit for bit.
//
// Params become initializers (values from `weights`), constants Constant nodes (so that they
// re-import as constants, not parameters), inputs graph inputs; the SSA names are kept as the
// ONNX value names (they are valid ONNX names).
#include "frontend/OnnxImport.h"
#include "frontend/OnnxImporter.h"
#include "frontend/OnnxProto.h"

#include <fmt/format.h>
#include <onnx/checker.h>

#include <algorithm>
#include <cmath>
#include <fstream>

namespace cnnc {

namespace {

class Exporter {
public:
  Exporter(onnx::GraphProto &g) : g(g) {}
  onnx::GraphProto &g;
  int counter = 0;

  void ints(onnx::NodeProto &n, const char *name, const std::vector<int64_t> &v) {
    auto *a = n.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t x : v)
      a->add_ints(x);
  }
  void i(onnx::NodeProto &n, const char *name, int64_t v) {
    auto *a = n.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
  }
  void f(onnx::NodeProto &n, const char *name, double v) {
    auto *a = n.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f((float)v);
  }
  void s(onnx::NodeProto &n, const char *name, const std::string &v) {
    auto *a = n.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::STRING);
    a->set_s(v);
  }
  onnx::NodeProto &node(const std::string &op, std::vector<std::string> in,
                        const std::string &out) {
    auto *n = g.add_node();
    n->set_op_type(op);
    n->set_name(out);
    for (auto &x : in)
      n->add_input(x);
    n->add_output(out);
    return *n;
  }
  // An int64 constant (shapes, ratios): a Constant node.
  std::string constant(const std::string &base, DType dt, Shape shape, std::vector<double> v) {
    std::string name = fmt::format("{}.c{}", base, counter++);
    OnnxTensor t;
    t.dtype = dt, t.shape = std::move(shape), t.values = std::move(v);
    auto &n = node("Constant", {}, name);
    auto *a = n.add_attribute();
    a->set_name("value");
    a->set_type(onnx::AttributeProto::TENSOR);
    onnxio::toProto(t, *a->mutable_t());
    return name;
  }
};

// Graph inputs and outputs of rank >= 2 carry the mini-batch in dim 0 (cnnc's frontends put
// it there); it is exported as the symbolic dimension "N" so that an importer binds any
// batch, as it does for models exported by PyTorch with dynamic axes.
void valueInfo(onnx::ValueInfoProto *vi, const Node &n) {
  vi->set_name(n.name);
  auto *tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnxElemType(n.type.dtype));
  auto *sh = tt->mutable_shape();
  for (size_t i = 0; i < n.type.shape.size(); ++i) {
    if (i == 0 && n.type.shape.size() >= 2)
      sh->add_dim()->set_dim_param("N");
    else
      sh->add_dim()->set_dim_value(n.type.shape[i]);
  }
}

// What one node's export sees.
struct ExportCtx {
  Exporter &e;
  const Node &n;
  const std::map<std::string, OnnxTensor> &weights;
  std::vector<std::string> in; // the operands' ONNX names
  const std::string &y = n.name;
};

void window(ExportCtx &c, onnx::NodeProto &p, bool dil) {
  c.e.ints(p, "kernel_shape", c.n.getInts("kernel"));
  c.e.ints(p, "strides", c.n.getInts("stride"));
  c.e.ints(p, "pads", c.n.getInts("pads"));
  if (dil)
    c.e.ints(p, "dilations", c.n.getInts("dilation"));
  c.e.i(p, "ceil_mode", c.n.getInt("ceil_mode"));
}
// conv2d/fc/batchnorm with a fused ReLU (passes/FuseRelu.cpp) leave as the op and a Relu, or
// a Clip(0, relu_max) when the ReLU is capped (a fused ReLU6).
std::string preRelu(const ExportCtx &c) {
  return c.n.getInt("relu") ? c.y + ".pre_relu" : c.y;
}
void fusedRelu(ExportCtx &c) {
  if (!c.n.getInt("relu"))
    return;
  if (const double hi = c.n.getFloat("relu_max"); !std::isinf(hi))
    c.e.node("Clip", {c.y + ".pre_relu", c.e.constant(c.y, c.n.type.dtype, {}, {0.0}),
                      c.e.constant(c.y, c.n.type.dtype, {}, {hi})},
             c.y);
  else
    c.e.node("Relu", {c.y + ".pre_relu"}, c.y);
}

// The export of each op whose entry in the ONNX table (frontend/OnnxForm.h) is Custom.
// kExport instantiates exportOp<K> for exactly those ops, so a Custom op without its export
// here fails the build ("use of deleted function exportOp<OpKind::X>").
template <OpKind K> void exportOp(ExportCtx &c) = delete;

template <> void exportOp<OpKind::Input>(ExportCtx &c) {
  valueInfo(c.e.g.add_input(), c.n);
}

template <> void exportOp<OpKind::Param>(ExportCtx &c) {
  auto it = c.weights.find(c.n.name);
  if (it == c.weights.end())
    throw Error(fmt::format("no weight for parameter '{}' {}", c.n.name, c.n.type.str()));
  if (it->second.shape != c.n.type.shape)
    throw Error(fmt::format("the weight for parameter '{}' has shape {}, the model needs {}",
                            c.n.name, shapeStr(it->second.shape), c.n.type.str()));
  OnnxTensor t = it->second;
  t.name = c.n.name;
  t.dtype = c.n.type.dtype;
  onnxio::toProto(t, *c.e.g.add_initializer());
}

template <> void exportOp<OpKind::Constant>(ExportCtx &c) {
  std::vector<double> v = c.n.getFloats("value");
  if ((int64_t)v.size() != c.n.type.numel())
    v.assign(c.n.type.numel(), v.empty() ? 0.0 : v[0]);
  OnnxTensor t{c.y, c.n.type.dtype, c.n.type.shape, v};
  auto &p = c.e.node("Constant", {}, c.y);
  auto *a = p.add_attribute();
  a->set_name("value");
  a->set_type(onnx::AttributeProto::TENSOR);
  onnxio::toProto(t, *a->mutable_t());
}

template <> void exportOp<OpKind::Conv2d>(ExportCtx &c) {
  // a fused residual connection (fuse-residual): Conv, then Add of r, then the fused ReLU
  const bool residual = c.in.size() == 4;
  const std::vector<std::string> in(c.in.begin(), c.in.begin() + (residual ? 3 : (long)c.in.size()));
  { // (p is a reference into the graph's node list: finished before the next node is added)
    auto &p = c.e.node("Conv", in, residual ? c.y + ".conv" : preRelu(c));
    const Shape &w = c.n.operands[1]->type.shape;
    c.e.ints(p, "kernel_shape", {w[2], w[3]});
    c.e.ints(p, "strides", c.n.getInts("stride"));
    c.e.ints(p, "pads", c.n.getInts("pads"));
    c.e.ints(p, "dilations", c.n.getInts("dilation"));
    c.e.i(p, "group", c.n.getInt("groups"));
  }
  if (residual)
    c.e.node("Add", {c.y + ".conv", c.in[3]}, preRelu(c));
  fusedRelu(c);
}

template <>
void exportOp<OpKind::Conv2dGradInput>(ExportCtx &c) { // ConvTranspose (OnnxOps.cpp's import)
  auto &p = c.e.node("ConvTranspose", c.in, c.y);
  const Shape &w = c.n.operands[1]->type.shape, &x = c.n.operands[0]->type.shape;
  const Shape out = c.n.getInts("input_shape"), s = c.n.getInts("stride"),
              d = c.n.getInts("dilation"), pads = c.n.getInts("pads");
  std::vector<int64_t> op(2);
  for (int i = 0; i < 2; ++i)
    op[i] =
        out[2 + i] - (s[i] * (x[2 + i] - 1) + (w[2 + i] - 1) * d[i] + 1 - pads[i] - pads[i + 2]);
  c.e.ints(p, "kernel_shape", {w[2], w[3]});
  c.e.ints(p, "strides", s);
  c.e.ints(p, "pads", pads);
  c.e.ints(p, "dilations", d);
  c.e.ints(p, "output_padding", op);
  c.e.i(p, "group", c.n.getInt("groups"));
}

template <> void exportOp<OpKind::MaxPool>(ExportCtx &c) {
  window(c, c.e.node("MaxPool", c.in, c.y), true);
}

template <> void exportOp<OpKind::AvgPool>(ExportCtx &c) {
  auto &p = c.e.node("AveragePool", c.in, c.y);
  window(c, p, false);
  c.e.i(p, "count_include_pad", c.n.getInt("count_include_pad"));
}

template <> void exportOp<OpKind::GlobalAvgPool>(ExportCtx &c) {
  c.e.node("GlobalAveragePool", c.in, c.y);
}

template <> void exportOp<OpKind::Identity>(ExportCtx &c) {
  c.e.node("Identity", c.in, c.y);
}

template <> void exportOp<OpKind::Add>(ExportCtx &c) {
  c.e.node("Add", c.in, c.y);
}

template <> void exportOp<OpKind::Sub>(ExportCtx &c) {
  c.e.node("Sub", c.in, c.y);
}

template <> void exportOp<OpKind::Mul>(ExportCtx &c) {
  c.e.node("Mul", c.in, c.y);
}

template <> void exportOp<OpKind::Div>(ExportCtx &c) {
  c.e.node("Div", c.in, c.y);
}

template <> void exportOp<OpKind::BatchMatMul>(ExportCtx &c) {
  c.e.node("MatMul", c.in, c.y);
}

template <>
void exportOp<OpKind::FullyConnected>(ExportCtx &c) { // Gemm without C is valid from opset 11
  auto &p = c.e.node("Gemm", c.in, preRelu(c));
  c.e.i(p, "transB", 1);
  fusedRelu(c);
}

template <> void exportOp<OpKind::MatMul>(ExportCtx &c) {
  if (!c.n.getInt("trans_a") && !c.n.getInt("trans_b")) {
    c.e.node("MatMul", c.in, c.y);
    return;
  }
  auto &p = c.e.node("Gemm", c.in, c.y);
  c.e.i(p, "transA", c.n.getInt("trans_a"));
  c.e.i(p, "transB", c.n.getInt("trans_b"));
}

template <> void exportOp<OpKind::Concat>(ExportCtx &c) {
  c.e.i(c.e.node("Concat", c.in, c.y), "axis", c.n.getInt("axis"));
}

template <> void exportOp<OpKind::Flatten>(ExportCtx &c) {
  c.e.i(c.e.node("Flatten", c.in, c.y), "axis", c.n.getInt("axis"));
}

template <> void exportOp<OpKind::Reshape>(ExportCtx &c) {
  Shape s = c.n.getInts("shape");
  std::string shape = c.e.constant(c.y, DType::I64, {(int64_t)s.size()}, {s.begin(), s.end()});
  auto &p = c.e.node("Reshape", {c.in[0], shape}, c.y);
  if (c.n.getInt("allowzero"))
    c.e.i(p, "allowzero", c.n.getInt("allowzero"));
}

template <> void exportOp<OpKind::Softmax>(ExportCtx &c) {
  c.e.i(c.e.node("Softmax", c.in, c.y), "axis", c.n.getInt("axis"));
}

template <> void exportOp<OpKind::LogSoftmax>(ExportCtx &c) {
  c.e.i(c.e.node("LogSoftmax", c.in, c.y), "axis", c.n.getInt("axis"));
}

template <> void exportOp<OpKind::BatchNorm>(ExportCtx &c) {
  c.e.f(c.e.node("BatchNormalization", c.in, preRelu(c)), "epsilon", c.n.getFloat("epsilon"));
  fusedRelu(c);
}

template <> void exportOp<OpKind::Dropout>(ExportCtx &c) {
  if (c.n.getInt("training"))
    throw Error(fmt::format("{}: training-mode dropout has no ONNX inference form; export the "
                            "inference graph",
                            c.n.describe()));
  std::string ratio = c.e.constant(c.y, c.n.type.dtype, {}, {c.n.getFloat("rate")});
  c.e.node("Dropout", {c.in[0], ratio}, c.y);
}

template <> void exportOp<OpKind::Clip>(ExportCtx &c) { // infinite bounds are absent inputs
  std::vector<std::string> ops{c.in[0], "", ""};
  const double lo = c.n.getFloat("min"), hi = c.n.getFloat("max");
  if (!std::isinf(lo))
    ops[1] = c.e.constant(c.y, c.n.type.dtype, {}, {lo});
  if (!std::isinf(hi))
    ops[2] = c.e.constant(c.y, c.n.type.dtype, {}, {hi});
  while (ops.back().empty())
    ops.pop_back();
  c.e.node("Clip", ops, c.y);
}

template <> void exportOp<OpKind::HardSigmoid>(ExportCtx &c) {
  auto &p = c.e.node("HardSigmoid", c.in, c.y);
  c.e.f(p, "alpha", c.n.getFloat("alpha"));
  c.e.f(p, "beta", c.n.getFloat("beta"));
}

template <> void exportOp<OpKind::LeakyRelu>(ExportCtx &c) {
  c.e.f(c.e.node("LeakyRelu", c.in, c.y), "alpha", c.n.getFloat("alpha"));
}

template <> void exportOp<OpKind::Elu>(ExportCtx &c) {
  c.e.f(c.e.node("Elu", c.in, c.y), "alpha", c.n.getFloat("alpha"));
}

template <> void exportOp<OpKind::Selu>(ExportCtx &c) {
  auto &p = c.e.node("Selu", c.in, c.y);
  c.e.f(p, "alpha", c.n.getFloat("alpha"));
  c.e.f(p, "gamma", c.n.getFloat("gamma"));
}

template <> void exportOp<OpKind::PRelu>(ExportCtx &c) {
  c.e.node("PRelu", c.in, c.y);
}

void exportMaxMin(ExportCtx &c) { // two of ONNX's variadic inputs
  c.e.node(c.n.op == OpKind::Max ? "Max" : "Min", c.in, c.y);
}
template <> void exportOp<OpKind::Max>(ExportCtx &c) {
  exportMaxMin(c);
}
template <> void exportOp<OpKind::Min>(ExportCtx &c) {
  exportMaxMin(c);
}

template <> void exportOp<OpKind::Pad>(ExportCtx &c) {
  const Shape p = c.n.getInts("pads");
  std::vector<std::string> ops{
      c.in[0], c.e.constant(c.y, DType::I64, {(int64_t)p.size()}, {p.begin(), p.end()})};
  if (c.n.getStr("mode") == "constant")
    ops.push_back(c.e.constant(c.y, c.n.type.dtype, {}, {c.n.getFloat("value")}));
  c.e.s(c.e.node("Pad", ops, c.y), "mode", c.n.getStr("mode"));
}

template <> void exportOp<OpKind::Transpose>(ExportCtx &c) {
  c.e.ints(c.e.node("Transpose", c.in, c.y), "perm", c.n.getInts("perm"));
}

template <> void exportOp<OpKind::Expand>(ExportCtx &c) {
  const Shape s = c.n.getInts("shape");
  c.e.node("Expand",
           {c.in[0], c.e.constant(c.y, DType::I64, {(int64_t)s.size()}, {s.begin(), s.end()})},
           c.y);
}

template <> void exportOp<OpKind::ReduceSum>(ExportCtx &c) { // opset 13: the axes are an input
  const Shape a = c.n.getInts("axes");
  auto &p = c.e.node(
      "ReduceSum",
      {c.in[0], c.e.constant(c.y, DType::I64, {(int64_t)a.size()}, {a.begin(), a.end()})}, c.y);
  c.e.i(p, "keepdims", c.n.getInt("keepdims"));
}

void exportReduceMaxMin(ExportCtx &c) { // opset 13: attributes
  auto &p = c.e.node(c.n.op == OpKind::ReduceMax ? "ReduceMax" : "ReduceMin", c.in, c.y);
  c.e.ints(p, "axes", c.n.getInts("axes"));
  c.e.i(p, "keepdims", c.n.getInt("keepdims"));
}
template <> void exportOp<OpKind::ReduceMax>(ExportCtx &c) {
  exportReduceMaxMin(c);
}
template <> void exportOp<OpKind::ReduceMin>(ExportCtx &c) {
  exportReduceMaxMin(c);
}

template <> void exportOp<OpKind::ArgMax>(ExportCtx &c) {
  auto &p = c.e.node("ArgMax", c.in, c.y);
  c.e.i(p, "axis", c.n.getInt("axis"));
  c.e.i(p, "keepdims", c.n.getInt("keepdims"));
  if (c.n.getInt("select_last_index"))
    c.e.i(p, "select_last_index", 1);
}

template <> void exportOp<OpKind::Slice>(ExportCtx &c) {
  auto one = [&](int64_t v) { return c.e.constant(c.y, DType::I64, {1}, {(double)v}); };
  c.e.node("Slice",
           {c.in[0], one(c.n.getInt("start")), one(c.n.getInt("end")), one(c.n.getInt("axis"))},
           c.y);
}

void exportSoftmaxXentLoss(ExportCtx &c) {
  auto &p = c.e.node("SoftmaxCrossEntropyLoss", c.in, c.y);
  c.e.s(p, "reduction", c.n.op == OpKind::SoftmaxXent ? "mean" : c.n.getStr("reduction"));
  if (c.n.op == OpKind::SoftmaxXentNd && !c.n.getInts("ignore_index").empty())
    c.e.i(p, "ignore_index", c.n.getInts("ignore_index")[0]);
}
template <> void exportOp<OpKind::SoftmaxXent>(ExportCtx &c) {
  exportSoftmaxXentLoss(c);
}
template <> void exportOp<OpKind::SoftmaxXentNd>(ExportCtx &c) {
  exportSoftmaxXentLoss(c);
}

using ExportFn = void (*)(ExportCtx &);
template <OpKind K> constexpr ExportFn exportEntry() {
  if constexpr (onnximp::onnxForm(K).kind == onnximp::OnnxForm::Custom)
    return &exportOp<K>;
  else
    return nullptr; // Direct (one node, below) or None (the error names why)
}
constexpr ExportFn kExport[] = {
#define OP(Enum, Mnemonic, Operands, Attrs, Traits, Doc, Example) exportEntry<OpKind::Enum>(),
#include "ir/Ops.def"
#undef OP
};

void exportNode(Exporter &e, const Node &n, const std::map<std::string, OnnxTensor> &weights) {
  ExportCtx c{e, n, weights, {}};
  for (const Node *o : n.operands)
    c.in.push_back(o->name);
  const onnximp::OnnxForm form = onnximp::onnxForm(n.op);
  if (form.kind == onnximp::OnnxForm::Direct) {
    e.node(form.opType, c.in, n.name);
    return;
  }
  if (form.kind == onnximp::OnnxForm::None)
    throw Error(fmt::format("{}: op '{}' has no ONNX form ({})", n.describe(), n.info().mnemonic,
                            form.why));
  kExport[(size_t)n.op](c);
}

} // namespace

int64_t exportOpset(const Function &f, const OnnxExportOptions &opts) {
  for (const auto &n : f.nodes())
    if ((n->op == OpKind::Reshape && n->getInt("allowzero")) || n->op == OpKind::HardSwish)
      return std::max<int64_t>(opts.opset, 14); // Reshape's allowzero, HardSwish: opset 14
  return opts.opset;
}

std::string exportOnnxBytes(const Function &f, const std::map<std::string, OnnxTensor> &weights,
                            const OnnxExportOptions &opts) {
  onnx::ModelProto m;
  m.set_ir_version(7);
  m.set_producer_name(opts.producer);
  auto *op = m.add_opset_import();
  op->set_domain("");
  op->set_version(exportOpset(f, opts));
  onnx::GraphProto &g = *m.mutable_graph();
  g.set_name(f.name());
  Exporter e(g);
  for (const auto &n : f.nodes())
    exportNode(e, *n, weights);
  for (const Node *o : f.outputs())
    valueInfo(g.add_output(), *o);
  if (opts.check) {
    try {
      onnx::checker::check_model(m);
    } catch (const std::exception &ex) {
      throw Error(fmt::format("the exported model fails the ONNX checker: {}", ex.what()));
    }
  }
  std::string bytes;
  if (!m.SerializeToString(&bytes))
    throw Error("cannot serialize the ONNX model (larger than 2 GB?)");
  return bytes;
}

void exportOnnx(const Function &f, const std::map<std::string, OnnxTensor> &weights,
                const std::string &path, const OnnxExportOptions &opts) {
  std::string bytes = exportOnnxBytes(f, weights, opts);
  std::ofstream out(path, std::ios::binary);
  if (!out.write(bytes.data(), (std::streamsize)bytes.size()))
    throw Error(fmt::format("cannot write '{}'", path));
}

} // namespace cnnc
