// Zero-size tensors through the reference interpreter, against hand-computed values: empty
// results keep their shapes, sums over an empty extent are 0 (numpy), reshape's allowzero,
// flatten of an empty batch, numpy broadcasting of 1 against 0, and .npy files of empty arrays.
#include "interp/Interpreter.h"
#include "interp/Npy.h"

#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>

using namespace cnnc;
using interp::Tensor;

namespace {

Tensor<float> empty(std::vector<size_t> shape) { return Tensor<float>::from_shape(shape); }

std::vector<size_t> shapeOf(const Tensor<float> &t) { return {t.shape().begin(), t.shape().end()}; }

std::map<std::string, Tensor<float>> runText(const std::string &body,
                                             const std::map<std::string, Tensor<float>> &feeds) {
  return interp::run<float>(parseModule("func @f {\n" + body + "}\n")->main(), feeds);
}

} // namespace

TEST_CASE("reshape allowzero and elementwise ops on zero-size tensors", "[interp][zero]") {
  // ONNX's reshape_allowzero_reordered, then ops on the empty result.
  auto out = runText("  %x = input : f32[0,3,4]\n"
                     "  %r = reshape(%x) {shape=[3,4,0], allowzero=1} : f32[3,4,0]\n"
                     "  %y = relu(%r) : f32[3,4,0]\n"
                     "  %c = constant {value=[2.0]} : f32[1,1,1]\n"
                     "  %z = mul(%y, %c) : f32[3,4,0]\n"
                     "  %f = flatten(%x) : f32[0,12]\n"
                     "  %k = reshape(%x) {shape=[0,12]} : f32[0,12]\n" // 0 copies the empty batch
                     "  return %z, %f, %k\n",
                     {{"x", empty({0, 3, 4})}});
  CHECK(shapeOf(out.at("z")) == std::vector<size_t>{3, 4, 0});
  CHECK(shapeOf(out.at("f")) == std::vector<size_t>{0, 12});
  CHECK(out.at("k").size() == 0);
  // allowzero=0: 0 copies the input's dim; the values move in row-major order.
  Tensor<float> x = {{1, 2, 3}, {4, 5, 6}};
  auto copy = runText("  %x = input : f32[2,3]\n"
                      "  %y = reshape(%x) {shape=[0,3,1]} : f32[2,3,1]\n  return %y\n",
                      {{"x", x}});
  CHECK(shapeOf(copy.at("y")) == std::vector<size_t>{2, 3, 1});
  CHECK(std::equal(x.begin(), x.end(), copy.at("y").begin(), copy.at("y").end()));
}

TEST_CASE("sums over an empty extent are 0, as in numpy", "[interp][zero]") {
  Tensor<float> bias = {0.5f, -1, 2};
  auto out = runText("  %a = input : f32[2,0]\n  %b = input : f32[0,3]\n"
                     "  %mm = matmul(%a, %b) : f32[2,3]\n"
                     "  %w = input : f32[3,0]\n  %bias = input : f32[3]\n"
                     "  %fc = fc(%a, %w, %bias) : f32[2,3]\n"
                     "  %x = input : f32[2,0,4,4]\n  %cw = input : f32[3,0,3,3]\n"
                     "  %conv = conv2d(%x, %cw, %bias) {pads=[1,1,1,1]} : f32[2,3,4,4]\n"
                     "  %r = input : f32[3,0,2]\n"
                     "  %sum = reduce_sum(%r) {axes=[1]} : f32[3,2]\n"
                     "  %p = input : f32[2,1,0]\n  %q = input : f32[0,5]\n"
                     "  %bmm = batch_matmul(%p, %q) : f32[2,1,5]\n"
                     "  return %mm, %fc, %conv, %sum, %bmm\n",
                     {{"a", empty({2, 0})},
                      {"b", empty({0, 3})},
                      {"w", empty({3, 0})},
                      {"bias", bias},
                      {"x", empty({2, 0, 4, 4})},
                      {"cw", empty({3, 0, 3, 3})},
                      {"r", empty({3, 0, 2})},
                      {"p", empty({2, 1, 0})},
                      {"q", empty({0, 5})}});
  CHECK((out.at("mm") == Tensor<float>{{0, 0, 0}, {0, 0, 0}}));
  CHECK((out.at("fc") == Tensor<float>{{0.5f, -1, 2}, {0.5f, -1, 2}})); // the bias alone
  for (size_t n = 0; n < 2; ++n)
    for (size_t m = 0; m < 3; ++m)
      for (size_t i = 0; i < 16; ++i)
        CHECK(out.at("conv").data()[(n * 3 + m) * 16 + i] == bias(m));
  CHECK((out.at("sum") == Tensor<float>{{0, 0}, {0, 0}, {0, 0}}));
  CHECK(shapeOf(out.at("bmm")) == std::vector<size_t>{2, 1, 5});
  CHECK(std::all_of(out.at("bmm").begin(), out.at("bmm").end(), [](float v) { return v == 0; }));
}

TEST_CASE("an empty batch through conv, pooling, softmax and concat", "[interp][zero]") {
  Tensor<float> w = Tensor<float>::from_shape({4, 3, 3, 3});
  w.fill(0.25f);
  Tensor<float> x2 = {{{1, 2}}, {{3, 4}}};
  auto out = runText("  %x = input : f32[0,3,6,6]\n  %w = input : f32[4,3,3,3]\n"
                     "  %c = conv2d(%x, %w) : f32[0,4,4,4]\n"
                     "  %p = maxpool(%c) {kernel=[2,2], stride=[2,2]} : f32[0,4,2,2]\n"
                     "  %g = global_avgpool(%p) : f32[0,4,1,1]\n"
                     "  %s = softmax(%g) : f32[0,4,1,1]\n"
                     "  %e = input : f32[2,0,2]\n  %x2 = input : f32[2,1,2]\n"
                     "  %cat = concat(%e, %x2, %e) : f32[2,1,2]\n"
                     "  %b = add(%e, %x2) : f32[2,0,2]\n"
                     "  return %s, %cat, %b\n",
                     {{"x", empty({0, 3, 6, 6})}, {"w", w}, {"e", empty({2, 0, 2})}, {"x2", x2}});
  CHECK(shapeOf(out.at("s")) == std::vector<size_t>{0, 4, 1, 1});
  CHECK((out.at("cat") == x2));
  // numpy broadcasting: a 1 against a 0 gives 0 (not the larger size).
  CHECK(shapeOf(out.at("b")) == std::vector<size_t>{2, 0, 2});
}

TEST_CASE(".npy files of empty arrays round-trip", "[interp][zero][npy]") {
  const std::string p =
      (std::filesystem::temp_directory_path() / "cnnc_interp_test_empty.npy").string();
  for (DType t : {DType::F32, DType::I64}) {
    interp::saveNpy(p, empty({0, 3, 4}), t);
    Tensor<float> back = interp::loadNpy<float>(p);
    CHECK(shapeOf(back) == std::vector<size_t>{0, 3, 4});
  }
  std::remove(p.c_str());
}
