// Replays tests/bad-inputs/: each input file goes through the reader its suffix names
// (fuzz/Targets.h) and must be rejected with exactly the text of <file>.expected. A crash or
// a stray exception fails the test like a mismatch does. CNNC_BLESS=1 writes the missing
// .expected files from the current messages (review them before committing).
#include "fuzz/Targets.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path &p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string chomp(std::string s) {
  while (!s.empty() && s.back() == '\n')
    s.pop_back();
  return s;
}

} // namespace

TEST_CASE("bad inputs: every file gives its exact message", "[bad-inputs]") {
  const fs::path dir = "tests/bad-inputs"; // ctest runs from the source root
  std::vector<fs::path> inputs;
  for (const auto &e : fs::recursive_directory_iterator(dir)) {
    std::string name = e.path().filename().string();
    if (e.is_regular_file() && cnnc::fuzz::targetForFile(name))
      inputs.push_back(e.path());
  }
  std::sort(inputs.begin(), inputs.end());
  REQUIRE(inputs.size() >= 30);
  const bool bless = std::getenv("CNNC_BLESS") != nullptr;
  for (const fs::path &p : inputs) {
    DYNAMIC_SECTION(p.string()) {
      const cnnc::fuzz::Target &t = *cnnc::fuzz::targetForFile(p.filename().string());
      fs::path expectedFile = p.string() + ".expected";
      std::string got = t.run(slurp(p), p.string());
      if (bless && !fs::exists(expectedFile))
        std::ofstream(expectedFile, std::ios::binary) << got << "\n";
      INFO("target " << t.name);
      REQUIRE(fs::exists(expectedFile));
      CHECK(got == chomp(slurp(expectedFile)));
      CHECK(!got.empty()); // a bad input is rejected, never accepted
    }
  }
}
