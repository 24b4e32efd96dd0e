// A self-test of bench/machine.{h,cpp} (ctest: bench_machine_selftest). It checks the
// summaries and that every measurement runs and is sane in kind (positive when the width is
// supported, 0 when not); it never asserts a speed.
#include "bench/machine.h"

#include <cstdio>
#include <cstdlib>

using namespace cnnc::bench;

static int failures = 0;
#define CHECK(c)                                                                                   \
  do {                                                                                             \
    if (!(c)) {                                                                                    \
      std::fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #c);                   \
      ++failures;                                                                                  \
    }                                                                                              \
  } while (0)

int main() {
  Summary s = summarize({5, 1, 3});
  CHECK(s.median == 3 && s.min == 1 && s.max == 5 && s.count == 3);
  s = summarize({4, 1, 3, 2});
  CHECK(s.median == 2.5 && s.min == 1 && s.max == 4 && s.count == 4);
  CHECK(summarize({}).count == 0);
  double t0 = nowSeconds();
  CHECK(nowSeconds() >= t0);
  CHECK(timeMs([] {}) >= 0);

  CpuInfo cpu = detectCpu();
  CHECK(cpu.logicalCpus >= 1);
  PeakOptions po;
  po.seconds = 0.01;
  po.trials = 1;
  for (VecWidth w : {VecWidth::Ymm256, VecWidth::Zmm512}) {
    double g = fmaPeakGflops(w, po);
    CHECK(supported(cpu, w) ? g > 0 : g == 0);
    po.cpuTime = false;
    g = fmaPeakGflops(w, po);
    CHECK(supported(cpu, w) ? g > 0 : g == 0);
    po.cpuTime = true;
  }
  TriadOptions to;
  to.elements = 1 << 20;
  to.trials = 1;
  to.threads = 2;
  CHECK(triadGBs(to) > 0);
  MachineReport r = measureMachine({1}, 0.01);
  std::string j = toJson(r);
  CHECK(j.front() == '{' && j.back() == '}' && j.find("\"zmm_gflops\"") != std::string::npos);
  std::printf("%s\n", j.c_str());
  return failures ? 1 : 0;
}
