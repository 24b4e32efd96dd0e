// onnx_conformance: runs the ONNX backend test suite (Debian's libonnx-testdata) through
// cnnc and compares each test's outcome with the committed expectation.
//
//   onnx_conformance [--data DIR] [--backend interp|jit] [--expected FILE] [--write FILE]
//                    [--table] [--filter SUBSTR] [--verbose]
//
// --backend jit: each test's function compiled by codegen's LLJIT (f32) instead of the
// reference interpreter (expected-jit.txt holds its outcomes).
// --expected FILE: exit 1 if any outcome (pass / fail / unsupported) differs from FILE.
// --write FILE: write the outcomes in FILE's format (to refresh it after a fix).
// --table: passed / failed / unsupported counts per operator (scripts/onnx-conformance.sh).
#include "Conformance.h"

#include "codegen/Codegen.h"

#include <fmt/format.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>

using namespace cnnc;
using namespace cnnc::conformance;

namespace {

// Compiled code: the function lowered and optimised by codegen, run once by LLJIT on f32
// buffers (integer inputs converted from the feeds' integral floats; i32 outputs back).
class JitBackend : public Backend {
public:
  std::string name() const override { return "jit"; }
  Tensors run(const Function &f, const Tensors &feeds) override {
    auto jit = codegen::JitModel::compile(f);
    const codegen::Layout &l = jit->layout();
    const size_t nb = l.buffers.size();
    std::vector<std::vector<float>> fl(nb);
    std::vector<std::vector<int32_t>> i32(nb);
    std::vector<std::vector<int64_t>> i64(nb);
    std::vector<void *> ptrs(nb);
    for (size_t i = 0; i < nb; ++i) {
      const codegen::BufferSlot &s = l.buffers[i];
      const int64_t n = std::max<int64_t>(s.type.numel(), 1);
      if (s.kind == codegen::BufferKind::Output) {
        fl[i].assign(s.type.dtype == DType::I64 ? 2 * n : n, 0.f); // argmax's i64
        ptrs[i] = fl[i].data();
        continue;
      }
      auto it = feeds.find(s.name);
      if (it == feeds.end())
        throw Error(fmt::format("no feed for %{}", s.name));
      if (s.type.dtype == DType::I32) {
        i32[i].assign(it->second.begin(), it->second.end());
        ptrs[i] = i32[i].data();
      } else if (s.type.dtype == DType::I64) {
        i64[i].assign(it->second.begin(), it->second.end());
        ptrs[i] = i64[i].data();
      } else {
        fl[i].assign(it->second.begin(), it->second.end());
        fl[i].resize(n);
        ptrs[i] = fl[i].data();
      }
    }
    void *ws =
        std::aligned_alloc(64, (size_t)std::max<int64_t>(64, (l.workspaceBytes + 63) / 64 * 64));
    const int32_t rc = jit->run(ptrs.data(), ws, l.maxBatch);
    std::free(ws);
    if (rc == codegen::kStatusBadLabel)
      throw Error("a label is not a class index");
    Tensors out;
    for (size_t i = 0; i < nb; ++i) {
      const codegen::BufferSlot &s = l.buffers[i];
      if (s.kind != codegen::BufferKind::Output)
        continue;
      std::vector<size_t> shape(s.type.shape.begin(), s.type.shape.end());
      auto t = interp::Tensor<float>::from_shape(shape);
      for (int64_t k = 0; k < s.type.numel(); ++k) {
        if (s.type.dtype == DType::I32) {
          int32_t v;
          std::memcpy(&v, &fl[i][k], 4);
          t.data()[k] = (float)v;
        } else if (s.type.dtype == DType::I64) {
          int64_t v;
          std::memcpy(&v, &fl[i][2 * k], 8);
          t.data()[k] = (float)v;
        } else
          t.data()[k] = fl[i][k];
      }
      out[s.name] = t;
    }
    return out;
  }
};

} // namespace

int main(int argc, char **argv) {
  std::string data = "/usr/share/libonnx-testdata/data", expected, write, filter,
              backendName = "interp";
  bool table = false, verbose = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--data")
      data = next();
    else if (a == "--expected")
      expected = next();
    else if (a == "--write")
      write = next();
    else if (a == "--filter")
      filter = next();
    else if (a == "--backend")
      backendName = next();
    else if (a == "--table")
      table = true;
    else if (a == "--verbose" || a == "-v")
      verbose = true;
    else {
      std::cerr << "usage: onnx_conformance [--data DIR] [--backend interp|jit] [--expected FILE] "
                   "[--write FILE] [--table] [--filter SUBSTR] [--verbose]\n";
      return 2;
    }
  }
  std::unique_ptr<Backend> backend;
  if (backendName == "interp")
    backend = makeInterpreterBackend();
  else if (backendName == "jit")
    backend = std::make_unique<JitBackend>();
  else {
    std::cerr << "unknown backend '" << backendName << "' (interp or jit)\n";
    return 2;
  }
  auto tests = listTests(data);
  if (tests.empty()) {
    std::cerr << "no ONNX tests under " << data << " (install libonnx-testdata)\n";
    return 1;
  }
  std::vector<TestResult> results;
  int counts[3] = {0, 0, 0};
  for (const auto &[id, dir] : tests) {
    if (!filter.empty() && id.find(filter) == std::string::npos)
      continue;
    TestResult r = runTest(dir, id, *backend);
    counts[(int)r.outcome]++;
    if (verbose)
      std::cout << fmt::format("{:<70} {:<11} {:6.2f}s {}\n", r.id, outcomeName(r.outcome),
                               r.seconds, r.reason);
    results.push_back(std::move(r));
  }

  if (table) {
    struct Row {
      int pass = 0, fail = 0, unsup = 0;
    };
    std::map<std::string, Row> rows;
    for (const auto &r : results)
      for (const auto &op : r.ops) {
        Row &row = rows[op];
        (r.outcome == Outcome::Pass   ? row.pass
         : r.outcome == Outcome::Fail ? row.fail
                                      : row.unsup)++;
      }
    std::cout << fmt::format("{:<28} {:>7} {:>7} {:>12}\n", "operator", "passed", "failed",
                             "unsupported");
    for (const auto &[op, row] : rows)
      std::cout << fmt::format("{:<28} {:>7} {:>7} {:>12}\n", op, row.pass, row.fail, row.unsup);
    std::cout << "(a test counts once for each operator it uses)\n";
  }
  std::cout << fmt::format("{} tests ({} backend): {} passed, {} failed, {} unsupported\n",
                           results.size(), backend->name(), counts[0], counts[1], counts[2]);

  if (!write.empty()) {
    std::ofstream out(write);
    if (backend->name() == "jit")
      out << "# ONNX backend tests (libonnx-testdata) through cnnc's compiled code (LLVM JIT, "
             "f32).\n"
             "# One line per test: id outcome[: reason]. Regenerate with\n"
             "#   build/tests/onnx/onnx_conformance --backend jit --write "
             "tests/onnx/expected-jit.txt\n"
             "# and review the diff: every test passing on the interpreter must pass here.\n";
    else
      out << "# ONNX backend tests (libonnx-testdata) through cnnc's reference interpreter.\n"
             "# One line per test: id outcome[: reason]. Regenerate with\n"
             "#   build/tests/onnx/onnx_conformance --write tests/onnx/expected.txt\n"
             "# and review the diff: every test inside the support rule must pass.\n";
    for (const auto &r : results)
      out << r.id << " " << outcomeName(r.outcome) << (r.reason.empty() ? "" : ": " + r.reason)
          << "\n";
  }
  if (!expected.empty()) {
    auto want = readExpected(expected);
    int diffs = 0;
    for (const auto &r : results) {
      auto it = want.find(r.id);
      if (it == want.end()) {
        std::cout << fmt::format("NEW  {} {}: {}\n", r.id, outcomeName(r.outcome), r.reason);
        ++diffs;
      } else if (it->second != r.outcome) {
        std::cout << fmt::format("DIFF {} expected {}, got {}: {}\n", r.id, outcomeName(it->second),
                                 outcomeName(r.outcome), r.reason);
        ++diffs;
      }
    }
    if (filter.empty())
      for (const auto &[id, o] : want)
        if (std::none_of(results.begin(), results.end(),
                         [&](const TestResult &r) { return r.id == id; })) {
          std::cout << fmt::format("GONE {} (expected {})\n", id, outcomeName(o));
          ++diffs;
        }
    if (diffs) {
      std::cout << diffs << " outcome(s) differ from " << expected << "\n";
      return 1;
    }
    std::cout << "all outcomes match " << expected << "\n";
  }
  return 0;
}
