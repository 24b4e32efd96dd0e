// The CLI's bridge to codegen/: running a model compiled by the JIT (`cnnc run --backend jit`)
// and compiling it to LLVM IR, assembly, an object or a shared library (`cnnc compile`).
#pragma once

#include "codegen/Codegen.h"
#include "interp/Train.h"
#include "tools/Model.h"

#include <memory>

namespace cnnc::tools {

/// A thread count and the pool that realises it (runtime/Parallel.h), for running compiled
/// code in process: 0 = every CPU this process may use; 1 = the calling thread alone (no
/// pool). Results do not depend on the count (docs/codegen.md, "Threads").
class ThreadPool {
public:
  explicit ThreadPool(int threads = 1) { setThreads(threads); }
  ~ThreadPool();
  ThreadPool(const ThreadPool &) = delete;
  ThreadPool &operator=(const ThreadPool &) = delete;
  void setThreads(int threads); // throws cnnc::Error when < 0
  int threads() const { return threads_; }
  cnnc_rt_pool *get(); // started at the first call; NULL for one thread

private:
  int threads_ = 1;
  cnnc_rt_pool *pool_ = nullptr;
};

struct JitTimes {
  double compileSeconds = 0, runSeconds = 0;
};

/// Runs f under the LLVM JIT on f32 copies of `feeds` (every input and param by name);
/// returns f's outputs by name, in f64 for comparison with the interpreter.
std::map<std::string, interp::Tensor<double>> runJit(const Function &f, const Feeds &feeds,
                                                     const codegen::TargetOptions &t = {},
                                                     JitTimes *times = nullptr,
                                                     int threads = 1);

struct CompileRequest {
  std::string output;  // -o
  std::string emit;    // so | llvm | asm | obj
  std::string header;  // --header
  std::string weights; // --weights: embed these (.npz)
  Feeds fileWeights;   // else these (an ONNX model's initializers), when not empty
  codegen::TargetOptions target;
  int64_t trainNaiveBytes = 0; // --train --header: the naive sum the header reports (0: none)
  std::string prefix;          // --prefix: the library's symbol prefix
  std::string modelName;       // what the library's <prefix>_model_name() answers
};
/// The default --prefix: `name` made a C identifier (other characters become '_').
std::string cIdentifier(const std::string &name);
/// Compiles; for a shared library, prints what it wrote to `report` (files, sizes, the
/// exported prefix, weights embedded or not) and warns on stderr when an instance will start
/// from zero weights.
void compileModel(const Function &f, const CompileRequest &r, std::ostream *report = nullptr);
/// `cnnc compile --train`: one .so holding @infer (cnnc_infer) and @train_step
/// (cnnc_train_step, checkpoints); `trainStep` is the module's @train_step.
void compileTrainModel(const Function &infer, const Function &trainStep, const CompileRequest &r,
                       std::ostream *report = nullptr);

/// A compiled @train_step (docs/training.md, docs/codegen.md "Training"), the JIT twin of
/// interp::trainStep: it owns the model state (weights, momentum buffers, BN running
/// statistics: every param of the function) and the step counter that drives dropout masks.
///
///   auto tr = tools::JitTrainer::compile(*module.find(FunctionRole::TrainStep));
///   tr->setParams(initialParams);                 // or loadCheckpoint(path)
///   interp::StepResult r = tr->step(batch, hyper); // batch: {"data", x}, {"label", y}
///   auto w = tr->params();                         // e.g. for @infer or saving
///
/// step(batch, h) computes exactly what interp::trainStep(f, state, batch, h, stepCount())
/// computes (in f32, to rounding; dropout masks bit for bit), then ++stepCount().
/// The graph's N is the largest batch: a step runs on any batch minBatchSize()..batchSize()
/// (1..N unless the graph is fixed-batch, layout().batchNote says why), and computes what
/// the interpreter computes on the same function built at that batch: a smaller last batch
/// needs no second compile.
/// Errors (unknown names, wrong sizes, a label outside [0, C)) throw cnnc::Error; after a
/// bad label the step is not applied (the state is unchanged) and the counter does not move.
class JitTrainer {
public:
  static std::unique_ptr<JitTrainer> compile(const Function &trainStep,
                                             const codegen::TargetOptions &t = {});
  ~JitTrainer();

  /// The data inputs in node order (everything but %lr, %momentum, %weight_decay, %step),
  /// e.g. {"data", "label"}.
  const std::vector<std::string> &dataInputs() const;
  int64_t batchSize() const;    // the largest batch (the graph's N)
  int64_t minBatchSize() const; // 1, or batchSize() for a fixed-batch graph
  /// Every param by name, in node order (trainable weights, then the state SGD adds).
  std::vector<std::string> paramNames() const;
  const TensorType &paramType(const std::string &name) const;

  /// One step. `batch` maps every data input to a tensor of its declared shape, or with
  /// fewer examples in dim 0 (all inputs the same number; labels as integral floats, as the
  /// interpreter takes them).
  interp::StepResult step(const std::map<std::string, interp::Tensor<float>> &batch,
                          const interp::Hyper &h);
  interp::StepResult step(const std::map<std::string, interp::Tensor<double>> &batch,
                          const interp::Hyper &h);
  /// Raw form: inputs[k] points at dataInputs()[k]'s `batch` examples (0: batchSize()), f32
  /// (int32_t for i32 inputs such as labels).
  interp::StepResult step(const void *const *inputs, const interp::Hyper &h, int64_t batch = 0);

  void setParam(const std::string &name, const float *data, int64_t count);
  void getParam(const std::string &name, float *data, int64_t count) const;
  /// Sets the params present in `p` (every name must be a param; others keep their value).
  void setParams(const std::map<std::string, interp::Tensor<float>> &p);
  void setParams(const std::map<std::string, interp::Tensor<double>> &p);
  std::map<std::string, interp::Tensor<float>> params() const;

  uint64_t stepCount() const; // the step the next step() runs (0 after compile)
  void setStepCount(uint64_t s);
  /// Checkpoint = every param (f32 arrays named by param) + "step" (an int64 scalar) in an
  /// uncompressed .npz; the .so's cnnc_save_checkpoint/cnnc_load_checkpoint use the same
  /// format. Resuming from a checkpoint continues bit for bit.
  void saveCheckpoint(const std::string &path) const;
  void loadCheckpoint(const std::string &path);

  double compileSeconds() const;
  const codegen::Layout &layout() const;

  /// Threads per step (ThreadPool: 0 = every CPU; 1, the default, runs on the caller).
  void setThreads(int threads);
  int threads() const;

private:
  JitTrainer();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace cnnc::tools
