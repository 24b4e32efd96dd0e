// Depthwise conv2d's own form (codegen/EmitConvDw.cpp: output rows in the vector lanes)
// against the f64 interpreter, in every build compareJitBuilds covers (host at 1 and 2
// threads, 16 lanes, AVX2 x86-64-v3), and the same bytes at 1 and 2 threads. The shapes hit
// its edges: rows not a multiple of the lanes (and shorter than a vector), output rows not a
// multiple of the row block, stride 2 (even lanes), 3×3, 5×5, 7×7, dilation, uneven pads, no
// padding (the input read in place), batch 1 and 3, no bias, the fused residual and ReLU.
#include "CodegenTestUtil.h"
#include "codegen/Plan.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>

using namespace cnnc;
using namespace cnnc::cgtest;
using Ints = std::vector<int64_t>;

namespace {

struct Dw {
  std::string name;
  Shape x;
  Ints k, stride, pads, dilation;
  bool relu = false, bias = true, residual = false;
};

} // namespace

TEST_CASE("depthwise conv2d: its own form matches the f64 interpreter", "[codegen][depthwise]") {
  const std::vector<Dw> cases = {
      {"3x3 stride 1 pad 1, 37 wide, batch 3, relu",
       {3, 5, 13, 37},
       {3, 3},
       {1, 1},
       {1, 1, 1, 1},
       {1, 1},
       true},
      {"3x3 stride 2 pad 1, odd sizes", {1, 7, 15, 35}, {3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}},
      {"3x3 stride 2 pad 1, 32 wide (whole vectors), relu",
       {2, 4, 32, 32},
       {3, 3},
       {2, 2},
       {1, 1, 1, 1},
       {1, 1},
       true},
      {"5x5 stride 1 pad 2", {1, 6, 11, 19}, {5, 5}, {1, 1}, {2, 2, 2, 2}, {1, 1}},
      {"5x5 stride 2 pad 2, batch 3", {3, 3, 17, 33}, {5, 5}, {2, 2}, {2, 2, 2, 2}, {1, 1}},
      {"7x7 rows shorter than a vector", {1, 9, 7, 7}, {3, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}, true},
      {"3x3 dilation 2, uneven pads", {2, 3, 12, 21}, {3, 3}, {1, 1}, {2, 1, 1, 2}, {2, 2}},
      {"3x2 stride (2,1) dilation (1,2)", {1, 4, 14, 18}, {3, 2}, {2, 1}, {0, 1, 1, 0}, {1, 2}},
      {"7x7 kernel stride 2 pad 3", {1, 3, 19, 23}, {7, 7}, {2, 2}, {3, 3, 3, 3}, {1, 1}},
      {"no padding, no bias", {2, 5, 9, 40}, {3, 3}, {1, 1}, {0, 0, 0, 0}, {1, 1}, false, false},
      {"no padding, stride 2, residual and relu",
       {1, 6, 10, 41},
       {3, 3},
       {2, 2},
       {0, 0, 0, 0},
       {1, 1},
       true,
       true,
       true},
      {"pad 1, residual", {3, 2, 6, 20}, {3, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}, false, true, true},
  };
  for (const Dw &c : cases) {
    SECTION(c.name) {
      Builder b;
      const int64_t C = c.x[1];
      Node *x = b.input("x", c.x);
      std::vector<Node *> ops{x, b.param("w", {C, 1, c.k[0], c.k[1]})};
      if (c.bias || c.residual)
        ops.push_back(b.param("b", {C}));
      std::map<std::string, Attr> a{{"groups", C},
                                    {"stride", c.stride},
                                    {"pads", c.pads},
                                    {"dilation", c.dilation},
                                    {"relu", int64_t(c.relu)}};
      if (c.residual) // r has the conv's output shape: that of the conv without it (an output too)
        ops.push_back(b.input("r", b.out(b.op(OpKind::Conv2d, ops, a))->type.shape));
      Node *y = b.out(b.op(OpKind::Conv2d, ops, a));
      CHECK(codegen::isDepthwise(*y));
      verify(b.f);
      Feeds feeds = randomFeeds(b.f, 7);
      const Results want = oracle(b.f, feeds);
      compareJitBuilds(b.f, feeds, want, c.name);
      // the thread split must not change a bit
      const Results one = tools::runJit(b.f, feeds, parallelTarget(), nullptr, 1);
      const Results two = tools::runJit(b.f, feeds, parallelTarget(), nullptr, 2);
      for (const auto &[name, t] : one) {
        INFO(name);
        REQUIRE(two.at(name).size() == t.size());
        CHECK(std::equal(t.begin(), t.end(), two.at(name).begin()));
      }
    }
  }
}
