/* runtime/Memory.h */
#include "runtime/Memory.h"

#include <stdlib.h>
#include <sys/mman.h>

void *cnnc_rt_alloc_workspace(size_t bytes) {
  const size_t huge = (size_t)2 << 20;
  if (bytes < huge)
    return aligned_alloc(64, bytes < 64 ? 64 : (bytes + 63) / 64 * 64);
  const size_t rounded = (bytes + huge - 1) / huge * huge;
  void *p = aligned_alloc(huge, rounded);
#ifdef MADV_HUGEPAGE
  if (p)
    madvise(p, rounded, MADV_HUGEPAGE); /* advice only: without huge pages it still works */
#endif
  return p;
}
