// The seed's worked examples (Wu, "Introduction to CNNs"), run through the interpreter: the
// numbers on the right-hand sides are the seed's, not ours.
#include "interp/Im2row.h"
#include "interp/Interpreter.h"
#include "interp/Kernels.h"

#include <catch2/catch.hpp>
#include <xtensor/xrandom.hpp>

using namespace cnnc;
using interp::Tensor;

namespace {

// Figure 3 / eq. 16's input A, also Figure 5's.
const Tensor<double> kA = {{1, 2, 3, 1}, {4, 5, 6, 1}, {7, 8, 9, 1}};

Tensor<double> runOne(const std::string &text, const std::map<std::string, Tensor<double>> &feeds) {
  auto m = parseModule(text);
  auto out = interp::run<double>(m->main(), feeds);
  REQUIRE(out.size() == 1);
  return out.begin()->second;
}

} // namespace

TEST_CASE("seed eq. 16: the 3x4 by 2x2 convolution", "[interp][seed]") {
  const std::string ir = "func @eq16 {\n"
                         "  %x = input : f64[1,1,3,4]\n"
                         "  %f = param : f64[1,1,2,2]\n"
                         "  %y = conv2d(%x, %f) : f64[1,1,2,3]\n"
                         "  return %y\n}\n";
  Tensor<double> x = kA;
  x.reshape({1, 1, 3, 4});
  Tensor<double> y = runOne(ir, {{"x", x}, {"f", xt::ones<double>({1, 1, 2, 2})}});
  const Tensor<double> want = {{{{12, 16, 11}, {24, 28, 17}}}};
  CHECK((y == want));
}

TEST_CASE("seed section 6.3: im2row of eq. 16's A is B^T", "[interp][seed]") {
  // Matlab's B = im2col(A, [2 2]) as printed in the seed.
  const Tensor<double> B = {
      {1, 4, 2, 5, 3, 6}, {4, 7, 5, 8, 6, 9}, {2, 5, 3, 6, 1, 1}, {5, 8, 6, 9, 1, 1}};
  Tensor<double> a = kA;
  a.reshape({1, 3, 4});
  Tensor<double> phi = interp::im2row(a, 2, 2);
  CHECK((phi == Tensor<double>(xt::transpose(B))));
  // eq. 17: B^T (1,1,1,1)^T = (12, 24, 16, 28, 11, 17)^T, vec(y) in column-major order.
  Tensor<double> ones = xt::ones<double>({4, 1});
  Tensor<double> v = interp::matMul(phi, ones, false, false);
  v.reshape({6});
  CHECK((v == Tensor<double>{12, 24, 16, 28, 11, 17}));
}

TEST_CASE("seed eq. 22: vec(y) = vec(phi(x) F) for a multi-channel convolution", "[interp][seed]") {
  xt::random::seed(7);
  const int64_t C = 3, H = 5, W = 6, M = 4, kh = 2, kw = 3;
  Tensor<double> x = xt::random::randn<double>(std::vector<size_t>{1, C, H, W});
  Tensor<double> w = xt::random::randn<double>(std::vector<size_t>{M, C, kh, kw});
  Tensor<double> y = interp::conv2d<double>(x, w, nullptr, {});
  const int64_t Ho = H - kh + 1, Wo = W - kw + 1;

  // F: kernel m vectorised column-major, (i, j, d^l) -> q = i + kh j + kh kw d^l (eq. 19).
  Tensor<double> F = Tensor<double>::from_shape({(size_t)(kh * kw * C), (size_t)M});
  for (int64_t m = 0; m < M; ++m)
    for (int64_t d = 0; d < C; ++d)
      for (int64_t j = 0; j < kw; ++j)
        for (int64_t i = 0; i < kh; ++i)
          F(i + kh * j + kh * kw * d, m) = w(m, d, i, j);
  Tensor<double> img = xt::view(x, 0);
  Tensor<double> phiF = interp::matMul(interp::im2row(img, kh, kw), F, false, false);
  REQUIRE((phiF.shape(0) == (size_t)(Ho * Wo)));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t jo = 0; jo < Wo; ++jo)
      for (int64_t io = 0; io < Ho; ++io)
        CHECK(phiF(io + Ho * jo, m) == Approx(y(0, m, io, jo)).epsilon(1e-12));
}

TEST_CASE("seed section 7: overlapping 2x2 stride-1 max pooling of Figure 5's input",
          "[interp][seed]") {
  const std::string ir = "func @fig5 {\n"
                         "  %x = input : f64[1,1,3,4]\n"
                         "  %y = maxpool(%x) {kernel=[2,2]} : f64[1,1,2,3]\n"
                         "  return %y\n}\n";
  Tensor<double> x = kA;
  x.reshape({1, 1, 3, 4});
  const Tensor<double> want = {{{{5, 6, 6}, {8, 9, 9}}}};
  CHECK((runOne(ir, {{"x", x}}) == want));
}
