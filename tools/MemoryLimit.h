// The allocation limit (`--max-memory`, docs/cli.md): before the tools allocate the tensors
// of a run (the interpreter's values, compiled code's workspace and buffers, a trainer's
// state), the byte count is checked against the limit, so that a model too large for the
// machine is one clear error naming what needs the memory, not an out-of-memory kill halfway.
// The default is the physical memory.
#pragma once

#include <cstdint>
#include <string>

namespace cnnc {
class Function;
}

namespace cnnc::tools {

/// The machine's physical memory in bytes (sysconf).
int64_t physicalMemory();
/// 0 restores the default (the physical memory).
void setMemoryLimit(int64_t bytes);
int64_t memoryLimit();
/// Throws cnnc::Error when `bytes` exceeds the limit: "<what> needs 12.5 GiB of memory, more
/// than the limit of 8 GiB (--max-memory; the default is the physical memory)".
void checkMemory(int64_t bytes, const std::string &what);
/// The bytes of every value of `f` at `elemBytes` per element: what the interpreter holds
/// (it keeps each node's result), saturating at INT64_MAX.
int64_t interpreterBytes(const Function &f, int elemBytes);
/// "8G", "512M", "64K", "1.5G" (powers of 1024) or a plain byte count; throws cnnc::Error.
int64_t parseByteSize(const std::string &s);
/// "1.5 GiB", "512 MiB", "100 B".
std::string formatBytes(int64_t bytes);

} // namespace cnnc::tools
