// .npy and .npz (zip of .npy) reading and writing, with no dependency beyond zlib.
//
// Reading trusts nothing: every offset and length read from a file is bounds-checked before
// use, sizes are checked for plausibility before anything is allocated, and every problem
// becomes one io::FormatError naming the file and the entry. The zip central directory is
// authoritative for sizes, CRC and method; local headers are only used to find the data
// (numpy.savez forces a ZIP64 extra field into each local header with 0xFFFFFFFF sizes, so
// local sizes cannot be trusted, but its central directory stays 32-bit). Archives that
// really need ZIP64 (>4 GiB, >65535 entries) are rejected with a message saying so.
//
// Writing produces stored (uncompressed) entries, .npy format 1.0, header padded so the data
// starts at a multiple of 64 bytes, as numpy itself does.
#include "io/Npz.h"

#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>

#include <fcntl.h>
#include <unistd.h>

namespace cnnc::io {

static_assert(std::endian::native == std::endian::little, "the .npy data is little-endian");

namespace {

int elemSize(ElemType t) {
  switch (t) {
  case ElemType::F32:
    return 4;
  case ElemType::F64:
    return 8;
  case ElemType::I32:
    return 4;
  case ElemType::I64:
    return 8;
  case ElemType::U8:
    return 1;
  }
  return 1;
}

const char *descrOf(ElemType t) {
  switch (t) {
  case ElemType::F32:
    return "<f4";
  case ElemType::F64:
    return "<f8";
  case ElemType::I32:
    return "<i4";
  case ElemType::I64:
    return "<i8";
  case ElemType::U8:
    return "|u1";
  }
  return "?";
}

// "file: entry 'x': what", the shape of every message.
[[noreturn]] void fail(const std::string &file, const std::string &entry, const std::string &what) {
  std::string msg = file + ": ";
  if (!entry.empty())
    msg += "entry '" + entry + "': ";
  throw FormatError(msg + what);
}

std::vector<unsigned char> readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    fail(path, "", "cannot open file for reading");
  std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)),
                                   std::istreambuf_iterator<char>());
  if (in.bad())
    fail(path, "", "read error");
  return bytes;
}

// Atomic: the bytes go to "<path>.<pid>.<n>.tmp" in the same directory (created exclusively),
// are flushed to the disk (fsync) and renamed over `path`. A crash or a kill at any point
// leaves the old file or the new one, never a torn one (weights, checkpoints: no lost work).
// Test hook (tests/train/interrupt_resume.sh): CNNC_TEST_KILL_IN_WRITE=N kills the process
// (SIGKILL) halfway through the N-th file this process writes, after half of it is on disk.
void writeFile(const std::string &path, const std::vector<unsigned char> &bytes) {
  static std::atomic<unsigned> counter{0};
  static const unsigned killAt = [] {
    const char *e = std::getenv("CNNC_TEST_KILL_IN_WRITE");
    return e ? (unsigned)std::strtoul(e, nullptr, 10) : 0u;
  }();
  const unsigned serial = counter++;
  const std::string tmp =
      path + "." + std::to_string(::getpid()) + "." + std::to_string(serial) + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0)
    fail(path, "", "cannot open '" + tmp + "' for writing: " + std::strerror(errno));
  size_t done = 0;
  const size_t stopAt = serial + 1 == killAt ? bytes.size() / 2 : bytes.size();
  while (done < bytes.size()) {
    if (done >= stopAt) {
      ::fsync(fd);
      ::raise(SIGKILL);
    }
    ssize_t k = ::write(fd, bytes.data() + done, stopAt - done);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      break;
    done += (size_t)k;
  }
  const int err = done < bytes.size() ? errno : ::fsync(fd) != 0 ? errno : 0;
  if (::close(fd) != 0 || err != 0 || std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(err ? err : errno);
    ::unlink(tmp.c_str());
    fail(path, "", "write error: " + why);
  }
}

// Little-endian field access into a byte range whose bounds the caller has checked.
uint16_t get16(const unsigned char *p) {
  return uint16_t(p[0] | (p[1] << 8));
}
uint32_t get32(const unsigned char *p) {
  return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
}
void put16(std::vector<unsigned char> &o, uint32_t v) {
  o.push_back(uint8_t(v));
  o.push_back(uint8_t(v >> 8));
}
void put32(std::vector<unsigned char> &o, uint32_t v) {
  put16(o, v & 0xFFFF);
  put16(o, v >> 16);
}

// ---------------------------------------------------------------------------- .npy --

// The header is a Python dict literal; numpy writes
//   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
// This parser accepts exactly that grammar (any key order, optional trailing commas).
class HeaderParser {
public:
  HeaderParser(std::string_view s, const std::string &file, const std::string &entry)
      : s_(s), file_(file), entry_(entry) {}

  void parse(std::string &descr, bool &fortran, std::vector<int64_t> &shape) {
    std::set<std::string> seen;
    expect('{');
    while (!peek('}')) {
      std::string key = str();
      if (!seen.insert(key).second)
        bad("duplicate key '" + key + "'");
      expect(':');
      if (key == "descr")
        descr = str();
      else if (key == "fortran_order")
        fortran = boolean();
      else if (key == "shape")
        shape = tuple();
      else
        bad("unexpected key '" + key + "'");
      if (!peek('}'))
        expect(',');
    }
    expect('}');
    skipWs();
    if (pos_ != s_.size())
      bad("trailing characters");
    if (seen.size() != 3)
      bad("missing one of 'descr', 'fortran_order', 'shape'");
  }

private:
  [[noreturn]] void bad(const std::string &what) {
    fail(file_, entry_, "bad .npy header (" + what + ")");
  }
  void skipWs() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\t'))
      ++pos_;
  }
  bool peek(char c) {
    skipWs();
    return pos_ < s_.size() && s_[pos_] == c;
  }
  void expect(char c) {
    if (!peek(c))
      bad(std::string("expected '") + c + "'");
    ++pos_;
  }
  std::string str() {
    skipWs();
    if (pos_ >= s_.size() || (s_[pos_] != '\'' && s_[pos_] != '"'))
      bad("expected a string");
    char q = s_[pos_++];
    size_t end = s_.find(q, pos_);
    if (end == std::string_view::npos)
      bad("unterminated string");
    std::string r(s_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return r;
  }
  bool boolean() {
    skipWs();
    for (auto [word, value] : {std::pair{"True", true}, std::pair{"False", false}})
      if (s_.substr(pos_).starts_with(word)) {
        pos_ += std::strlen(word);
        return value;
      }
    bad("expected True or False");
  }
  std::vector<int64_t> tuple() {
    std::vector<int64_t> r;
    expect('(');
    while (!peek(')')) {
      if (pos_ >= s_.size() || s_[pos_] < '0' || s_[pos_] > '9')
        bad("expected a dimension");
      int64_t v = 0;
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
        if (v > (INT64_MAX - 9) / 10)
          bad("dimension too large");
        v = v * 10 + (s_[pos_++] - '0');
      }
      r.push_back(v);
      if (!peek(')'))
        expect(',');
    }
    expect(')');
    return r;
  }

  std::string_view s_;
  size_t pos_ = 0;
  const std::string &file_, &entry_;
};

std::string shapeTuple(const std::vector<int64_t> &shape);

Array parseNpy(const unsigned char *p, size_t n, const std::string &file,
               const std::string &entry) {
  static const unsigned char magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  if (n < 10 || std::memcmp(p, magic, 6) != 0)
    fail(file, entry, "not a .npy array (bad magic)");
  uint8_t major = p[6];
  size_t headerLen, start;
  if (major == 1) {
    headerLen = get16(p + 8);
    start = 10;
  } else if (major == 2 || major == 3) { // 3 only changes the header's encoding to UTF-8
    if (n < 12)
      fail(file, entry, "truncated .npy header");
    headerLen = get32(p + 8);
    start = 12;
  } else {
    fail(file, entry, "unsupported .npy version " + std::to_string(major));
  }
  if (headerLen > n - start)
    fail(file, entry, "truncated .npy header");

  std::string descr;
  bool fortran = false;
  Array a;
  HeaderParser(std::string_view(reinterpret_cast<const char *>(p + start), headerLen), file, entry)
      .parse(descr, fortran, a.shape);
  if (fortran)
    fail(file, entry, "fortran_order arrays are not supported");
  static const std::pair<const char *, ElemType> types[] = {{"<f4", ElemType::F32},
                                                            {"<f8", ElemType::F64},
                                                            {"<i4", ElemType::I32},
                                                            {"<i8", ElemType::I64},
                                                            {"|u1", ElemType::U8}};
  bool known = false;
  for (auto [d, t] : types)
    if (descr == d) {
      a.type = t;
      known = true;
    }
  if (!known)
    fail(file, entry, "unsupported dtype '" + descr + "' (want <f4, <f8, <i4, <i8 or |u1)");

  size_t dataLen = n - start - headerLen;
  // Every partial product of the dims must fit an int64 (Array::numel, strides), even in an
  // empty array: (2^63-1, 2^63-1, 0) holds no data but no size of it is computable.
  int64_t nonzero = 1;
  for (int64_t d : a.shape)
    if (d != 0 && __builtin_mul_overflow(nonzero, d, &nonzero))
      fail(file, entry, "bad .npy header (the shape " + shapeTuple(a.shape) + " is too large)");
  uint64_t bytes = (uint64_t)elemSize(a.type);
  bool overflow = false;
  for (int64_t d : a.shape)
    overflow |= __builtin_mul_overflow(bytes, (uint64_t)d, &bytes);
  if (std::find(a.shape.begin(), a.shape.end(), 0) != a.shape.end())
    bytes = 0, overflow = false; // an empty array, however large its other dimensions
  if (overflow || bytes != dataLen)
    fail(file, entry,
         "data size mismatch: the shape needs " +
             (overflow ? std::string("more than 2^64") : std::to_string(bytes)) +
             " bytes, the file has " + std::to_string(dataLen));
  a.data.assign(p + start + headerLen, p + n);
  return a;
}

std::string shapeTuple(const std::vector<int64_t> &shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

std::vector<unsigned char> encodeNpy(const Array &a, const std::string &file,
                                     const std::string &entry) {
  if (a.data.size() != (uint64_t)a.numel() * elemSize(a.type))
    fail(file, entry, "array data does not match its shape (writing)");
  std::string dict = std::string("{'descr': '") + descrOf(a.type) +
                     "', 'fortran_order': False, 'shape': " + shapeTuple(a.shape) + ", }";
  // Pad with spaces and a final newline so the data starts at a multiple of 64.
  size_t total = 10 + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict += '\n';
  if (dict.size() > 0xFFFF)
    fail(file, entry, "shape too long for a .npy 1.0 header");
  std::vector<unsigned char> o = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
  put16(o, (uint32_t)dict.size());
  o.insert(o.end(), dict.begin(), dict.end());
  o.insert(o.end(), a.data.begin(), a.data.end());
  return o;
}

// ---------------------------------------------------------------------------- .zip --

constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEndSig = 0x06054b50,
                   kZip64LocatorSig = 0x07064b50;
constexpr size_t kLocalLen = 30, kCentralLen = 46, kEndLen = 22;

uint32_t crcOf(const unsigned char *p, size_t n) {
  uLong c = crc32(0L, Z_NULL, 0);
  // zlib's length argument is a uInt: feed large buffers in pieces.
  while (n > 0) {
    uInt k = (uInt)std::min<size_t>(n, 1u << 30);
    c = crc32(c, p, k);
    p += k;
    n -= k;
  }
  return (uint32_t)c;
}

std::vector<unsigned char> inflateRaw(const unsigned char *p, size_t n, size_t outLen,
                                      const std::string &file, const std::string &entry) {
  // Deflate cannot expand data by more than ~1032x; a larger claim is corruption, and
  // rejecting it keeps a forged size from allocating gigabytes.
  if (outLen > n * 1032 + 64)
    fail(file, entry, "implausible uncompressed size " + std::to_string(outLen));
  std::vector<unsigned char> out(outLen);
  z_stream z{};
  if (inflateInit2(&z, -MAX_WBITS) != Z_OK)
    fail(file, entry, "zlib initialisation failed");
  z.next_in = const_cast<unsigned char *>(p);
  z.avail_in = (uInt)n;
  unsigned char dummy = 0; // zlib wants a non-null buffer even for 0 bytes of output
  z.next_out = outLen ? out.data() : &dummy;
  z.avail_out = (uInt)outLen;
  int rc = inflate(&z, Z_FINISH);
  uLong produced = z.total_out;
  inflateEnd(&z);
  if (rc != Z_STREAM_END || produced != outLen)
    fail(file, entry, "corrupt deflate data");
  return out;
}

struct Reader {
  const std::vector<unsigned char> &b;
  const std::string &file;
  // Bounds-checked view of b[off, off+len).
  const unsigned char *at(uint64_t off, uint64_t len, const std::string &entry,
                          const char *what) const {
    if (off > b.size() || len > b.size() - off)
      fail(file, entry, std::string("truncated or corrupt zip (") + what + " out of bounds)");
    return b.data() + off;
  }
};

} // namespace

// ---------------------------------------------------------------------------- Array --

template <class T> static T load(const unsigned char *p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

int64_t Array::numel() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

std::vector<double> Array::toDoubles() const {
  int64_t n = numel();
  if ((uint64_t)n * elemSize(type) != data.size())
    throw FormatError("Array::toDoubles: data does not match the shape");
  std::vector<double> r((size_t)n);
  for (int64_t i = 0; i < n; ++i) {
    const unsigned char *p = data.data() + i * elemSize(type);
    switch (type) {
    case ElemType::F32:
      r[i] = load<float>(p);
      break;
    case ElemType::F64:
      r[i] = load<double>(p);
      break;
    case ElemType::I32:
      r[i] = load<int32_t>(p);
      break;
    case ElemType::I64:
      r[i] = (double)load<int64_t>(p);
      break;
    case ElemType::U8:
      r[i] = *p;
      break;
    }
  }
  return r;
}

template <class T>
static Array fromValues(ElemType t, const std::vector<T> &v, std::vector<int64_t> shape) {
  Array a;
  a.type = t;
  a.shape = std::move(shape);
  if ((uint64_t)a.numel() != v.size())
    throw std::invalid_argument("Array: " + std::to_string(v.size()) +
                                " values do not fill shape " + shapeTuple(a.shape));
  a.data.resize(v.size() * sizeof(T));
  if (!v.empty())
    std::memcpy(a.data.data(), v.data(), a.data.size());
  return a;
}

Array Array::fromFloats(const std::vector<float> &v, std::vector<int64_t> shape) {
  return fromValues(ElemType::F32, v, std::move(shape));
}
Array Array::fromDoubles(const std::vector<double> &v, std::vector<int64_t> shape) {
  return fromValues(ElemType::F64, v, std::move(shape));
}

// ---------------------------------------------------------------------------- files --

Array readNpy(const std::string &path) {
  std::vector<unsigned char> b = readFile(path);
  return parseNpy(b.data(), b.size(), path, "");
}

void writeNpy(const std::string &path, const Array &a) {
  writeFile(path, encodeNpy(a, path, ""));
}

std::map<std::string, Array> readNpz(const std::string &path) {
  std::vector<unsigned char> b = readFile(path);
  Reader r{b, path};

  // The end-of-central-directory record is the last 22 bytes plus a comment of <= 65535.
  if (b.size() < kEndLen)
    fail(path, "", "not a zip archive (too short)");
  size_t end = SIZE_MAX;
  for (size_t i = b.size() - kEndLen + 1; i-- > 0 && b.size() - i <= kEndLen + 0xFFFF;)
    if (get32(b.data() + i) == kEndSig && i + kEndLen + get16(b.data() + i + 20) == b.size()) {
      end = i;
      break;
    }
  if (end == SIZE_MAX)
    fail(path, "", "not a zip archive (no end-of-central-directory record)");
  const unsigned char *e = b.data() + end;
  uint16_t count = get16(e + 10);
  uint32_t cdSize = get32(e + 12), cdOff = get32(e + 16);
  if ((end >= 20 && get32(b.data() + end - 20) == kZip64LocatorSig) || count == 0xFFFF ||
      cdSize == 0xFFFFFFFF || cdOff == 0xFFFFFFFF)
    fail(path, "", "ZIP64 archives are not supported");
  if (get16(e + 4) != 0 || get16(e + 6) != 0 || get16(e + 8) != count)
    fail(path, "", "multi-disk zip archives are not supported");
  r.at(cdOff, cdSize, "", "central directory");

  std::map<std::string, Array> arrays;
  uint64_t pos = cdOff;
  for (unsigned i = 0; i < count; ++i) {
    const unsigned char *c = r.at(pos, kCentralLen, "", "central directory entry");
    if (get32(c) != kCentralSig)
      fail(path, "", "corrupt central directory (bad signature)");
    uint16_t flags = get16(c + 8), method = get16(c + 10);
    uint32_t crc = get32(c + 16), csize = get32(c + 20), usize = get32(c + 24);
    uint16_t nameLen = get16(c + 28), extraLen = get16(c + 30), commentLen = get16(c + 32);
    uint32_t localOff = get32(c + 42);
    std::string name(reinterpret_cast<const char *>(r.at(pos + kCentralLen, nameLen, "", "name")),
                     nameLen);
    pos += kCentralLen + nameLen + extraLen + commentLen;
    if (pos > (uint64_t)cdOff + cdSize)
      fail(path, name, "central directory entry overruns the directory");

    if (csize == 0xFFFFFFFF || usize == 0xFFFFFFFF || localOff == 0xFFFFFFFF)
      fail(path, name, "ZIP64 entries are not supported");
    if (flags & 1)
      fail(path, name, "encrypted entries are not supported");
    if (!name.ends_with(".npy"))
      fail(path, name, "not a .npy entry");
    std::string key = name.substr(0, name.size() - 4);
    if (arrays.count(key))
      fail(path, name, "duplicate array name");

    const unsigned char *l = r.at(localOff, kLocalLen, name, "local header");
    if (get32(l) != kLocalSig)
      fail(path, name, "bad local header signature");
    uint64_t dataOff = (uint64_t)localOff + kLocalLen + get16(l + 26) + get16(l + 28);
    const unsigned char *data = r.at(dataOff, csize, name, "data");

    std::vector<unsigned char> plain;
    if (method == 0) {
      if (csize != usize)
        fail(path, name, "stored entry with differing sizes");
      plain.assign(data, data + csize);
    } else if (method == 8) {
      plain = inflateRaw(data, csize, usize, path, name);
    } else {
      fail(path, name, "unsupported compression method " + std::to_string(method));
    }
    if (crcOf(plain.data(), plain.size()) != crc)
      fail(path, name, "CRC-32 mismatch (corrupt data)");
    arrays.emplace(key, parseNpy(plain.data(), plain.size(), path, name));
  }
  return arrays;
}

void writeNpz(const std::string &path, const std::map<std::string, Array> &arrays) {
  std::vector<unsigned char> out, central;
  if (arrays.size() >= 0xFFFF)
    fail(path, "", "too many arrays for a non-ZIP64 archive");
  for (const auto &[key, a] : arrays) {
    std::string name = key + ".npy";
    if (name.size() > 0xFFFF)
      fail(path, name, "name too long");
    std::vector<unsigned char> npy = encodeNpy(a, path, name);
    if (npy.size() >= 0xFFFFFFFF || out.size() + npy.size() + 2 * name.size() + 1024 >= 0xFFFFFFFF)
      fail(path, name, "archive would exceed 4 GiB (ZIP64 is not supported)");
    uint32_t crc = crcOf(npy.data(), npy.size()), offset = (uint32_t)out.size();
    // Fields shared by the local and the central header, from "version needed" on:
    // version 2.0, no flags, stored, time 00:00, date 1980-01-01, crc, sizes, name length.
    auto common = [&](std::vector<unsigned char> &o) {
      put16(o, 20);
      put16(o, 0);
      put16(o, 0);
      put16(o, 0);
      put16(o, (1 << 5) | 1);
      put32(o, crc);
      put32(o, (uint32_t)npy.size());
      put32(o, (uint32_t)npy.size());
      put16(o, (uint32_t)name.size());
      put16(o, 0); // extra length
    };
    put32(out, kLocalSig);
    common(out);
    out.insert(out.end(), name.begin(), name.end());
    out.insert(out.end(), npy.begin(), npy.end());

    put32(central, kCentralSig);
    put16(central, 20); // version made by: MS-DOS, 2.0
    common(central);
    put16(central, 0); // comment length
    put16(central, 0); // disk
    put16(central, 0); // internal attributes
    put32(central, 0); // external attributes
    put32(central, offset);
    central.insert(central.end(), name.begin(), name.end());
  }
  uint32_t cdOff = (uint32_t)out.size();
  out.insert(out.end(), central.begin(), central.end());
  put32(out, kEndSig);
  put16(out, 0);
  put16(out, 0);
  put16(out, (uint32_t)arrays.size());
  put16(out, (uint32_t)arrays.size());
  put32(out, (uint32_t)central.size());
  put32(out, cdOff);
  put16(out, 0); // comment length
  writeFile(path, out);
}

} // namespace cnnc::io
