/* The descriptor that generated code defines (codegen/Lower.cpp emits it with exactly this
 * layout, tests/codegen/AbiTest.cpp checks it on every target) and the runtime reads:
 * internal to a compiled .so, not part of the public API. */
#ifndef CNNC_RUNTIME_CNNCMODEL_H
#define CNNC_RUNTIME_CNNCMODEL_H

#include <stdint.h>

typedef struct cnnc_buffer_desc {
  const char *name;
  int32_t kind;  /* 0 input, 1 param, 2 output */
  int32_t dtype; /* 0 f32, 1 i32 */
  int32_t rank;
  int32_t batched;        /* dim 0 is the batch */
  int64_t shape[8];       /* at max batch */
  int64_t numel;          /* at max batch */
  int64_t weights_offset; /* floats into cnnc_model_desc.weights; -1 = not embedded */
} cnnc_buffer_desc;

typedef struct cnnc_model_desc {
  int32_t abi_version; /* 3: a prepare entry; 2: the entry takes a thread pool */
  int32_t num_buffers; /* inputs, then params, then outputs */
  int64_t min_batch, max_batch;
  int64_t workspace_bytes;
  const char *name;
  const cnnc_buffer_desc *buffers;
  const float *weights; /* NULL = not embedded */
  /* the generated entry; pool: a cnnc_rt_pool (runtime/Parallel.h), NULL = one thread */
  int32_t (*run)(void **buffers, void *workspace, int64_t batch, void *pool);
  /* NULL, or computes what depends on the params alone (packed conv weights, folded batch
   * norm) into the workspace's first bytes; `run` reads it there. Called after the params
   * change and before the next run; reads only the params of `buffers`. */
  void (*prepare)(void **buffers, void *workspace, void *pool);
} cnnc_model_desc;

extern const cnnc_model_desc cnnc_net_desc;

#endif
