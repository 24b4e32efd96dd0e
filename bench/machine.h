// The benchmark harness's machine measurements and timing helpers (bench/run.sh, and later
// `cnnc bench`): a steady clock, summaries of repeated timings, the FP32 FMA peak of the
// vector widths the CPU has (zmm = 512-bit, ymm = 256-bit) and the STREAM triad bandwidth,
// each on 1..N threads. Plain C++20 and libc, no globals, no cnnc dependency.
//
// The measuring loops are compiled with function-level target attributes, so this library
// builds with the default flags and runs on any x86-64 host: a width the CPU lacks is
// reported as unsupported (value 0), never executed.
#ifndef CNNC_BENCH_MACHINE_H
#define CNNC_BENCH_MACHINE_H

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace cnnc::bench {

// ---- timing ----------------------------------------------------------------------------
// Seconds on the monotonic clock (std::chrono::steady_clock), from an arbitrary origin.
double nowSeconds();
// CPU seconds consumed by the calling thread (CLOCK_THREAD_CPUTIME_ID).
double threadCpuSeconds();

// Times `fn` once, in milliseconds.
template <class F> double timeMs(F &&fn) {
  double t0 = nowSeconds();
  fn();
  return (nowSeconds() - t0) * 1e3;
}

// A summary of repeated measurements: median (mean of the two middle values for an even
// count), minimum, maximum, count. An empty input gives all zeros.
struct Summary {
  double median = 0, min = 0, max = 0;
  size_t count = 0;
};
Summary summarize(std::vector<double> values);

// ---- the CPU ---------------------------------------------------------------------------
struct CpuInfo {
  std::string modelName; // /proc/cpuinfo "model name" ("" when unknown)
  bool avx2 = false, fma = false, avx512f = false;
  int logicalCpus = 0;   // CPUs this process may run on (sched_getaffinity)
};
CpuInfo detectCpu();

enum class VecWidth { Ymm256, Zmm512 };
const char *widthName(VecWidth w); // "ymm" / "zmm"
bool supported(const CpuInfo &cpu, VecWidth w); // ymm needs avx2+fma, zmm avx512f

// ---- FMA peak ---------------------------------------------------------------------------
// GFLOP/s of `threads` threads each running a loop of independent FP32 vector FMAs
// (16 accumulators for zmm, 12 for ymm: more than latency x FMA ports on every current core)
// for about `seconds`; a multiply-add counts 2 FLOPs. The best of `trials` runs (the peak is a
// property of the hardware: the best run is the one least disturbed). 0 if the CPU lacks
// the width. With cpuTime (the default) each thread's rate is its FLOPs per second of its
// own CPU time and the threads' rates add up: the hardware's peak even on a busy machine,
// where wall time would count the time slices other processes take. cpuTime = false divides
// by the wall time from the common start to the last finish instead.
struct PeakOptions {
  int threads = 1;
  double seconds = 0.2;
  int trials = 3;
  bool cpuTime = true;
};
double fmaPeakGflops(VecWidth w, const PeakOptions &opt);

// ---- memory bandwidth -------------------------------------------------------------------
// STREAM triad a[i] = b[i] + s*c[i] over three arrays of `elements` floats each (default
// 3 x 64 MiB, far beyond any L3 of the machine class), split over `threads` threads which
// first-touch their own part. GB/s (1e9 bytes) counting 12 bytes per element (STREAM's
// convention: two loads, one store; write-allocate traffic not counted). Best of `trials`.
// cpuTime as in PeakOptions (per-thread CPU time, rates added; other processes' memory
// traffic still lowers the result).
struct TriadOptions {
  int threads = 1;
  size_t elements = size_t(16) << 20;
  int trials = 5;
  bool cpuTime = true;
};
double triadGBs(const TriadOptions &opt);

// ---- everything at once ----------------------------------------------------------------
struct MachineReport {
  CpuInfo cpu;
  std::vector<int> threadCounts;            // e.g. {1, 2}
  std::vector<double> zmmGflops, ymmGflops; // per thread count (0: width unsupported)
  std::vector<double> triadGBsPerThreads;   // per thread count
};
MachineReport measureMachine(const std::vector<int> &threadCounts, double secondsPerLoop = 0.2);
std::string toJson(const MachineReport &r); // one line

} // namespace cnnc::bench

#endif
