// The conformance runner's rule, test loop and comparison; see Conformance.h.
// Tolerances are the ONNX backend test runner's defaults: |got - want| <= atol + rtol*|want|
// with rtol = 1e-3, atol = 1e-7; NaN matches NaN.
#include "Conformance.h"

#include "frontend/OnnxImport.h"

#include <fmt/format.h>
#include <onnx/onnx_pb.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace fs = std::filesystem;

namespace cnnc::conformance {

namespace {

class InterpBackend : public Backend {
public:
  std::string name() const override { return "interp"; }
  Tensors run(const Function &f, const Tensors &feeds) override {
    return interp::run<float>(f, feeds);
  }
};

const std::set<std::string> kOps = {"Conv",
                                    "MaxPool",
                                    "AveragePool",
                                    "GlobalAveragePool",
                                    "Relu",
                                    "Sigmoid",
                                    "Tanh",
                                    "Softplus",
                                    "Gemm",
                                    "MatMul",
                                    "Add",
                                    "Sub",
                                    "Mul",
                                    "Div",
                                    "Flatten",
                                    "Reshape",
                                    "Softmax",
                                    "LogSoftmax",
                                    "BatchNormalization",
                                    "Dropout",
                                    "Concat",
                                    "Identity",
                                    "Constant",
                                    "SoftmaxCrossEntropyLoss",
                                    // issue 14: the operators of torchvision's families
                                    "Clip",
                                    "HardSigmoid",
                                    "HardSwish",
                                    "LeakyRelu",
                                    "Pad",
                                    "ReduceMean",
                                    "ReduceSum",
                                    "Transpose",
                                    "Slice",
                                    "Split",
                                    "Squeeze",
                                    "Unsqueeze",
                                    "Expand",
                                    "Elu",
                                    "Selu",
                                    "PRelu",
                                    "Erf",
                                    "Exp",
                                    "Log",
                                    "Sqrt",
                                    "Reciprocal",
                                    "Neg",
                                    "Abs",
                                    "Pow",
                                    "Max",
                                    "Min",
                                    "Sum",
                                    "Mean",
                                    "ConvTranspose",
                                    "Resize",
                                    "Upsample",
                                    "ReduceL2",
                                    "DepthToSpace",
                                    "SpaceToDepth",
                                    "Tile",
                                    "ReduceMax",
                                    "ReduceMin",
                                    "GlobalMaxPool",
                                    "ArgMax",
                                    "InstanceNormalization",
                                    "LayerNormalization",
                                    "LRN"};

// Inputs an operator needs at compile time (cnnc's shapes and attributes are static), bound
// from the first data set: shapes, axes, pads, slice bounds, Clip's bounds.
bool compileTimeInput(const onnx::NodeProto &n, int i) {
  static const std::set<std::string> shapeOps = {"Reshape", "Pad",       "Slice",     "Split",
                                                 "Squeeze", "Unsqueeze", "ReduceSum", "Expand",
                                                 "Clip",    "Resize",    "Upsample", "Tile",
                                                 "ReduceL2", "ReduceMax", "ReduceMin"};
  return i >= 1 && shapeOps.count(n.op_type());
}
// Of those, the integer ones (Clip's bounds and Pad's constant_value are float).
bool integerSlot(const onnx::NodeProto &n, int i) {
  return compileTimeInput(n, i) && n.op_type() != "Clip" && !(n.op_type() == "Pad" && i == 2) &&
         n.op_type() != "Upsample" && !(n.op_type() == "Resize" && i < 3); // roi, scales: float
}

// The steps of a Slice node when known before running: from a Constant node, or, for a
// graph input, from the first data set (a compile-time input, as the runner binds it).
std::vector<double> sliceSteps(const onnx::GraphProto &g, const fs::path &dir,
                               const onnx::NodeProto &slice) {
  if (slice.input_size() < 5 || slice.input(4).empty())
    return {};
  const std::string &name = slice.input(4);
  for (const auto &n : g.node())
    if (n.op_type() == "Constant" && n.output(0) == name)
      for (const auto &a : n.attribute())
        if (a.name() == "value")
          return std::vector<double>(a.t().int64_data().begin(), a.t().int64_data().end());
  int k = 0;
  for (const auto &vi : g.input()) {
    if (vi.name() == name) {
      fs::path p = dir / "test_data_set_0" / fmt::format("input_{}.pb", k);
      return fs::exists(p) ? readOnnxTensorFile(p.string()).values : std::vector<double>{};
    }
    ++k;
  }
  return {};
}

bool readModel(const std::string &path, onnx::ModelProto &m) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return in && m.ParseFromString(ss.str());
}

} // namespace

std::unique_ptr<Backend> makeInterpreterBackend() {
  return std::make_unique<InterpBackend>();
}

const char *outcomeName(Outcome o) {
  switch (o) {
  case Outcome::Pass:
    return "pass";
  case Outcome::Fail:
    return "fail";
  case Outcome::Unsupported:
    return "unsupported";
  }
  return "?";
}

std::string unsupportedReason(const std::string &modelPath, std::vector<std::string> &ops) {
  onnx::ModelProto m;
  if (!readModel(modelPath, m))
    return "model.onnx does not parse";
  const onnx::GraphProto &g = m.graph();
  std::set<std::string> opSet, intSlots;
  std::map<std::string, int> rankOf; // declared ranks of graph inputs and initializers
  for (const auto &vi : g.input())
    if (vi.type().has_tensor_type() && vi.type().tensor_type().has_shape())
      rankOf[vi.name()] = vi.type().tensor_type().shape().dim_size();
  for (const auto &t : g.initializer())
    rankOf[t.name()] = t.dims_size();
  std::string reason;
  auto note = [&](const std::string &r) {
    if (reason.empty())
      reason = r;
  };
  for (const auto &n : g.node()) {
    opSet.insert(n.op_type());
    if ((!n.domain().empty() && n.domain() != "ai.onnx") || !kOps.count(n.op_type()))
      note(fmt::format("operator {}", n.op_type()));
    for (int i = 1; i < n.input_size(); ++i)
      if (integerSlot(n, i))
        intSlots.insert(n.input(i));
    if (n.op_type() == "SoftmaxCrossEntropyLoss" && n.input_size() > 1)
      intSlots.insert(n.input(1));
    if (n.op_type() == "ArgMax") // an index tensor
      intSlots.insert(n.output(0));
    if (n.op_type() == "Slice")
      for (double st : sliceSteps(g, fs::path(modelPath).parent_path(), n))
        if (st != 1)
          note("Slice with a step other than 1");
    if (n.op_type() == "Resize")
      for (const auto &a : n.attribute())
        if ((a.name() == "mode" && a.s() == "cubic") ||
            (a.name() == "coordinate_transformation_mode" && a.s() == "tf_crop_and_resize"))
          note(fmt::format("Resize {} {}", a.name(), a.s()));
    if (n.op_type() == "MaxPool" || n.op_type() == "AveragePool") {
      for (const auto &a : n.attribute())
        if (a.name() == "kernel_shape" && a.ints_size() != 2)
          note(fmt::format("{}-D pooling", a.ints_size()));
    }
    if (n.op_type() == "Conv" || n.op_type() == "ConvTranspose" ||
        n.op_type() == "GlobalAveragePool") {
      const bool conv = n.op_type() != "GlobalAveragePool";
      const std::string &probe = conv ? (n.input_size() > 1 ? n.input(1) : "") : n.input(0);
      if (rankOf.count(probe) && rankOf[probe] != 4)
        note(fmt::format("{}-D {}", rankOf[probe] - 2, conv ? "convolution" : "pooling"));
    }
  }
  ops.assign(opSet.begin(), opSet.end());
  auto checkType = [&](const std::string &name, int elemType) {
    if (elemType == onnx::TensorProto::FLOAT)
      return;
    bool integer = elemType == onnx::TensorProto::INT64 || elemType == onnx::TensorProto::INT32;
    if (integer && intSlots.count(name))
      return;
    note(fmt::format("{} tensor '{}'", onnxElemTypeName(elemType), name));
  };
  for (const auto *list : {&g.input(), &g.output(), &g.value_info()})
    for (const auto &vi : *list) {
      if (!vi.type().has_tensor_type()) {
        note(fmt::format("non-tensor value '{}'", vi.name()));
        continue;
      }
      checkType(vi.name(), vi.type().tensor_type().elem_type());
    }
  for (const auto &t : g.initializer())
    checkType(t.name(), t.data_type());
  for (const auto &n : g.node())
    if (n.op_type() == "Constant")
      for (const auto &a : n.attribute())
        if (a.name() == "value")
          checkType(n.output(0), a.t().data_type());
  return reason;
}

static Outcome compare(const interp::Tensor<float> &got, const OnnxTensor &want, std::string &why) {
  Shape gs(got.shape().begin(), got.shape().end());
  if (gs != want.shape) {
    why = fmt::format("shape {} instead of {}", shapeStr(gs), shapeStr(want.shape));
    return Outcome::Fail;
  }
  const double rtol = 1e-3, atol = 1e-7;
  int64_t bad = 0, first = -1;
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    double a = got.data()[i], b = want.values[i];
    if (std::isnan(a) && std::isnan(b))
      continue;
    double err = std::abs(a - b);
    if (!(err <= atol + rtol * std::abs(b))) {
      if (first < 0)
        first = (int64_t)i;
      ++bad;
      worst = std::max(worst, std::isnan(err) ? INFINITY : err);
    }
  }
  if (bad) {
    why = fmt::format("{} of {} values differ (first at {}: {} vs {}; max |diff| {:.3g})", bad,
                      got.size(), first, got.data()[first], want.values[first], worst);
    return Outcome::Fail;
  }
  return Outcome::Pass;
}

TestResult runTest(const std::string &dir, const std::string &id, Backend &backend) {
  TestResult r;
  r.id = id;
  auto t0 = std::chrono::steady_clock::now();
  auto done = [&](Outcome o, std::string why) {
    r.outcome = o;
    r.reason = std::move(why);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
  };
  const std::string modelPath = dir + "/model.onnx";
  if (std::string why = unsupportedReason(modelPath, r.ops); !why.empty())
    return done(Outcome::Unsupported, why);
  onnx::ModelProto proto;
  readModel(modelPath, proto);
  std::set<std::string> inits;
  for (const auto &t : proto.graph().initializer())
    inits.insert(t.name());
  std::vector<std::string> inputNames, outputNames;
  for (const auto &vi : proto.graph().input())
    if (!inits.count(vi.name()))
      inputNames.push_back(vi.name());
  for (const auto &vi : proto.graph().output())
    outputNames.push_back(vi.name());

  // Inputs that feed a shape, axes, pads or bounds are bound at compile time (cnnc's shapes
  // are static), from the first data set.
  OnnxOptions opts;
  std::set<std::string> shapeInputs;
  for (const auto &n : proto.graph().node())
    for (int i = 1; i < n.input_size(); ++i)
      if (compileTimeInput(n, i))
        shapeInputs.insert(n.input(i));
  try {
    for (size_t i = 0; i < inputNames.size(); ++i) {
      fs::path p = fs::path(dir) / "test_data_set_0" / fmt::format("input_{}.pb", i);
      if (shapeInputs.count(inputNames[i]) && fs::exists(p))
        opts.constInputs[inputNames[i]] = readOnnxTensorFile(p.string());
    }
    OnnxModel model = importOnnx(modelPath, opts);
    const Function &f = model.module->main();
    Tensors params;
    for (const auto &[name, t] : model.weights) {
      interp::Tensor<float> v =
          interp::Tensor<float>::from_shape(std::vector<size_t>(t.shape.begin(), t.shape.end()));
      std::copy(t.values.begin(), t.values.end(), v.begin());
      params[name] = v;
    }
    std::vector<fs::path> sets;
    for (const auto &e : fs::directory_iterator(dir))
      if (e.is_directory() && e.path().filename().string().rfind("test_data_set_", 0) == 0)
        sets.push_back(e.path());
    std::sort(sets.begin(), sets.end());
    if (sets.empty())
      return done(Outcome::Fail, "no test_data_set_* directory");
    for (const fs::path &set : sets) {
      Tensors feeds = params;
      for (size_t i = 0;; ++i) {
        fs::path p = set / fmt::format("input_{}.pb", i);
        if (!fs::exists(p))
          break;
        OnnxTensor t = readOnnxTensorFile(p.string());
        std::string name = !t.name.empty() && model.irName.count(t.name) ? t.name
                           : i < inputNames.size()                       ? inputNames[i]
                                                                         : "";
        if (opts.constInputs.count(name))
          continue;
        if (!model.irName.count(name))
          return done(Outcome::Fail,
                      fmt::format("{} matches no graph input", p.filename().string()));
        interp::Tensor<float> v =
            interp::Tensor<float>::from_shape(std::vector<size_t>(t.shape.begin(), t.shape.end()));
        std::copy(t.values.begin(), t.values.end(), v.begin());
        feeds[model.irName.at(name)] = v;
      }
      Tensors out = backend.run(f, feeds);
      for (size_t i = 0; i < outputNames.size(); ++i) {
        fs::path p = set / fmt::format("output_{}.pb", i);
        if (!fs::exists(p))
          continue;
        OnnxTensor want = readOnnxTensorFile(p.string());
        const std::string &ir = model.irName.at(outputNames[i]);
        std::string why;
        if (compare(out.at(ir), want, why) != Outcome::Pass)
          return done(Outcome::Fail, fmt::format("{} output '{}': {}", set.filename().string(),
                                                 outputNames[i], why));
      }
    }
  } catch (const Error &e) {
    std::string msg = e.what();
    std::replace(msg.begin(), msg.end(), '\n', ' ');
    return done(Outcome::Fail, msg);
  }
  return done(Outcome::Pass, "");
}

std::vector<std::pair<std::string, std::string>> listTests(const std::string &root) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const char *suite : {"node", "pytorch-converted", "pytorch-operator", "simple"}) {
    fs::path d = fs::path(root) / suite;
    if (!fs::is_directory(d))
      continue;
    for (const auto &e : fs::directory_iterator(d))
      if (e.is_directory() && fs::exists(e.path() / "model.onnx"))
        out.push_back(
            {fmt::format("{}/{}", suite, e.path().filename().string()), e.path().string()});
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::map<std::string, Outcome> readExpected(const std::string &path) {
  std::ifstream in(path);
  if (!in)
    throw Error(fmt::format("cannot open '{}'", path));
  std::map<std::string, Outcome> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#')
      continue;
    std::istringstream ss(line);
    std::string id, o;
    ss >> id >> o;
    if (!o.empty() && o.back() == ':')
      o.pop_back();
    out[id] = o == "pass" ? Outcome::Pass : o == "fail" ? Outcome::Fail : Outcome::Unsupported;
  }
  return out;
}

} // namespace cnnc::conformance
