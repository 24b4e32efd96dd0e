// The backend of `cnnc train`: something that runs the model's @train_step on a mini-batch
// and its @infer on examples, and whose state (every param of @train_step: weights, momentum
// buffers, running statistics, the preprocessing) can be read and restored exactly. The
// training loop (tools/Train.h) sees only this interface, so the backend is a switch:
// `--backend interp` (the reference interpreter, f32, slow but the oracle) or `jit` (LLVM).
#pragma once

#include "interp/Train.h"
#include "ir/IR.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace cnnc::tools {

/// What a trainer is built from: the model file and the options it is loaded with.
struct TrainModelSpec {
  std::string path;
  int64_t batch = 100; // the largest mini-batch (train and evaluation)
  double width = 1.0;  // SK-s width multiplier
  /// `--loss`: .onnx models only, the loss added on the output when the model computes
  /// none ("softmax"; "" = the model's own loss, an error if it has none).
  std::string loss;
  /// `--threads`: threads of the compiled backend (0 = every CPU); the interpreter ignores it.
  int threads = 0;
};

using State = std::map<std::string, std::vector<float>>;

/// The model as training needs it: @infer and @train_step at the given batch, both with the
/// input preprocessing (tools/Preprocess.h), after the pipeline.
struct TrainModule {
  std::unique_ptr<Module> module;
  const Function *infer = nullptr, *trainStep = nullptr;
  std::string imageInput, labelInput; // SSA names of @train_step's inputs
  /// The file's own weights (an ONNX model's initializers) by param name, f32; empty for
  /// .cnn/.ir. `cnnc train` starts from them instead of the seeded init.
  State weights;
};
TrainModule loadTrainModule(const TrainModelSpec &spec, int64_t batch);

class Trainer {
public:
  virtual ~Trainer() = default;
  virtual std::string backend() const = 0;
  /// One SGD step on n <= batch examples (raw pixels, as the model's input; labels as
  /// class indices); updates the state. `step` is the global step count (dropout masks).
  virtual interp::StepResult step(const float *images, const int32_t *labels, int64_t n,
                                  const interp::Hyper &h, uint64_t step) = 0;
  /// @infer on n <= batch examples: writes n * classes scores (softmax probabilities).
  virtual void infer(const float *images, int64_t n, float *scores) = 0;
  /// Every param of @train_step by name, f32.
  virtual State state() const = 0;
  /// Replaces the listed params (names and sizes checked; others keep their values).
  virtual void setState(const State &s) = 0;
};

/// The reference interpreter (interp::trainStep / interp::run in f32). A partial last batch
/// gets the model built at its own size.
std::unique_ptr<Trainer> makeInterpTrainer(const TrainModelSpec &spec);

/// Initial state: each param's seeded `init` (as `cnnc init --seed` writes it).
State initialState(const Function &trainStep, uint64_t seed);

} // namespace cnnc::tools

namespace cnnc::tools {
/// The LLVM backend: @train_step compiled by tools::JitTrainer (tools/Compiled.h) and @infer
/// by codegen::JitModel. Defined in tools/TrainerJit.cpp (library cnnc_tools_codegen).
std::unique_ptr<Trainer> makeJitTrainer(const TrainModelSpec &spec);
} // namespace cnnc::tools
