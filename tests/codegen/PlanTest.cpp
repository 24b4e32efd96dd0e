// The memory plan's in-place results (codegen/Plan.cpp; Ops.def's `inplace` trait, read by
// ir/OpTraits.h's opInPlace): a result may take the workspace block of an operand that dies at it,
// and the planner keeps that plan only when its workspace is no larger than the plan without.
// Checked here: on every example network, @infer and @train_step, the arena with in-place is at
// most the one without, in-place changes nothing but workspace offsets, and it is strictly smaller
// somewhere; the aliasing happens exactly where the rule allows it; and code planned in place
// computes what the f64 interpreter does, with the bits of code planned without.
#include "CodegenTestUtil.h"

#include "codegen/Plan.h"
#include "ir/OpTraits.h"
#include "passes/Passes.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <iostream>

using namespace cnnc;
using namespace cnnc::cgtest;
using codegen::StorageKind;

namespace {

codegen::Plan planOf(const Function &f, bool inPlace, bool fuse = true) {
  return codegen::planFunction(f, 8, true, false, fuse, inPlace);
}

// Results whose block is the block of a workspace operand (the rule's only aliasing): for a
// fused group's root, an operand of any member.
size_t inPlaceCount(const Function &f, const codegen::Plan &p) {
  auto sharesBlock = [&](const Node *n, const codegen::Storage &s) {
    auto g = p.groups.find(n);
    for (const Node *m : g == p.groups.end() ? std::vector<const Node *>{n} : g->second)
      for (const Node *o : m->operands) {
        auto os = p.storage.find(o);
        if (os != p.storage.end() && os->second.kind == StorageKind::Workspace &&
            os->second.offset == s.offset && !p.prepared.count(o))
          return true;
      }
    return false;
  };
  size_t k = 0;
  for (const Node *n : f.nodeList()) {
    const auto &s = p.storage.at(n);
    k += s.kind == StorageKind::Workspace && sharesBlock(n, s);
  }
  return k;
}

void checkSameBits(const Results &a, const Results &b, const std::string &what) {
  for (const auto &[name, t] : a) {
    INFO(what << ": " << name);
    REQUIRE(b.count(name));
    CHECK(t == b.at(name)); // xtensor: same shape, every element equal
  }
}

} // namespace

TEST_CASE("in-place results never grow the workspace of an example network", "[codegen][plan]") {
  int smaller = 0;
  size_t total = 0;
  for (const char *name :
       {"mnist_base.cnn", "mnist_base_dropout.cnn", "mnist_bn.cnn", "mnist_bn_dropout.cnn",
        "mnist_sk.cnn", "mobile_mnist.cnn", "resnet_mnist.cnn", "vgg16.cnn"})
    for (bool training : {false, true}) {
      // a training build holds @infer and @train_step; VGG-16 at 2 images keeps it quick,
      // and has no training build (examples/vgg16.cnn ends in softmax, not a loss)
      const bool vgg = std::string(name) == "vgg16.cnn";
      if (vgg && training)
        continue;
      auto m = loadPipelined(name, vgg ? 2 : 4, training);
      for (const auto &fp : m->functions()) {
        const Function &f = *fp;
        INFO(name << " @" << f.name() << (training ? " (training build)" : ""));
        const codegen::Plan on = planOf(f, true), off = planOf(f, false);
        std::cout << fmt::format(
            "{:24} @{:11} {:9} arena without in-place {:>12} B, with {:>12} B\n", name, f.name(),
            training ? "training" : "inference", off.layout.workspaceBytes,
            on.layout.workspaceBytes);
        CHECK(on.layout.workspaceBytes <= off.layout.workspaceBytes);
        smaller += on.layout.workspaceBytes < off.layout.workspaceBytes;
        CHECK(on.layout.preparedBytes == off.layout.preparedBytes);
        CHECK(on.layout.buffers.size() == off.layout.buffers.size());
        for (const Node *n : f.nodeList()) {
          CHECK(on.storage.at(n).kind == off.storage.at(n).kind);
          CHECK(on.storage.at(n).buffer == off.storage.at(n).buffer);
        }
        CHECK(inPlaceCount(f, off) == 0);
        total += inPlaceCount(f, on);
      }
    }
  CHECK(total > 0);
  CHECK(smaller > 0);
}

TEST_CASE("a result takes a dying operand's block, and only where the rule allows",
          "[codegen][plan]") {
  Builder b;
  Node *x = b.input("x", {2, 3, 4});
  Node *y = b.input("y", {2, 3, 4});
  Node *bias = b.input("bias", {4});
  Node *s = b.op(OpKind::Add, {x, y}); // inputs are caller buffers: not in place
  Node *e = b.op(OpKind::Exp, {s});    // s dies here: in place
  Node *t = b.op(OpKind::Tanh, {e});   // e is still read below: not in place
  Node *u = b.op(OpKind::Mul, {t, e}); // t (or e) dies here: in place
  Node *r = b.op(OpKind::Reshape, {u}, {{"shape", std::vector<int64_t>{2, 12}}});
  Node *v = b.op(OpKind::Sub, {u, bias}); // u is still read through its view r: not in place
  Node *w = b.op(OpKind::Add, {bias, v}); // v, a broadcast's full-shape operand 1: in place
  Node *z = b.op(OpKind::Relu, {r});      // operand 0 is a view: not in place
  Node *sm = b.op(OpKind::Softmax, {w}, {{"axis", int64_t(2)}}); // reads across: not in place
  Node *wr = b.op(OpKind::Reshape, {sm}, {{"shape", std::vector<int64_t>{2, 12}}});
  b.out(b.op(OpKind::Add, {z, wr})); // an output: the caller's buffer
  verify(b.f);
  static_assert(opInPlace(OpKind::Softmax) == InPlace::No);
  // unfused, so that each node is its own loop and has storage of its own
  const codegen::Plan p = planOf(b.f, true, false);
  auto off = [&](const Node *n) { return p.storage.at(n).offset; };
  auto kind = [&](const Node *n) { return p.storage.at(n).kind; };
  for (const Node *n : {s, e, t, u, v, w, sm})
    CHECK(kind(n) == StorageKind::Workspace);
  CHECK(kind(r) == StorageKind::View);
  CHECK(off(e) == off(s));
  CHECK(off(t) != off(e));
  CHECK((off(u) == off(t) || off(u) == off(e)));
  CHECK(off(v) != off(u));
  CHECK(off(w) == off(v));
  CHECK(off(sm) != off(w));
  CHECK(off(z) != off(u));
  CHECK(inPlaceCount(b.f, p) == 3);
  CHECK(inPlaceCount(b.f, planOf(b.f, false, false)) == 0);
  // and the code: the f64 interpreter's values, the bits of the plan without in-place, in
  // place fused or not, at 2 threads through the pool
  Feeds feeds = randomFeeds(b.f, 11);
  const Results want = oracle(b.f, feeds);
  codegen::TargetOptions in = parallelTarget(), out = parallelTarget();
  out.inPlace = false;
  const Results without = tools::runJit(b.f, feeds, out, nullptr, 2);
  for (bool fuse : {false, true}) {
    in.fuseElementwise = out.fuseElementwise = fuse;
    const Results got = tools::runJit(b.f, feeds, in, nullptr, 2);
    compareAll(want, got, "in-place chain");
    checkSameBits(tools::runJit(b.f, feeds, out, nullptr, 2), got, "in-place chain");
  }
}

TEST_CASE("a fused group stores over an outside operand that dies at its root", "[codegen][plan]") {
  Builder b;
  Node *x = b.input("x", {2, 8});
  Node *w = b.input("w", {8, 8});
  Node *h = b.op(OpKind::MatMul, {x, w}); // workspace, read only by the group below
  Node *g1 = b.op(OpKind::Sigmoid, {h});
  Node *g2 = b.op(OpKind::Mul, {g1, h}); // a group {g1, g2} reading h twice
  Node *o = b.op(OpKind::MatMul, {g2, w});
  b.out(o);
  verify(b.f);
  const codegen::Plan p = planOf(b.f, true);
  REQUIRE(p.groups.count(g2));
  CHECK(p.storage.at(g1).kind == StorageKind::Fused);
  CHECK(p.storage.at(g2).offset == p.storage.at(h).offset);
  Feeds feeds = randomFeeds(b.f, 5);
  compareAll(oracle(b.f, feeds), tools::runJit(b.f, feeds, parallelTarget(), nullptr, 2),
             "in-place group");
}

TEST_CASE("networks planned in place: the interpreter's values, the bits planned without",
          "[codegen][plan][nets]") {
  codegen::TargetOptions without;
  without.inPlace = false;
  // (no example network's @infer has an in-place result since fuse-residual made
  // resnet_mnist's adds conv epilogues; the rule's cases above cover inference)
  SECTION("resnet_mnist @train_step") {
    auto m = loadTrain("resnet_mnist.cnn", 2);
    const Function &f = *m->find("train_step");
    REQUIRE(inPlaceCount(f, planOf(f, true)) > 0);
    Feeds feeds = trainFeeds(f, 3);
    const Results got = jitStep(*tools::JitTrainer::compile(f, {}), feeds, feeds);
    compareAll(expectedStep(f, feeds), got, "resnet_mnist train step in place");
    checkSameBits(jitStep(*tools::JitTrainer::compile(f, without), feeds, feeds), got,
                  "resnet_mnist train step");
  }
  SECTION("mnist_bn @train_step") {
    auto m = loadTrain("mnist_bn.cnn", 2);
    const Function &f = *m->find("train_step");
    REQUIRE(inPlaceCount(f, planOf(f, true)) > 0);
    Feeds feeds = trainFeeds(f, 5);
    const Results got = jitStep(*tools::JitTrainer::compile(f, {}), feeds, feeds);
    compareAll(expectedStep(f, feeds), got, "mnist_bn train step in place");
    checkSameBits(jitStep(*tools::JitTrainer::compile(f, without), feeds, feeds), got,
                  "mnist_bn train step");
  }
}
