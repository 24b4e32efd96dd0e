/* The thread pool of runtime/Parallel.h. One job at a time. [0, n) is cut into C =
 * min(n, 4 * threads) fixed chunks, chunk k = [n*k/C, n*(k+1)/C); the caller and the workers
 * claim chunks from one atomic word and run them, and the caller returns when all C are done.
 * The chunks are fixed, who runs which is not: a worker the OS has not scheduled yet (a busy
 * machine) claims nothing and the others run its share instead of waiting for it. Results
 * cannot depend on who ran a chunk (docs/codegen.md, "Threads").
 *
 * The claim word packs (generation:32 | chunk count:16 | next chunk:16). A claim is a CAS
 * that succeeds only while the word holds the claimer's generation and a chunk is left, so a
 * successful claim proves the job is still live (its chunk is not done, so the caller has not
 * moved on) and its fn/ctx/n are stable to read. Waits spin for a few tens of microseconds
 * first (the next op usually follows at once), then sleep. Lost wake-ups are excluded by the
 * usual pairing: a sleeper registers itself (seq_cst) under the mutex before re-checking the
 * condition, and a waker changes the condition (seq_cst) before reading the sleeper count
 * and, if any, signals under the same mutex. */
#define _GNU_SOURCE
#include "runtime/Parallel.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

/* ~50-100 us of pause instructions: longer than the gap between two ops of a step, much
 * shorter than anything a person would notice on a shared machine. */
#define CNNC_RT_SPIN 3000

#define CNNC_RT_MAX_THREADS 1024 /* chunks (4 per thread) must fit the claim word's 16 bits */

struct worker {
  struct cnnc_rt_pool *pool;
  pthread_t thread;
};

struct cnnc_rt_pool {
  int threads;
  struct worker *workers;
  pthread_mutex_t mu;
  pthread_cond_t wake; /* workers: a new generation, or stop */
  pthread_cond_t done; /* the caller: every chunk is done */
  atomic_ullong gen;   /* the generation workers wait for */
  atomic_ullong claim; /* generation:32 | chunks:16 | next chunk:16 */
  atomic_int finished; /* chunks done in the current job */
  atomic_int sleepers;     /* workers blocked on `wake` */
  atomic_int callerAsleep; /* the caller is blocked on `done` */
  atomic_int stop;
  unsigned long long lastGen; /* the caller's */
  /* the current job (written before its generation is published) */
  cnnc_rt_body fn;
  void *ctx;
  int64_t n;
};

static inline void cpuRelax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

/* Claims and runs chunks of generation g until none is left. */
static void work(cnnc_rt_pool *p, unsigned long long g) {
  for (;;) {
    unsigned long long s = atomic_load(&p->claim);
    const unsigned long long chunks = (s >> 16) & 0xffff, k = s & 0xffff;
    if ((s >> 32) != (g & 0xffffffffull) || k >= chunks)
      return;
    if (!atomic_compare_exchange_weak(&p->claim, &s, s + 1))
      continue;
    const int64_t b = p->n * (int64_t)k / (int64_t)chunks,
                  e = p->n * (int64_t)(k + 1) / (int64_t)chunks;
    if (b < e)
      p->fn(p->ctx, b, e);
    if (atomic_fetch_add(&p->finished, 1) + 1 == (int)chunks && atomic_load(&p->callerAsleep)) {
      pthread_mutex_lock(&p->mu);
      pthread_cond_signal(&p->done);
      pthread_mutex_unlock(&p->mu);
    }
  }
}

static void *workerMain(void *arg) {
  struct worker *w = arg;
  cnnc_rt_pool *p = w->pool;
  unsigned long long seen = 0;
  for (;;) {
    int spins = 0;
    while (atomic_load(&p->gen) == seen && !atomic_load(&p->stop) && spins < CNNC_RT_SPIN) {
      cpuRelax();
      ++spins;
    }
    if (atomic_load(&p->gen) == seen && !atomic_load(&p->stop)) {
      pthread_mutex_lock(&p->mu);
      atomic_fetch_add(&p->sleepers, 1);
      while (atomic_load(&p->gen) == seen && !atomic_load(&p->stop))
        pthread_cond_wait(&p->wake, &p->mu);
      atomic_fetch_sub(&p->sleepers, 1);
      pthread_mutex_unlock(&p->mu);
    }
    if (atomic_load(&p->stop))
      return NULL;
    seen = atomic_load(&p->gen);
    work(p, seen);
  }
}

int cnnc_rt_default_threads(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) != 0)
    return 1;
  int n = 0;
  for (int c = 0; c < CPU_SETSIZE; ++c) /* not CPU_COUNT: that calls __sched_cpucount */
    n += CPU_ISSET(c, &set) ? 1 : 0;
  return n > 0 ? n : 1;
}

int cnnc_rt_pool_threads(const cnnc_rt_pool *pool) {
  return pool ? pool->threads : 1;
}

static void stopWorkers(cnnc_rt_pool *p, int started) {
  pthread_mutex_lock(&p->mu);
  atomic_store(&p->stop, 1);
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mu);
  for (int i = 0; i < started; ++i)
    pthread_join(p->workers[i].thread, NULL);
}

cnnc_rt_pool *cnnc_rt_pool_create(int threads) {
  if (threads < 1)
    threads = 1;
  if (threads > CNNC_RT_MAX_THREADS)
    threads = CNNC_RT_MAX_THREADS;
  cnnc_rt_pool *p = calloc(1, sizeof *p);
  if (!p)
    return NULL;
  p->threads = threads;
  p->workers = calloc((size_t)threads, sizeof *p->workers);
  if (!p->workers || pthread_mutex_init(&p->mu, NULL) != 0) {
    free(p->workers);
    free(p);
    return NULL;
  }
  pthread_cond_init(&p->wake, NULL);
  pthread_cond_init(&p->done, NULL);
  atomic_init(&p->gen, 0);
  atomic_init(&p->claim, 0);
  atomic_init(&p->finished, 0);
  atomic_init(&p->sleepers, 0);
  atomic_init(&p->callerAsleep, 0);
  atomic_init(&p->stop, 0);
  for (int i = 0; i < threads - 1; ++i) {
    p->workers[i].pool = p;
    if (pthread_create(&p->workers[i].thread, NULL, workerMain, &p->workers[i]) != 0) {
      stopWorkers(p, i);
      pthread_cond_destroy(&p->wake);
      pthread_cond_destroy(&p->done);
      pthread_mutex_destroy(&p->mu);
      free(p->workers);
      free(p);
      return NULL;
    }
  }
  return p;
}

void cnnc_rt_pool_destroy(cnnc_rt_pool *p) {
  if (!p)
    return;
  stopWorkers(p, p->threads - 1);
  pthread_cond_destroy(&p->wake);
  pthread_cond_destroy(&p->done);
  pthread_mutex_destroy(&p->mu);
  free(p->workers);
  free(p);
}

void cnnc_rt_parallel_for(cnnc_rt_pool *p, int64_t n, cnnc_rt_body fn, void *ctx) {
  if (n <= 0)
    return;
  if (!p || p->threads == 1 || n == 1) {
    fn(ctx, 0, n);
    return;
  }
  const int64_t chunks = n < 4 * (int64_t)p->threads ? n : 4 * (int64_t)p->threads;
  p->fn = fn, p->ctx = ctx, p->n = n;
  atomic_store(&p->finished, 0);
  const unsigned long long g = ++p->lastGen & 0xffffffffull;
  atomic_store(&p->claim, g << 32 | (unsigned long long)chunks << 16);
  atomic_store(&p->gen, p->lastGen);
  if (atomic_load(&p->sleepers) > 0) {
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
  }
  work(p, g);
  int spins = 0;
  while (atomic_load(&p->finished) < chunks && spins < CNNC_RT_SPIN) {
    cpuRelax();
    ++spins;
  }
  if (atomic_load(&p->finished) < chunks) {
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->callerAsleep, 1);
    while (atomic_load(&p->finished) < chunks)
      pthread_cond_wait(&p->done, &p->mu);
    atomic_store(&p->callerAsleep, 0);
    pthread_mutex_unlock(&p->mu);
  }
}
