// Weights files: NumPy .npz archives (a zip of .npy arrays, one per parameter, named by the
// parameter's SSA name). numpy.load and PyTorch (via numpy) read them; cnnc reads stored and
// deflated archives (numpy.savez and numpy.savez_compressed) and writes stored ones.
// The compiler side's codec (library cnnc_io: tools, interpreter, tests); a generated .so reads
// weights with its own C reader, runtime/CnncNpz.c.
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace cnnc::io {

enum class ElemType : uint8_t { F32, F64, I32, I64, U8 };

struct Array {
  ElemType type = ElemType::F32;
  std::vector<int64_t> shape;
  std::vector<unsigned char> data; // little-endian, C order, numel * elemSize bytes
  int64_t numel() const;
  std::vector<double> toDoubles() const; // any numeric type -> double
  static Array fromFloats(const std::vector<float> &v, std::vector<int64_t> shape);
  static Array fromDoubles(const std::vector<double> &v, std::vector<int64_t> shape);
};

/// Raised for unreadable, truncated or corrupt files; the message names the file and the
/// array (and what is wrong: bad zip, bad .npy header, unsupported dtype, size mismatch).
class FormatError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

std::map<std::string, Array> readNpz(const std::string &path);
void writeNpz(const std::string &path, const std::map<std::string, Array> &arrays);
Array readNpy(const std::string &path);
void writeNpy(const std::string &path, const Array &a);

} // namespace cnnc::io
