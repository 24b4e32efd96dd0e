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

void exportNode(Exporter &e, const Node &n, const std::map<std::string, OnnxTensor> &weights) {
  std::vector<std::string> in;
  for (const Node *o : n.operands)
    in.push_back(o->name);
  const std::string &y = n.name;
  auto window = [&](onnx::NodeProto &p, bool dil) {
    e.ints(p, "kernel_shape", n.getInts("kernel"));
    e.ints(p, "strides", n.getInts("stride"));
    e.ints(p, "pads", n.getInts("pads"));
    if (dil)
      e.ints(p, "dilations", n.getInts("dilation"));
    e.i(p, "ceil_mode", n.getInt("ceil_mode"));
  };
  // conv2d/fc/batchnorm with a fused ReLU (passes/FuseRelu.cpp) leave as the op and a Relu.
  const bool relu = n.info().attr("relu") && n.getInt("relu");
  auto preRelu = [&]() { return relu ? y + ".pre_relu" : y; };
  auto fusedRelu = [&]() {
    if (relu)
      e.node("Relu", {y + ".pre_relu"}, y);
  };
  // The per-op ONNX table (OnnxOps.cpp): ops that map one to one, ops with no ONNX form, and
  // the ones exported below.
  const onnximp::OnnxForm form = onnximp::onnxForm(n.op);
  if (form.kind == onnximp::OnnxForm::Direct) {
    e.node(form.opType, in, y);
    return;
  }
  if (form.kind == onnximp::OnnxForm::None)
    throw Error(fmt::format("{}: op '{}' has no ONNX form ({})", n.describe(), n.info().mnemonic,
                            form.why));
  if (n.op == OpKind::Input) {
    valueInfo(e.g.add_input(), n);
    return;
  } else if (n.op == OpKind::Param) {
    auto it = weights.find(n.name);
    if (it == weights.end())
      throw Error(fmt::format("no weight for parameter '{}' {}", n.name, n.type.str()));
    if (it->second.shape != n.type.shape)
      throw Error(fmt::format("the weight for parameter '{}' has shape {}, the model needs {}",
                              n.name, shapeStr(it->second.shape), n.type.str()));
    OnnxTensor t = it->second;
    t.name = n.name;
    t.dtype = n.type.dtype;
    onnxio::toProto(t, *e.g.add_initializer());
    return;
  } else if (n.op == OpKind::Constant) {
    std::vector<double> v = n.getFloats("value");
    if ((int64_t)v.size() != n.type.numel())
      v.assign(n.type.numel(), v.empty() ? 0.0 : v[0]);
    OnnxTensor t{y, n.type.dtype, n.type.shape, v};
    auto &p = e.node("Constant", {}, y);
    auto *a = p.add_attribute();
    a->set_name("value");
    a->set_type(onnx::AttributeProto::TENSOR);
    onnxio::toProto(t, *a->mutable_t());
    return;
  } else if (n.op == OpKind::Conv2d) {
    auto &p = e.node("Conv", in, preRelu());
    const Shape &w = n.operands[1]->type.shape;
    e.ints(p, "kernel_shape", {w[2], w[3]});
    e.ints(p, "strides", n.getInts("stride"));
    e.ints(p, "pads", n.getInts("pads"));
    e.ints(p, "dilations", n.getInts("dilation"));
    e.i(p, "group", n.getInt("groups"));
    fusedRelu();
    return;
  } else if (n.op == OpKind::Conv2dGradInput) { // ConvTranspose (OnnxOps.cpp's import)
    auto &p = e.node("ConvTranspose", in, y);
    const Shape &w = n.operands[1]->type.shape, &x = n.operands[0]->type.shape;
    const Shape out = n.getInts("input_shape"), s = n.getInts("stride"), d = n.getInts("dilation"),
                pads = n.getInts("pads");
    std::vector<int64_t> op(2);
    for (int i = 0; i < 2; ++i)
      op[i] = out[2 + i] - (s[i] * (x[2 + i] - 1) + (w[2 + i] - 1) * d[i] + 1 - pads[i] - pads[i + 2]);
    e.ints(p, "kernel_shape", {w[2], w[3]});
    e.ints(p, "strides", s);
    e.ints(p, "pads", pads);
    e.ints(p, "dilations", d);
    e.ints(p, "output_padding", op);
    e.i(p, "group", n.getInt("groups"));
    return;
  } else if (n.op == OpKind::MaxPool) {
    window(e.node("MaxPool", in, y), true);
    return;
  } else if (n.op == OpKind::AvgPool) {
    auto &p = e.node("AveragePool", in, y);
    window(p, false);
    e.i(p, "count_include_pad", n.getInt("count_include_pad"));
    return;
  } else if (n.op == OpKind::GlobalAvgPool) {
    e.node("GlobalAveragePool", in, y);
    return;
  } else if (n.op == OpKind::Identity) {
    e.node("Identity", in, y);
    return;
  } else if (n.op == OpKind::Add) {
    e.node("Add", in, y);
    return;
  } else if (n.op == OpKind::Sub) {
    e.node("Sub", in, y);
    return;
  } else if (n.op == OpKind::Mul) {
    e.node("Mul", in, y);
    return;
  } else if (n.op == OpKind::Div) {
    e.node("Div", in, y);
    return;
  } else if (n.op == OpKind::BatchMatMul) {
    e.node("MatMul", in, y);
    return;
  } else if (n.op == OpKind::FullyConnected) { // Gemm without C is valid from opset 11
    auto &p = e.node("Gemm", in, preRelu());
    e.i(p, "transB", 1);
    fusedRelu();
    return;
  } else if (n.op == OpKind::MatMul) {
    if (!n.getInt("trans_a") && !n.getInt("trans_b")) {
      e.node("MatMul", in, y);
      return;
    }
    auto &p = e.node("Gemm", in, y);
    e.i(p, "transA", n.getInt("trans_a"));
    e.i(p, "transB", n.getInt("trans_b"));
    return;
  } else if (n.op == OpKind::Concat) {
    e.i(e.node("Concat", in, y), "axis", n.getInt("axis"));
    return;
  } else if (n.op == OpKind::Flatten) {
    e.i(e.node("Flatten", in, y), "axis", n.getInt("axis"));
    return;
  } else if (n.op == OpKind::Reshape) {
    Shape s = n.getInts("shape");
    std::string shape = e.constant(y, DType::I64, {(int64_t)s.size()}, {s.begin(), s.end()});
    auto &p = e.node("Reshape", {in[0], shape}, y);
    if (n.getInt("allowzero"))
      e.i(p, "allowzero", n.getInt("allowzero"));
    return;
  } else if (n.op == OpKind::Softmax) {
    e.i(e.node("Softmax", in, y), "axis", n.getInt("axis"));
    return;
  } else if (n.op == OpKind::LogSoftmax) {
    e.i(e.node("LogSoftmax", in, y), "axis", n.getInt("axis"));
    return;
  } else if (n.op == OpKind::BatchNorm) {
    e.f(e.node("BatchNormalization", in, preRelu()), "epsilon", n.getFloat("epsilon"));
    fusedRelu();
    return;
  } else if (n.op == OpKind::Dropout) {
    if (n.getInt("training"))
      throw Error(fmt::format("{}: training-mode dropout has no ONNX inference form; export the "
                              "inference graph",
                              n.describe()));
    std::string ratio = e.constant(y, n.type.dtype, {}, {n.getFloat("rate")});
    e.node("Dropout", {in[0], ratio}, y);
    return;
  } else if (n.op == OpKind::Clip) { // infinite bounds are absent inputs
    std::vector<std::string> ops{in[0], "", ""};
    const double lo = n.getFloat("min"), hi = n.getFloat("max");
    if (!std::isinf(lo))
      ops[1] = e.constant(y, n.type.dtype, {}, {lo});
    if (!std::isinf(hi))
      ops[2] = e.constant(y, n.type.dtype, {}, {hi});
    while (ops.back().empty())
      ops.pop_back();
    e.node("Clip", ops, y);
    return;
  } else if (n.op == OpKind::HardSigmoid) {
    auto &p = e.node("HardSigmoid", in, y);
    e.f(p, "alpha", n.getFloat("alpha"));
    e.f(p, "beta", n.getFloat("beta"));
    return;
  } else if (n.op == OpKind::LeakyRelu) {
    e.f(e.node("LeakyRelu", in, y), "alpha", n.getFloat("alpha"));
    return;
  } else if (n.op == OpKind::Elu) {
    e.f(e.node("Elu", in, y), "alpha", n.getFloat("alpha"));
    return;
  } else if (n.op == OpKind::Selu) {
    auto &p = e.node("Selu", in, y);
    e.f(p, "alpha", n.getFloat("alpha"));
    e.f(p, "gamma", n.getFloat("gamma"));
    return;
  } else if (n.op == OpKind::PRelu) {
    e.node("PRelu", in, y);
    return;
  } else if (n.op == OpKind::Max || n.op == OpKind::Min) { // two of ONNX's variadic inputs
    e.node(n.op == OpKind::Max ? "Max" : "Min", in, y);
    return;
  } else if (n.op == OpKind::Pad) {
    const Shape p = n.getInts("pads");
    std::vector<std::string> ops{in[0], e.constant(y, DType::I64, {(int64_t)p.size()}, {p.begin(), p.end()})};
    if (n.getStr("mode") == "constant")
      ops.push_back(e.constant(y, n.type.dtype, {}, {n.getFloat("value")}));
    e.s(e.node("Pad", ops, y), "mode", n.getStr("mode"));
    return;
  } else if (n.op == OpKind::Transpose) {
    e.ints(e.node("Transpose", in, y), "perm", n.getInts("perm"));
    return;
  } else if (n.op == OpKind::Expand) {
    const Shape s = n.getInts("shape");
    e.node("Expand", {in[0], e.constant(y, DType::I64, {(int64_t)s.size()}, {s.begin(), s.end()})}, y);
    return;
  } else if (n.op == OpKind::ReduceSum) { // opset 13: the axes are an input
    const Shape a = n.getInts("axes");
    auto &p = e.node("ReduceSum", {in[0], e.constant(y, DType::I64, {(int64_t)a.size()}, {a.begin(), a.end()})}, y);
    e.i(p, "keepdims", n.getInt("keepdims"));
    return;
  } else if (n.op == OpKind::ReduceMax || n.op == OpKind::ReduceMin) { // opset 13: attributes
    auto &p = e.node(n.op == OpKind::ReduceMax ? "ReduceMax" : "ReduceMin", in, y);
    e.ints(p, "axes", n.getInts("axes"));
    e.i(p, "keepdims", n.getInt("keepdims"));
    return;
  } else if (n.op == OpKind::ArgMax) {
    auto &p = e.node("ArgMax", in, y);
    e.i(p, "axis", n.getInt("axis"));
    e.i(p, "keepdims", n.getInt("keepdims"));
    if (n.getInt("select_last_index"))
      e.i(p, "select_last_index", 1);
    return;
  } else if (n.op == OpKind::Slice) {
    auto one = [&](int64_t v) { return e.constant(y, DType::I64, {1}, {(double)v}); };
    e.node("Slice", {in[0], one(n.getInt("start")), one(n.getInt("end")), one(n.getInt("axis"))}, y);
    return;
  } else if (n.op == OpKind::SoftmaxXent || n.op == OpKind::SoftmaxXentNd) {
    auto &p = e.node("SoftmaxCrossEntropyLoss", in, y);
    e.s(p, "reduction", n.op == OpKind::SoftmaxXent ? "mean" : n.getStr("reduction"));
    if (n.op == OpKind::SoftmaxXentNd && !n.getInts("ignore_index").empty())
      e.i(p, "ignore_index", n.getInts("ignore_index")[0]);
    return;
  }
  CNNC_INTERNAL(fmt::format("op '{}' is custom in the ONNX table (OnnxOps.cpp's onnxForm) but "
                            "has no export here",
                            n.info().mnemonic));
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
