// A tiny builder of IR functions for the stats tests: each helper adds one node with
// Function::add, which derives its type by the op's shape rule.
#pragma once

#include "ir/IR.h"

#include <string>

namespace cnnc::test {

struct NetBuilder {
  Function f{"main"};
  int next = 0;

  std::string fresh(const std::string &base) { return base + std::to_string(next++); }

  Node *node(OpKind op, const std::string &name, std::vector<Node *> ops,
             std::map<std::string, Attr> attrs = {}) {
    return f.add(op, name, std::move(ops), std::move(attrs));
  }
  Node *input(const std::string &name, Shape shape) {
    return f.add(OpKind::Input, name, {}, {}, TensorType{DType::F32, std::move(shape)});
  }
  Node *param(const std::string &name, Shape shape) {
    return f.add(OpKind::Param, name, {}, {{"init", std::string("ones")}},
                 TensorType{DType::F32, std::move(shape)});
  }
  // conv: pads [top, left, bottom, right].
  Node *conv(Node *x, int64_t m, int64_t kh, int64_t kw, std::vector<int64_t> stride = {1, 1},
             std::vector<int64_t> pads = {0, 0, 0, 0}, std::vector<int64_t> dil = {1, 1},
             int64_t groups = 1, bool bias = true) {
    std::string name = fresh("conv");
    int64_t c = x->type.shape[1];
    std::vector<Node *> ops = {x, param(name + ".w", {m, c / groups, kh, kw})};
    if (bias)
      ops.push_back(param(name + ".b", {m}));
    return node(OpKind::Conv2d, name, ops,
                {{"stride", stride}, {"pads", pads}, {"dilation", dil}, {"groups", groups}});
  }
  Node *relu(Node *x) { return node(OpKind::Relu, fresh("relu"), {x}); }
  Node *maxpool(Node *x, int64_t k, int64_t s, std::vector<int64_t> pads = {0, 0, 0, 0},
                std::vector<int64_t> dil = {1, 1}) {
    return node(OpKind::MaxPool, fresh("pool"), {x},
                {{"kernel", std::vector<int64_t>{k, k}},
                 {"stride", std::vector<int64_t>{s, s}},
                 {"pads", pads},
                 {"dilation", dil}});
  }
  Node *avgpool(Node *x, int64_t k, int64_t s, std::vector<int64_t> pads = {0, 0, 0, 0}) {
    return node(OpKind::AvgPool, fresh("avg"), {x},
                {{"kernel", std::vector<int64_t>{k, k}},
                 {"stride", std::vector<int64_t>{s, s}},
                 {"pads", pads},
                 {"count_include_pad", int64_t(1)}});
  }
  Node *add(Node *a, Node *b) { return node(OpKind::Add, fresh("add"), {a, b}); }
  Node *flatten(Node *x) { return node(OpKind::Flatten, fresh("flat"), {x}); }
  Node *fc(Node *x, int64_t m) {
    std::string name = fresh("fc");
    int64_t k = x->type.shape[1];
    return node(OpKind::FullyConnected, name,
                {x, param(name + ".w", {m, k}), param(name + ".b", {m})});
  }
  void output(Node *n) { f.outputs().push_back(n); }
};

} // namespace cnnc::test
