// onnx_conformance: runs the ONNX backend test suite (Debian's libonnx-testdata) through
// cnnc and compares each test's outcome with the committed expectation.
//
//   onnx_conformance [--data DIR] [--backend interp] [--expected FILE] [--write FILE]
//                    [--table] [--filter SUBSTR] [--verbose]
//
// --expected FILE: exit 1 if any outcome (pass / fail / unsupported) differs from FILE.
// --write FILE: write the outcomes in FILE's format (to refresh it after a fix).
// --table: passed / failed / unsupported counts per operator (scripts/onnx-conformance.sh).
#include "Conformance.h"

#include <fmt/format.h>

#include <cstring>
#include <fstream>
#include <iostream>

using namespace cnnc;
using namespace cnnc::conformance;

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
      std::cerr << "usage: onnx_conformance [--data DIR] [--backend interp] [--expected FILE] "
                   "[--write FILE] [--table] [--filter SUBSTR] [--verbose]\n";
      return 2;
    }
  }
  std::unique_ptr<Backend> backend;
  if (backendName == "interp")
    backend = makeInterpreterBackend();
  else {
    std::cerr << "unknown backend '" << backendName << "' (only 'interp' exists so far)\n";
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
