#include "interp/Train.h"

namespace cnnc::interp {

template <class T>
StepResult trainStep(const Function &f, std::map<std::string, Tensor<T>> &state,
                     const std::map<std::string, Tensor<T>> &batch, const Hyper &h, uint64_t step) {
  std::map<std::string, Tensor<T>> feeds = state;
  for (auto &[k, v] : batch)
    feeds[k] = v;
  auto scalar = [](double v) { return Tensor<T>(xt::xarray<T>(T(v))); };
  feeds["lr"] = scalar(h.lr);
  feeds["momentum"] = scalar(h.momentum);
  feeds["weight_decay"] = scalar(h.weightDecay);
  feeds["step"] = scalar((double)step);
  RunOptions opts;
  opts.step = step;
  std::vector<Tensor<T>> vals = evaluate<T>(f, feeds, opts);

  std::map<const Node *, size_t> index;
  for (size_t i = 0; i < f.nodes().size(); ++i)
    index[f.nodes()[i].get()] = i;
  StepResult r;
  r.loss = (double)vals[index.at(f.outputs()[0])]();
  for (const Node *o : f.outputs()) {
    if (o->op == OpKind::CountCorrect)
      r.correct = (int64_t)vals[index.at(o)]();
    if (o->op == OpKind::Update)
      state[o->operands[0]->name] = vals[index.at(o)];
  }
  return r;
}

template StepResult trainStep(const Function &, std::map<std::string, Tensor<float>> &,
                              const std::map<std::string, Tensor<float>> &, const Hyper &, uint64_t);
template StepResult trainStep(const Function &, std::map<std::string, Tensor<double>> &,
                              const std::map<std::string, Tensor<double>> &, const Hyper &, uint64_t);

} // namespace cnnc::interp
