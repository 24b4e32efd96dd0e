// The `.cnn` frontend's entry points: options checked, pass 1 (CnnSyntax: statements and
// names), pass 2 (CnnLower/CnnLayers: nodes), then the IR verifier as a final safety net.
// After parseCnn returns, the module holds one verified function named after the network,
// every node typed and located at the .cnn line it came from.
#include "frontend/CnnFrontend.h"

#include "frontend/CnnLower.h"

#include <cctype>
#include <cmath>
#include <fstream>
#include <sstream>

namespace cnnc {

// The file's stem, made a valid function name: "examples/vgg16.cnn" -> "vgg16".
static std::string defaultName(const std::string &filename) {
  std::string stem = filename.substr(filename.find_last_of('/') + 1);
  if (size_t dot = stem.rfind('.'); dot != std::string::npos && dot > 0)
    stem = stem.substr(0, dot);
  std::string name;
  for (char c : stem)
    name += std::isalnum((unsigned char)c) ? c : '_';
  if (name.empty() || std::isdigit((unsigned char)name[0]))
    name = "net" + name;
  return name;
}

static void checkOptions(const CnnOptions &o) {
  if (o.batch < 1 || o.batch > (int64_t(1) << 31))
    throw Error("the batch size must be between 1 and 2^31, got " + std::to_string(o.batch));
  if (!(o.width > 0) || !std::isfinite(o.width) || o.width > 1e6)
    throw Error("the width multiplier must be positive, got " + std::to_string(o.width));
  if (o.inputHW &&
      (o.inputHW->first < 1 || o.inputHW->second < 1 || o.inputHW->first > (int64_t(1) << 31) ||
       o.inputHW->second > (int64_t(1) << 31)))
    throw Error("the input size must be positive, got " + std::to_string(o.inputHW->first) + "x" +
                std::to_string(o.inputHW->second));
}

// One function of m from the parsed statements (a copy: naming writes into them).
static Function &lower(Module &m, std::vector<cnn::Stmt> stmts, const std::string &filename,
                       const CnnOptions &opts, cnn::Diag &diag) {
  cnn::NameAllocator names;
  cnn::assignNames(stmts, names, opts.training, diag);
  Function &f = m.addFunction(defaultName(filename));
  cnn::Lowerer(f, opts, diag, names).run(stmts);
  verify(f);
  return f;
}

std::unique_ptr<Module> parseCnn(std::string_view text, const std::string &filename,
                                 const CnnOptions &opts) {
  checkOptions(opts);
  cnn::Diag diag(filename);
  auto m = std::make_unique<Module>();
  lower(*m, cnn::parseStatements(text, diag), filename, opts, diag);
  return m;
}

static std::string readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw Error("cannot open '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::unique_ptr<Module> parseCnnFile(const std::string &path, const CnnOptions &opts) {
  return parseCnn(readFile(path), path, opts);
}

std::unique_ptr<Module> parseCnnFileForTraining(const std::string &path, const CnnOptions &opts) {
  const std::string text = readFile(path);
  CnnOptions io = opts, to = opts;
  io.training = false, to.training = true;
  checkOptions(to);
  cnn::Diag diag(path);
  const std::vector<cnn::Stmt> stmts = cnn::parseStatements(text, diag);
  auto m = std::make_unique<Module>();
  lower(*m, stmts, path, io, diag).setRole(FunctionRole::Infer); // (renamed @infer)
  lower(*m, stmts, path, to, diag);
  return m;
}

} // namespace cnnc
