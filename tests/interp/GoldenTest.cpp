// The interpreter against PyTorch: every case in tests/goldens/data (made by
// tests/goldens/make_goldens.py) is parsed, fed its .npy inputs and run in f32 and in f64;
// the output must match PyTorch's elementwise within |a - b| <= 1e-5 + 1e-4 |b|.
#include "interp/Interpreter.h"
#include "interp/Npy.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace fs = std::filesystem;
using namespace cnnc;

namespace {

const fs::path kGoldens = fs::path(CNNC_SOURCE_DIR) / "tests/goldens/data";

std::string slurp(const fs::path &p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<fs::path> caseDirs() {
  std::vector<fs::path> dirs;
  for (const auto &e : fs::directory_iterator(kGoldens))
    if (e.is_directory())
      dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

// Empty if every element is within tolerance; otherwise a description of the worst one.
template <class T>
std::string compare(const interp::Tensor<T> &got, const interp::Tensor<float> &want) {
  if (!std::equal(got.shape().begin(), got.shape().end(), want.shape().begin(), want.shape().end()))
    return fmt::format("shape [{}] != expected [{}]", fmt::join(got.shape(), ","),
                       fmt::join(want.shape(), ","));
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double a = got.data()[i], b = want.data()[i];
    const double excess = std::abs(a - b) / (1e-5 + 1e-4 * std::abs(b));
    if (!(excess <= worst)) { // also catches NaN
      worst = std::isnan(excess) ? INFINITY : excess;
      at = i;
    }
  }
  if (worst <= 1)
    return "";
  return fmt::format("worst element #{}: got {} expected {} (|diff| = {:.3g} times the tolerance)",
                     at, (double)got.data()[at], (double)want.data()[at], worst);
}

template <class T> std::string runCase(const Function &f, const fs::path &dir) {
  std::map<std::string, interp::Tensor<T>> feeds;
  for (const auto &n : f.nodes())
    if (n->op == OpKind::Input || n->op == OpKind::Param)
      feeds[n->name] = interp::loadNpy<T>((dir / (n->name + ".npy")).string());
  auto out = interp::run<T>(f, feeds);
  REQUIRE(out.size() == 1);
  return compare(out.begin()->second, interp::loadNpy<float>((dir / "expected.npy").string()));
}

} // namespace

TEST_CASE("the interpreter matches PyTorch on every golden case", "[interp][goldens]") {
  const auto dirs = caseDirs();
  REQUIRE(dirs.size() >= 60);
  for (const fs::path &dir : dirs) {
    DYNAMIC_SECTION(dir.filename().string()) {
      const std::string text = slurp(dir / "model.ir");
      auto m = parseModule(text, (dir / "model.ir").string());
      const Function &f = m->main();
      // The script writes exactly what cnnc's printer prints.
      CHECK(print(*m) == text);
      std::string err32 = runCase<float>(f, dir);
      INFO("f32: " << err32);
      CHECK(err32.empty());
      std::string err64 = runCase<double>(f, dir);
      INFO("f64: " << err64);
      CHECK(err64.empty());
    }
  }
}

TEST_CASE("the goldens cover every op", "[interp][goldens]") {
  std::set<OpKind> covered;
  for (const fs::path &dir : caseDirs()) {
    auto m = parseModule(slurp(dir / "model.ir"));
    for (const auto &n : m->main().nodes())
      covered.insert(n->op);
  }
  for (const OpInfo &op : allOps()) {
    if (op.kind == OpKind::Constant) // tested directly (InterpTest.cpp)
      continue;
    INFO("op " << op.mnemonic);
    CHECK(covered.count(op.kind) == 1);
  }
}
