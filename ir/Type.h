// Tensor types: an element type and a static shape (batch included).
//
// Layout convention: logical N×C×H×W (ONNX/PyTorch), row-major, last index fastest.
// docs/layout.md relates this to the seed's H×W×D tensors and its column-major vec().
#pragma once

#include "ir/Checked.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cnnc {

enum class DType : uint8_t { F32, F64, I32, I64 };

const char *dtypeName(DType t);                        // "f32", ...
std::optional<DType> parseDType(const std::string &s); // inverse of dtypeName
int dtypeSize(DType t);
inline bool isFloat(DType t) { return t == DType::F32 || t == DType::F64; }

using Shape = std::vector<int64_t>;

/// The largest rank any tensor may have (the verifier's limit; a compiled library's buffer
/// descriptors hold this many dims).
constexpr int kMaxRank = 8;

struct TensorType {
  DType dtype = DType::F32;
  Shape shape; // empty = scalar

  int rank() const { return (int)shape.size(); }
  /// The element count; saturates at INT64_MAX (verified types hold at most 2^40).
  int64_t numel() const;
  int64_t bytes() const { return checkedMul(numel(), dtypeSize(dtype)).value_or(INT64_MAX); }
  bool operator==(const TensorType &o) const = default;
  /// "f32[1,3,224,224]", "f32[]" for a scalar.
  std::string str() const;
};

std::string shapeStr(const Shape &s); // "[1,3,224,224]"

} // namespace cnnc
