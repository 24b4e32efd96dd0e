#include "tools/Model.h"

#include "ir/ParamInit.h"

#include <fmt/format.h>

#include <fstream>
#include <set>
#include <sstream>

namespace cnnc::tools {

static bool endsWith(const std::string &s, const std::string &suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::unique_ptr<Module> loadModel(const std::string &path, const LoadOptions &opts) {
  if (endsWith(path, ".cnn"))
    return parseCnnFile(path, opts.cnn);
  if (endsWith(path, ".ir")) {
    std::ifstream in(path);
    if (!in)
      throw Error(fmt::format("cannot open '{}'", path));
    std::stringstream ss;
    ss << in.rdbuf();
    return parseModule(ss.str(), path);
  }
  throw Error(fmt::format("'{}': unknown model format (expected a .cnn or .ir file)", path));
}

interp::Tensor<double> toTensor(const rt::Array &a) {
  std::vector<size_t> shape(a.shape.begin(), a.shape.end());
  interp::Tensor<double> t = xt::zeros<double>(shape);
  std::vector<double> v = a.toDoubles();
  std::copy(v.begin(), v.end(), t.begin());
  return t;
}

rt::Array fromTensor(const interp::Tensor<double> &t, DType dtype) {
  std::vector<int64_t> shape(t.shape().begin(), t.shape().end());
  std::vector<double> v(t.begin(), t.end());
  if (dtype == DType::F64)
    return rt::Array::fromDoubles(v, shape);
  return rt::Array::fromFloats(std::vector<float>(v.begin(), v.end()), shape);
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
  std::map<std::string, rt::Array> arrays;
  try {
    arrays = rt::readNpz(path);
  } catch (const rt::FormatError &e) {
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
  std::map<std::string, rt::Array> arrays;
  for (const auto &n : f.nodes())
    if (n->op == OpKind::Param)
      arrays[n->name] = fromTensor(params.at(n->name), n->type.dtype);
  writeNpz(path, arrays);
}

} // namespace cnnc::tools
