// One training step on the reference interpreter: evaluates @train_step (passes/Autodiff.h)
// and writes its `update` outputs back into the model state.
#pragma once

#include "interp/Interpreter.h"

namespace cnnc::interp {

struct Hyper {
  double lr = 0.001, momentum = 0.9, weightDecay = 5e-4; // the seed's Exercise 6 (MatConvNet)
};

struct StepResult {
  double loss = 0;
  int64_t correct = -1; // -1: the loss has no notion of a correct prediction
};

/// `state` holds every param of f by name (weights, momentum buffers, running statistics)
/// and is updated in place; `batch` holds the data inputs (e.g. %data, %label).
template <class T>
StepResult trainStep(const Function &f, std::map<std::string, Tensor<T>> &state,
                     const std::map<std::string, Tensor<T>> &batch, const Hyper &h, uint64_t step);

extern template StepResult trainStep(const Function &, std::map<std::string, Tensor<float>> &,
                                     const std::map<std::string, Tensor<float>> &, const Hyper &, uint64_t);
extern template StepResult trainStep(const Function &, std::map<std::string, Tensor<double>> &,
                                     const std::map<std::string, Tensor<double>> &, const Hyper &, uint64_t);

} // namespace cnnc::interp
