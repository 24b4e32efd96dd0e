/* A small thread pool for generated code (docs/codegen.md, "Threads"). Plain C on libc's
 * pthreads; linked into every compiled .so (hidden: not part of the .so's API) and into
 * cnnc itself, where the JIT resolves generated calls to it.
 *
 * cnnc_rt_parallel_for(pool, n, fn, ctx) calls fn(ctx, begin, end) over a fixed,
 * deterministic partition of [0, n) into C = min(n, 4 * threads) contiguous chunks (chunk k
 * is [n*k/C, n*(k+1)/C)), which the caller and the workers claim as they come free (so a
 * worker the OS has not scheduled delays nothing), and returns when every chunk is done.
 * Generated code only parallelises loops over independent outputs, so the same
 * instructions compute each output element whatever the partition and whoever runs it:
 * results are bitwise identical at any thread count.
 *
 * pool == NULL, a 1-thread pool, or n <= 1 runs fn(ctx, 0, n) inline (no synchronisation).
 * Workers persist for the pool's lifetime; after a job they spin briefly (a train step
 * issues ~100 parallel ops back to back) and then sleep on a condition variable.
 * A pool serves one caller at a time (an instance is used by one thread at a time); calls
 * must not nest. */
#ifndef CNNC_RUNTIME_PARALLEL_H
#define CNNC_RUNTIME_PARALLEL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cnnc_rt_pool cnnc_rt_pool;
typedef void (*cnnc_rt_body)(void *ctx, int64_t begin, int64_t end);

/* A pool of `threads` threads in all (the caller counts as one: threads - 1 workers are
 * started). threads < 1 is taken as 1. NULL when a thread or the memory cannot be had. */
cnnc_rt_pool *cnnc_rt_pool_create(int threads);
void cnnc_rt_pool_destroy(cnnc_rt_pool *pool); /* joins the workers; NULL is a no-op */
int cnnc_rt_pool_threads(const cnnc_rt_pool *pool); /* 1 for NULL */
/* The CPUs this process may run on (sched_getaffinity), at least 1. */
int cnnc_rt_default_threads(void);
void cnnc_rt_parallel_for(cnnc_rt_pool *pool, int64_t n, cnnc_rt_body fn, void *ctx);
/* The timer hook of profiled code (codegen's TargetOptions::profile, `cnnc run --profile`):
 * nanoseconds on CLOCK_MONOTONIC from an arbitrary origin. Code compiled without profiling
 * never calls it. */
int64_t cnnc_rt_clock_ns(void);

#ifdef __cplusplus
}
#endif
#endif
