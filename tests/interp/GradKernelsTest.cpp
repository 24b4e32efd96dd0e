// Direct tests of the autodiff/training kernels (interp/GradKernels.h) where PyTorch is no
// oracle: max-pool ties (brute force against the forward kernel's value), adjoint identities
// <A x, y> = <x, A^T y> for avgpool_grad and row2im over many attribute combinations, label
// errors, and update.
#include "interp/GradKernels.h"
#include "interp/Interpreter.h"

#include <catch2/catch.hpp>
#include <xtensor/xrandom.hpp>

#include <cmath>

using namespace cnnc;
using namespace cnnc::interp;
using Catch::Matchers::Contains;

namespace {

double dot(const Tensor<double> &a, const Tensor<double> &b) {
  REQUIRE(a.shape() == b.shape());
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i)
    s += a.data()[i] * b.data()[i];
  return s;
}

// Small integers: many ties, exact sums.
Tensor<double> smallInts(std::vector<size_t> shape, int lo, int hi) {
  return xt::cast<double>(xt::random::randint<int>(shape, lo, hi + 1));
}

struct Window {
  std::array<int64_t, 2> kernel, stride;
  std::array<int64_t, 4> pads;
  std::array<int64_t, 2> dilation;
  bool ceil;
};

const std::vector<Window> kWindows = {
    {{2, 2}, {2, 2}, {0, 0, 0, 0}, {1, 1}, false}, {{2, 2}, {1, 1}, {0, 0, 0, 0}, {1, 1}, false},
    {{3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}, false}, {{3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}, true},
    {{3, 2}, {1, 2}, {0, 1, 2, 1}, {1, 1}, false}, {{2, 2}, {1, 1}, {1, 0, 0, 1}, {2, 2}, false},
    {{3, 3}, {3, 3}, {0, 0, 0, 0}, {1, 1}, true},  {{2, 3}, {2, 2}, {1, 2, 1, 2}, {1, 1}, true},
};

PoolParams poolParams(const Window &w, bool includePad = false) {
  PoolParams p;
  p.kernel = w.kernel, p.stride = w.stride, p.pads = w.pads, p.dilation = w.dilation;
  p.ceilMode = w.ceil, p.countIncludePad = includePad;
  return p;
}

} // namespace

TEST_CASE("maxpool_grad sends dy to the first position holding maxpool's value",
          "[interp][grad][ties]") {
  xt::random::seed(7);
  for (const Window &w : kWindows) {
    for (int lo : {-3, 0}) { // lo = -3: all values negative, where a padded 0 would win
      const int hi = lo == -3 ? -1 : 2;
      const Tensor<double> x = smallInts({2, 2, 7, 6}, lo, hi);
      const PoolParams p = poolParams(w);
      const Tensor<double> y = maxPool(x, p);
      const Tensor<double> dy =
          smallInts(std::vector<size_t>(y.shape().begin(), y.shape().end()), 1, 9);
      // Brute force from the rule: scan each window in row-major order over real positions;
      // the first whose value equals the forward output takes the window's dy.
      Tensor<double> want = xt::zeros<double>(x.shape());
      for (size_t n = 0; n < y.shape(0); ++n)
        for (size_t c = 0; c < y.shape(1); ++c)
          for (size_t oh = 0; oh < y.shape(2); ++oh)
            for (size_t ow = 0; ow < y.shape(3); ++ow) {
              bool done = false;
              for (int64_t i = 0; i < w.kernel[0] && !done; ++i)
                for (int64_t j = 0; j < w.kernel[1] && !done; ++j) {
                  const int64_t ih = (int64_t)oh * w.stride[0] - w.pads[0] + i * w.dilation[0];
                  const int64_t iw = (int64_t)ow * w.stride[1] - w.pads[1] + j * w.dilation[1];
                  if (ih < 0 || iw < 0 || ih >= 7 || iw >= 6)
                    continue;
                  if (x(n, c, ih, iw) == y(n, c, oh, ow))
                    want(n, c, ih, iw) += dy(n, c, oh, ow), done = true;
                }
              REQUIRE(done);
            }
      INFO("kernel " << w.kernel[0] << "x" << w.kernel[1] << " lo " << lo);
      CHECK((maxPoolGrad(dy, x, p) == want));
      const Tensor<float> want32 = xt::cast<float>(want);
      CHECK((maxPoolGrad<float>(xt::cast<float>(dy), xt::cast<float>(x), p) == want32));
    }
  }
}

TEST_CASE("avgpool_grad is the adjoint of avgpool", "[interp][grad]") {
  xt::random::seed(11);
  for (const Window &w : kWindows) {
    if (w.dilation[0] != 1)
      continue; // avgpool has no dilation
    for (bool include : {false, true}) {
      const PoolParams p = poolParams(w, include);
      const Tensor<double> x = xt::random::randn<double>({2, 3, 7, 6});
      const Tensor<double> y = avgPool(x, p);
      const Tensor<double> dy =
          xt::random::randn<double>(std::vector<size_t>(y.shape().begin(), y.shape().end()));
      const double lhs = dot(y, dy), rhs = dot(x, avgPoolGrad(dy, {2, 3, 7, 6}, p));
      INFO("kernel " << w.kernel[0] << "x" << w.kernel[1] << " include " << include);
      CHECK(lhs == Approx(rhs).epsilon(1e-12));
    }
  }
}

TEST_CASE("row2im is the adjoint of im2row, and im2row times F is conv2d", "[interp][grad]") {
  xt::random::seed(13);
  struct Case {
    std::vector<int64_t> x;
    std::array<int64_t, 2> kernel;
    ConvParams p;
  };
  const std::vector<Case> cases = {
      {{2, 3, 6, 5}, {3, 3}, {{1, 1}, {0, 0, 0, 0}, {1, 1}, 1}},
      {{1, 4, 7, 7}, {3, 2}, {{2, 1}, {0, 1, 2, 1}, {1, 1}, 2}},
      {{2, 2, 8, 7}, {2, 3}, {{1, 2}, {1, 1, 1, 1}, {2, 2}, 1}},
      {{1, 6, 5, 5}, {3, 3}, {{2, 2}, {1, 1, 1, 1}, {1, 1}, 6}},
  };
  for (const Case &c : cases) {
    const std::vector<size_t> xs(c.x.begin(), c.x.end());
    const Tensor<double> x = xt::random::randn<double>(xs);
    const Tensor<double> rows = im2rowGrouped(x, c.kernel, c.p);
    const Tensor<double> r =
        xt::random::randn<double>(std::vector<size_t>(rows.shape().begin(), rows.shape().end()));
    CHECK(dot(rows, r) == Approx(dot(x, row2imGrouped(r, c.x, c.kernel, c.p))).epsilon(1e-12));

    // Seed eq. 22 per group: conv2d(x, w)[n, g*Mg+m, oh, ow] = sum_q rows[g, row, q] w[g*Mg+m, q].
    const int64_t G = c.p.groups, M = 2 * G, Cg = c.x[1] / G, Mg = M / G;
    const Tensor<double> w = xt::random::randn<double>(
        {(size_t)M, (size_t)Cg, (size_t)c.kernel[0], (size_t)c.kernel[1]});
    const Tensor<double> y = conv2d<double>(x, w, nullptr, c.p);
    const int64_t Q = rows.shape(2), Ho = y.shape(2), Wo = y.shape(3);
    double worst = 0;
    for (int64_t n = 0; n < c.x[0]; ++n)
      for (int64_t m = 0; m < M; ++m)
        for (int64_t oh = 0; oh < Ho; ++oh)
          for (int64_t ow = 0; ow < Wo; ++ow) {
            double acc = 0;
            for (int64_t q = 0; q < Q; ++q)
              acc += rows(m / Mg, (n * Ho + oh) * Wo + ow, q) * w.data()[m * Q + q];
            worst = std::max(worst, std::abs(acc - y(n, m, oh, ow)));
          }
    CHECK(worst < 1e-12);
  }
}

TEST_CASE("count_correct and softmax_xent_grad validate labels like softmax_xent",
          "[interp][grad][errors]") {
  for (const char *op : {"count_correct", "softmax_xent_grad"}) {
    const bool grad = std::string(op) == "softmax_xent_grad";
    const std::string ir =
        std::string("func @f {\n  %z = input : f32[2,3]\n  %l = input : i32[2]\n") +
        (grad ? "  %dz = input : f32[]\n  %r = softmax_xent_grad(%dz, %z, %l) : f32[2,3]\n"
              : "  %r = count_correct(%z, %l) : i32[]\n") +
        "  return %r\n}\n";
    auto m = parseModule(ir);
    auto withLabels = [&](Tensor<float> l) {
      std::map<std::string, Tensor<float>> feeds{{"z", {{1, 3, 3}, {0, 0, -1}}}, {"l", l}};
      if (grad)
        feeds["dz"] = Tensor<float>(1.0f);
      return run<float>(m->main(), feeds).at("r");
    };
    INFO(op);
    CHECK_NOTHROW(withLabels({2, 0}));
    CHECK_THROWS_WITH(withLabels({3, 0}), Contains("%r") && Contains("[0, 3)"));
    CHECK_THROWS_WITH(withLabels({0, -1}), Contains("%r") && Contains("example 1"));
    CHECK_THROWS_WITH(withLabels({0.5f, 1}), Contains("%r") && Contains("0.5"));
    CHECK_THROWS_WITH(withLabels({NAN, 1}), Contains("%r"));
    if (!grad) { // row 0 ties between 1 and 2: the first (1) is the prediction
      CHECK(withLabels({1, 0})() == 2);
      CHECK(withLabels({2, 0})() == 1);
      CHECK(withLabels({2, 1})() == 0);
    }
  }
}

TEST_CASE("update's value is its second operand", "[interp][grad]") {
  const std::string ir = "func @f {\n  %w = param {trainable=0} : f32[2]\n  %v = input : f32[2]\n"
                         "  %w.next = update(%w, %v) : f32[2]\n  return %w.next\n}\n";
  auto m = parseModule(ir);
  auto out = run<double>(m->main(), {{"w", {1, 2}}, {"v", {5, -7}}});
  CHECK((out.at("w.next") == Tensor<double>{5, -7}));
}
