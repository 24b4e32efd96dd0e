// `cnnc bench MODEL` (docs/cli.md): the model compiled to a shared library like `cnnc
// compile` makes it, loaded with dlopen and timed through its C API (cnnc_infer, and
// cnnc_train_step with --train) with the timing and FMA-peak library of bench/
// (bench/machine.h): warm-up calls, then repetitions summarised by median, min and max;
// GFLOP/s from the model's multiply-adds (passes/ModelStats.h, the count bench/cnnc_bench
// uses) and the share of the measured FMA peak at the same thread count.
#pragma once

#include "tools/Model.h"

#include <string>

namespace cnnc::tools {

struct BenchOptions {
  std::string model;
  LoadOptions load;       // batch, input shape, width, training build
  bool inputMean = false; // add the input preprocessing params (implied by weights holding them)
  std::string weights;    // .npz; default: an ONNX model's initializers, else the seeded init
  int threads = 1;        // 0: every CPU
  int reps = 20, warmup = 3;
  std::string targetCpu;  // empty: the host
  bool json = false;
  bool profile = false;   // also the per-node profile (tools/Profile.h) of each function
  /// Also PyTorch on @infer's case, interleaved with cnnc's calls, after checking its outputs
  /// against cnnc's (python/cnnc/onnx_torch.py: the model as ONNX -> torch.nn.functional).
  bool vsTorch = false;
};

/// Prints the table (or one JSON object) to stdout. Throws cnnc::Error.
int runBench(const BenchOptions &o);

} // namespace cnnc::tools
