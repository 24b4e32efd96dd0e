// The memory plan's in-place reuse (codegen/Plan.cpp, Ops.def's `inplace` column): an op
// marked inplace takes its operand 0's workspace block when that operand dies at it. These
// tests check that the column changes nothing else the planner decides on the examples
// (every node keeps its storage kind; only workspace values move) and never grows the
// workspace, that the aliasing happens exactly where it is safe, and that code planned in
// place computes what the interpreter does.
#include "CodegenTestUtil.h"

#include "codegen/Plan.h"
#include "passes/Passes.h"

#include <catch2/catch.hpp>

using namespace cnnc;
using namespace cnnc::cgtest;

namespace {

std::unique_ptr<Module> pipelined(const std::string &name, int64_t batch, bool training) {
  tools::LoadOptions o;
  o.cnn.batch = batch;
  o.cnn.training = training;
  auto m = tools::loadModel(std::string(CNNC_SOURCE_DIR) + "/examples/" + name, o);
  PipelineOptions po;
  po.training = training;
  runPipeline(*m, po);
  return m;
}

size_t inPlaceCount(const Function &f, const codegen::Plan &p) {
  size_t k = 0;
  for (const Node *n : f.nodeList()) {
    const auto &s = p.storage.at(n);
    if (s.kind == codegen::StorageKind::Workspace && n->info().inPlace && !n->operands.empty()) {
      auto o = p.storage.find(n->operands[0]);
      k += o != p.storage.end() && o->second.kind == codegen::StorageKind::Workspace &&
           o->second.offset == s.offset;
    }
  }
  return k;
}

} // namespace

TEST_CASE("in-place reuse changes only workspace offsets and never grows the workspace",
          "[codegen][plan]") {
  size_t total = 0;
  for (const char *name : {"mnist_base.cnn", "mnist_bn_dropout.cnn", "mnist_sk.cnn",
                           "mobile_mnist.cnn", "resnet_mnist.cnn"})
    for (bool training : {false, true}) {
      INFO(name << (training ? " (training)" : " (inference)"));
      auto m = pipelined(name, 4, training);
      for (const auto &fp : m->functions()) {
        const Function &f = *fp;
        const codegen::Plan on = codegen::planFunction(f, 8),
                            off = codegen::planFunction(f, 8, true, false, false);
        CHECK(on.layout.workspaceBytes <= off.layout.workspaceBytes);
        CHECK(on.layout.preparedBytes == off.layout.preparedBytes);
        CHECK(on.layout.batchPolymorphic == off.layout.batchPolymorphic);
        CHECK(on.layout.buffers.size() == off.layout.buffers.size());
        for (const Node *n : f.nodeList()) {
          CHECK(on.storage.at(n).kind == off.storage.at(n).kind);
          CHECK(on.storage.at(n).buffer == off.storage.at(n).buffer);
        }
        CHECK(inPlaceCount(f, off) == 0);
        total += inPlaceCount(f, on);
      }
    }
  CHECK(total > 0); // the examples have activations after convs and adds in residual blocks
}

TEST_CASE("an inplace op takes its dying operand's block, and only then", "[codegen][plan]") {
  Builder b;
  Node *x = b.input("x", {2, 3, 4});
  Node *y = b.input("y", {2, 3, 4});
  Node *bias = b.input("bias", {4});
  Node *s = b.op(OpKind::Add, {x, y}); // inputs are caller buffers: not in place
  Node *e = b.op(OpKind::Exp, {s});    // s dies here: in place
  Node *t = b.op(OpKind::Tanh, {e});   // e is still read below: not in place
  Node *u = b.op(OpKind::Mul, {t, e}); // t dies here: in place
  Node *r = b.op(OpKind::Reshape, {u}, {{"shape", std::vector<int64_t>{2, 12}}});
  Node *v = b.op(OpKind::Sub, {u, bias}); // u is still read through its view r: not in place
  Node *w = b.op(OpKind::Add, {v, v});    // v twice, each at the same index: in place
  Node *z = b.op(OpKind::Relu, {r});      // operand 0 is a view: not in place
  Node *wr = b.op(OpKind::Reshape, {w}, {{"shape", std::vector<int64_t>{2, 12}}});
  b.out(b.op(OpKind::Add, {z, wr})); // an output: the caller's buffer
  verify(b.f);
  const codegen::Plan p = codegen::planFunction(b.f, 8);
  auto off = [&](const Node *n) { return p.storage.at(n).offset; };
  auto kind = [&](const Node *n) { return p.storage.at(n).kind; };
  CHECK(kind(s) == codegen::StorageKind::Workspace);
  CHECK(off(e) == off(s));
  CHECK(off(t) != off(e));
  CHECK(off(u) == off(t));
  CHECK(off(v) != off(u));
  CHECK(off(w) == off(v));
  CHECK(kind(r) == codegen::StorageKind::View);
  CHECK(off(z) != off(u));
  Feeds feeds = randomFeeds(b.f, 11);
  compareAll(oracle(b.f, feeds), tools::runJit(b.f, feeds), "in-place chain");
}
