#include "tools/MemoryLimit.h"

#include "ir/Checked.h"
#include "ir/IR.h"

#include <fmt/format.h>

#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdlib>

namespace cnnc::tools {

namespace {
std::atomic<int64_t> g_limit{0}; // 0: the physical memory
}

int64_t physicalMemory() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), size = ::sysconf(_SC_PAGE_SIZE);
  return pages > 0 && size > 0 ? (int64_t)pages * size : INT64_MAX;
}

void setMemoryLimit(int64_t bytes) { g_limit = bytes; }

int64_t memoryLimit() {
  const int64_t l = g_limit;
  return l > 0 ? l : physicalMemory();
}

void checkMemory(int64_t bytes, const std::string &what) {
  if (bytes > memoryLimit())
    throw Error(fmt::format("{} needs {} of memory, more than the limit of {} (--max-memory; the "
                            "default is the physical memory)",
                            what, formatBytes(bytes), formatBytes(memoryLimit())));
}

int64_t parseByteSize(const std::string &s) {
  char *end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  const std::string unit = end ? end : "";
  double scale = unit.empty() || unit == "B" ? 1
                 : unit == "K" || unit == "KiB" ? 1024.0
                 : unit == "M" || unit == "MiB" ? 1024.0 * 1024
                 : unit == "G" || unit == "GiB" ? 1024.0 * 1024 * 1024
                 : unit == "T" || unit == "TiB" ? 1024.0 * 1024 * 1024 * 1024
                                                : -1;
  if (end == s.c_str() || scale < 0 || !(v > 0) || !(v * scale < 9.2e18))
    throw Error(fmt::format("--max-memory '{}': expected a positive size such as 8G, 512M or a "
                            "byte count",
                            s));
  return (int64_t)std::llround(v * scale);
}

int64_t interpreterBytes(const Function &f, int elemBytes) {
  int64_t total = 0;
  for (const auto &n : f.nodes())
    total = checkedAdd(total, checkedMul(n->type.numel(), elemBytes).value_or(INT64_MAX))
                .value_or(INT64_MAX);
  return total;
}

std::string formatBytes(int64_t bytes) {
  static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = (double)bytes;
  int u = 0;
  while (v >= 1024 && u < 6)
    v /= 1024, ++u;
  return u == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.3g} {}", v, units[u]);
}

} // namespace cnnc::tools
