#include "tools/Model.h"

#include "frontend/OnnxImport.h"
#include "ir/ParamInit.h"

#include <fmt/format.h>

#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

namespace cnnc::tools {

static bool endsWith(const std::string &s, const std::string &suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::unique_ptr<Module> loadModel(const std::string &path, const LoadOptions &opts) {
  if (endsWith(path, ".onnx"))
    return loadModelFile(path, opts).module;
  if (endsWith(path, ".cnn")) {
    if (!opts.cnn.training)
      return parseCnnFile(path, opts.cnn);
    // A training build holds both functions of the model: @infer (running statistics,
    // dropout off) and the training-mode graph that the `grad` pass makes @train_step.
    return parseCnnFileForTraining(path, opts.cnn);
  }
  if (endsWith(path, ".ir")) {
    std::ifstream in(path);
    if (!in)
      throw Error(fmt::format("cannot open '{}'", path));
    std::stringstream ss;
    ss << in.rdbuf();
    auto m = parseModule(ss.str(), path);
    if (m->functions().empty()) // every subcommand needs one (Module::main)
      throw Error(fmt::format("{}: no function in this IR file (it is empty or holds only "
                              "comments; docs/ir.md)",
                              path));
    return m;
  }
  throw Error(fmt::format("'{}': unknown model format (expected a .cnn, .ir or .onnx file)", path));
}

LoadedModel loadModelFile(const std::string &path, const LoadOptions &opts) {
  LoadedModel lm;
  if (!endsWith(path, ".onnx")) {
    lm.module = loadModel(path, opts);
    return lm;
  }
  OnnxOptions o;
  o.batch = opts.cnn.batch;
  o.inputHW = opts.cnn.inputHW;
  o.training = opts.cnn.training;
  o.loss = opts.loss;
  o.constInputs = opts.onnxConstInputs;
  // As for .cnn, a training build holds @infer and the training-mode function
  OnnxModel m = o.training ? importOnnxForTraining(path, o) : importOnnx(path, o);
  lm.module = std::move(m.module);
  for (const auto &[name, t] : m.weights) {
    std::vector<size_t> shape(t.shape.begin(), t.shape.end());
    interp::Tensor<double> v = xt::zeros<double>(shape);
    std::copy(t.values.begin(), t.values.end(), v.begin());
    lm.weights[name] = std::move(v);
  }
  lm.irName = std::move(m.irName);
  lm.onnxName = std::move(m.onnxName);
  return lm;
}

std::string LoadedModel::resolve(const std::string &name) const {
  if (auto it = irName.find(name); it != irName.end())
    return it->second;
  return module->main().find(name) ? name : "";
}

std::string LoadedModel::display(const std::string &ir) const {
  auto it = onnxName.find(ir);
  return it != onnxName.end() ? it->second : ir;
}

static io::ElemType elemTypeOf(DType t) {
  switch (t) {
  case DType::F32: return io::ElemType::F32;
  case DType::F64: return io::ElemType::F64;
  case DType::I32: return io::ElemType::I32;
  case DType::I64: return io::ElemType::I64;
  }
  return io::ElemType::F64;
}

io::Array readTensorFile(const std::string &path) {
  if (!endsWith(path, ".pb"))
    try {
      return io::readNpy(path);
    } catch (const io::FormatError &e) {
      throw Error(e.what());
    }
  OnnxTensor t = readOnnxTensorFile(path);
  io::Array a = io::Array::fromDoubles(t.values, t.shape);
  if (t.dtype == DType::F64)
    return a;
  // Narrow to the file's own element type so that the model sees what the file holds.
  io::Array out;
  out.type = elemTypeOf(t.dtype);
  out.shape = t.shape;
  const int es = dtypeSize(t.dtype);
  out.data.resize(t.values.size() * es);
  for (size_t i = 0; i < t.values.size(); ++i) {
    unsigned char *p = out.data.data() + i * es;
    if (t.dtype == DType::F32) {
      float v = (float)t.values[i];
      std::memcpy(p, &v, 4);
    } else if (t.dtype == DType::I32) {
      int32_t v = (int32_t)t.values[i];
      std::memcpy(p, &v, 4);
    } else {
      int64_t v = (int64_t)t.values[i];
      std::memcpy(p, &v, 8);
    }
  }
  return out;
}

void writeTensorFile(const std::string &path, const io::Array &a) {
  if (!endsWith(path, ".pb")) {
    io::writeNpy(path, a);
    return;
  }
  OnnxTensor t;
  t.dtype = a.type == io::ElemType::F64   ? DType::F64
            : a.type == io::ElemType::I32 ? DType::I32
            : a.type == io::ElemType::I64 ? DType::I64
                                          : DType::F32;
  t.shape = a.shape;
  t.values = a.toDoubles();
  writeOnnxTensorFile(path, t);
}

interp::Tensor<double> toTensor(const io::Array &a) {
  std::vector<size_t> shape(a.shape.begin(), a.shape.end());
  interp::Tensor<double> t = xt::zeros<double>(shape);
  std::vector<double> v = a.toDoubles();
  std::copy(v.begin(), v.end(), t.begin());
  return t;
}

io::Array fromTensor(const interp::Tensor<double> &t, DType dtype) {
  std::vector<int64_t> shape(t.shape().begin(), t.shape().end());
  std::vector<double> v(t.begin(), t.end());
  if (dtype == DType::F64)
    return io::Array::fromDoubles(v, shape);
  return io::Array::fromFloats(std::vector<float>(v.begin(), v.end()), shape);
}

Feeds initParams(const Function &f, uint64_t seed) {
  Feeds out;
  for (const auto &n : f.nodes()) {
    if (n->op != OpKind::Param)
      continue;
    std::vector<double> v = initParam(*n, seed);
    std::vector<size_t> shape(n->type.shape.begin(), n->type.shape.end());
    interp::Tensor<double> t = xt::zeros<double>(shape);
    std::copy(v.begin(), v.end(), t.begin());
    out[n->name] = std::move(t);
  }
  return out;
}

Feeds loadParams(const Function &f, const std::string &path) {
  std::map<std::string, io::Array> arrays;
  try {
    arrays = io::readNpz(path);
  } catch (const io::FormatError &e) {
    throw Error(e.what());
  }
  Feeds out;
  std::vector<std::string> problems;
  for (const auto &n : f.nodes()) {
    if (n->op != OpKind::Param)
      continue;
    auto it = arrays.find(n->name);
    if (it == arrays.end()) {
      problems.push_back(fmt::format("parameter '{}' {} is missing", n->name, n->type.str()));
      continue;
    }
    if (it->second.shape != n->type.shape) {
      problems.push_back(fmt::format("parameter '{}' has shape {} in the file, the model needs {}",
                                     n->name, shapeStr(it->second.shape), shapeStr(n->type.shape)));
      continue;
    }
    out[n->name] = toTensor(it->second);
    arrays.erase(it);
  }
  for (auto &[name, a] : arrays)
    problems.push_back(fmt::format("array '{}' {} is not a parameter of this model", name, shapeStr(a.shape)));
  if (!problems.empty())
    throw Error(fmt::format("weights file '{}' does not match the model:\n  {}", path,
                            fmt::join(problems, "\n  ")));
  return out;
}

void saveParams(const Function &f, const Feeds &params, const std::string &path) {
  std::map<std::string, io::Array> arrays;
  for (const auto &n : f.nodes())
    if (n->op == OpKind::Param)
      arrays[n->name] = fromTensor(params.at(n->name), n->type.dtype);
  writeNpz(path, arrays);
}

} // namespace cnnc::tools
