#include "tools/Trainer.h"
#include "tools/MemoryLimit.h"

#include "ir/ParamInit.h"
#include "passes/Passes.h"
#include "tools/Model.h"
#include "tools/Preprocess.h"

#include <fmt/format.h>

namespace cnnc::tools {

TrainModule loadTrainModule(const TrainModelSpec &spec, int64_t batch) {
  LoadOptions o;
  o.cnn.batch = batch;
  o.cnn.width = spec.width;
  o.cnn.training = true;
  const bool onnx = spec.path.size() >= 5 && spec.path.compare(spec.path.size() - 5, 5, ".onnx") == 0;
  if (!spec.loss.empty() && !onnx)
    throw Error(fmt::format("--loss {}: only for .onnx models ('{}' names its loss in the file)",
                            spec.loss, spec.path));
  o.loss = spec.loss;
  TrainModule t;
  LoadedModel lm = loadModelFile(spec.path, o);
  t.module = std::move(lm.module);
  for (const auto &[name, v] : lm.weights)
    t.weights[name] = std::vector<float>(v.begin(), v.end());
  if (t.module->functions().size() < 2)
    throw Error(
        fmt::format("'{}': cannot build a training step from this model (a .ir file must hold "
                    "@infer and the training-mode function)",
                    spec.path));
  addInputPreprocessing(*t.module);
  PipelineOptions po;
  po.training = true;
  runPipeline(*t.module, po);
  t.infer = &t.module->main();
  t.trainStep = t.module->find(FunctionRole::TrainStep);
  if (!t.trainStep)
    throw Error(fmt::format("'{}': the model has no @train_step after the pipeline", spec.path));
  for (const auto &n : t.trainStep->nodes())
    if (n->op == OpKind::Input) {
      if (isFloat(n->type.dtype) && n->type.rank() >= 2 && t.imageInput.empty())
        t.imageInput = n->name;
      else if (n->type.dtype == DType::I32 && n->type.rank() == 1 && t.labelInput.empty())
        t.labelInput = n->name;
    }
  if (t.imageInput.empty() || t.labelInput.empty())
    throw Error(
        fmt::format("'{}': training needs an image input and a class-label input (a `loss softmax` "
                    "layer); @train_step has {}",
                    spec.path, t.imageInput.empty() ? "no image input" : "no label input"));
  const Node *out = t.infer->outputs().empty() ? nullptr : t.infer->outputs()[0];
  if (!out || out->type.rank() != 2)
    throw Error(fmt::format("'{}': @infer must return class scores [N, classes]", spec.path));
  return t;
}

State initialState(const Function &trainStep, uint64_t seed) {
  State s;
  for (const auto &n : trainStep.nodes())
    if (n->op == OpKind::Param) {
      std::vector<double> v = initParam(*n, seed);
      s[n->name] = std::vector<float>(v.begin(), v.end());
    }
  return s;
}

namespace {

using FTensor = interp::Tensor<float>;

FTensor tensorOf(const TensorType &t, const float *data) {
  std::vector<size_t> shape(t.shape.begin(), t.shape.end());
  FTensor x = FTensor::from_shape(shape);
  std::copy(data, data + x.size(), x.begin());
  return x;
}

class InterpTrainer : public Trainer {
public:
  explicit InterpTrainer(const TrainModelSpec &spec) : spec_(spec) {
    const TrainModule &m = module(spec.batch);
    checkMemory(interpreterBytes(*m.trainStep, 4),
                fmt::format("training @{} on the interpreter (f32)", m.trainStep->name()));
    for (const auto &n : m.trainStep->nodes())
      if (n->op == OpKind::Param) {
        std::vector<size_t> shape(n->type.shape.begin(), n->type.shape.end());
        state_[n->name] = xt::zeros<float>(shape);
      }
  }
  std::string backend() const override { return "interp"; }

  interp::StepResult step(const float *images, const int32_t *labels, int64_t n,
                          const interp::Hyper &h, uint64_t step) override {
    const TrainModule &m = module(n);
    const Node *in = m.trainStep->find(m.imageInput), *lb = m.trainStep->find(m.labelInput);
    FTensor y = FTensor::from_shape({(size_t)n});
    for (int64_t i = 0; i < n; ++i)
      y(i) = (float)labels[i];
    std::map<std::string, FTensor> batch{{m.imageInput, tensorOf(in->type, images)}, {lb->name, y}};
    return interp::trainStep<float>(*m.trainStep, state_, batch, h, step);
  }

  void infer(const float *images, int64_t n, float *scores) override {
    const TrainModule &m = module(n);
    std::map<std::string, FTensor> feeds;
    for (const auto &node : m.infer->nodes())
      if (node->op == OpKind::Param)
        feeds[node->name] = state_.at(node->name);
    feeds[m.imageInput] = tensorOf(m.infer->find(m.imageInput)->type, images);
    auto out = interp::run<float>(*m.infer, feeds);
    const FTensor &s = out.at(m.infer->outputs()[0]->name);
    std::copy(s.begin(), s.end(), scores);
  }

  State state() const override {
    State s;
    for (const auto &[k, v] : state_)
      s[k] = std::vector<float>(v.begin(), v.end());
    return s;
  }

  void setState(const State &s) override {
    for (const auto &[k, v] : s) {
      auto it = state_.find(k);
      if (it == state_.end())
        throw Error(fmt::format("the training state has no parameter '{}'", k));
      if (it->second.size() != v.size())
        throw Error(fmt::format("parameter '{}': {} values given, the model has {}", k, v.size(),
                                it->second.size()));
      std::copy(v.begin(), v.end(), it->second.begin());
    }
  }

private:
  const TrainModule &module(int64_t n) {
    auto it = modules_.find(n);
    if (it == modules_.end())
      it = modules_.emplace(n, loadTrainModule(spec_, n)).first;
    return it->second;
  }

  TrainModelSpec spec_;
  std::map<int64_t, TrainModule> modules_;
  std::map<std::string, FTensor> state_;
};

} // namespace

std::unique_ptr<Trainer> makeInterpTrainer(const TrainModelSpec &spec) {
  return std::make_unique<InterpTrainer>(spec);
}

} // namespace cnnc::tools
