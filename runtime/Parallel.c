/* The thread pool of runtime/Parallel.h. One job at a time: the caller publishes (fn, ctx,
 * n, parts) and bumps `gen`; each worker runs its chunk and decrements `pending`; the caller
 * runs chunk 0 and waits for pending == 0. Waits spin for a few microseconds first (the next
 * op usually follows at once), then sleep. Lost wake-ups are excluded by the usual pairing:
 * a sleeper registers itself (seq_cst) under the mutex before re-checking the condition, and
 * a waker changes the condition (seq_cst) before reading the sleeper count and, if any,
 * signals under the same mutex. */
#define _GNU_SOURCE
#include "runtime/Parallel.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

/* ~50-100 us of pause instructions: longer than the gap between two ops of a step, much
 * shorter than anything a person would notice on a shared machine. */
#define CNNC_RT_SPIN 3000

struct worker {
  struct cnnc_rt_pool *pool;
  int index; /* 1..threads-1: the chunk it runs */
  pthread_t thread;
};

struct cnnc_rt_pool {
  int threads;
  struct worker *workers;
  pthread_mutex_t mu;
  pthread_cond_t wake; /* workers: a new generation, or stop */
  pthread_cond_t done; /* the caller: pending reached 0 */
  atomic_ullong gen;
  atomic_int pending;
  atomic_int sleepers;      /* workers blocked on `wake` */
  atomic_int callerAsleep;  /* the caller is blocked on `done` */
  atomic_int stop;
  /* the job of the current generation (written before gen is bumped) */
  cnnc_rt_body fn;
  void *ctx;
  int64_t n;
  int parts;
};

static inline void cpuRelax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

static void runChunk(cnnc_rt_pool *p, int k) {
  if (k < p->parts) {
    const int64_t b = p->n * k / p->parts, e = p->n * (k + 1) / p->parts;
    if (b < e)
      p->fn(p->ctx, b, e);
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
    runChunk(p, w->index);
    if (atomic_fetch_sub(&p->pending, 1) == 1 && atomic_load(&p->callerAsleep)) {
      pthread_mutex_lock(&p->mu);
      pthread_cond_signal(&p->done);
      pthread_mutex_unlock(&p->mu);
    }
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
  atomic_init(&p->pending, 0);
  atomic_init(&p->sleepers, 0);
  atomic_init(&p->callerAsleep, 0);
  atomic_init(&p->stop, 0);
  for (int i = 0; i < threads - 1; ++i) {
    p->workers[i].pool = p;
    p->workers[i].index = i + 1;
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
  p->fn = fn, p->ctx = ctx, p->n = n;
  p->parts = n < p->threads ? (int)n : p->threads;
  atomic_store(&p->pending, p->threads - 1); /* every worker acknowledges the generation */
  atomic_fetch_add(&p->gen, 1);
  if (atomic_load(&p->sleepers) > 0) {
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
  }
  runChunk(p, 0);
  int spins = 0;
  while (atomic_load(&p->pending) > 0 && spins < CNNC_RT_SPIN) {
    cpuRelax();
    ++spins;
  }
  if (atomic_load(&p->pending) > 0) {
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->callerAsleep, 1);
    while (atomic_load(&p->pending) > 0)
      pthread_cond_wait(&p->done, &p->mu);
    atomic_store(&p->callerAsleep, 0);
    pthread_mutex_unlock(&p->mu);
  }
}
