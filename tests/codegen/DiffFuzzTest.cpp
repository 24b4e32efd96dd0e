// The differential fuzzer's generator and target in the normal build (docs/hardening.md,
// "The differential fuzzer"): every committed seed and finding of fuzz/seeds/diff/ replays
// clean (the JIT agrees with the interpreter), and a fixed set of byte strings gives valid,
// bounded, varied models that also agree.
#include "fuzz/DiffTarget.h"
#include "fuzz/RandomModel.h"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

using namespace cnnc;

TEST_CASE("diff fuzz: every committed seed and finding replays clean") {
  const auto dir = std::filesystem::path(CNNC_SOURCE_DIR) / "fuzz/seeds/diff";
  int n = 0;
  for (const auto &e : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(e.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    INFO(e.path().string());
    CHECK_NOTHROW(fuzz::diffTarget().run(ss.str(), e.path().string()));
    ++n;
  }
  CHECK(n >= 8);
}

TEST_CASE("diff fuzz: random byte strings give valid, bounded, varied models") {
  std::mt19937_64 rng(16);
  std::set<OpKind> kinds;
  int training = 0;
  for (int i = 0; i < 24; ++i) {
    std::string bytes(64, '\0');
    for (char &c : bytes)
      c = (char)(rng() & 0xff);
    fuzz::RandomModel m = fuzz::randomModel(bytes);
    INFO(print(*m.module));
    REQUIRE_NOTHROW(verify(*m.module));
    for (const Node *n : m.module->main().nodeList()) {
      CHECK(n->type.numel() <= fuzz::kMaxElements);
      kinds.insert(n->op);
    }
    training += m.training;
    CHECK_NOTHROW(fuzz::diffTarget().run(bytes, "random"));
  }
  CHECK(training >= 6);
  CHECK(kinds.size() >= 15); // inputs, params, loss and a dozen op kinds at least
}

