/* cnnc_rt_clock_ns (runtime/Parallel.h): the timer hook of profiled code. Only the JIT
 * profiles (codegen's TargetOptions::profile), so this file is linked into cnnc's own copy of
 * the runtime (cnnc_parallel) and not into the shared libraries, which then need no clock
 * from libc (tests/codegen/NetsTest.cpp lists what a .so may import). */
#define _GNU_SOURCE
#include "runtime/Parallel.h"

#include <time.h>

int64_t cnnc_rt_clock_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
