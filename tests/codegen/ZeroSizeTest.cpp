// Zero-size tensors compiled: empty results (reshape allowzero to [.., 0, ..] then
// elementwise ops, an empty batch through conv/pool/fc), and non-empty results of sums over
// an empty extent (matmul/fc with K = 0, conv2d with no input channels, reduce_sum), by the
// JIT and in one .so through the C API (zero-size buffers passed as NULL, empty params from a
// .npz), against the f64 interpreter.
#include "CodegenTestUtil.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>

using namespace cnnc;
using namespace cnnc::cgtest;
using K = OpKind;
using Ints = std::vector<int64_t>;

namespace {

struct Case {
  std::string name;
  std::function<void(Builder &)> build;
};

std::vector<Case> cases() {
  std::vector<Case> c;
  c.push_back({"reshape allowzero then elementwise", [](Builder &b) {
                 Node *x = b.input("x", {0, 3, 4});
                 Node *r = b.op(K::Reshape, {x}, {{"shape", Ints{3, 4, 0}}, {"allowzero", int64_t(1)}});
                 Node *y = b.op(K::Relu, {r});
                 b.out(b.op(K::Add, {y, b.param("bias", {1, 1, 1})}));
                 b.out(r); // an output that is a view of an empty input
               }});
  c.push_back({"empty batch through conv, pool, flatten, fc, softmax", [](Builder &b) {
                 Node *x = b.input("x", {0, 3, 8, 8});
                 Node *w = b.param("w", {5, 3, 3, 3});
                 Node *y = b.op(K::Conv2d, {x, w, b.param("b", {5})});
                 y = b.op(K::MaxPool, {y}, {{"kernel", Ints{2, 2}}, {"stride", Ints{2, 2}}});
                 y = b.op(K::Flatten, {y});
                 y = b.op(K::FullyConnected, {y, b.param("fw", {7, 45}), b.param("fb", {7})});
                 b.out(b.op(K::Softmax, {y}));
               }});
  c.push_back({"matmul and fc with K = 0", [](Builder &b) {
                 Node *a = b.input("a", {5, 0});
                 b.out(b.op(K::MatMul, {a, b.input("b", {0, 19})}));
                 b.out(b.op(K::FullyConnected, {a, b.param("w", {11, 0}), b.param("bias", {11})}));
               }});
  c.push_back({"conv2d with no input channels: the bias", [](Builder &b) {
                 Node *x = b.input("x", {2, 0, 6, 5});
                 b.out(b.op(K::Conv2d, {x, b.param("w", {20, 0, 3, 3}), b.param("b", {20})},
                            {{"pads", Ints{1, 1, 1, 1}}}));
               }});
  c.push_back({"reduce_sum over an empty axis, concat with empty parts", [](Builder &b) {
                 b.out(b.op(K::ReduceSum, {b.input("r", {3, 0, 9})}, {{"axes", Ints{1}}}));
                 Node *e = b.input("e", {2, 0, 5});
                 b.out(b.op(K::Concat, {e, b.input("x", {2, 3, 5}), e}));
               }});
  return c;
}

} // namespace

TEST_CASE("zero-size tensors: JIT matches the f64 interpreter", "[codegen][jit][zero]") {
  for (const Case &c : cases()) {
    SECTION(c.name) {
      Builder b;
      c.build(b);
      verify(b.f);
      Feeds feeds = randomFeeds(b.f, 5);
      Results want = oracle(b.f, feeds), got = tools::runJit(b.f, feeds);
      compareAll(want, got, c.name + " (JIT)");
      for (const Node *o : b.f.outputs())
        CHECK(Shape(got.at(o->name).shape().begin(), got.at(o->name).shape().end()) ==
              o->type.shape);
    }
  }
}

TEST_CASE("zero-size tensors in a shared library: NULL buffers for empty inputs and params",
          "[codegen][aot][zero]") {
  Builder all;
  int k = 0;
  for (const Case &c : cases()) {
    Builder one;
    c.build(one);
    std::map<const Node *, Node *> map;
    for (const auto &n : one.f.nodes()) {
      std::vector<Node *> ops;
      for (Node *o : n->operands)
        ops.push_back(map.at(o));
      map[n.get()] = all.f.add(n->op, fmt::format("c{}.{}", k, n->name), ops, n->attrs, n->type);
    }
    for (Node *o : one.f.outputs())
      all.f.outputs().push_back(map.at(o));
    ++k;
  }
  verify(all.f);
  Feeds feeds = randomFeeds(all.f, 3);
  const std::string so = tempPath("zerosize.so");
  codegen::compileSharedLibrary(all.f, so, {});
  SharedLib lib(so);
  const codegen::Layout l = codegen::layoutFor(all.f);
  CHECK(!l.batchPolymorphic); // the first input's batch is empty: one fixed-size run
  // SharedLib::infer passes an empty std::vector's data(), NULL, for every zero-size buffer.
  const Results want = oracle(all.f, feeds);
  compareAll(want, lib.infer(l, feeds, l.maxBatch), "zero-size (AOT)");
  // Weights from a .npz whose empty params ([11,0], [20,0,3,3]) are empty arrays: the C
  // API's reader takes them.
  const std::string npz = tempPath("zerosize.npz");
  tools::saveParams(all.f, feeds, npz);
  compareAll(want, lib.infer(l, feeds, l.maxBatch, false, npz), "zero-size (AOT, npz)");
}
