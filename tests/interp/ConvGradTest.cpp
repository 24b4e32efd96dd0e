// The fused conv2d gradients (conv2d_grad_filter / conv2d_grad_input) against the chain they
// replace, in the f64 interpreter: autodiff's real im2row/matmul/row2im chain (seed eqs. 35,
// 45, 46) is evaluated, fuse-conv-grad rewrites it, and the same nodes are evaluated again.
// The fused kernels sum in the chain's order, so the values must agree to the last bit, over
// a sweep of strides, pads, dilations, groups and non-square shapes.
#include "interp/Interpreter.h"
#include "passes/Autodiff.h"
#include "passes/Passes.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <random>

using namespace cnnc;

namespace {

using Ints = std::vector<int64_t>;

struct Geo {
  Shape x;   // [N, C, H, W]
  Shape w;   // [M, C/G, kh, kw]
  Ints stride, pads, dilation;
  int64_t groups;
};

std::string str(const Geo &g) {
  return fmt::format("x {} w {} stride {} pads {} dilation {} groups {}", shapeStr(g.x),
                     shapeStr(g.w), attrStr(g.stride), attrStr(g.pads), attrStr(g.dilation),
                     g.groups);
}

void check(const Geo &g) {
  INFO(str(g));
  Module m;
  Function &f = m.addFunction("t");
  Node *x = f.add(OpKind::Param, "x", {}, {}, TensorType{DType::F32, g.x});
  Node *w = f.add(OpKind::Param, "w", {}, {}, TensorType{DType::F32, g.w});
  Node *y = f.add(OpKind::Conv2d, "y", {x, w},
                  {{"stride", g.stride}, {"pads", g.pads}, {"dilation", g.dilation},
                   {"groups", g.groups}});
  Node *t = f.add(OpKind::Input, "t", {}, {}, y->type);
  Node *loss = f.add(OpKind::L2Loss, "loss", {y, t});
  f.outputs().push_back(loss);
  auto grads = appendGradients(f, loss, {x, w});
  Node *dx = grads.at(x), *dw = grads.at(w);
  REQUIRE(dx->op == OpKind::Row2Im);
  verify(f);

  std::mt19937_64 rng(g.x[2] * 131 + g.w[0]);
  std::uniform_real_distribution<double> u(-1, 1);
  std::map<std::string, interp::Tensor<double>> feeds;
  for (const auto &n : f.nodes())
    if (n->info().source) {
      std::vector<size_t> s(n->type.shape.begin(), n->type.shape.end());
      interp::Tensor<double> v = interp::Tensor<double>::from_shape(s);
      for (double &e : v)
        e = u(rng);
      feeds[n->name] = v;
    }
  auto index = [&](const Node *n) {
    for (size_t i = 0; i < f.nodes().size(); ++i)
      if (f.nodes()[i].get() == n)
        return i;
    FAIL("node not found");
    return size_t(0);
  };
  auto before = interp::evaluate<double>(f, feeds);
  interp::Tensor<double> dx0 = before[index(dx)], dw0 = before[index(dw)];

  REQUIRE(fuseConvGrad(f));
  verify(f);
  CHECK(dw->op == OpKind::Conv2dGradFilter);
  CHECK(dx->op == OpKind::Conv2dGradInput);
  auto after = interp::evaluate<double>(f, feeds);
  const interp::Tensor<double> &dx1 = after[index(dx)], &dw1 = after[index(dw)];
  REQUIRE(dx1.shape() == dx0.shape());
  REQUIRE(dw1.shape() == dw0.shape());
  size_t diffs = 0;
  for (size_t i = 0; i < dx0.size(); ++i)
    diffs += dx0.data()[i] != dx1.data()[i];
  for (size_t i = 0; i < dw0.size(); ++i)
    diffs += dw0.data()[i] != dw1.data()[i];
  CHECK(diffs == 0); // bit for bit: the same sums in the same order
  double dxMax = 0, dwMax = 0;
  for (double v : dx0)
    dxMax = std::max(dxMax, std::abs(v));
  for (double v : dw0)
    dwMax = std::max(dwMax, std::abs(v));
  CHECK(dxMax > 0); // the comparison is not vacuous
  CHECK(dwMax > 0);
}

} // namespace

TEST_CASE("fused conv2d gradients equal the im2row/matmul/row2im chain bit for bit (f64)",
          "[interp][conv][fuse]") {
  const Ints one{1, 1}, nopad{0, 0, 0, 0};
  // plain, as MNIST BASE's convs (5x5, 4x4 and 1x1 kernels)
  check({{2, 3, 8, 8}, {4, 3, 5, 5}, one, nopad, one, 1});
  check({{3, 5, 4, 4}, {7, 5, 4, 4}, one, nopad, one, 1});
  check({{2, 9, 1, 1}, {10, 9, 1, 1}, one, nopad, one, 1});
  // stride, asymmetric pads, non-square input and kernel
  check({{2, 3, 7, 6}, {5, 3, 3, 2}, {2, 1}, {1, 0, 2, 1}, one, 1});
  check({{1, 2, 9, 5}, {3, 2, 2, 3}, {3, 2}, {0, 2, 1, 0}, one, 1});
  // dilation
  check({{2, 2, 9, 8}, {3, 2, 3, 3}, {1, 2}, {1, 1, 1, 1}, {2, 3}, 1});
  // groups, grouped with everything, depthwise
  check({{2, 4, 6, 5}, {6, 2, 3, 3}, one, {1, 1, 1, 1}, one, 2});
  check({{2, 6, 9, 7}, {9, 2, 3, 2}, {2, 1}, {0, 1, 2, 1}, {2, 2}, 3});
  check({{3, 4, 5, 5}, {4, 1, 3, 3}, {2, 2}, {1, 1, 1, 1}, one, 4});
  // the window wider than the stride leaves pixels no window reads (their gradient is 0)
  check({{1, 2, 8, 8}, {2, 2, 2, 2}, {3, 3}, nopad, one, 1});
}

TEST_CASE("fuse-conv-grad leaves a chain alone when an intermediate has another user",
          "[interp][conv][fuse]") {
  Module m;
  Function &f = m.addFunction("t");
  Node *x = f.add(OpKind::Param, "x", {}, {}, TensorType{DType::F32, {2, 3, 6, 6}});
  Node *w = f.add(OpKind::Param, "w", {}, {}, TensorType{DType::F32, {4, 3, 3, 3}});
  Node *y = f.add(OpKind::Conv2d, "y", {x, w});
  Node *t = f.add(OpKind::Input, "t", {}, {}, y->type);
  Node *loss = f.add(OpKind::L2Loss, "loss", {y, t});
  f.outputs().push_back(loss);
  auto grads = appendGradients(f, loss, {x, w});
  // keep phi(x) and the input-gradient product alive as outputs: both must be materialised
  for (const auto &n : f.nodes())
    if (n->op == OpKind::Im2Row || (n->op == OpKind::MatMul && !n->getInt("trans_a")))
      f.outputs().push_back(n.get());
  CHECK_FALSE(fuseConvGrad(f));
  CHECK(grads.at(w)->op == OpKind::Reshape);
  CHECK(grads.at(x)->op == OpKind::Row2Im);
}
