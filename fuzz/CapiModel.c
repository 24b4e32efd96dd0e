/* A fixed model descriptor standing in for generated code, so that the C runtime's .npz
 * reader (runtime/CnncApi.c) can be driven through cnnc_create / cnnc_load_weights /
 * cnnc_load_checkpoint without a compiler: @infer y = x·w + b with x [batch, 4], params
 * w [4, 3] and b [3]. `run` is never called. */
#include "runtime/CnncModel.h"

#include <stddef.h>

static int32_t run(void **buffers, void *workspace, int64_t batch, void *pool) {
  (void)buffers, (void)workspace, (void)batch, (void)pool;
  return 0;
}

static const cnnc_buffer_desc buffers[] = {
    {"x", 0, 0, 2, 1, {2, 4}, 8, -1},
    {"w", 1, 0, 2, 0, {4, 3}, 12, -1},
    {"b", 1, 0, 1, 0, {3}, 3, -1},
    {"y", 2, 0, 2, 1, {2, 3}, 6, -1},
};

const cnnc_model_desc cnnc_net_desc = {3, 4, 1, 2, 64, "fuzz_model", buffers, NULL, run, NULL};
