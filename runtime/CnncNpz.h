/* Internal to the C API (CnncApi.c, CnncNpz.c; hidden in the .so): the .npz codec behind
 * cnnc_load_weights, cnnc_load_checkpoint and cnnc_save_checkpoint. It reads numpy.savez
 * archives (stored entries; <f4, <f8 and <i8, C order) and writes stored ones. The compiler's
 * own C++ codec (stored and deflated) is io/Npz.cpp; the .so carries this one because it
 * links libc only. */
#pragma once

#include "runtime/CnncApi.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CNNC_RT_HIDDEN __attribute__((visibility("hidden")))

/* Writes the message into the instance's error (or the thread's, without one); returns code. */
CNNC_RT_HIDDEN int cnnc_rt_fail(const cnnc_instance *inst, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* One .npy member, parsed in place (the data points into the archive's bytes). */
typedef struct npyArray {
  const char *name;
  int dtype; /* 0 <f4, 1 <f8, 2 <i8 */
  int rank;
  int64_t dims[8];
  const unsigned char *data;
} npyArray;

typedef int (*cnnc_rt_npz_member)(cnnc_instance *inst, const char *path, const npyArray *a,
                                  void *ctx);
/* Calls fn for every member of a numpy.savez archive (stored entries), in order; stops at the
 * first error (fn's or the archive's: every length read from the file is checked first). */
CNNC_RT_HIDDEN int cnnc_rt_read_npz(cnnc_instance *inst, const char *path, cnnc_rt_npz_member fn,
                                    void *ctx);

typedef struct zipWriter {
  FILE *f;
  unsigned char *cd; /* the central directory, appended at the end */
  size_t cdLen, cdCap;
  uint32_t offset;
  int count, ok; /* ok: 0 after any failure, which the later calls keep */
} zipWriter;
/* One stored member "<name>.npy": a v1.0 header padded to 64 bytes, then the data. */
CNNC_RT_HIDDEN void cnnc_rt_zip_add_npy(zipWriter *z, const char *name, const char *descr,
                                        int rank, const int64_t *dims, const void *data,
                                        size_t bytes);
/* The central directory and its end record; frees the directory. */
CNNC_RT_HIDDEN void cnnc_rt_zip_finish(zipWriter *z);
