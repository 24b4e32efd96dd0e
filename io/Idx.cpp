#include "io/Idx.h"

#include <zlib.h>

#include <cstdio>
#include <cstring>

namespace cnnc::io {

// gzread reads plain files transparently too, so one path handles both encodings.
static std::vector<unsigned char> slurp(const std::string &path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f)
    throw FormatError("cannot open IDX file '" + path + "'");
  std::vector<unsigned char> out;
  unsigned char buf[1 << 16];
  for (;;) {
    int n = gzread(f, buf, sizeof buf);
    if (n < 0) {
      int err = 0;
      std::string msg = gzerror(f, &err);
      gzclose(f);
      throw FormatError("'" + path + "': corrupt compressed data (" + msg + ")");
    }
    if (n == 0)
      break;
    out.insert(out.end(), buf, buf + n);
  }
  gzclose(f);
  return out;
}

Array readIdx(const std::string &path) {
  std::vector<unsigned char> b = slurp(path);
  if (b.size() < 4 || b[0] != 0 || b[1] != 0)
    throw FormatError("'" + path + "' is not an IDX file (bad magic number)");
  if (b[2] != 0x08) {
    char type[8];
    std::snprintf(type, sizeof type, "0x%02x", b[2]);
    throw FormatError("'" + path + "': IDX element type " + type +
                      " is not supported (only unsigned bytes, 0x08)");
  }
  int rank = b[3];
  if (rank < 1 || b.size() < 4 + 4 * (size_t)rank)
    throw FormatError("'" + path + "': truncated IDX header");
  Array a;
  a.type = ElemType::U8;
  uint64_t numel = 1;
  for (int i = 0; i < rank; ++i) {
    const unsigned char *p = &b[4 + 4 * i];
    uint32_t d = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    a.shape.push_back(d);
    // checked: three sizes near 2^31 would wrap to a small (or zero) count
    if (__builtin_mul_overflow(numel, d, &numel) || numel > (uint64_t(1) << 34))
      throw FormatError("'" + path + "': IDX sizes are implausibly large");
  }
  size_t header = 4 + 4 * (size_t)rank;
  if (b.size() - header != numel)
    throw FormatError("'" + path + "': the header promises " + std::to_string(numel) + " bytes of data, the file has " +
                      std::to_string(b.size() - header));
  a.data.assign(b.begin() + header, b.end());
  return a;
}

} // namespace cnnc::io
