// See machine.h. The FMA loops use intrinsics inside functions compiled for their ISA
// (__attribute__((target))), so the file needs no -m flags and the callers check the CPU first.
#include "bench/machine.h"

#include <immintrin.h>
#include <sched.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <thread>

namespace cnnc::bench {

double threadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double nowSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

Summary summarize(std::vector<double> v) {
  Summary s;
  if (v.empty())
    return s;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  s.count = n;
  s.min = v.front();
  s.max = v.back();
  s.median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  return s;
}

CpuInfo detectCpu() {
  CpuInfo c;
  __builtin_cpu_init();
  c.avx2 = __builtin_cpu_supports("avx2");
  c.fma = __builtin_cpu_supports("fma");
  c.avx512f = __builtin_cpu_supports("avx512f");
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) {
      auto p = line.find(':');
      if (p != std::string::npos)
        c.modelName = line.substr(p + 1 + (p + 1 < line.size() && line[p + 1] == ' '));
      break;
    }
  cpu_set_t set;
  CPU_ZERO(&set);
  c.logicalCpus = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set)
                                                               : (int)std::thread::hardware_concurrency();
  return c;
}

const char *widthName(VecWidth w) { return w == VecWidth::Zmm512 ? "zmm" : "ymm"; }

bool supported(const CpuInfo &cpu, VecWidth w) {
  return w == VecWidth::Zmm512 ? cpu.avx512f : (cpu.avx2 && cpu.fma);
}

namespace {

// `iters` rounds of NACC independent FMA chains; returns a value depending on every chain so
// that nothing is dead code. FLOPs = iters * NACC * lanes * 2.
constexpr int kZmmAcc = 16, kYmmAcc = 12;

__attribute__((target("avx512f"), noinline)) float fmaLoopZmm(uint64_t iters) {
  __m512 acc[kZmmAcc];
  for (int j = 0; j < kZmmAcc; ++j)
    acc[j] = _mm512_set1_ps(1e-3f * (float)j);
  const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-6f);
  for (uint64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 16
    for (int j = 0; j < kZmmAcc; ++j)
      acc[j] = _mm512_fmadd_ps(acc[j], m, c);
  }
  __m512 s = acc[0];
  for (int j = 1; j < kZmmAcc; ++j)
    s = _mm512_add_ps(s, acc[j]);
  alignas(64) float out[16];
  _mm512_store_ps(out, s);
  float r = 0;
  for (float x : out)
    r += x;
  return r;
}

__attribute__((target("avx2,fma"), noinline)) float fmaLoopYmm(uint64_t iters) {
  __m256 acc[kYmmAcc];
  for (int j = 0; j < kYmmAcc; ++j)
    acc[j] = _mm256_set1_ps(1e-3f * (float)j);
  const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-6f);
  for (uint64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 12
    for (int j = 0; j < kYmmAcc; ++j)
      acc[j] = _mm256_fmadd_ps(acc[j], m, c);
  }
  __m256 s = acc[0];
  for (int j = 1; j < kYmmAcc; ++j)
    s = _mm256_add_ps(s, acc[j]);
  alignas(32) float out[8];
  _mm256_store_ps(out, s);
  float r = 0;
  for (float x : out)
    r += x;
  return r;
}

double flopsPerIter(VecWidth w) {
  return w == VecWidth::Zmm512 ? 2.0 * kZmmAcc * 16 : 2.0 * kYmmAcc * 8;
}

float runLoop(VecWidth w, uint64_t iters) {
  return w == VecWidth::Zmm512 ? fmaLoopZmm(iters) : fmaLoopYmm(iters);
}

// Runs body(t) on `threads` threads (the caller's thread is number 0), all released at once;
// returns the wall seconds from the release to the last finish.
template <class Body> double runParallel(int threads, Body body) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t)
    pool.emplace_back([&, t] {
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire))
        std::this_thread::yield();
      body(t);
    });
  while (ready.load() < threads - 1)
    std::this_thread::yield();
  double t0 = nowSeconds();
  go.store(true, std::memory_order_release);
  body(0);
  for (auto &th : pool)
    th.join();
  return nowSeconds() - t0;
}

} // namespace

double fmaPeakGflops(VecWidth w, const PeakOptions &opt) {
  if (!supported(detectCpu(), w) || opt.threads < 1)
    return 0;
  volatile float sink = 0;
  // Calibrate on one thread: iterations for about opt.seconds.
  uint64_t iters = 1 << 16;
  for (;;) {
    double t0 = nowSeconds();
    sink = sink + runLoop(w, iters);
    double dt = nowSeconds() - t0;
    if (dt > 0.02) {
      iters = (uint64_t)((double)iters * opt.seconds / dt) + 1;
      break;
    }
    iters *= 4;
  }
  double best = 0;
  for (int trial = 0; trial < std::max(1, opt.trials); ++trial) {
    std::vector<float> res(opt.threads);
    std::vector<double> cpuSecs(opt.threads);
    double secs = runParallel(opt.threads, [&](int t) {
      double c0 = threadCpuSeconds();
      res[t] = runLoop(w, iters);
      cpuSecs[t] = threadCpuSeconds() - c0;
    });
    for (float r : res)
      sink = sink + r;
    double flops = flopsPerIter(w) * (double)iters, gflops = 0;
    if (opt.cpuTime)
      for (double c : cpuSecs)
        gflops += flops / std::max(c, 1e-9) / 1e9;
    else
      gflops = flops * opt.threads / secs / 1e9;
    best = std::max(best, gflops);
  }
  return best;
}

double triadGBs(const TriadOptions &opt) {
  size_t n = opt.elements;
  int threads = std::max(1, opt.threads);
  struct Free {
    void operator()(float *p) const { std::free(p); }
  };
  size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
  std::unique_ptr<float, Free> a((float *)std::aligned_alloc(64, bytes)),
      b((float *)std::aligned_alloc(64, bytes)), c((float *)std::aligned_alloc(64, bytes));
  if (!a || !b || !c)
    return 0;
  float *pa = a.get(), *pb = b.get(), *pc = c.get();
  auto range = [&](int t, size_t &lo, size_t &hi) {
    lo = n * (size_t)t / threads;
    hi = n * (size_t)(t + 1) / threads;
  };
  runParallel(threads, [&](int t) { // first touch by the thread that streams the part
    size_t lo, hi;
    range(t, lo, hi);
    for (size_t i = lo; i < hi; ++i) {
      pa[i] = 0;
      pb[i] = 1;
      pc[i] = 2;
    }
  });
  const float s = 3;
  double best = 0;
  for (int trial = 0; trial < std::max(1, opt.trials) + 1; ++trial) {
    std::vector<double> rate(threads);
    double secs = runParallel(threads, [&](int t) {
      size_t lo, hi;
      range(t, lo, hi);
      double c0 = threadCpuSeconds();
      for (size_t i = lo; i < hi; ++i)
        pa[i] = pb[i] + s * pc[i];
      rate[t] = 12.0 * (double)(hi - lo) / std::max(threadCpuSeconds() - c0, 1e-9) / 1e9;
    });
    double gbs = 0;
    if (opt.cpuTime)
      for (double r : rate)
        gbs += r;
    else
      gbs = 12.0 * (double)n / secs / 1e9;
    if (trial > 0) // the first pass is a warm-up
      best = std::max(best, gbs);
  }
  volatile float sink = pa[n / 2];
  (void)sink;
  return best;
}

MachineReport measureMachine(const std::vector<int> &threadCounts, double secondsPerLoop) {
  MachineReport r;
  r.cpu = detectCpu();
  r.threadCounts = threadCounts;
  for (int t : threadCounts) {
    PeakOptions po;
    po.threads = t;
    po.seconds = secondsPerLoop;
    r.zmmGflops.push_back(fmaPeakGflops(VecWidth::Zmm512, po));
    r.ymmGflops.push_back(fmaPeakGflops(VecWidth::Ymm256, po));
    TriadOptions to;
    to.threads = t;
    if (secondsPerLoop < 0.1) { // a quick look: smaller arrays, fewer trials
      to.elements = size_t(4) << 20;
      to.trials = 2;
    }
    r.triadGBsPerThreads.push_back(triadGBs(to));
  }
  return r;
}

static std::string jsonString(const std::string &s) {
  std::string o = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\')
      o += '\\';
    if ((unsigned char)ch >= 0x20)
      o += ch;
  }
  return o + "\"";
}

static std::string jsonList(const std::vector<double> &v) {
  std::string o = "[";
  char buf[64];
  for (size_t i = 0; i < v.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%s%.2f", i ? ", " : "", v[i]);
    o += buf;
  }
  return o + "]";
}

std::string toJson(const MachineReport &r) {
  std::vector<double> tc(r.threadCounts.begin(), r.threadCounts.end());
  std::string o = "{\"cpu\": " + jsonString(r.cpu.modelName);
  o += ", \"avx2\": " + std::string(r.cpu.avx2 ? "true" : "false");
  o += ", \"fma\": " + std::string(r.cpu.fma ? "true" : "false");
  o += ", \"avx512f\": " + std::string(r.cpu.avx512f ? "true" : "false");
  o += ", \"logical_cpus\": " + std::to_string(r.cpu.logicalCpus);
  o += ", \"threads\": " + jsonList(tc);
  o += ", \"zmm_gflops\": " + jsonList(r.zmmGflops);
  o += ", \"ymm_gflops\": " + jsonList(r.ymmGflops);
  o += ", \"triad_gbs\": " + jsonList(r.triadGBsPerThreads) + "}";
  return o;
}

} // namespace cnnc::bench
