#include "FrontendTestUtil.h"

#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

namespace cnnc::test {

const std::vector<std::string> &exampleNames() {
  static const std::vector<std::string> names = {
      "vgg16",    "mnist_base",  "mnist_bn", "mnist_base_dropout", "mnist_bn_dropout",
      "mnist_sk", "resnet_mnist", "mobile_mnist", "mnist_sk_sigmoid"};
  return names;
}

std::string examplePath(const std::string &stem) {
  return std::string(CNNC_SOURCE_DIR) + "/examples/" + stem + ".cnn";
}

std::string readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::unique_ptr<Module> cnn(const std::string &text, const CnnOptions &opts) {
  return parseCnn(text, "t.cnn", opts);
}

const Node &node(const Module &m, const std::string &name) {
  const Node *n = m.main().find(name);
  INFO("node %" << name);
  REQUIRE(n != nullptr);
  return *n;
}

int64_t paramCount(const Function &f) {
  int64_t total = 0;
  for (const auto &n : f.nodes())
    if (n->op == OpKind::Param)
      total += n->type.numel();
  return total;
}

std::string errorOf(const std::string &text, const CnnOptions &opts) {
  try {
    parseCnn(text, "t.cnn", opts);
  } catch (const Error &e) {
    return e.what();
  }
  return "";
}

} // namespace cnnc::test
