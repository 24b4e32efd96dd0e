// Helpers of the ONNX frontend's tests: a ModelProto builder for hand-made models, the
// op-by-op comparison of a model with its reimport, seeded random tensors.
#pragma once

#include "interp/Interpreter.h"
#include "ir/IR.h"

#include <catch2/catch.hpp>
#include <onnx/onnx_pb.h>

#include <random>
#include <string>
#include <vector>

namespace cnnc::onnxtest {

// A small ModelProto builder for hand-made test models.
struct ModelBuilder {
  onnx::ModelProto m;
  onnx::GraphProto *g;
  explicit ModelBuilder(int opset = 13) {
    m.set_ir_version(7);
    auto *o = m.add_opset_import();
    o->set_version(opset);
    g = m.mutable_graph();
    g->set_name("test");
  }
  void value(google::protobuf::RepeatedPtrField<onnx::ValueInfoProto> *list,
             const std::string &name, std::vector<int64_t> shape,
             int elem = onnx::TensorProto::FLOAT) {
    auto *vi = list->Add();
    vi->set_name(name);
    auto *tt = vi->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(elem);
    auto *s = tt->mutable_shape();
    for (int64_t d : shape)
      d < 0 ? s->add_dim()->set_dim_param("N") : s->add_dim()->set_dim_value(d);
  }
  void input(const std::string &n, std::vector<int64_t> s, int elem = onnx::TensorProto::FLOAT) {
    value(g->mutable_input(), n, s, elem);
  }
  void output(const std::string &n, std::vector<int64_t> s) { value(g->mutable_output(), n, s); }
  onnx::NodeProto *node(const std::string &op, std::vector<std::string> in,
                        std::vector<std::string> out, const std::string &name = "") {
    auto *n = g->add_node();
    n->set_op_type(op);
    n->set_name(name);
    for (auto &x : in)
      n->add_input(x);
    for (auto &x : out)
      n->add_output(x);
    return n;
  }
  void init(const std::string &name, std::vector<int64_t> dims, std::vector<float> v) {
    auto *t = g->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (auto d : dims)
      t->add_dims(d);
    for (float x : v)
      t->add_float_data(x);
  }
  static void attr(onnx::NodeProto *n, const std::string &name, int64_t v) {
    auto *a = n->add_attribute();
    a->set_name(name), a->set_type(onnx::AttributeProto::INT), a->set_i(v);
  }
  static void attr(onnx::NodeProto *n, const std::string &name, const std::string &v) {
    auto *a = n->add_attribute();
    a->set_name(name), a->set_type(onnx::AttributeProto::STRING), a->set_s(v);
  }
  static void attrFloat(onnx::NodeProto *n, const std::string &name, float v) {
    auto *a = n->add_attribute();
    a->set_name(name), a->set_type(onnx::AttributeProto::FLOAT), a->set_f(v);
  }
  static void attrInts(onnx::NodeProto *n, const std::string &name, std::vector<int64_t> v) {
    auto *a = n->add_attribute();
    a->set_name(name), a->set_type(onnx::AttributeProto::INTS);
    for (int64_t x : v)
      a->add_ints(x);
  }
  // A Constant node: int64 (shapes, axes, pads) or float values.
  void constant(const std::string &name, std::vector<int64_t> dims, std::vector<double> v,
                int elem = onnx::TensorProto::INT64) {
    auto *a = node("Constant", {}, {name})->add_attribute();
    a->set_name("value"), a->set_type(onnx::AttributeProto::TENSOR);
    auto *t = a->mutable_t();
    t->set_data_type(elem);
    for (auto d : dims)
      t->add_dims(d);
    for (double x : v)
      elem == onnx::TensorProto::INT64 ? t->add_int64_data((int64_t)x) : t->add_float_data((float)x);
  }
  std::string bytes() const { return m.SerializeAsString(); }
};

// A reimported model computes the same: op by op, the same kinds, attributes and types.
inline void checkSameOps(const Function &f, const Function &g) {
  std::vector<const Node *> ops1, ops2;
  for (const auto &n : f.nodes())
    if (!n->info().source)
      ops1.push_back(n.get());
  for (const auto &n : g.nodes())
    if (!n->info().source)
      ops2.push_back(n.get());
  REQUIRE(ops1.size() == ops2.size());
  for (size_t i = 0; i < ops1.size(); ++i) {
    INFO(ops1[i]->describe());
    CHECK(ops1[i]->op == ops2[i]->op);
    CHECK(ops1[i]->type == ops2[i]->type);
    CHECK(ops1[i]->attrs == ops2[i]->attrs);
  }
}

inline interp::Tensor<float> randomTensor(const Shape &s, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  interp::Tensor<float> t =
      interp::Tensor<float>::from_shape(std::vector<size_t>(s.begin(), s.end()));
  for (float &v : t)
    v = u(rng);
  return t;
}


} // namespace cnnc::onnxtest
