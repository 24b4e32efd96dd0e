#include "ir/Type.h"

#include "ir/Checked.h"
#include "ir/Diagnostic.h"

#include <fmt/format.h>

namespace cnnc {

const char *dtypeName(DType t) {
  switch (t) {
  case DType::F32: return "f32";
  case DType::F64: return "f64";
  case DType::I32: return "i32";
  case DType::I64: return "i64";
  }
  CNNC_INTERNAL("bad dtype");
}

std::optional<DType> parseDType(const std::string &s) {
  for (DType t : {DType::F32, DType::F64, DType::I32, DType::I64})
    if (s == dtypeName(t))
      return t;
  return std::nullopt;
}

int dtypeSize(DType t) { return (t == DType::F64 || t == DType::I64) ? 8 : 4; }

int64_t TensorType::numel() const {
  // Saturates instead of overflowing: shape rules may look at a type before the verifier has
  // bounded it (2^40 elements); they check their own arithmetic (ir/Checked.h).
  return checkedProduct(shape).value_or(INT64_MAX);
}

std::string shapeStr(const Shape &s) { return fmt::format("[{}]", fmt::join(s, ",")); }

std::string TensorType::str() const { return dtypeName(dtype) + shapeStr(shape); }

} // namespace cnnc
