// Direct tests of the interpreter: source nodes, dropout's generator and mask, the .npy
// bridge, and every user error (missing or misshapen feeds, bad labels, bad files).
#include "interp/DropoutHash.h"
#include "interp/Interpreter.h"
#include "interp/Npy.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <xtensor/xrandom.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

using namespace cnnc;
using Catch::Matchers::Contains;
using interp::Tensor;

namespace {

template <class T = float>
std::map<std::string, Tensor<T>> runText(const std::string &text,
                                         const std::map<std::string, Tensor<T>> &feeds,
                                         interp::RunOptions opts = {}) {
  auto m = parseModule(text);
  return interp::run<T>(m->main(), feeds, opts);
}

std::string tmpPath(const std::string &name) {
  return (std::filesystem::temp_directory_path() / ("cnnc_interp_test_" + name)).string();
}

} // namespace

// ---------------------------------------------------------------------------- sources --
TEST_CASE("input, param and constant nodes", "[interp]") {
  const std::string ir = "func @src {\n"
                         "  %x = input : f32[2,3]\n"
                         "  %w = param {init=\"he\"} : f32[3]\n"
                         "  %c = constant {value=[1.0,2.0,3.0,4.0,5.0,6.0]} : f32[2,3]\n"
                         "  %h = constant {value=[0.5]} : f32[]\n"
                         "  %a = add(%x, %w) : f32[2,3]\n"
                         "  %b = mul(%a, %c) : f32[2,3]\n"
                         "  %y = mul(%b, %h) : f32[2,3]\n"
                         "  return %y, %c\n}\n";
  Tensor<float> x = {{1, 1, 1}, {2, 2, 2}}, w = {10, 20, 30};
  auto out = runText<float>(ir, {{"x", x}, {"w", w}});
  CHECK((out.at("c") == Tensor<float>{{1, 2, 3}, {4, 5, 6}}));
  CHECK((out.at("y") == Tensor<float>{{5.5f, 21, 46.5f}, {24, 55, 96}}));

  auto values = interp::evaluate<double>(parseModule(ir)->main(),
                                         {{"x", xt::cast<double>(x)}, {"w", xt::cast<double>(w)}});
  REQUIRE(values.size() == 7);
  CHECK(values[3].dimension() == 0);
  CHECK(values[3]() == 0.5);
}

TEST_CASE("a missing feed is an error naming the node", "[interp][errors]") {
  const std::string ir = "func @f {\n"
                         "  %x = input : f32[2]\n"
                         "  %w = param : f32[2]\n"
                         "  %y = add(%x, %w) : f32[2]\n"
                         "  return %y\n}\n";
  CHECK_THROWS_WITH(runText<float>(ir, {{"x", Tensor<float>{1, 2}}}),
                    Contains("%w") && Contains("param") && Contains("no value fed"));
  CHECK_THROWS_WITH(runText<double>(ir, {{"w", Tensor<double>{1, 2}}}),
                    Contains("%x") && Contains("input"));
}

TEST_CASE("a feed of the wrong shape is an error naming the node", "[interp][errors]") {
  const std::string ir = "func @f {\n"
                         "  %x = input : f32[2,3]\n"
                         "  %y = relu(%x) : f32[2,3]\n"
                         "  return %y\n}\n";
  CHECK_THROWS_WITH(runText<float>(ir, {{"x", Tensor<float>{{1, 2}, {3, 4}, {5, 6}}}}),
                    Contains("%x") && Contains("[3,2]") && Contains("f32[2,3]"));
  CHECK_THROWS_WITH(runText<float>(ir, {{"x", Tensor<float>{1, 2, 3, 4, 5, 6}}}),
                    Contains("%x") && Contains("[6]"));
  CHECK_NOTHROW(runText<float>(ir, {{"x", Tensor<float>{{1, 2, 3}, {4, 5, 6}}}}));
}

TEST_CASE("labels out of range or non-integral are errors naming the loss node",
          "[interp][errors]") {
  const std::string ir = "func @f {\n"
                         "  %z = input : f32[2,3]\n"
                         "  %l = input : i32[2]\n"
                         "  %loss = softmax_xent(%z, %l) : f32[]\n"
                         "  return %loss\n}\n";
  Tensor<float> z = {{1, 2, 3}, {0, 0, 0}};
  auto withLabels = [&](Tensor<float> l) { return runText<float>(ir, {{"z", z}, {"l", l}}); };
  CHECK_NOTHROW(withLabels({2, 0}));
  CHECK_THROWS_WITH(withLabels({3, 0}), Contains("%loss") && Contains("[0, 3)"));
  CHECK_THROWS_WITH(withLabels({0, -1}), Contains("%loss") && Contains("example 1"));
  CHECK_THROWS_WITH(withLabels({0.5f, 1}), Contains("%loss") && Contains("0.5"));
  CHECK_THROWS_WITH(withLabels({NAN, 1}), Contains("%loss"));
  // The loss itself: mean of log(sum exp z) - z[label].
  const double l0 = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)) - 3, l1 = std::log(3.0);
  CHECK(withLabels({2, 0}).at("loss")() == Approx((l0 + l1) / 2).epsilon(1e-6));
}

// ---------------------------------------------------------------------------- dropout --
TEST_CASE("the dropout generator is splitmix64", "[interp][dropout]") {
  // The first outputs of SplitMix64 seeded with 0 (Vigna's reference implementation).
  CHECK(interp::splitmix64(0) == 0xe220a8397b1dcdafULL);
  CHECK(interp::splitmix64(0x9e3779b97f4a7c15ULL) == 0x6e789e6aa1b965f4ULL);
  const uint64_t key = interp::dropoutKey(42, 7);
  CHECK(key == interp::splitmix64(interp::splitmix64(42) ^ 7));
  CHECK(interp::dropoutUniform(key, 5) ==
        (double)(interp::splitmix64(key ^ 5) >> 11) / 9007199254740992.0);
}

TEST_CASE("dropout is the identity at inference", "[interp][dropout]") {
  const std::string ir = "func @f {\n"
                         "  %x = input : f32[4,5]\n"
                         "  %y = dropout(%x) {rate=0.7, seed=3} : f32[4,5]\n"
                         "  return %y\n}\n";
  Tensor<float> x = xt::random::randn<float>({4, 5});
  CHECK((runText<float>(ir, {{"x", x}}, {.step = 9}).at("y") == x));
}

TEST_CASE("training dropout: mask statistics, exact scaling, reproducible per step",
          "[interp][dropout]") {
  const double rate = 0.3;
  const std::string ir =
      fmt::format("func @f {{\n"
                  "  %x = input : f32[100,1000]\n"
                  "  %y = dropout(%x) {{rate={}, training=1, seed=11}} : f32[100,1000]\n"
                  "  return %y\n}}\n",
                  rate);
  Tensor<float> x = xt::random::rand<float>({100, 1000}, 1.0f, 2.0f); // never zero
  auto drop = [&](uint64_t step) { return runText<float>(ir, {{"x", x}}, {.step = step}).at("y"); };
  Tensor<float> y = drop(5);
  const float scale = float(1.0 / (1.0 - rate));
  size_t dropped = 0;
  bool exact = true;
  for (size_t i = 0; i < x.size(); ++i) {
    if (y.data()[i] == 0)
      ++dropped;
    else
      exact = exact && y.data()[i] == x.data()[i] * scale;
  }
  CHECK(exact);
  // 1e5 Bernoulli(0.3) draws: the standard deviation of the fraction is 0.00145.
  CHECK(std::abs((double)dropped / x.size() - rate) < 0.01);

  CHECK((drop(5) == y)); // same step: bitwise the same
  Tensor<float> other = drop(6);
  size_t differ = 0;
  for (size_t i = 0; i < x.size(); ++i)
    differ += (other.data()[i] == 0) != (y.data()[i] == 0);
  // Independent masks disagree on 2 * 0.3 * 0.7 = 42% of the elements.
  CHECK(std::abs((double)differ / x.size() - 0.42) < 0.01);

  // The double-precision interpreter draws the same mask.
  Tensor<double> y64 = runText<double>(ir, {{"x", xt::cast<double>(x)}}, {.step = 5}).at("y");
  size_t maskDiffers = 0;
  for (size_t i = 0; i < x.size(); ++i)
    maskDiffers += (y64.data()[i] == 0) != (y.data()[i] == 0);
  CHECK(maskDiffers == 0);
}

TEST_CASE("dropout's optional step operand replaces the run's step", "[interp][dropout]") {
  const std::string ir = "func @f {\n"
                         "  %x = input : f32[50]\n"
                         "  %s = input : i64[]\n"
                         "  %y = dropout(%x, %s) {rate=0.5, training=1, seed=4} : f32[50]\n"
                         "  return %y\n}\n";
  const std::string noStep = "func @f {\n"
                             "  %x = input : f32[50]\n"
                             "  %y = dropout(%x) {rate=0.5, training=1, seed=4} : f32[50]\n"
                             "  return %y\n}\n";
  Tensor<float> x = xt::ones<float>({50});
  Tensor<float> step = Tensor<float>::from_shape(std::vector<size_t>{});
  step() = 12;
  auto viaOperand = runText<float>(ir, {{"x", x}, {"s", step}}, {.step = 99}).at("y");
  CHECK((viaOperand == runText<float>(noStep, {{"x", x}}, {.step = 12}).at("y")));
  step() = 1.5f;
  CHECK_THROWS_WITH(runText<float>(ir, {{"x", x}, {"s", step}}), Contains("%y"));
}

// ---------------------------------------------------------------------------- npy --
TEST_CASE(".npy files round-trip in every supported dtype", "[interp][npy]") {
  Tensor<double> x = {{1, -2, 3}, {4, 5, -6}};
  for (DType t : {DType::F32, DType::F64, DType::I32, DType::I64}) {
    const std::string p = tmpPath(std::string(dtypeName(t)) + ".npy");
    interp::saveNpy(p, x, t);
    CHECK((interp::loadNpy<double>(p) == x));
    CHECK((interp::loadNpy<float>(p) == xt::cast<float>(x)));
    std::remove(p.c_str());
  }
  Tensor<float> s = Tensor<float>::from_shape(std::vector<size_t>{});
  s() = 2.5f;
  const std::string p = tmpPath("scalar.npy");
  interp::saveNpy(p, s, DType::F32);
  Tensor<float> back = interp::loadNpy<float>(p);
  CHECK(back.dimension() == 0);
  CHECK(back() == 2.5f);
  std::remove(p.c_str());
}

TEST_CASE(".npy errors name the file", "[interp][npy][errors]") {
  const std::string missing = tmpPath("does_not_exist.npy");
  CHECK_THROWS_WITH(interp::loadNpy<float>(missing), Contains(missing));

  const std::string garbage = tmpPath("garbage.npy");
  std::ofstream(garbage) << "this is not numpy";
  CHECK_THROWS_WITH(interp::loadNpy<float>(garbage), Contains(garbage));

  const std::string truncated = tmpPath("truncated.npy");
  interp::saveNpy(truncated, Tensor<float>(xt::ones<float>({10, 10})), DType::F32);
  std::filesystem::resize_file(truncated, std::filesystem::file_size(truncated) - 8);
  CHECK_THROWS_WITH(interp::loadNpy<float>(truncated), Contains(truncated));

  const std::string u8 = tmpPath("u8.npy");
  {
    std::string header = "{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }";
    header.append(128 - 10 - header.size() - 1, ' '); // total a multiple of 64
    header += '\n';
    std::ofstream out(u8, std::ios::binary);
    out << "\x93NUMPY" << '\x01' << '\x00' << char(header.size()) << '\x00' << header << "ab";
  }
  CHECK_THROWS_WITH(interp::loadNpy<float>(u8), Contains(u8) && Contains("dtype"));

  CHECK_THROWS_WITH(interp::saveNpy(tmpPath("x.npy"), Tensor<float>{0.5f}, DType::I32),
                    Contains("non-integral"));
  for (const auto &p : {garbage, truncated, u8})
    std::remove(p.c_str());
}

// ---------------------------------------------------------------------------- speed --
// VGG-16 (configuration D) at 32x32, batch 1, with a 512-10 classifier head. Hidden: run
// with `test_interp "[.vgg]"` to see the interpreter's speed.
TEST_CASE("VGG-16 at 32x32 runs in a few seconds", "[.vgg]") {
  std::string ir = "func @vgg16 {\n  %x = input : f32[1,3,32,32]\n";
  std::map<std::string, Tensor<float>> feeds;
  xt::random::seed(1);
  feeds["x"] = xt::random::randn<float>({1, 3, 32, 32});
  const int cfg[] = {64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0};
  int c = 3, hw = 32, k = 0;
  std::string prev = "x";
  for (int v : cfg) {
    std::string name = fmt::format("l{}", k++);
    if (v == 0) {
      hw /= 2;
      ir += fmt::format("  %{} = maxpool(%{}) {{kernel=[2,2], stride=[2,2]}} : f32[1,{},{},{}]\n",
                        name, prev, c, hw, hw);
    } else {
      ir += fmt::format(
          "  %{0}.w = param : f32[{1},{2},3,3]\n  %{0}.b = param : f32[{1}]\n"
          "  %{0}.c = conv2d(%{3}, %{0}.w, %{0}.b) {{pads=[1,1,1,1]}} : f32[1,{1},{4},{4}]\n"
          "  %{0} = relu(%{0}.c) : f32[1,{1},{4},{4}]\n",
          name, v, c, prev, hw);
      feeds[name + ".w"] = xt::random::randn<float>({v, c, 3, 3}) * float(std::sqrt(2.0 / (9 * c)));
      feeds[name + ".b"] = xt::zeros<float>({v});
      c = v;
    }
    prev = name;
  }
  ir += "  %flat = flatten(%" + prev +
        ") : f32[1,512]\n"
        "  %fc.w = param : f32[10,512]\n"
        "  %y = fc(%flat, %fc.w) : f32[1,10]\n  return %y\n}\n";
  feeds["fc.w"] = xt::random::randn<float>({10, 512}) * 0.05f;
  auto t0 = std::chrono::steady_clock::now();
  auto out = runText<float>(ir, feeds);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  WARN("VGG-16 32x32 batch 1: " << secs << " s");
  CHECK(xt::all(xt::isfinite(out.at("y"))));
  CHECK(secs < 10);
}
