// The per-op tables are complete by construction (a switch over OpKind without `default:`
// fails the build under -Werror=switch when an op is missing; an X-macro over Ops.def fails
// when an op's function is missing). These tests keep it that way:
//  - no switch over OpKind in the production sources has a `default:` label;
//  - every per-op table carries an `[op-table]` marker, and docs/adding_an_op.md's list of
//    places is exactly the files that carry one.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

const fs::path kRoot = CNNC_SOURCE_DIR;
const std::vector<std::string> kProductionDirs = {"ir",      "frontend", "passes", "interp",
                                                  "codegen", "runtime",  "tools"};

std::string readFile(const fs::path &p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The sources as (path relative to the root, text).
std::vector<std::pair<std::string, std::string>> productionSources() {
  std::vector<std::pair<std::string, std::string>> out;
  for (const std::string &d : kProductionDirs)
    for (const auto &e : fs::recursive_directory_iterator(kRoot / d)) {
      const std::string ext = e.path().extension().string();
      if (e.is_regular_file() && (ext == ".cpp" || ext == ".h" || ext == ".c" || ext == ".def"))
        out.push_back({fs::relative(e.path(), kRoot).generic_string(), readFile(e.path())});
    }
  REQUIRE(out.size() > 50);
  return out;
}

// Comments and string/char literals blanked (newlines kept), so braces and labels in them
// do not count.
std::string codeOnly(const std::string &s) {
  std::string o = s;
  for (size_t i = 0; i < o.size(); ++i) {
    if (o.compare(i, 2, "//") == 0) {
      while (i < o.size() && o[i] != '\n')
        o[i++] = ' ';
    } else if (o.compare(i, 2, "/*") == 0) {
      size_t e = o.find("*/", i + 2);
      e = e == std::string::npos ? o.size() : e + 2;
      for (; i < e; ++i)
        if (o[i] != '\n')
          o[i] = ' ';
      --i;
    } else if (o[i] == '"' || o[i] == '\'') {
      const char q = o[i];
      for (++i; i < o.size() && o[i] != q; ++i) {
        if (o[i] == '\\')
          o[i++] = ' ';
        if (i < o.size() && o[i] != '\n')
          o[i] = ' ';
      }
    }
  }
  return o;
}

int lineOf(const std::string &s, size_t pos) {
  return 1 + (int)std::count(s.begin(), s.begin() + (long)pos, '\n');
}

// "file:line" of every switch whose own labels (depth 1 of its body) include both
// `case OpKind::` and `default:`.
std::vector<std::string> switchesWithDefault(const std::string &file, const std::string &text) {
  std::vector<std::string> bad;
  const std::string code = codeOnly(text);
  static const std::regex sw(R"(\bswitch\s*\()");
  for (auto it = std::sregex_iterator(code.begin(), code.end(), sw); it != std::sregex_iterator();
       ++it) {
    size_t pos = (size_t)it->position(), open = code.find('{', pos);
    if (open == std::string::npos)
      continue;
    bool opCase = false, dflt = false;
    int depth = 0;
    for (size_t i = open; i < code.size(); ++i) {
      if (code[i] == '{')
        ++depth;
      else if (code[i] == '}' && --depth == 0)
        break;
      else if (depth == 1 && code.compare(i, 13, "case OpKind::") == 0)
        opCase = true;
      else if (depth == 1 && code.compare(i, 8, "default:") == 0)
        dflt = true;
    }
    if (opCase && dflt)
      bad.push_back(file + ":" + std::to_string(lineOf(code, pos)));
  }
  return bad;
}

} // namespace

TEST_CASE("the scan finds a default: in a switch over OpKind", "[optable]") {
  const std::string src = "int f(OpKind k) {\n  switch (k) {\n  case OpKind::Relu:\n    return 1;\n"
                          "  // default: in a comment does not count\n  default:\n    return 0;\n"
                          "  }\n}\n";
  CHECK(switchesWithDefault("x.cpp", src) == std::vector<std::string>{"x.cpp:2"});
  // a nested switch over something else may keep its default
  const std::string ok = "void g(OpKind k, int c) {\n  switch (k) {\n  case OpKind::Relu:\n"
                         "    switch (c) {\n    case 1: break;\n    default: break;\n    }\n"
                         "    break;\n  }\n}\n";
  CHECK(switchesWithDefault("y.cpp", ok).empty());
}

TEST_CASE("no switch over OpKind has a default: label", "[optable]") {
  std::vector<std::string> bad;
  for (const auto &[file, text] : productionSources())
    for (const std::string &b : switchesWithDefault(file, text))
      bad.push_back(b);
  INFO("a switch over OpKind with `default:` hides a forgotten op until run time; list the "
       "ops (grouped), or read a trait of the op table");
  CHECK(bad == std::vector<std::string>{});
}

TEST_CASE("docs/adding_an_op.md lists exactly the per-op tables", "[optable]") {
  std::set<std::string> registered;
  for (const auto &[file, text] : productionSources())
    if (text.find("[op-table]") != std::string::npos)
      registered.insert(file);
  // The doc's list: the numbered lines of its "## The places" section, each starting with
  // the file in backquotes, or two files "`a` ... or `b`" when the op's traits choose the
  // table (the codegen lowering: elementwise or not).
  const std::string doc = readFile(kRoot / "docs/adding_an_op.md");
  const size_t from = doc.find("## The places");
  REQUIRE(from != std::string::npos);
  const size_t to = doc.find("\n## ", from + 1);
  std::istringstream in(doc.substr(from, to == std::string::npos ? std::string::npos : to - from));
  std::set<std::string> listed;
  static const std::regex item(R"(^\d+\. `([^`]+)`(?:[^`]*, or `([^`]+)`)?)");
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_search(line, m, item)) {
      listed.insert(m[1].str());
      if (m[2].matched)
        listed.insert(m[2].str());
    }
  }
  CHECK(listed == registered);
  CHECK(registered.size() >= 7);
}
