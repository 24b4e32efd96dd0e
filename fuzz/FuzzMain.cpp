// The libFuzzer entry of one target (CNNC_FUZZ_TARGET, set per executable in
// fuzz/CMakeLists.txt). Path-based readers get each input through a memory file
// (memfd_create): no disk traffic, and /proc/self/fd/N opens at offset 0 every time.
#include "fuzz/Targets.h"
#ifdef CNNC_FUZZ_DIFF
#include "fuzz/DiffTarget.h"
#endif

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <sys/mman.h>
#include <unistd.h>

namespace {

const cnnc::fuzz::Target &target() {
  static const cnnc::fuzz::Target *t = [] {
#ifdef CNNC_FUZZ_DIFF // the one target that links code generation (fuzz/CMakeLists.txt)
    return &cnnc::fuzz::diffTarget();
#endif
    const cnnc::fuzz::Target *found = cnnc::fuzz::findTarget(CNNC_FUZZ_TARGET);
    if (!found) {
      std::fprintf(stderr, "fuzz: no target '%s'\n", CNNC_FUZZ_TARGET);
      std::abort();
    }
    return found;
  }();
  return *t;
}

// The memory file path-based readers read, rewritten for every input.
const std::string &memFile(const uint8_t *data, size_t size) {
  static int fd = memfd_create("cnnc-fuzz-input", 0);
  static const std::string path = "/proc/self/fd/" + std::to_string(fd);
  if (fd < 0 || ftruncate(fd, 0) != 0 ||
      (size && pwrite(fd, data, size, 0) != (ssize_t)size)) {
    std::perror("fuzz: memory file");
    std::abort();
  }
  return path;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const cnnc::fuzz::Target &t = target();
  std::string_view bytes(reinterpret_cast<const char *>(data), size);
  if (t.byPath)
    t.run(bytes, memFile(data, size));
  else
    t.run(bytes, std::string("fuzz.") + t.ext);
  return 0;
}
