/* The workspace of a compiled model (activations, scratch, packed weights), for the C API
 * (runtime/CnncApi.c) and cnnc's in-process runs (JIT). Plain C on libc. */
#ifndef CNNC_RUNTIME_MEMORY_H
#define CNNC_RUNTIME_MEMORY_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* `bytes` of 64-byte aligned memory (at least 64), released with free(). Workspaces of
 * 2 MiB or more are 2 MiB aligned, rounded up, and asked to live in huge pages (Linux's
 * transparent huge pages are often "madvise" only): a conv reads its padded input and packed
 * panels with large strides, and with 4 KiB pages their TLB misses and the cache-set
 * conflicts of whatever physical pages a process gets made one VGG layer take 35 ms in one
 * process and 45 ms in the next (Zen 4, 1 thread). NULL when out of memory. */
void *cnnc_rt_alloc_workspace(size_t bytes);

#ifdef __cplusplus
}
#endif

#endif
