// The ONNX backend-test conformance runner (issue 5): classifies each test of Debian's
// libonnx-testdata by the support rule, runs the supported ones on a backend and compares
// with the expected outputs at the ONNX runner's default tolerances.
//
// The rule (what "supported" means, independent of what the importer happens to accept):
//  - every operator is in cnnc's ONNX list (Conv, MaxPool, ..., SoftmaxCrossEntropyLoss);
//  - every tensor is f32, except the integer operands the operators define as integers
//    (Reshape's shape, SoftmaxCrossEntropyLoss's labels); bool, uint8, double, ... tensors
//    and non-tensor values (sequences, optionals) are outside the rule;
//  - convolution and pooling are 2-D spatial (4-D tensors); 1-D and 3-D ones are outside.
#pragma once

#include "interp/Interpreter.h"
#include "ir/IR.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace cnnc::conformance {

using Tensors = std::map<std::string, interp::Tensor<float>>; // by IR SSA name

/// Where compiled code plugs in: runs the (imported, verified) function on the feeds and
/// returns the value of every output by SSA name.
class Backend {
public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  virtual Tensors run(const Function &f, const Tensors &feeds) = 0;
};

/// The reference interpreter in f32.
std::unique_ptr<Backend> makeInterpreterBackend();

enum class Outcome { Pass, Fail, Unsupported };
const char *outcomeName(Outcome o);

struct TestResult {
  std::string id;               // "node/test_conv_with_strides_padding"
  std::vector<std::string> ops; // its operator types
  Outcome outcome = Outcome::Unsupported;
  std::string reason; // why it is unsupported or failed
  double seconds = 0;
};

/// The rule: "" if the model is inside it, else the reason it is not.
std::string unsupportedReason(const std::string &modelPath, std::vector<std::string> &ops);

/// Runs one test directory (model.onnx + test_data_set_*/{input,output}_N.pb).
TestResult runTest(const std::string &dir, const std::string &id, Backend &backend);

/// Every test directory under `root`'s suites (node, pytorch-converted, pytorch-operator,
/// simple), sorted, as {id, path}.
std::vector<std::pair<std::string, std::string>> listTests(const std::string &root);

/// expected.txt: `id outcome[: reason]` per line; '#' comments.
std::map<std::string, Outcome> readExpected(const std::string &path);

} // namespace cnnc::conformance
