/* The hand-written half of every compiled .so: instances, parameters, weights files and the
 * checks around the generated entry (cnnc_net_desc.run). Plain C on libc only, so that the
 * .so's undefined symbols stay within libc/libm (tests/codegen checks the list).
 * The .npz reader handles numpy.savez archives (stored entries; f32/f64, C order). */
#include "runtime/CnncApi.h"
#include "runtime/CnncModel.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define API __attribute__((visibility("default")))

struct cnnc_instance {
  float **params; /* one block per buffer (NULL for non-params) */
  void *workspace;
  char error[512];
};

static char g_error[512]; /* for failures without an instance (create) */

static int fail(const cnnc_instance *inst, int code, const char *fmt, ...) {
  char *dst = inst ? ((cnnc_instance *)inst)->error : g_error;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(dst, 512, fmt, ap);
  va_end(ap);
  return code;
}

static const cnnc_model_desc *D(void) {
  return &cnnc_net_desc;
}

API int64_t cnnc_max_batch(void) {
  return D()->max_batch;
}
API int64_t cnnc_min_batch(void) {
  return D()->min_batch;
}

API int cnnc_num_buffers(int kind) {
  int n = 0;
  for (int i = 0; i < D()->num_buffers; ++i)
    n += D()->buffers[i].kind == kind;
  return n;
}

static int findBuffer(int kind, int index) {
  for (int i = 0; i < D()->num_buffers; ++i)
    if (D()->buffers[i].kind == kind && index-- == 0)
      return i;
  return -1;
}

static int64_t perExample(const cnnc_buffer_desc *b) {
  return b->batched ? b->numel / b->shape[0] : b->numel;
}

API int cnnc_buffer_info(int kind, int index, const char **name, int *rank, int64_t *shape,
                         int64_t *per_example) {
  int i = findBuffer(kind, index);
  if (i < 0)
    return fail(NULL, CNNC_ERR_INDEX, "no buffer %d of kind %d", index, kind);
  const cnnc_buffer_desc *b = &D()->buffers[i];
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
  if (inst->params)
    for (int i = 0; i < D()->num_buffers; ++i)
      free(inst->params[i]);
  free(inst->params);
  free(inst->workspace);
  free(inst);
}

API int cnnc_create(cnnc_instance **out) {
  if (!out)
    return fail(NULL, CNNC_ERR_NULL, "cnnc_create: out is NULL");
  *out = NULL;
  const cnnc_model_desc *d = D();
  cnnc_instance *inst = calloc(1, sizeof *inst);
  if (!inst)
    return fail(NULL, CNNC_ERR_NOMEM, "cnnc_create: out of memory");
  inst->params = calloc((size_t)d->num_buffers, sizeof(float *));
  size_t ws = ((size_t)d->workspace_bytes + 63) / 64 * 64;
  inst->workspace = aligned_alloc(64, ws ? ws : 64);
  int ok = inst->params && inst->workspace;
  for (int i = 0; ok && i < d->num_buffers; ++i) {
    const cnnc_buffer_desc *b = &d->buffers[i];
    if (b->kind != 1)
      continue;
    inst->params[i] = calloc((size_t)(b->numel ? b->numel : 1), sizeof(float));
    ok = inst->params[i] != NULL;
    if (ok && d->weights && b->weights_offset >= 0)
      memcpy(inst->params[i], d->weights + b->weights_offset, (size_t)b->numel * sizeof(float));
  }
  if (!ok) {
    cnnc_destroy(inst);
    return fail(NULL, CNNC_ERR_NOMEM, "cnnc_create: out of memory (workspace %lld bytes)",
                (long long)d->workspace_bytes);
  }
  *out = inst;
  return CNNC_OK;
}

static int findParam(const char *name) {
  for (int i = 0; i < D()->num_buffers; ++i)
    if (D()->buffers[i].kind == 1 && strcmp(D()->buffers[i].name, name) == 0)
      return i;
  return -1;
}

API int cnnc_set_param(cnnc_instance *inst, const char *name, const float *data, int64_t count) {
  if (!inst || !name || !data)
    return fail(inst, CNNC_ERR_NULL, "cnnc_set_param: NULL %s",
                !inst   ? "instance"
                : !name ? "name"
                        : "data");
  int i = findParam(name);
  if (i < 0)
    return fail(inst, CNNC_ERR_NAME, "cnnc_set_param: the model has no parameter '%s'", name);
  if (count != D()->buffers[i].numel)
    return fail(inst, CNNC_ERR_SIZE, "cnnc_set_param: '%s' has %lld elements, not %lld", name,
                (long long)D()->buffers[i].numel, (long long)count);
  memcpy(inst->params[i], data, (size_t)count * sizeof(float));
  return CNNC_OK;
}

API int cnnc_get_param(const cnnc_instance *inst, const char *name, float *data, int64_t count) {
  if (!inst || !name || !data)
    return fail(inst, CNNC_ERR_NULL, "cnnc_get_param: NULL %s",
                !inst   ? "instance"
                : !name ? "name"
                        : "data");
  int i = findParam(name);
  if (i < 0)
    return fail(inst, CNNC_ERR_NAME, "cnnc_get_param: the model has no parameter '%s'", name);
  if (count != D()->buffers[i].numel)
    return fail(inst, CNNC_ERR_SIZE, "cnnc_get_param: '%s' has %lld elements, not %lld", name,
                (long long)D()->buffers[i].numel, (long long)count);
  memcpy(data, inst->params[i], (size_t)count * sizeof(float));
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
      b[i] = inst->params[i];
      continue;
    }
    b[i] = bd->kind == 0 ? (void *)inputs[in] : (void *)outputs[out];
    if (!b[i])
      rc = fail(inst, CNNC_ERR_NULL, "cnnc_infer: NULL %s %d ('%s')",
                bd->kind == 0 ? "input" : "output", bd->kind == 0 ? in : out, bd->name);
    bd->kind == 0 ? ++in : ++out;
  }
  if (rc == CNNC_OK && d->run(b, inst->workspace, batch) != 0)
    rc = fail(inst, CNNC_ERR_LABEL, "cnnc_infer: a label is not a class index; the loss is NaN");
  if (b != bufs)
    free(b);
  return rc;
}

API const char *cnnc_last_error(const cnnc_instance *inst) {
  return inst ? inst->error : g_error;
}

/* ---------------------------------------------------------------- .npz (stored zip) -- */
static uint32_t rd16(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}
static uint32_t rd32(const unsigned char *p) {
  return rd16(p) | rd16(p + 2) << 16;
}

/* Parses one .npy member; copies it into the parameter of the same name. */
static int loadNpy(cnnc_instance *inst, const char *path, const char *name, const unsigned char *p,
                   size_t n) {
  if (n < 10 || memcmp(p, "\x93NUMPY", 6) != 0)
    return fail(inst, CNNC_ERR_IO, "%s: member '%s' is not a .npy array", path, name);
  size_t hlen = p[6] == 1 ? rd16(p + 8) : rd32(p + 8), hoff = p[6] == 1 ? 10 : 12;
  if (hoff + hlen > n)
    return fail(inst, CNNC_ERR_IO, "%s: '%s': truncated .npy header", path, name);
  char hdr[1024];
  size_t hl = hlen < sizeof hdr - 1 ? hlen : sizeof hdr - 1;
  memcpy(hdr, p + hoff, hl);
  hdr[hl] = 0;
  const char *descr = strstr(hdr, "'descr':"), *fo = strstr(hdr, "'fortran_order':"),
             *sh = strstr(hdr, "'shape':");
  if (!descr || !fo || !sh)
    return fail(inst, CNNC_ERR_IO, "%s: '%s': malformed .npy header", path, name);
  int f64 = strstr(descr, "'<f8'") == descr + 9 || strstr(descr, "'<f8'") == descr + 8;
  int f32 = strstr(descr, "'<f4'") == descr + 9 || strstr(descr, "'<f4'") == descr + 8;
  if (!f32 && !f64)
    return fail(inst, CNNC_ERR_IO, "%s: '%s': only little-endian f4/f8 arrays are supported", path,
                name);
  if (strstr(fo, "True") && strstr(fo, "True") < sh)
    return fail(inst, CNNC_ERR_IO, "%s: '%s': Fortran-order arrays are not supported", path, name);
  int64_t dims[8];
  int rank = 0;
  const char *s = strchr(sh, '(');
  if (!s)
    return fail(inst, CNNC_ERR_IO, "%s: '%s': malformed shape", path, name);
  for (++s; *s && *s != ')';) {
    if (*s >= '0' && *s <= '9') {
      if (rank == 8)
        return fail(inst, CNNC_ERR_IO, "%s: '%s': rank > 8", path, name);
      dims[rank++] = strtoll(s, (char **)&s, 10);
    } else
      ++s;
  }
  int i = findParam(name);
  if (i < 0)
    return fail(inst, CNNC_ERR_NAME, "%s: array '%s' is not a parameter of the model", path, name);
  const cnnc_buffer_desc *b = &D()->buffers[i];
  int same = rank == b->rank;
  for (int k = 0; same && k < rank; ++k)
    same = dims[k] == b->shape[k];
  if (!same)
    return fail(inst, CNNC_ERR_SIZE, "%s: array '%s' has another shape than the parameter", path,
                name);
  size_t bytes = (size_t)b->numel * (f64 ? 8 : 4);
  if (hoff + hlen + bytes > n)
    return fail(inst, CNNC_ERR_IO, "%s: '%s': truncated data", path, name);
  const unsigned char *data = p + hoff + hlen;
  if (f32)
    memcpy(inst->params[i], data, bytes);
  else
    for (int64_t k = 0; k < b->numel; ++k) {
      double v;
      memcpy(&v, data + 8 * k, 8);
      inst->params[i][k] = (float)v;
    }
  return CNNC_OK;
}

API int cnnc_load_weights(cnnc_instance *inst, const char *path) {
  if (!inst || !path)
    return fail(inst, CNNC_ERR_NULL, "cnnc_load_weights: NULL %s", !inst ? "instance" : "path");
  FILE *f = fopen(path, "rb");
  if (!f)
    return fail(inst, CNNC_ERR_IO, "%s: cannot open", path);
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *buf = size > 0 ? malloc((size_t)size) : NULL;
  if (!buf || fread(buf, 1, (size_t)size, f) != (size_t)size) {
    fclose(f);
    free(buf);
    return fail(inst, CNNC_ERR_IO, "%s: cannot read", path);
  }
  fclose(f);
  int rc = CNNC_OK, loaded = 0;
  size_t pos = 0;
  while (rc == CNNC_OK && pos + 30 <= (size_t)size && rd32(buf + pos) == 0x04034b50) {
    const unsigned char *h = buf + pos;
    uint32_t method = rd16(h + 8), csize = rd32(h + 18), nlen = rd16(h + 26), xlen = rd16(h + 28);
    char name[256];
    size_t start = pos + 30 + nlen + xlen;
    if (nlen >= sizeof name || start > (size_t)size) {
      rc = fail(inst, CNNC_ERR_IO, "%s: corrupt zip entry", path);
      break;
    }
    memcpy(name, h + 30, nlen);
    name[nlen] = 0;
    if (nlen > 4 && strcmp(name + nlen - 4, ".npy") == 0)
      name[nlen - 4] = 0;
    if (method != 0) {
      rc = fail(inst, CNNC_ERR_IO,
                "%s: '%s' is compressed; the runtime reads numpy.savez (stored) archives", path,
                name);
      break;
    }
    if ((rd16(h + 6) & 8) || csize == 0xffffffffu || start + csize > (size_t)size) {
      rc = fail(inst, CNNC_ERR_IO, "%s: '%s': unsupported zip entry (streamed or zip64)", path,
                name);
      break;
    }
    rc = loadNpy(inst, path, name, buf + start, csize);
    ++loaded;
    pos = start + csize;
  }
  free(buf);
  if (rc == CNNC_OK && loaded != cnnc_num_buffers(1))
    rc = fail(inst, CNNC_ERR_SIZE, "%s: holds %d arrays, the model has %d parameters", path, loaded,
              cnnc_num_buffers(1));
  return rc;
}
