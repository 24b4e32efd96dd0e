// fc's two lowerings (EmitMatMul.cpp): the dot rows at one row, the GEMM on prepacked weight
// panels from kFcGemmRows rows on, chosen at run time when the rows follow the batch. Each
// against the f64 interpreter in every build of compareJitBuilds (host, 16 lanes, x86-64-v3;
// 1 and 2 threads), and bitwise equal at 1 and 2 threads (the host and the AVX2 build).
// K = 131 spans two of the GEMM's K blocks (the bias/ReLU epilogue is on the last one only);
// K and M are no multiples of 8 or 16 (tail columns, a partial panel).
#include "CodegenTestUtil.h"

#include "codegen/Plan.h"
#include "tools/Compiled.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <xtensor/xview.hpp>

using namespace cnnc;
using namespace cnnc::cgtest;

namespace {

void build(Builder &b, int64_t rows, int64_t K, int64_t M, bool bias, bool relu) {
  std::vector<Node *> ops{b.input("x", {rows, K}), b.param("w", {M, K})};
  if (bias)
    ops.push_back(b.param("b", {M}));
  b.out(b.op(OpKind::FullyConnected, ops, {{"relu", int64_t(relu)}}));
}

void checkBitwise(const Results &a, const Results &b, const std::string &what) {
  REQUIRE(a.size() == b.size());
  for (const auto &[name, t] : a) {
    INFO(what << ": " << name);
    const auto &u = b.at(name);
    REQUIRE(t.shape() == u.shape());
    size_t differ = 0;
    for (size_t i = 0; i < t.size(); ++i)
      differ += t.flat(i) != u.flat(i);
    CHECK(differ == 0);
  }
}

} // namespace

TEST_CASE("fc at batch 1, 3, 8, 33: dot rows and GEMM match the interpreter, bitwise across "
          "threads",
          "[codegen][jit][fc]") {
  struct Case {
    int64_t rows, K, M;
    bool bias, relu;
  };
  for (Case c : {Case{1, 131, 21, true, true}, Case{1, 37, 10, false, false},
                 Case{3, 131, 21, true, false}, Case{3, 37, 45, false, true},
                 Case{8, 131, 45, true, true}, Case{8, 70, 10, false, false},
                 Case{33, 131, 45, true, true}, Case{33, 131, 21, false, true}}) {
    const std::string what = fmt::format("fc rows={} K={} M={} bias={} relu={}", c.rows, c.K,
                                         c.M, c.bias, c.relu);
    Builder b;
    build(b, c.rows, c.K, c.M, c.bias, c.relu);
    // the lowering under test: the GEMM (prepacked panels) from 2 rows on
    CHECK((codegen::layoutFor(b.f).preparedBytes > 0) == (c.rows >= 2));
    Feeds feeds = randomFeeds(b.f, 11 + c.rows);
    compareJitBuilds(b.f, feeds, oracle(b.f, feeds), what);
    codegen::TargetOptions host = parallelTarget(), avx2 = parallelTarget();
    avx2.cpu = "x86-64-v3";
    for (const auto &[t, name] : {std::pair{host, "host"}, std::pair{avx2, "x86-64-v3"}})
      checkBitwise(tools::runJit(b.f, feeds, t, nullptr, 1), tools::runJit(b.f, feeds, t, nullptr, 2),
                   fmt::format("{} ({}, 1 vs 2 threads)", what, name));
  }
}

TEST_CASE("fc compiled at batch 9 picks its lowering at the runtime batch", "[codegen][jit][fc]") {
  Builder b;
  build(b, 9, 131, 45, true, true);
  REQUIRE(codegen::layoutFor(b.f).batchPolymorphic);
  Feeds feeds = randomFeeds(b.f, 5);
  const Results want = oracle(b.f, feeds);
  codegen::TargetOptions avx2 = parallelTarget();
  avx2.cpu = "x86-64-v3";
  for (const codegen::TargetOptions &t : {parallelTarget(), avx2}) {
    auto jit = codegen::JitModel::compile(b.f, t);
    tools::ThreadPool two(2);
    for (int64_t n : {1, 2, 7, 9}) { // 1: the dot rows; else the GEMM over n rows
      INFO("batch " << n << " cpu '" << t.cpu << "'");
      Results one = jitRun(*jit, feeds, n), par = jitRun(*jit, feeds, n, two.get());
      Results first = want;
      for (auto &[name, r] : first) {
        interp::Tensor<double> rows = xt::view(r, xt::range(0, n));
        r = rows;
      }
      compareAll(first, one, "1 thread");
      checkBitwise(one, par, "1 vs 2 threads");
    }
  }
}
