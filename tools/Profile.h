// Per-node wall time of a compiled function (`cnnc run --profile`, `cnnc bench --profile`;
// docs/cli.md): the function is compiled by the JIT with codegen's profiling timers
// (TargetOptions::profile), called `reps` times after a warm-up call, and each timed node
// of the fused IR is reported with the ops it contains, its mean time per call, its share
// of the mean call time, and its GFLOP/s when it does multiply-adds.
#pragma once

#include "codegen/Codegen.h"
#include "tools/Model.h"

#include <string>
#include <vector>

namespace cnnc::tools {

struct ProfileRow {
  std::string node; // SSA name, or codegen::kProfileUpdateSite
  std::string ops;  // the ops the node computes: its mnemonic, "+relu" for a fused epilogue
  double ms = 0;    // mean wall time per call
  int64_t flops = 0; // 2 x multiply-adds of one call (0: not a dense product)
};

struct Profile {
  std::string function;
  int64_t batch = 0;
  int threads = 1, reps = 0;
  double callMs = 0;            // mean wall time of a whole call (the entry, timers included)
  std::vector<ProfileRow> rows; // by time, longest first
};

/// Compiles `f` (after the pipeline) with profiling and times it on `threads` threads (0:
/// every CPU). Buffers named in `feeds` get those values; the others small positive numbers
/// (labels and integer inputs zero): timing does not depend on the data.
Profile profileFunction(const Function &f, const Feeds &feeds, int threads, int reps,
                        codegen::TargetOptions t = {});

/// The table: one row per node, then the sum of the rows against the mean call time.
std::string formatProfile(const Profile &p);
/// One JSON object: {"function", "batch", "threads", "reps", "call_ms", "nodes": [{"node",
/// "ops", "ms", "share", "flops", "gflops"}]}.
std::string profileJson(const Profile &p);

} // namespace cnnc::tools
