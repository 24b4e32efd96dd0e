// Compile time stays linear in the model's size (docs/performance.md, "Compile time"):
// LLVM's function passes cost more than linearly in a function's size, so the entry is
// split into parts of bounded size (codegen/Lower.cpp, Parts). These checks count
// instructions of the unoptimised module, never time: a return of one giant entry (or of a
// part that binds every node) fails them. bench/compile_scale.sh measures the times.
#include "CodegenTestUtil.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <sstream>

using namespace cnnc;
using namespace cnnc::cgtest;

namespace {
// n elementwise nodes in a chain: abs and neg alternating (values keep their scale), every
// 50th a max with a param (a buffer a later part reads), every 37th from the 100th on an
// add of the value 100 nodes back (a workspace value computed in an earlier part).
void chain(Builder &b, int n, Shape s) {
  std::vector<Node *> v{b.input("x", s)};
  for (int i = 1; i <= n; ++i) {
    Node *prev = v.back();
    if (i % 50 == 0)
      v.push_back(b.op(OpKind::Max, {prev, b.param(fmt::format("p{}", i), s)}));
    else if (i % 37 == 0 && i >= 100)
      v.push_back(b.op(OpKind::Add, {prev, v[i - 100]}));
    else
      v.push_back(b.op(i % 2 ? OpKind::Abs : OpKind::Neg, {prev}));
  }
  b.out(v[n / 2]);
  b.out(v.back());
}

struct Sizes {
  size_t functions = 0, largest = 0, total = 0; // instructions
};

// Instructions per defined function of an LLVM module's text (instructions are the lines
// indented by two spaces between `define` and `}`).
Sizes sizes(const std::string &ll) {
  Sizes s;
  std::istringstream in(ll);
  std::string line;
  size_t cur = 0;
  bool inFn = false;
  while (std::getline(in, line)) {
    if (line.rfind("define ", 0) == 0)
      inFn = true, cur = 0, ++s.functions;
    else if (inFn && line == "}")
      inFn = false, s.largest = std::max(s.largest, cur), s.total += cur;
    else if (inFn && line.rfind("  ", 0) == 0)
      ++cur;
  }
  return s;
}

// Without fused elementwise groups (TargetOptions::fuseElementwise), which would make this
// chain a few loops: these checks are about the parts a long model's code is split into.
Sizes chainSizes(int n, bool fuse = false, bool relus = false) {
  Builder b;
  if (relus) {
    Node *v = b.input("x", {1, 1, 8, 8});
    for (int i = 0; i < n; ++i)
      v = b.op(OpKind::Relu, {v});
    b.out(v);
  } else {
    chain(b, n, {2, 3, 8, 8});
  }
  codegen::TargetOptions t;
  t.fuseElementwise = fuse;
  t.optLevel = 0; // the module as lowered
  // (without the sanitizer passes a sanitizer build adds: their instrumentation, after the
  // split, triples the instructions of every function and is not what this counts)
  t.sanitizeAddress = t.sanitizeThread = false;
  return sizes(codegen::emit(b.f, codegen::EmitKind::LLVM, t));
}
} // namespace

TEST_CASE("a long chain compiles to functions of bounded size", "[codegen][scale]") {
  const Sizes small = chainSizes(200), big = chainSizes(800);
  INFO("200 nodes: " << small.functions << " functions, largest " << small.largest << ", total "
                     << small.total << "; 800 nodes: " << big.functions << ", " << big.largest
                     << ", " << big.total);
  CHECK(small.functions > 1);
  CHECK(big.functions > 3 * small.functions);
  // a part closes after the node that takes it past Parts::kPartInstructions (3000); no
  // node of this chain is large
  CHECK(big.largest <= 4000);
  CHECK(small.largest <= 4000);
  // linear: four times the nodes, about four times the code (not 4² or 4·parts)
  CHECK(big.total <= small.total * 9 / 2);
}

TEST_CASE("a model split into parts computes what the interpreter does", "[codegen][scale]") {
  Builder b;
  chain(b, 300, {2, 3, 4, 5});
  const Feeds feeds = randomFeeds(b.f, 16);
  codegen::TargetOptions t = parallelTarget();
  t.fuseElementwise = false; // (fused, the chain is a few loops: FuseTest)
  codegen::TargetOptions o0;
  o0.optLevel = 0, o0.fuseElementwise = false;
  CHECK(sizes(codegen::emit(b.f, codegen::EmitKind::LLVM, o0)).functions > 2);
  // through the thread pool: parallel bodies of parts capture the part's arguments
  compareAll(oracle(b.f, feeds), tools::runJit(b.f, feeds, t, nullptr, 2),
             "a 300-node chain (JIT, 2 threads)");
}

// Fused elementwise groups (codegen/PlanFuse.cpp): a chain of n ReLUs is n/64 loops whose
// bodies hold the ReLUs' compare and select, vector and scalar tail, instead of n loops:
// the module LLVM has to optimise is a few instructions per ReLU (issue 16's 20,000).
TEST_CASE("a 20,000-ReLU chain lowers to a few instructions per ReLU", "[codegen][scale]") {
  const Sizes fused = chainSizes(20000, true, true), unfused = chainSizes(2000, false, true),
              fused2k = chainSizes(2000, true, true);
  INFO("20,000 ReLUs fused: " << fused.functions << " functions, " << fused.total
                              << " instructions; 2,000: fused " << fused2k.total << ", unfused "
                              << unfused.total);
  CHECK(fused.total <= 5 * 20000);      // compare + select, vector and tail: 4 per ReLU
  CHECK(fused.largest <= 4000);         // parts still bound every function
  CHECK(fused2k.total * 5 <= unfused.total); // each ReLU its own loop: ~30 instructions
  CHECK(fused.total <= fused2k.total * 21 / 2); // linear
}
