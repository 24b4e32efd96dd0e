// What the cnnc CLI tests share (test_cli.cpp, test_cli_explain.cpp): run `cnnc` as a user
// does, from the source tree, and read what it wrote.
#pragma once

#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

namespace cnnc_cli_test {

namespace fs = std::filesystem;

struct Result {
  int code;
  std::string out, err;
};

inline fs::path tmpDir() {
  fs::path d = fs::temp_directory_path() / fmt::format("cnnc-cli-test-{}", ::getpid());
  fs::create_directories(d);
  return d;
}

inline std::string slurp(const fs::path &p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline Result runCnnc(const std::string &args) {
  fs::path d = tmpDir();
  std::string cmd = fmt::format("cd {} && {} {} >{} 2>{}", CNNC_SOURCE_DIR, CNNC_EXE, args,
                                (d / "out").string(), (d / "err").string());
  int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(d / "out"), slurp(d / "err")};
}

inline void write(const fs::path &p, const std::string &text) { std::ofstream(p) << text; }

// What a shell command writes to stdout (stderr to the test's).
inline std::string runCommandOut(const std::string &cmd) {
  std::string out;
  if (FILE *p = popen(cmd.c_str(), "r")) {
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;)
      out.append(buf, n);
    pclose(p);
  }
  return out;
}

} // namespace cnnc_cli_test
