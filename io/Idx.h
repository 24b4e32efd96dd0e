// IDX files, the MNIST format (big-endian header: 0, 0, type 0x08 = ubyte, rank; then
// rank big-endian u32 sizes; then the data), plain or gzipped (detected by content, not
// by name). Used by `cnnc train` (tools/Data.cpp) and the tests.
#pragma once

#include "io/Npz.h"

#include <string>

namespace cnnc::io {

/// Reads an unsigned-byte IDX file (plain or .gz) into a U8 array. Throws FormatError naming
/// the file on a bad magic, an unsupported type, or a size that disagrees with the header.
Array readIdx(const std::string &path);

} // namespace cnnc::io
