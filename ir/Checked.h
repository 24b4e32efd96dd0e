// Checked size arithmetic (docs/hardening.md): dimensions, element counts and byte sizes come
// from user input (attributes, declared shapes, ONNX fields), so a sum or product of them may
// exceed 64 bits. Signed overflow is undefined behaviour in C++; these return nullopt instead
// and the caller turns that into an error naming the node.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace cnnc {

inline std::optional<int64_t> checkedAdd(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r))
    return std::nullopt;
  return r;
}

inline std::optional<int64_t> checkedMul(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r))
    return std::nullopt;
  return r;
}

/// The product of `dims` (1 for none), or nullopt if a partial product overflows. A zero
/// dim anywhere makes it 0 however large the others are.
inline std::optional<int64_t> checkedProduct(const std::vector<int64_t> &dims) {
  int64_t r = 1;
  bool overflow = false;
  for (int64_t d : dims) {
    if (d == 0)
      return 0;
    overflow |= __builtin_mul_overflow(r, d, &r);
  }
  if (overflow)
    return std::nullopt;
  return r;
}

} // namespace cnnc
