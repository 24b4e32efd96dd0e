/* The C API of a shared library compiled by `cnnc compile` (docs/codegen.md).
 * Each library exports these functions under its own prefix (`cnnc compile --prefix P`, by
 * default the model's name): P_create, P_infer, ... and the type P_instance; its generated
 * header declares them with the contracts below. This header declares the unprefixed
 * cnnc_* names, which a library has when compiled with `--prefix cnnc`.
 *
 * An instance owns a copy of the parameters, a workspace and a thread pool; there is no
 * global mutable state, so several instances of one library run concurrently on different
 * threads (one thread at a time per instance). Each call of cnnc_infer/cnnc_train_step runs
 * on cnnc_get_threads(inst) threads (the caller's and the pool's workers); results are
 * bitwise identical whatever the thread count. Every function returns CNNC_OK or an error
 * code; cnnc_last_error(instance) (or cnnc_last_error(NULL) after a failed create, on the same
 * thread) says why.
 * Buffers are f32 (labels i32), row-major N×C×H×W, batch-major: input/output k holds
 * batch * (its per-example size) elements. */
#ifndef CNNC_RUNTIME_CNNCAPI_H
#define CNNC_RUNTIME_CNNCAPI_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* cnnc:constants-begin (copied verbatim into every generated header) */
#ifndef CNNC_CONSTANTS_DECLARED
#define CNNC_CONSTANTS_DECLARED
/* Return codes of every int-returning function (cnnc_last_error says more). */
enum {
  CNNC_OK = 0,
  CNNC_ERR_NULL = 1,   /* a required pointer is NULL */
  CNNC_ERR_BATCH = 2,  /* batch outside 1..max (or != max for a fixed-batch model) */
  CNNC_ERR_NAME = 3,   /* no parameter of that name */
  CNNC_ERR_SIZE = 4,   /* element count or shape mismatch */
  CNNC_ERR_IO = 5,     /* weights file unreadable or malformed */
  CNNC_ERR_NOMEM = 6,  /* allocation failed */
  CNNC_ERR_LABEL = 7,  /* a softmax_xent label is not a class index (the loss is NaN) */
  CNNC_ERR_INDEX = 8,  /* buffer index out of range */
  CNNC_ERR_NOTRAIN = 9, /* the library has no training step (not compiled with --train) */
  CNNC_ERR_THREADS = 10 /* a negative thread count */
};
/* Buffer kinds of cnnc_num_buffers / cnnc_buffer_info. */
enum {
  CNNC_KIND_INPUT = 0,       /* an input of @infer */
  CNNC_KIND_PARAM = 1,       /* a parameter of @infer (weights, BN statistics, the mean) */
  CNNC_KIND_OUTPUT = 2,      /* an output of @infer */
  CNNC_KIND_TRAIN_INPUT = 3, /* a data input of @train_step (images, labels) */
  CNNC_KIND_STATE = 4        /* a state array: @infer's params, then the momentum buffers */
};
#endif
/* cnnc:constants-end */

/* cnnc:api-begin (copied into every generated header with cnnc_ replaced by its prefix) */
#ifndef CNNC_API_DECLARED
#define CNNC_API_DECLARED
/* One model's state: parameters, workspace, thread pool (opaque). */
typedef struct cnnc_instance cnnc_instance;

/* A new instance: parameters from the embedded weights, else zeros.
 * Lifetime: an instance lives from a successful cnnc_create until cnnc_destroy, which frees
 * everything it owns (and joins its threads); no call on it may run or follow then.
 * cnnc_destroy(NULL) does nothing; destroying an instance twice, or using it after destroy,
 * is the caller's bug (undefined behaviour: set the pointer to NULL after destroy). The
 * message cnnc_last_error(inst) returns lives in the instance: valid until cnnc_destroy,
 * rewritten by the next failing call. */
int cnnc_create(cnnc_instance **out);
void cnnc_destroy(cnnc_instance *inst);
/* Loads every parameter from a NumPy .npz (numpy.savez, uncompressed; f32 or f64 arrays
 * named by parameter), checking names and shapes. */
int cnnc_load_weights(cnnc_instance *inst, const char *npz_path);
/* Copies `count` floats into / out of the parameter (or state array) `name`; count must be
 * its element count (cnnc_buffer_info's shape), else CNNC_ERR_SIZE; an unknown name is
 * CNNC_ERR_NAME. */
int cnnc_set_param(cnnc_instance *inst, const char *name, const float *data, int64_t count);
int cnnc_get_param(const cnnc_instance *inst, const char *name, float *data, int64_t count);
/* Runs the model on `batch` examples: inputs[k] for each input, outputs[k] for each output.
 * A zero-size buffer (a 0 dimension) may be NULL; so may set/get_param's data when count is
 * 0. */
int cnnc_infer(cnnc_instance *inst, int64_t batch, const void *const *inputs,
               float *const *outputs);
/* The message of the instance's last failing call (NULL: of this thread's last failure
 * without an instance, e.g. cnnc_create); "" when nothing failed. */
const char *cnnc_last_error(const cnnc_instance *inst);
/* Threads: how many threads the instance's calls use; 0 = every CPU the process may run on
 * (sched_getaffinity), which is also the default of a new instance; n < 0 is
 * CNNC_ERR_THREADS. The pool's threads start at the next infer/train step (and are joined by
 * cnnc_destroy or a change of count); if they cannot be started the call runs on the
 * calling thread alone. cnnc_get_threads returns the count in effect (0 for NULL). */
int cnnc_set_threads(cnnc_instance *inst, int threads);
int cnnc_get_threads(const cnnc_instance *inst);

/* Training (libraries compiled with `cnnc compile --train`, docs/codegen.md): one SGD step of
 * @train_step on the instance's state, on `batch` examples, any of
 * cnnc_train_min_batch()..cnnc_train_batch() (1..max unless the step was compiled
 * fixed-batch; a smaller last batch of an epoch runs on the same library, averaging its loss
 * and batch statistics over `batch`): inputs[k] for each data input (CNNC_KIND_TRAIN_INPUT: images
 * f32, labels int32), batch-major, `batch` examples each. The state is
 * every param of @infer plus the momentum buffers; BN running statistics are params. The
 * step counter (which drives dropout masks) advances by one. loss/correct may be NULL;
 * correct is -1 when the loss has no notion of a correct prediction. A bad label returns
 * CNNC_ERR_LABEL and leaves the state and the counter as they were. */
int cnnc_train_step(cnnc_instance *inst, int64_t batch, const void *const *inputs, float lr,
                    float momentum, float weight_decay, float *loss, int64_t *correct);
int cnnc_has_train_step(void);
int64_t cnnc_train_batch(void);     /* the largest batch; 0 without a training step */
int64_t cnnc_train_min_batch(void); /* 1, or == cnnc_train_batch() when fixed-batch */
int64_t cnnc_step_count(const cnnc_instance *inst);
int cnnc_set_step_count(cnnc_instance *inst, int64_t step);
/* A checkpoint is an uncompressed .npz: one f32 array per state array (CNNC_KIND_STATE) plus
 * 'step' (an int64 scalar). Loading validates the whole file before changing anything;
 * training resumed from a checkpoint continues bit for bit. cnnc_load_weights reads
 * @infer's params (and any momentum arrays present) without a step. */
int cnnc_save_checkpoint(const cnnc_instance *inst, const char *npz_path);
int cnnc_load_checkpoint(cnnc_instance *inst, const char *npz_path);

/* Introspection. kind: one of CNNC_KIND_* above. */
int64_t cnnc_max_batch(void);
int64_t cnnc_min_batch(void); /* == max for a model that runs at one batch size only */
int cnnc_num_buffers(int kind);
/* Name, rank, shape (at max batch) and per-example element count of buffer `index` of
 * `kind`; shape may be NULL, else holds 8 entries. */
int cnnc_buffer_info(int kind, int index, const char **name, int *rank, int64_t *shape,
                     int64_t *per_example);
/* What the library is, at run time: the model's name (its network / graph name), the
 * version of the cnnc that compiled it, the LLVM CPU it was compiled for ("znver4",
 * "x86-64-v3") and its vector ISA ("AVX-512", "AVX2+FMA", "AVX", "SSE"). Static strings. */
const char *cnnc_model_name(void);
const char *cnnc_version(void);
const char *cnnc_target_cpu(void);
const char *cnnc_target_isa(void);
#endif /* CNNC_API_DECLARED */
/* cnnc:api-end */

#ifdef __cplusplus
}
#endif
#endif
