// Times one compiled cnnc function (LLVM JIT) the way bench/run.sh needs it: warm-up, then
// `--iters` timed calls; prints one JSON line with the median and the work done.
//   cnnc_bench MODEL [--train] [--batch N] [--input-shape HxW] [--iters K] [--threads T]
//              [--target-cpu CPU]
// The function is @infer (or @train_step with --train: forward, backward and update).
#include "bench/machine.h"
#include "codegen/Codegen.h"
#include "runtime/Parallel.h"
#include "passes/ModelStats.h"
#include "passes/Passes.h"
#include "tools/Model.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <iostream>

using namespace cnnc;

// The process's CPU time: on a loaded machine, what the run itself used.
static double processCpuMs() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
  CLI::App app{"cnnc_bench: time a compiled model"};
  std::string model, inputShape;
  int64_t batch = 1;
  int iters = 10;
  bool train = false;
  int threads = 1;
  app.add_option("model", model)->required();
  app.add_option("--batch", batch);
  app.add_option("--input-shape", inputShape);
  app.add_option("--iters", iters);
  app.add_flag("--train", train);
  app.add_option("--threads", threads, "threads of the generated code (0 = every CPU)");
  std::string cpu;
  app.add_option("--target-cpu", cpu, "LLVM CPU name, e.g. x86-64-v3 for the AVX2 build (default: the host)");
  CLI11_PARSE(app, argc, argv);
  try {
    tools::LoadOptions lo;
    lo.cnn.batch = batch;
    lo.cnn.training = train;
    if (!inputShape.empty()) {
      long h = 0, w = 0;
      std::sscanf(inputShape.c_str(), "%ldx%ld", &h, &w);
      lo.cnn.inputHW = std::make_pair((int64_t)h, (int64_t)w);
    }
    auto m = tools::loadModel(model, lo);
    PipelineOptions po;
    po.training = train;
    runPipeline(*m, po);
    const Function &f = *m->functions().back(); // @train_step in a training build, else the model
    ModelStats stats = computeModelStats(f);

    codegen::TargetOptions to;
    to.cpu = cpu;
    auto jit = codegen::JitModel::compile(f, to);
    const codegen::Layout &lay = jit->layout();
    std::vector<std::vector<float>> storage;
    std::vector<void *> buffers;
    for (const auto &b : lay.buffers) {
      // Small positive values; labels (i32) zero: timing does not depend on the data.
      storage.emplace_back(b.type.numel(), b.type.dtype == DType::I32 ? 0.0f : 0.01f);
      if (b.type.dtype == DType::I32)
        std::fill(storage.back().begin(), storage.back().end(), 0.0f); // bit pattern of int 0
      buffers.push_back(storage.back().data());
    }
    if (threads == 0)
      threads = cnnc_rt_default_threads();
    cnnc_rt_pool *pool = threads > 1 ? cnnc_rt_pool_create(threads) : nullptr;
    void *ws = std::aligned_alloc(64, ((size_t)lay.workspaceBytes + 63) / 64 * 64 + 64);
    for (int i = 0; i < 2; ++i)
      jit->run(buffers.data(), ws, lay.maxBatch, pool);
    std::vector<double> ms, cpu;
    for (int i = 0; i < iters; ++i) {
      const double p0 = processCpuMs();
      ms.push_back(bench::timeMs([&] { jit->runPrepared(buffers.data(), ws, lay.maxBatch, pool); })); // params unchanged: prepared
      cpu.push_back(processCpuMs() - p0);
    }
    std::free(ws);
    cnnc_rt_pool_destroy(pool);
    // the timing library of `cnnc bench` (bench/machine.h): the same median, min and clock
    const bench::Summary wall = bench::summarize(ms), proc = bench::summarize(cpu);
    // min_ms: on a shared machine the least disturbed call, for A/B comparisons
    std::cout << fmt::format("{{\"ms\": {:.4f}, \"min_ms\": {:.4f}, \"cpu_ms\": {:.4f}, \"flops\": {}, \"compile_s\": {:.3f}, \"threads\": {}}}\n",
                             wall.median, wall.min, proc.median, 2 * stats.totalMacs, jit->compileSeconds(), threads);
  } catch (const Error &e) {
    std::cout << fmt::format("{{\"error\": \"{}\"}}\n", std::string(e.what()).substr(0, 200));
    return 1;
  }
  return 0;
}
