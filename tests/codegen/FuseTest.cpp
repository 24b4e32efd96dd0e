// Fused elementwise groups (codegen/PlanFuse.cpp, EmitElementwise.cpp): which nodes the plan
// fuses (members without storage, the group's shape), and that fused code computes what the
// f64 interpreter does in every JIT build (host at 1 and 2 threads, 16 lanes, x86-64-v3)
// and exactly the bits of the unfused code (TargetOptions::fuseElementwise = false),
// NaN included.
#include "CodegenTestUtil.h"
#include "codegen/Plan.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>

using namespace cnnc;
using namespace cnnc::cgtest;
using K = OpKind;

namespace {

codegen::Plan planOf(const Function &f, bool fuse = true) {
  return codegen::planFunction(f, 8, true, false, fuse);
}

// The group whose root is n (empty: n roots none).
std::vector<const Node *> groupOf(const codegen::Plan &p, const Node *n) {
  auto it = p.groups.find(n);
  return it == p.groups.end() ? std::vector<const Node *>{} : it->second;
}

bool fused(const codegen::Plan &p, const Node *n) {
  return p.storage.at(n).kind == codegen::StorageKind::Fused;
}

// Fused and unfused code give the same bits (NaN as NaN), at 2 threads.
void checkSameBits(const Function &f, const Feeds &feeds, const std::string &what) {
  codegen::TargetOptions on = parallelTarget(), off = parallelTarget();
  off.fuseElementwise = false;
  const Results a = tools::runJit(f, feeds, on, nullptr, 2), b = tools::runJit(f, feeds, off, nullptr, 2);
  REQUIRE(a.size() == b.size());
  for (const auto &[name, t] : a) {
    const auto &u = b.at(name);
    REQUIRE(t.shape() == u.shape());
    size_t differ = 0;
    for (size_t i = 0; i < t.size(); ++i) {
      const float x = (float)t.flat(i), y = (float)u.flat(i);
      differ += std::isnan(x) ? !std::isnan(y) : std::memcmp(&x, &y, sizeof x) != 0;
    }
    INFO(what << ": output " << name);
    CHECK(differ == 0);
  }
}

} // namespace

TEST_CASE("a mixed elementwise chain is one group, and a broadcast splits it", "[codegen][fuse]") {
  Builder b;
  const Shape s{2, 3, 5, 7}; // 210 elements: vectors and a scalar tail at 8 and 16 lanes
  Node *x = b.input("x", s), *y = b.input("y", s);
  Node *p = b.param("p", s), *q = b.param("q", s), *bias = b.param("bias", {3, 1, 1});
  Node *relu = b.op(K::Relu, {x});
  Node *v = b.op(K::Mul, {relu, p});
  v = b.op(K::Add, {y, v});
  v = b.op(K::Sigmoid, {v});
  v = b.op(K::Sub, {v, x}); // x again: loaded once, read by two members
  v = b.op(K::Tanh, {v});   // a libm call per lane inside the vector loop
  v = b.op(K::LeakyRelu, {v}, {{"alpha", 0.1}});
  Node *head = b.op(K::Max, {v, q});
  Node *bc = b.op(K::Add, {head, bias}); // broadcasts: not fused, a loop nest of its own
  v = b.op(K::HardSwish, {bc});
  v = b.op(K::Clip, {v}, {{"min", -0.5}, {"max", 0.5}});
  v = b.op(K::Mul, {v, v}); // both operands the same member
  Node *tail = b.out(b.op(K::Erf, {v}));
  verify(b.f);

  const codegen::Plan plan = planOf(b.f);
  CHECK(groupOf(plan, head).size() == 8);
  CHECK(groupOf(plan, bc).empty());
  CHECK(!fused(plan, bc));
  CHECK(groupOf(plan, tail).size() == 4);
  CHECK(fused(plan, relu));
  CHECK(plan.groups.size() == 2);
  // the members have no workspace: only the head and the broadcast's result are stored
  auto stored = [](const codegen::Plan &p) {
    return std::count_if(p.storage.begin(), p.storage.end(), [](auto &kv) {
      return kv.second.kind == codegen::StorageKind::Workspace;
    });
  };
  CHECK(stored(plan) == 2);
  CHECK(stored(planOf(b.f, false)) == 12);

  Feeds feeds = randomFeeds(b.f, 11);
  compareJitBuilds(b.f, feeds, oracle(b.f, feeds), "mixed chain");
  feeds["x"](1, 2, 3, 4) = NAN; // relu and max keep it; clip and the rest carry it
  feeds["q"](0, 0, 0, 0) = NAN;
  checkSameBits(b.f, feeds, "mixed chain with NaN");
}

TEST_CASE("a chain's middle value that is an output ends a group", "[codegen][fuse]") {
  Builder b;
  Node *x = b.input("x", {4, 33});
  Node *a = b.op(K::Abs, {x});
  Node *mid = b.out(b.op(K::Neg, {a}));
  Node *e = b.op(K::Exp, {mid});
  Node *r = b.op(K::Relu, {e});
  Node *last = b.out(b.op(K::Sqrt, {r}));
  verify(b.f);
  const codegen::Plan plan = planOf(b.f);
  CHECK(groupOf(plan, mid) == std::vector<const Node *>{a, mid});
  CHECK(groupOf(plan, last) == std::vector<const Node *>{e, r, last});
  CHECK(!fused(plan, mid));
  const Feeds feeds = randomFeeds(b.f, 5);
  compareJitBuilds(b.f, feeds, oracle(b.f, feeds), "chain with a middle output");
  checkSameBits(b.f, feeds, "chain with a middle output");
}

TEST_CASE("chains around a conv, a tree, and a value read twice", "[codegen][fuse]") {
  Builder b;
  const Shape s{2, 4, 6, 6};
  Node *x = b.input("x", s), *z = b.input("z", s);
  Node *p = b.param("p", s);
  Node *l = b.op(K::Relu, {x}); // a tree: two chains meet in an add
  Node *r = b.op(K::Neg, {b.op(K::Elu, {z}, {{"alpha", 1.0}})});
  Node *t = b.op(K::Add, {l, r});
  Node *shared = b.op(K::Mul, {t, p}); // read by the conv and by the last add
  Node *c = b.op(K::Conv2d, {shared, b.param("w", {4, 4, 3, 3}), b.param("cb", {4})},
                 {{"pads", std::vector<int64_t>{1, 1, 1, 1}}});
  Node *after = b.op(K::Softplus, {b.op(K::Sub, {c, shared})});
  Node *out = b.out(b.op(K::Div, {after, b.op(K::Add, {b.op(K::Abs, {z}), z})}));
  verify(b.f);
  const codegen::Plan plan = planOf(b.f);
  CHECK(groupOf(plan, shared).size() == 5); // relu, elu, neg, add, mul
  CHECK(!fused(plan, shared));              // two users: stored
  CHECK(fused(plan, t));
  CHECK(groupOf(plan, out).size() == 5);    // sub, softplus, abs, add, div
  const Feeds feeds = randomFeeds(b.f, 9);
  compareJitBuilds(b.f, feeds, oracle(b.f, feeds), "chains around a conv");
  checkSameBits(b.f, feeds, "chains around a conv");
}
