// Shared by the codegen tests: random feeds, the f64 interpreter oracle, the tolerance
// max|a-b| <= 1e-4 * max(1, max|b|) per tensor, a tiny IR builder and a dlopen'ed .so.
#pragma once

#include "codegen/Codegen.h"
#include "runtime/CnncApi.h"
#include "interp/Interpreter.h"
#include "tools/Compiled.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace cnnc::cgtest {

using Feeds = tools::Feeds;
using Results = std::map<std::string, interp::Tensor<double>>;

/// Inputs uniform in [-1, 1] (i32 inputs: class indices (3i) mod `classes`); params scaled
/// like He/LeCun initialisation so activations stay O(1); `*var` params in [0.5, 1.5].
Feeds randomFeeds(const Function &f, uint64_t seed, int64_t classes = 10);
Results oracle(const Function &f, const Feeds &feeds); // the interpreter in f64

// ---- training steps (TrainTest, BatchTest, ThreadsTest)
/// examples/NAME at `batch` through the default pipeline: an inference build (@infer), or a
/// training build (@infer and @train_step).
std::unique_ptr<Module> loadPipelined(const std::string &name, int64_t batch, bool training);
inline std::unique_ptr<Module> loadTrain(const std::string &name, int64_t batch) {
  return loadPipelined(name, batch, true);
}
/// The oracle-checked steps' hyperparameters (a large lr: the update shows the gradient) and
/// step counter (it drives dropout masks).
inline const interp::Hyper kHyper{0.5, 0.9, 5e-4};
inline constexpr uint64_t kStep = 3;
/// randomFeeds plus the step's scalar inputs (lr, momentum, weight_decay, step).
Feeds trainFeeds(const Function &f, uint64_t seed);
/// The interpreter's step in f64: loss, correct, and each updated param by the param's name.
Results expectedStep(const Function &f, const Feeds &feeds);
/// One training step under the JIT, as expectedStep's: `tr`'s params from `params`, its
/// step counter at kStep, its data inputs from `data`; the loss, the number correct and every
/// updated param.
Results jitStep(tools::JitTrainer &tr, const Feeds &params, const Feeds &data);
/// The data of step s (inputs uniform, labels from randomFeeds) as f32 and int32 buffers,
/// `ptrs` in @train_step's data-input order.
struct BatchData {
  std::vector<float> data;
  std::vector<int32_t> labels;
  std::vector<const void *> ptrs;
};
BatchData batchFor(const Function &f, uint64_t s);
/// The thread counts every per-op check runs at, with code compiled by parallelTarget():
/// the pool's split must not change what each op computes (docs/codegen.md, "Threads").
inline constexpr int kThreadCounts[] = {1, 2};
/// Codegen options that send even tiny ops through the thread pool.
inline codegen::TargetOptions parallelTarget() {
  codegen::TargetOptions t;
  t.parallelMinWork = 0;
  return t;
}
/// Runs f through the JIT in every build the per-op checks cover and CHECKs each against
/// `expected`: the host build at kThreadCounts; the AVX-512 build's 16-lane code paths
/// (legalised onto ymm pairs on an AVX2 machine); an AVX2-only build (x86-64-v3). All with
/// parallelTarget(), so every op goes through the pool (docs/codegen.md, "Targets").
void compareJitBuilds(const Function &f, const Feeds &feeds, const Results &expected,
                      const std::string &what);
/// Runs a JIT-compiled f32 function at batch b (inputs and params from feeds; a batch-b run
/// reads the first b examples of each batched input) on `pool` (NULL: one thread).
Results jitRun(const codegen::JitModel &j, const Feeds &feeds, int64_t b,
               cnnc_rt_pool *pool = nullptr);
/// CHECKs every output of `expected` against `actual` within the tolerance.
void compareAll(const Results &expected, const Results &actual, const std::string &what);
std::string tempPath(const std::string &name);
/// Runs a shell command and returns what it wrote to stdout (redirect stderr into it to see both).
std::string runCommand(const std::string &cmd);

/// One-function modules built with the IR API (types by the shape rules).
struct Builder {
  Module m;
  Function &f;
  Builder() : f(m.addFunction("t")) {}
  Node *input(const std::string &name, Shape s, DType t = DType::F32) {
    return f.add(OpKind::Input, name, {}, {}, TensorType{t, std::move(s)});
  }
  Node *param(const std::string &name, Shape s) {
    return f.add(OpKind::Param, name, {}, {}, TensorType{DType::F32, std::move(s)});
  }
  Node *op(OpKind k, std::vector<Node *> operands, std::map<std::string, Attr> attrs = {}) {
    return f.add(k, opInfo(k).mnemonic, std::move(operands), std::move(attrs), {}, {}, true);
  }
  Node *out(Node *n) {
    f.outputs().push_back(n);
    return n;
  }
};

/// A compiled .so opened with dlopen, and its C API.
struct SharedLib {
  explicit SharedLib(const std::string &path);
  ~SharedLib();
  void *handle = nullptr;
  template <class F> F fn(const char *name) const { return reinterpret_cast<F>(sym(name)); }
  void *sym(const char *name) const;
  /// create an instance, set params from feeds, infer at `batch` (inputs from feeds), return
  /// outputs.
  /// `threads` >= 0: cnnc_set_threads first (else the instance's default, every CPU).
  Results infer(const codegen::Layout &l, const Feeds &feeds, int64_t batch, bool setParams = true,
                const std::string &npz = "", int threads = -1) const;
};

/// The C API of a `--train` shared library (runtime/CnncApi.h), resolved by name.
struct TrainLib {
  SharedLib lib;
  int (*create)(cnnc_instance **);
  void (*destroy)(cnnc_instance *);
  int (*setParam)(cnnc_instance *, const char *, const float *, int64_t);
  int (*getParam)(const cnnc_instance *, const char *, float *, int64_t);
  int (*trainStep)(cnnc_instance *, int64_t, const void *const *, float, float, float, float *,
                   int64_t *);
  int64_t (*stepCount)(const cnnc_instance *);
  int (*setStepCount)(cnnc_instance *, int64_t);
  int (*save)(const cnnc_instance *, const char *);
  int (*load)(cnnc_instance *, const char *);
  int (*loadWeights)(cnnc_instance *, const char *);
  int (*setThreads)(cnnc_instance *, int);
  int (*getThreads)(const cnnc_instance *);
  int (*numBuffers)(int);
  int (*bufferInfo)(int, int, const char **, int *, int64_t *, int64_t *);
  int64_t (*trainBatch)(void);
  int64_t (*trainMinBatch)(void);
  const char *(*err)(const cnnc_instance *);
  explicit TrainLib(const std::string &so);
  /// A new instance with every param of `ts` set from `feeds`.
  cnnc_instance *fresh(const Function &ts, const Feeds &feeds) const;
  /// Every state array (kind 4) by name.
  std::map<std::string, std::vector<float>> state(cnnc_instance *inst) const;
};

} // namespace cnnc::cgtest
