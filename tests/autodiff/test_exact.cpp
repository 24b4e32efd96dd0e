// Gradients where finite differences do not apply (ties, kinks) are checked against the
// exact value the documented rule gives, and the seed's worked examples by hand.
#include "GradCheck.h"

#include <catch2/catch.hpp>

#include <sstream>

using namespace cnnc;
using namespace cnnc::test;

namespace {
interp::Tensor<double> tensor(std::vector<size_t> shape, std::vector<double> v) {
  interp::Tensor<double> t = xt::zeros<double>(shape);
  std::copy(v.begin(), v.end(), t.begin());
  return t;
}

// Elementwise equality, with both tensors printed on failure.
bool sameTensor(const interp::Tensor<double> &a, const interp::Tensor<double> &b) {
  bool same = a.shape() == b.shape() && std::equal(a.begin(), a.end(), b.begin());
  if (!same) {
    std::ostringstream os;
    os << "got     ";
    for (double v : a)
      os << ' ' << v;
    os << "\nexpected";
    for (double v : b)
      os << ' ' << v;
    WARN(os.str());
  }
  return same;
}

} // namespace

TEST_CASE("the seed's 'element 9' example: overlapping max-pool windows add up (section 7)", "[autodiff][seed]") {
  // Figure 5's input, 2x2 max pooling with stride 1: 9 is the maximum of two windows.
  std::string text = "func @t {\n  %x = param : f32[1,1,3,4]\n"
                     "  %y = maxpool(%x) {kernel=[2,2]} : f32[1,1,2,3]\n  %g = input : f32[1,1,2,3]\n"
                     "  %p = mul(%y, %g) : f32[1,1,2,3]\n  %z = reduce_sum(%p) {axes=[0,1,2,3]} : f32[]\n"
                     "  return %z\n}\n";
  Feeds feeds{{"x", tensor({1, 1, 3, 4}, {1, 2, 3, 1, 4, 5, 6, 1, 7, 8, 9, 1})},
              {"g", tensor({1, 1, 2, 3}, {1, 2, 3, 4, 5, 6})}};
  Feeds d = gradients(text, {"x"}, feeds);
  // y = [[5,6,6],[8,9,9]]: 5 <- g(0,0); 6 <- g(0,1)+g(0,2); 8 <- g(1,0); 9 <- g(1,1)+g(1,2).
  CHECK(sameTensor(d.at("x"), tensor({1, 1, 3, 4}, {0, 0, 0, 0, 0, 1, 5, 0, 0, 4, 11, 0})));
}

TEST_CASE("max-pool ties go to the first maximum in row-major window order", "[autodiff][ties]") {
  std::string text = "func @t {\n  %x = param : f32[1,1,2,4]\n"
                     "  %y = maxpool(%x) {kernel=[2,2], stride=[2,2]} : f32[1,1,1,2]\n  %g = input : f32[1,1,1,2]\n"
                     "  %p = mul(%y, %g) : f32[1,1,1,2]\n  %z = reduce_sum(%p) {axes=[0,1,2,3]} : f32[]\n"
                     "  return %z\n}\n";
  // Window 1 is all 3s; window 2 has its two maxima at (1,0) and (1,1) of the window.
  Feeds feeds{{"x", tensor({1, 1, 2, 4}, {3, 3, 0, 1, 3, 3, 2, 2})}, {"g", tensor({1, 1, 1, 2}, {10, 20})}};
  Feeds d = gradients(text, {"x"}, feeds);
  CHECK(sameTensor(d.at("x"), tensor({1, 1, 2, 4}, {10, 0, 0, 0, 0, 0, 20, 0})));
}

TEST_CASE("ReLU at exactly 0 passes no gradient (seed eq. 13's indicator [x > 0])", "[autodiff][kinks]") {
  std::string text = "func @t {\n  %x = param : f32[1,5]\n  %y = relu(%x) : f32[1,5]\n  %g = input : f32[1,5]\n"
                     "  %p = mul(%y, %g) : f32[1,5]\n  %z = reduce_sum(%p) {axes=[0,1]} : f32[]\n  return %z\n}\n";
  Feeds feeds{{"x", tensor({1, 5}, {-1, 0, 1e-30, 2, -0.0})}, {"g", tensor({1, 5}, {1, 2, 3, 4, 5})}};
  CHECK(sameTensor(gradients(text, {"x"}, feeds).at("x"), tensor({1, 5}, {0, 0, 3, 4, 0})));
}

TEST_CASE("the seed's convolution example (eq. 16) differentiated by eqs. 35 and 46", "[autodiff][seed]") {
  std::string text = "func @t {\n  %x = param : f32[1,1,3,4]\n  %w = param : f32[1,1,2,2]\n"
                     "  %y = conv2d(%x, %w) : f32[1,1,2,3]\n  %g = input : f32[1,1,2,3]\n"
                     "  %p = mul(%y, %g) : f32[1,1,2,3]\n  %z = reduce_sum(%p) {axes=[0,1,2,3]} : f32[]\n"
                     "  return %z\n}\n";
  Feeds feeds{{"x", tensor({1, 1, 3, 4}, {1, 2, 3, 1, 4, 5, 6, 1, 7, 8, 9, 1})},
              {"w", tensor({1, 1, 2, 2}, {1, 1, 1, 1})},
              {"g", tensor({1, 1, 2, 3}, {1, 0, 0, 0, 0, 0})}};
  // dz/dY selects output (0,0): dF = phi^T dY is the first 2x2 region [[1,2],[4,5]] (eq. 35);
  // dX spreads F over that region (eq. 46).
  Feeds d = gradients(text, {"x", "w"}, feeds);
  CHECK(sameTensor(d.at("w"), tensor({1, 1, 2, 2}, {1, 2, 4, 5})));
  CHECK(sameTensor(d.at("x"), tensor({1, 1, 3, 4}, {1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0})));
  // With dz/dY all ones, the seed's Figure 5: input 5 is in 4 windows, so its gradient is 4.
  feeds["g"] = tensor({1, 1, 2, 3}, {1, 1, 1, 1, 1, 1});
  CHECK(sameTensor(gradients(text, {"x"}, feeds).at("x"), tensor({1, 1, 3, 4}, {1, 2, 2, 1, 2, 4, 4, 2, 1, 2, 2, 1})));
}
