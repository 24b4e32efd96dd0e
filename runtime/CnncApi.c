/* The hand-written half of every compiled .so: instances, parameters, weights files and the
 * checks around the generated entry (cnnc_net_desc.run). Plain C on libc only, so that the
 * .so's undefined symbols stay within libc/libm (tests/codegen checks the list).
 * The .npz codec they use is CnncNpz.c. */
#include "runtime/CnncApi.h"
#include "runtime/CnncModel.h"
#include "runtime/CnncNpz.h"
#include "runtime/Memory.h"
#include "runtime/Parallel.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The API's cnnc_* names; codegen/Aot.cpp's link exports them under the library's prefix
 * (aliases) and keeps everything else local (a version script). */
#define API __attribute__((visibility("default")))
/* Every failure sets the instance's message (CnncNpz.h) */
#define fail cnnc_rt_fail

/* The instance's state: one array per distinct param name over both entries (@infer's
 * params, then what @train_step adds: momentum buffers), shared by name. */
struct cnnc_instance {
  int nstate;
  const cnnc_buffer_desc **sdesc; /* the descriptor of each state array */
  float **state;
  int *imap, *tmap; /* per buffer of @infer / @train_step: its state index, or -1 */
  void *workspace;
  int64_t step; /* the next training step (drives dropout masks) */
  int threads;   /* what cnnc_set_threads asked for (>= 1) */
  cnnc_rt_pool *pool; /* made at the first run with threads > 1; NULL: run inline */
  int prepared; /* the workspace holds @infer's prepared state for the current params */
  char error[512];
};

/* For failures without an instance (create): one per thread, so that threads creating
 * instances at once each read their own message (the API keeps no shared mutable state). */
static _Thread_local char g_error[512];

int fail(const cnnc_instance *inst, int code, const char *fmt, ...) {
  char *dst = inst ? ((cnnc_instance *)inst)->error : g_error;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(dst, 512, fmt, ap);
  va_end(ap);
  return code;
}

/* What compiled the library (codegen/Aot.cpp defines them beside the generated code; weak, so
 * that a runtime linked without them, such as the fuzzers' stand-in model, answers "unknown"). */
extern const char cnnc_build_version[] __attribute__((weak, visibility("hidden")));
extern const char cnnc_build_cpu[] __attribute__((weak, visibility("hidden")));
extern const char cnnc_build_isa[] __attribute__((weak, visibility("hidden")));
extern const char cnnc_build_model[] __attribute__((weak, visibility("hidden")));

/* The training entry is linked only into libraries compiled with `cnnc compile --train`. */
extern const cnnc_model_desc cnnc_train_desc __attribute__((weak, visibility("hidden")));

static const cnnc_model_desc *D(void) {
  return &cnnc_net_desc;
}
static const cnnc_model_desc *T(void) {
  return &cnnc_train_desc;
}

static int isHyper(const char *name) {
  return strcmp(name, "lr") == 0 || strcmp(name, "momentum") == 0 ||
         strcmp(name, "weight_decay") == 0 || strcmp(name, "step") == 0;
}

API int64_t cnnc_max_batch(void) {
  return D()->max_batch;
}
API int64_t cnnc_min_batch(void) {
  return D()->min_batch;
}
API const char *cnnc_model_name(void) {
  return cnnc_build_model ? cnnc_build_model : D()->name;
}
API const char *cnnc_version(void) {
  return cnnc_build_version ? cnnc_build_version : "unknown";
}
API const char *cnnc_target_cpu(void) {
  return cnnc_build_cpu ? cnnc_build_cpu : "unknown";
}
API const char *cnnc_target_isa(void) {
  return cnnc_build_isa ? cnnc_build_isa : "unknown";
}
API int cnnc_has_train_step(void) {
  return T() != NULL;
}
API int64_t cnnc_train_batch(void) {
  return T() ? T()->max_batch : 0;
}
API int64_t cnnc_train_min_batch(void) {
  return T() ? T()->min_batch : 0;
}

/* Buffer `index` of `kind`: 0..2 @infer's inputs, params, outputs; 3 @train_step's data
 * inputs; 4 the instance state (@infer's params, then @train_step's extra params). */
static const cnnc_buffer_desc *findBuffer(int kind, int index) {
  if (kind >= 0 && kind <= 2) {
    for (int i = 0; i < D()->num_buffers; ++i)
      if (D()->buffers[i].kind == kind && index-- == 0)
        return &D()->buffers[i];
    return NULL;
  }
  if (kind == 3 && T()) {
    for (int i = 0; i < T()->num_buffers; ++i)
      if (T()->buffers[i].kind == 0 && !isHyper(T()->buffers[i].name) && index-- == 0)
        return &T()->buffers[i];
    return NULL;
  }
  if (kind == 4) {
    for (int i = 0; i < D()->num_buffers; ++i)
      if (D()->buffers[i].kind == 1 && index-- == 0)
        return &D()->buffers[i];
    if (!T())
      return NULL;
    for (int i = 0; i < T()->num_buffers; ++i) {
      const cnnc_buffer_desc *b = &T()->buffers[i];
      if (b->kind != 1)
        continue;
      int shared = 0;
      for (int j = 0; j < D()->num_buffers && !shared; ++j)
        shared = D()->buffers[j].kind == 1 && strcmp(D()->buffers[j].name, b->name) == 0;
      if (!shared && index-- == 0)
        return b;
    }
  }
  return NULL;
}

API int cnnc_num_buffers(int kind) {
  int n = 0;
  while (findBuffer(kind, n))
    ++n;
  return n;
}

static int64_t perExample(const cnnc_buffer_desc *b) {
  /* codegen never marks an empty batch as batched; the guard keeps a bad descriptor from
     dividing by zero */
  return b->batched && b->shape[0] > 0 ? b->numel / b->shape[0] : b->numel;
}

API int cnnc_buffer_info(int kind, int index, const char **name, int *rank, int64_t *shape,
                         int64_t *per_example) {
  const cnnc_buffer_desc *b = findBuffer(kind, index);
  if (!b)
    return fail(NULL, CNNC_ERR_INDEX, "no buffer %d of kind %d", index, kind);
  if (name)
    *name = b->name;
  if (rank)
    *rank = b->rank;
  if (shape)
    memcpy(shape, b->shape, sizeof b->shape);
  if (per_example)
    *per_example = perExample(b);
  return CNNC_OK;
}

API void cnnc_destroy(cnnc_instance *inst) {
  if (!inst)
    return;
  if (inst->state)
    for (int i = 0; i < inst->nstate; ++i)
      free(inst->state[i]);
  free(inst->state);
  free(inst->sdesc);
  free(inst->imap);
  free(inst->tmap);
  free(inst->workspace);
  cnnc_rt_pool_destroy(inst->pool);
  free(inst);
}

/* The pool of the instance's thread count, made at its first use (an instance that only
 * sets weights starts no thread). NULL runs generated loops inline, which is also the
 * fallback when threads cannot be started: results do not depend on the thread count. */
static cnnc_rt_pool *poolOf(cnnc_instance *inst) {
  if (inst->threads <= 1)
    return NULL;
  if (!inst->pool)
    inst->pool = cnnc_rt_pool_create(inst->threads);
  return inst->pool;
}

API int cnnc_set_threads(cnnc_instance *inst, int threads) {
  if (!inst)
    return fail(NULL, CNNC_ERR_NULL, "cnnc_set_threads: NULL instance");
  if (threads < 0)
    return fail(inst, CNNC_ERR_THREADS, "cnnc_set_threads: %d threads (0 = every CPU)", threads);
  if (threads == 0)
    threads = cnnc_rt_default_threads();
  if (threads != inst->threads) {
    cnnc_rt_pool_destroy(inst->pool);
    inst->pool = NULL;
    inst->threads = threads;
  }
  return CNNC_OK;
}

API int cnnc_get_threads(const cnnc_instance *inst) {
  return inst ? inst->threads : 0;
}

static int findState(const cnnc_instance *inst, const char *name) {
  for (int i = 0; i < inst->nstate; ++i)
    if (strcmp(inst->sdesc[i]->name, name) == 0)
      return i;
  return -1;
}

API int cnnc_create(cnnc_instance **out) {
  if (!out)
    return fail(NULL, CNNC_ERR_NULL, "cnnc_create: out is NULL");
  *out = NULL;
  const cnnc_model_desc *d = D(), *t = T();
  cnnc_instance *inst = calloc(1, sizeof *inst);
  if (!inst)
    return fail(NULL, CNNC_ERR_NOMEM, "cnnc_create: out of memory");
  const int nmax = d->num_buffers + (t ? t->num_buffers : 0);
  int64_t wsBytes = d->workspace_bytes;
  if (t && t->workspace_bytes > wsBytes)
    wsBytes = t->workspace_bytes;
  size_t ws = ((size_t)wsBytes + 63) / 64 * 64;
  inst->sdesc = calloc((size_t)nmax + 1, sizeof *inst->sdesc);
  inst->state = calloc((size_t)nmax + 1, sizeof *inst->state);
  inst->imap = calloc((size_t)d->num_buffers + 1, sizeof(int));
  inst->tmap = calloc((size_t)(t ? t->num_buffers : 0) + 1, sizeof(int));
  inst->workspace = cnnc_rt_alloc_workspace(ws);
  int ok = inst->sdesc && inst->state && inst->imap && inst->tmap && inst->workspace;
  for (int pass = 0; ok && pass < 2; ++pass) {
    const cnnc_model_desc *m = pass == 0 ? d : t;
    if (!m)
      continue;
    int *map = pass == 0 ? inst->imap : inst->tmap;
    for (int i = 0; ok && i < m->num_buffers; ++i) {
      const cnnc_buffer_desc *b = &m->buffers[i];
      map[i] = -1;
      if (b->kind != 1)
        continue;
      int s = findState(inst, b->name);
      if (s < 0) {
        s = inst->nstate++;
        inst->sdesc[s] = b;
        inst->state[s] = calloc((size_t)(b->numel ? b->numel : 1), sizeof(float));
        ok = inst->state[s] != NULL;
        if (ok && m->weights && b->weights_offset >= 0)
          memcpy(inst->state[s], m->weights + b->weights_offset, (size_t)b->numel * sizeof(float));
      }
      map[i] = s;
    }
  }
  inst->threads = cnnc_rt_default_threads();
  if (!ok) {
    cnnc_destroy(inst);
    return fail(NULL, CNNC_ERR_NOMEM, "cnnc_create: out of memory (workspace %lld bytes)",
                (long long)wsBytes);
  }
  *out = inst;
  return CNNC_OK;
}

API int cnnc_set_param(cnnc_instance *inst, const char *name, const float *data, int64_t count) {
  if (!inst || !name || (!data && count))
    return fail(inst, CNNC_ERR_NULL, "cnnc_set_param: NULL %s",
                !inst   ? "instance"
                : !name ? "name"
                        : "data");
  int i = findState(inst, name);
  if (i < 0)
    return fail(inst, CNNC_ERR_NAME, "cnnc_set_param: the model has no parameter '%s'", name);
  if (count != inst->sdesc[i]->numel)
    return fail(inst, CNNC_ERR_SIZE, "cnnc_set_param: '%s' has %lld elements, not %lld", name,
                (long long)inst->sdesc[i]->numel, (long long)count);
  if (count)
    memcpy(inst->state[i], data, (size_t)count * sizeof(float));
  inst->prepared = 0;
  return CNNC_OK;
}

API int cnnc_get_param(const cnnc_instance *inst, const char *name, float *data, int64_t count) {
  if (!inst || !name || (!data && count))
    return fail(inst, CNNC_ERR_NULL, "cnnc_get_param: NULL %s",
                !inst   ? "instance"
                : !name ? "name"
                        : "data");
  int i = findState(inst, name);
  if (i < 0)
    return fail(inst, CNNC_ERR_NAME, "cnnc_get_param: the model has no parameter '%s'", name);
  if (count != inst->sdesc[i]->numel)
    return fail(inst, CNNC_ERR_SIZE, "cnnc_get_param: '%s' has %lld elements, not %lld", name,
                (long long)inst->sdesc[i]->numel, (long long)count);
  if (count)
    memcpy(data, inst->state[i], (size_t)count * sizeof(float));
  return CNNC_OK;
}

API int cnnc_infer(cnnc_instance *inst, int64_t batch, const void *const *inputs,
                   float *const *outputs) {
  const cnnc_model_desc *d = D();
  if (!inst)
    return fail(NULL, CNNC_ERR_NULL, "cnnc_infer: NULL instance");
  if ((!inputs && cnnc_num_buffers(0)) || !outputs)
    return fail(inst, CNNC_ERR_NULL, "cnnc_infer: NULL %s array", !outputs ? "outputs" : "inputs");
  if (batch < d->min_batch || batch > d->max_batch)
    return fail(inst, CNNC_ERR_BATCH, "cnnc_infer: batch %lld outside %lld..%lld", (long long)batch,
                (long long)d->min_batch, (long long)d->max_batch);
  void *bufs[256];
  void **b = d->num_buffers <= 256 ? bufs : malloc((size_t)d->num_buffers * sizeof(void *));
  if (!b)
    return fail(inst, CNNC_ERR_NOMEM, "cnnc_infer: out of memory");
  int in = 0, out = 0, rc = CNNC_OK;
  for (int i = 0; i < d->num_buffers && rc == CNNC_OK; ++i) {
    const cnnc_buffer_desc *bd = &d->buffers[i];
    if (bd->kind == 1) {
      b[i] = inst->state[inst->imap[i]];
      continue;
    }
    b[i] = bd->kind == 0 ? (void *)inputs[in] : (void *)outputs[out];
    if (!b[i] && bd->numel) /* a zero-size buffer is never read or written: NULL is fine */
      rc = fail(inst, CNNC_ERR_NULL, "cnnc_infer: NULL %s %d ('%s')",
                bd->kind == 0 ? "input" : "output", bd->kind == 0 ? in : out, bd->name);
    bd->kind == 0 ? ++in : ++out;
  }
  /* what depends on the params alone (packed weights, ...) is computed once per change of
   * the params, into the workspace's first bytes, which only @train_step also uses */
  if (rc == CNNC_OK && !inst->prepared && d->prepare) {
    d->prepare(b, inst->workspace, poolOf(inst));
    inst->prepared = 1;
  }
  if (rc == CNNC_OK && d->run(b, inst->workspace, batch, poolOf(inst)) != 0)
    rc = fail(inst, CNNC_ERR_LABEL, "cnnc_infer: a label is not a class index; the loss is NaN");
  if (b != bufs)
    free(b);
  return rc;
}

API int cnnc_train_step(cnnc_instance *inst, int64_t batch, const void *const *inputs, float lr,
                        float momentum, float weight_decay, float *loss, int64_t *correct) {
  const cnnc_model_desc *t = T();
  if (!t)
    return fail(inst, CNNC_ERR_NOTRAIN,
                "cnnc_train_step: this library has no training step (compile with --train)");
  if (!inst)
    return fail(NULL, CNNC_ERR_NULL, "cnnc_train_step: NULL instance");
  if (!inputs && cnnc_num_buffers(3))
    return fail(inst, CNNC_ERR_NULL, "cnnc_train_step: NULL inputs array");
  if (t->min_batch == t->max_batch && batch != t->max_batch)
    return fail(inst, CNNC_ERR_BATCH,
                "cnnc_train_step: batch %lld, but the training step runs at batch %lld only",
                (long long)batch, (long long)t->max_batch);
  if (batch < t->min_batch || batch > t->max_batch)
    return fail(inst, CNNC_ERR_BATCH, "cnnc_train_step: batch %lld outside %lld..%lld",
                (long long)batch, (long long)t->min_batch, (long long)t->max_batch);
  int64_t step = inst->step;
  void **b = malloc((size_t)t->num_buffers * sizeof(void *) + 1);
  float *tmp = NULL;
  int64_t tmpCount = 0;
  for (int i = 0; i < t->num_buffers; ++i)
    if (t->buffers[i].kind == 2)
      tmpCount += t->buffers[i].numel ? t->buffers[i].numel : 1;
  tmp = calloc((size_t)tmpCount + 1, sizeof(float));
  if (!b || !tmp) {
    free(b);
    free(tmp);
    return fail(inst, CNNC_ERR_NOMEM, "cnnc_train_step: out of memory");
  }
  int in = 0, out = 0, rc = CNNC_OK, lossAt = -1, correctAt = -1;
  int64_t off = 0;
  for (int i = 0; i < t->num_buffers && rc == CNNC_OK; ++i) {
    const cnnc_buffer_desc *bd = &t->buffers[i];
    if (bd->kind == 1) {
      b[i] = inst->state[inst->tmap[i]];
    } else if (bd->kind == 2) { /* loss (the first output), correct (i32), others: scratch */
      b[i] = tmp + off;
      if (out == 0)
        lossAt = (int)off;
      else if (bd->dtype == 1 && correctAt < 0)
        correctAt = (int)off;
      off += bd->numel ? bd->numel : 1;
      ++out;
    } else if (strcmp(bd->name, "lr") == 0) {
      b[i] = &lr;
    } else if (strcmp(bd->name, "momentum") == 0) {
      b[i] = &momentum;
    } else if (strcmp(bd->name, "weight_decay") == 0) {
      b[i] = &weight_decay;
    } else if (strcmp(bd->name, "step") == 0) {
      b[i] = &step;
    } else {
      b[i] = (void *)inputs[in];
      if (!b[i] && bd->numel)
        rc = fail(inst, CNNC_ERR_NULL, "cnnc_train_step: NULL input %d ('%s')", in, bd->name);
      ++in;
    }
  }
  inst->prepared = 0; /* the step changes the params and reuses the workspace */
  if (rc == CNNC_OK && t->run(b, inst->workspace, batch, poolOf(inst)) != 0)
    rc = fail(inst, CNNC_ERR_LABEL,
              "cnnc_train_step: a label is not a class index; the step was not applied");
  if (rc == CNNC_OK) {
    ++inst->step;
    if (loss)
      *loss = lossAt >= 0 ? tmp[lossAt] : 0.0f;
    if (correct) {
      int32_t c = -1;
      if (correctAt >= 0)
        memcpy(&c, tmp + correctAt, 4);
      *correct = c;
    }
  }
  free(b);
  free(tmp);
  return rc;
}

API int64_t cnnc_step_count(const cnnc_instance *inst) {
  return inst ? inst->step : -1;
}
API int cnnc_set_step_count(cnnc_instance *inst, int64_t step) {
  if (!inst)
    return fail(NULL, CNNC_ERR_NULL, "cnnc_set_step_count: NULL instance");
  if (step < 0)
    return fail(inst, CNNC_ERR_SIZE, "cnnc_set_step_count: negative step %lld", (long long)step);
  inst->step = step;
  return CNNC_OK;
}

API const char *cnnc_last_error(const cnnc_instance *inst) {
  return inst ? inst->error : g_error;
}

typedef struct loadCtx {
  int dry;      /* validate only */
  char *loaded; /* per state array */
  int hasStep;  /* checkpoints: the "step" member */
  int64_t step;
  int checkpoint;
} loadCtx;

static int loadMember(cnnc_instance *inst, const char *path, const npyArray *a, void *vctx) {
  loadCtx *c = vctx;
  if (c->checkpoint && strcmp(a->name, "step") == 0) {
    if (a->dtype != 2 || a->rank != 0)
      return fail(inst, CNNC_ERR_IO, "%s: 'step' must be an int64 scalar", path);
    memcpy(&c->step, a->data, 8);
    c->hasStep = 1;
    return CNNC_OK;
  }
  int i = findState(inst, a->name);
  if (i < 0)
    return fail(inst, CNNC_ERR_NAME, "%s: array '%s' is not a parameter of the model", path,
                a->name);
  const cnnc_buffer_desc *b = inst->sdesc[i];
  int same = a->rank == b->rank && a->dtype != 2;
  for (int k = 0; same && k < a->rank; ++k)
    same = a->dims[k] == b->shape[k];
  if (!same)
    return fail(inst, CNNC_ERR_SIZE, "%s: array '%s' has another shape or type than the parameter",
                path, a->name);
  c->loaded[i] = 1;
  if (c->dry)
    return CNNC_OK;
  inst->prepared = 0;
  if (a->dtype == 0)
    memcpy(inst->state[i], a->data, (size_t)b->numel * 4);
  else
    for (int64_t k = 0; k < b->numel; ++k) {
      double v;
      memcpy(&v, a->data + 8 * k, 8);
      inst->state[i][k] = (float)v;
    }
  return CNNC_OK;
}

/* Validates the whole file first, then copies: a failed load leaves the instance as it was. */
static int loadState(cnnc_instance *inst, const char *path, int checkpoint, const char *what) {
  if (!inst || !path)
    return fail(inst, CNNC_ERR_NULL, "%s: NULL %s", what, !inst ? "instance" : "path");
  loadCtx c = {1, calloc((size_t)inst->nstate + 1, 1), 0, 0, checkpoint};
  if (!c.loaded)
    return fail(inst, CNNC_ERR_NOMEM, "%s: out of memory", what);
  int rc = cnnc_rt_read_npz(inst, path, loadMember, &c);
  for (int i = 0; rc == CNNC_OK && i < inst->nstate; ++i) {
    /* weights: every @infer param; checkpoints: the whole state */
    int needed = checkpoint || i < cnnc_num_buffers(1);
    if (needed && !c.loaded[i])
      rc = fail(inst, CNNC_ERR_SIZE, "%s: %s has no array '%s'", what, path, inst->sdesc[i]->name);
  }
  if (rc == CNNC_OK && checkpoint && !c.hasStep)
    rc = fail(inst, CNNC_ERR_IO, "%s: %s is not a checkpoint (no 'step')", what, path);
  if (rc == CNNC_OK) {
    c.dry = 0;
    rc = cnnc_rt_read_npz(inst, path, loadMember, &c);
    if (rc == CNNC_OK && checkpoint)
      inst->step = c.step;
  }
  free(c.loaded);
  return rc;
}

API int cnnc_load_weights(cnnc_instance *inst, const char *path) {
  return loadState(inst, path, 0, "cnnc_load_weights");
}
API int cnnc_load_checkpoint(cnnc_instance *inst, const char *path) {
  return loadState(inst, path, 1, "cnnc_load_checkpoint");
}

/* Written atomically: into "<path>.<pid>.<n>.tmp" in the same directory (created exclusively,
 * so concurrent savers never share it), flushed to the disk (fsync), then renamed over `path`.
 * A crash or kill at any point leaves either the old file or the new one, never a torn one. */
API int cnnc_save_checkpoint(const cnnc_instance *inst, const char *path) {
  if (!inst || !path)
    return fail(inst, CNNC_ERR_NULL, "cnnc_save_checkpoint: NULL %s", !inst ? "instance" : "path");
  static _Atomic unsigned counter;
  char tmp[4096];
  if (snprintf(tmp, sizeof tmp, "%s.%ld.%u.tmp", path, (long)getpid(), counter++) >= (int)sizeof tmp)
    return fail(inst, CNNC_ERR_IO, "%s: path too long", path);
  zipWriter z = {fopen(tmp, "wbx"), NULL, 0, 0, 0, 0, 1};
  if (!z.f)
    return fail(inst, CNNC_ERR_IO, "%s: cannot open for writing", tmp);
  for (int i = 0; i < inst->nstate && z.ok; ++i) {
    const cnnc_buffer_desc *b = inst->sdesc[i];
    cnnc_rt_zip_add_npy(&z, b->name, "<f4", b->rank, b->shape, inst->state[i], (size_t)b->numel * 4);
  }
  if (z.ok)
    cnnc_rt_zip_add_npy(&z, "step", "<i8", 0, NULL, &inst->step, 8);
  cnnc_rt_zip_finish(&z);
  if (z.ok)
    z.ok = fflush(z.f) == 0 && fsync(fileno(z.f)) == 0;
  if (fclose(z.f) != 0)
    z.ok = 0;
  if (z.ok)
    z.ok = rename(tmp, path) == 0;
  if (!z.ok)
    remove(tmp);
  return z.ok ? CNNC_OK : fail(inst, CNNC_ERR_IO, "%s: write failed", path);
}
