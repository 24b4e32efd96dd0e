// Issue 14's reductions and normalisations through the ONNX frontend: ReduceMax, ReduceMin,
// GlobalMaxPool and ArgMax import as their ops, InstanceNormalization, LayerNormalization
// and LRN as compositions of core ops; every one exports back and reimports to the same ops
// and values, and the imported graphs' gradients match central finite differences in f64
// (their values are checked by the ONNX conformance tests against ONNX's reference).
#include "../autodiff/GradCheck.h"
#include "OnnxTestUtil.h"

#include "frontend/OnnxImport.h"
#include "ir/Print.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>

using namespace cnnc;
using namespace cnnc::onnxtest;

namespace {

std::map<std::string, interp::Tensor<float>> feedsOf(const OnnxModel &m, const std::string &x,
                                                     const Shape &s) {
  std::map<std::string, interp::Tensor<float>> feeds{{x, randomTensor(s, 5)}};
  for (const auto &[name, t] : m.weights) {
    auto v = interp::Tensor<float>::from_shape(std::vector<size_t>(t.shape.begin(), t.shape.end()));
    std::copy(t.values.begin(), t.values.end(), v.begin());
    feeds[name] = v;
  }
  return feeds;
}

// Export, reimport: the same ops, attributes and types, and the same values bit for bit.
void checkRoundTrip(const OnnxModel &m, const std::vector<std::string> &outs, const Shape &xs) {
  const Function &f = m.module->main();
  OnnxOptions oo; // the export declares the batch dim symbolic
  oo.batch = xs[0];
  OnnxModel back = importOnnxBytes(exportOnnxBytes(f, m.weights), "back.onnx", oo);
  const Function &g = back.module->main();
  checkSameOps(f, g);
  auto feeds = feedsOf(m, "x", xs);
  auto want = interp::run<float>(f, feeds), got = interp::run<float>(g, feeds);
  for (const std::string &o : outs) {
    INFO(o);
    const bool same = want.at(o) == got.at(o);
    CHECK(same);
  }
}

// The imported function with x as a param (an initializer) and output `y` fed to an l2 loss:
// autodiff's gradients wrt every param against central differences (GradCheck.h).
void checkImportedGradients(ModelBuilder &b, const std::string &y,
                            const std::vector<std::string> &wrt) {
  OnnxModel m = importOnnxBytes(b.bytes(), "grad.onnx");
  std::string text = print(*m.module, PrintOptions{});
  const std::string ret = fmt::format("  return %{}\n", y);
  const size_t at = text.find(ret);
  REQUIRE(at != std::string::npos);
  const std::string type = m.module->main().find(y)->type.str();
  text.replace(at, ret.size(),
               fmt::format("  %t = input : {}\n  %loss = l2_loss(%{}, %t) : f32[]\n  return %loss\n",
                           type, y));
  INFO(text);
  auto parsed = parseModule(text, "grad.ir");
  test::checkGradients(text, wrt, test::spacedFeeds(parsed->main(), 9));
}

} // namespace

TEST_CASE("ReduceMax, ReduceMin, GlobalMaxPool and ArgMax import as their ops and export back",
          "[onnx][export]") {
  ModelBuilder b;
  b.input("x", {2, 3, 4, 5});
  ModelBuilder::attrInts(b.node("ReduceMax", {"x"}, {"mx"}), "axes", {1, -1});
  auto *mn = b.node("ReduceMin", {"x"}, {"mn"});
  ModelBuilder::attr(mn, "keepdims", int64_t(0));
  b.node("GlobalMaxPool", {"x"}, {"gmp"});
  auto *am = b.node("ArgMax", {"x"}, {"am"});
  ModelBuilder::attr(am, "axis", int64_t(2));
  ModelBuilder::attr(am, "keepdims", int64_t(0));
  ModelBuilder::attr(am, "select_last_index", int64_t(1));
  b.node("ArgMax", {"x"}, {"am0"});
  b.output("mx", {2, 1, 4, 1});
  b.output("mn", {});
  b.output("gmp", {2, 3, 1, 1});
  b.value(b.g->mutable_output(), "am", {2, 3, 5}, onnx::TensorProto::INT64);
  b.value(b.g->mutable_output(), "am0", {1, 3, 4, 5}, onnx::TensorProto::INT64);
  OnnxModel m = importOnnxBytes(b.bytes(), "reduce.onnx");
  const Function &f = m.module->main();
  CHECK(f.find("mx")->op == OpKind::ReduceMax);
  CHECK(f.find("mx")->getInts("axes") == std::vector<int64_t>{1, 3});
  CHECK(f.find("mn")->type.str() == "f32[]");
  CHECK(f.find("gmp")->op == OpKind::ReduceMax);
  CHECK(f.find("am")->type.str() == "i64[2,3,5]");
  CHECK(f.find("am0")->type.str() == "i64[1,3,4,5]");
  checkRoundTrip(m, {"mx", "mn", "gmp", "am", "am0"}, {2, 3, 4, 5});

  // against direct loops: GlobalMaxPool is the plane's maximum, ArgMax its position
  auto feeds = feedsOf(m, "x", {2, 3, 4, 5});
  auto got = interp::run<float>(f, feeds);
  const auto &x = feeds.at("x");
  for (size_t n = 0; n < 2; ++n)
    for (size_t c = 0; c < 3; ++c) {
      float best = -INFINITY;
      for (size_t h = 0; h < 4; ++h)
        for (size_t w = 0; w < 5; ++w)
          best = std::max(best, x(n, c, h, w));
      CHECK(got.at("gmp")(n, c, 0, 0) == best);
      for (size_t w = 0; w < 5; ++w) {
        size_t arg = 0;
        for (size_t h = 1; h < 4; ++h)
          if (x(n, c, h, w) >= x(n, c, arg, w))
            arg = h;
        CHECK(got.at("am")(n, c, w) == (float)arg);
      }
    }
}

TEST_CASE("InstanceNormalization, LayerNormalization and LRN import as compositions and export back",
          "[onnx][export]") {
  ModelBuilder b(17);
  b.input("x", {2, 4, 3, 5});
  b.init("s", {4}, {0.5f, -1.0f, 2.0f, 1.5f});
  b.init("bias", {4}, {0.1f, 0.2f, -0.3f, 0.0f});
  ModelBuilder::attrFloat(b.node("InstanceNormalization", {"x", "s", "bias"}, {"in"}), "epsilon", 1e-3f);
  b.init("ls", {3, 5}, std::vector<float>(15, 1.25f));
  b.init("lb", {5}, {0.f, 1.f, 2.f, 3.f, 4.f});
  auto *ln = b.node("LayerNormalization", {"x", "ls", "lb"}, {"ln", "lmean", "linv"});
  ModelBuilder::attr(ln, "axis", int64_t(-2));
  b.node("LayerNormalization", {"x", "lb"}, {"ln1"});
  auto *lrn = b.node("LRN", {"x"}, {"lrn"});
  ModelBuilder::attr(lrn, "size", int64_t(3));
  ModelBuilder::attrFloat(lrn, "alpha", 0.02f);
  ModelBuilder::attrFloat(lrn, "bias", 2.0f);
  for (const char *o : {"in", "ln", "ln1", "lrn"})
    b.output(o, {2, 4, 3, 5});
  b.output("lmean", {2, 4, 1, 1});
  b.output("linv", {2, 4, 1, 1});
  OnnxModel m = importOnnxBytes(b.bytes(), "norm.onnx");
  const Function &f = m.module->main();
  CHECK(f.find("in")->op == OpKind::Add);
  CHECK(f.find("lrn")->op == OpKind::Div);
  CHECK(f.find("linv")->operands[0]->op == OpKind::Reciprocal);
  checkRoundTrip(m, {"in", "ln", "ln1", "lrn", "lmean", "linv"}, {2, 4, 3, 5});

  // spot values against direct formulas in double
  auto feeds = feedsOf(m, "x", {2, 4, 3, 5});
  auto got = interp::run<float>(f, feeds);
  const auto &x = feeds.at("x");
  double mean = 0, var = 0;
  for (size_t h = 0; h < 3; ++h)
    for (size_t w = 0; w < 5; ++w)
      mean += x(1, 2, h, w) / 15.0;
  for (size_t h = 0; h < 3; ++h)
    for (size_t w = 0; w < 5; ++w)
      var += (x(1, 2, h, w) - mean) * (x(1, 2, h, w) - mean) / 15.0;
  CHECK(got.at("in")(1, 2, 2, 4) ==
        Approx(2.0 * (x(1, 2, 2, 4) - mean) / std::sqrt(var + 1e-3) - 0.3).epsilon(1e-5));
  double sq = 0; // LRN at channel 0: channels 0..1 (the window [-1, 1] clipped)
  for (size_t ch = 0; ch < 2; ++ch)
    sq += x(0, ch, 1, 1) * x(0, ch, 1, 1);
  CHECK(got.at("lrn")(0, 0, 1, 1) ==
        Approx(x(0, 0, 1, 1) / std::pow(2.0 + 0.02 / 3 * sq, 0.75)).epsilon(1e-5));
}

TEST_CASE("the imported reductions and normalisations: gradients against finite differences",
          "[onnx][autodiff]") {
  SECTION("GlobalMaxPool and ReduceMin") {
    ModelBuilder b;
    b.init("x", {2, 3, 2, 3}, std::vector<float>(36, 0.f));
    b.node("GlobalMaxPool", {"x"}, {"g"});
    ModelBuilder::attrInts(b.node("ReduceMin", {"x"}, {"m"}), "axes", {1});
    b.node("Add", {"g", "m"}, {"y"});
    b.output("y", {2, 3, 2, 3});
    checkImportedGradients(b, "y", {"x"});
  }
  SECTION("InstanceNormalization") {
    ModelBuilder b;
    b.init("x", {2, 3, 2, 3}, std::vector<float>(36, 0.f));
    b.init("s", {3}, {0.f, 0.f, 0.f});
    b.init("bias", {3}, {0.f, 0.f, 0.f});
    b.node("InstanceNormalization", {"x", "s", "bias"}, {"y"});
    b.output("y", {2, 3, 2, 3});
    checkImportedGradients(b, "y", {"x", "s", "bias"});
  }
  SECTION("LayerNormalization") {
    ModelBuilder b(17);
    b.init("x", {2, 3, 4}, std::vector<float>(24, 0.f));
    b.init("s", {4}, {0.f, 0.f, 0.f, 0.f});
    b.init("bias", {4}, {0.f, 0.f, 0.f, 0.f});
    b.node("LayerNormalization", {"x", "s", "bias"}, {"y"});
    b.output("y", {2, 3, 4});
    checkImportedGradients(b, "y", {"x", "s", "bias"});
  }
  SECTION("LRN") {
    ModelBuilder b;
    b.init("x", {2, 5, 2, 3}, std::vector<float>(60, 0.f));
    auto *lrn = b.node("LRN", {"x"}, {"y"});
    ModelBuilder::attr(lrn, "size", int64_t(4));
    ModelBuilder::attrFloat(lrn, "alpha", 0.5f);
    b.output("y", {2, 5, 2, 3});
    checkImportedGradients(b, "y", {"x"});
  }
}
