// ONNX tensors outside the importer: TensorProto `.pb` files (the ONNX backend test suite's
// input_N.pb / output_N.pb, `cnnc run --input NAME=FILE.pb`) and initializer values, held as
// plain doubles so that no caller needs the protobuf headers.
#pragma once

#include "ir/Type.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cnnc {

/// A dense tensor read from (or written to) ONNX. Values are widened to double; integer
/// tensors (labels, shapes) are exact up to 2^53.
struct OnnxTensor {
  std::string name; // TensorProto.name, may be empty
  DType dtype = DType::F32;
  Shape shape;
  std::vector<double> values; // row-major, numel() entries

  int64_t numel() const;
};

/// The IR element type of an ONNX TensorProto.DataType, if cnnc has one (float, double,
/// int32, int64).
std::optional<DType> dtypeFromOnnx(int elemType);
/// The ONNX TensorProto.DataType of an IR element type.
int onnxElemType(DType t);
/// "float", "uint8", "bool", ... (for messages).
std::string onnxElemTypeName(int elemType);

/// Reads a serialized TensorProto. Throws cnnc::Error naming the file on a missing,
/// truncated or corrupt file, an unsupported element type, or data whose size does not match
/// the dims.
OnnxTensor readOnnxTensorFile(const std::string &path);
/// Writes a TensorProto (raw_data, little-endian) of t's dtype.
void writeOnnxTensorFile(const std::string &path, const OnnxTensor &t);

} // namespace cnnc
