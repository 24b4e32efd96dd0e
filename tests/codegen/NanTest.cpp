// NaN through ReLU follows PyTorch (torch.relu(nan) is nan): the relu op and the fused
// epilogues of conv2d and fc (passes/FuseRelu.cpp) keep a NaN, in the interpreter and in
// compiled code, where LLVM's maxnum would have turned it into 0 and a model fed NaN would
// have answered with confidence.
#include "CodegenTestUtil.h"

#include <catch2/catch.hpp>

#include <cmath>

using namespace cnnc;
using namespace cnnc::cgtest;
using Ints = std::vector<int64_t>;

TEST_CASE("relu keeps NaN: the op and conv2d/fc epilogues, interpreter and JIT", "[codegen][nan]") {
  Builder b;
  Node *x = b.input("x", {1, 2, 4, 5});
  Node *r = b.out(b.op(OpKind::Relu, {x}));
  Node *w = b.param("w", {16, 2, 1, 1});
  Node *c = b.out(b.op(OpKind::Conv2d, {x, w}, {{"relu", int64_t(1)}}));
  Node *fw = b.param("fw", {3, 40});
  Node *fl = b.op(OpKind::Flatten, {x}, {{"axis", int64_t(1)}});
  Node *fc = b.out(b.op(OpKind::FullyConnected, {fl, fw}, {{"relu", int64_t(1)}}));
  verify(b.f);
  Feeds feeds = randomFeeds(b.f, 3);
  feeds["x"](0, 1, 2, 3) = NAN; // pixel (2, 3) of channel 1
  feeds["x"](0, 0, 0, 0) = -1.0;
  for (const char *backend : {"interp", "jit"}) {
    INFO(backend);
    Results got = std::string(backend) == "interp" ? oracle(b.f, feeds) : tools::runJit(b.f, feeds);
    const auto &rr = got.at(r->name), &cc = got.at(c->name), &ff = got.at(fc->name);
    CHECK(std::isnan(rr(0, 1, 2, 3)));
    CHECK(rr(0, 0, 0, 0) == 0.0);
    for (int64_t m = 0; m < 16; ++m) // every output channel at that pixel reads the NaN
      CHECK(std::isnan(cc(0, m, 2, 3)));
    CHECK(!std::isnan(cc(0, 0, 2, 2)));
    for (int64_t j = 0; j < 3; ++j)
      CHECK(std::isnan(ff(0, j)));
  }
}
