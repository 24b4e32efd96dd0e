// TensorProto <-> OnnxTensor. Data comes either as raw_data (little-endian, the common case
// in the backend test suite) or in the typed repeated fields (float_data, int64_data, ...);
// both are checked against the dims so that a corrupt file never reads out of bounds.
#include "frontend/OnnxProto.h"

#include "ir/Checked.h"
#include "ir/Diagnostic.h"

#include <fmt/format.h>

#include <cstring>
#include <fstream>
#include <sstream>

namespace cnnc {

int64_t OnnxTensor::numel() const {
  return checkedProduct(shape).value_or(INT64_MAX); // fromProto refuses larger
}

std::optional<DType> dtypeFromOnnx(int elemType) {
  switch (elemType) {
  case onnx::TensorProto::FLOAT:
    return DType::F32;
  case onnx::TensorProto::DOUBLE:
    return DType::F64;
  case onnx::TensorProto::INT32:
    return DType::I32;
  case onnx::TensorProto::INT64:
    return DType::I64;
  default:
    return std::nullopt;
  }
}

int onnxElemType(DType t) {
  switch (t) {
  case DType::F32:
    return onnx::TensorProto::FLOAT;
  case DType::F64:
    return onnx::TensorProto::DOUBLE;
  case DType::I32:
    return onnx::TensorProto::INT32;
  case DType::I64:
    return onnx::TensorProto::INT64;
  }
  CNNC_INTERNAL("bad dtype");
}

std::string onnxElemTypeName(int elemType) {
  if (onnx::TensorProto::DataType_IsValid(elemType)) {
    std::string s = onnx::TensorProto::DataType_Name((onnx::TensorProto::DataType)elemType);
    for (char &c : s)
      c = (char)std::tolower((unsigned char)c);
    return s;
  }
  return fmt::format("element type {}", elemType);
}

namespace onnxio {

std::string readFileBytes(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw Error(fmt::format("cannot open '{}'", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

template <class E> static void decodeRaw(const std::string &raw, std::vector<double> &out) {
  const size_t n = raw.size() / sizeof(E);
  out.resize(n);
  for (size_t i = 0; i < n; ++i) {
    E e;
    std::memcpy(&e, raw.data() + i * sizeof(E), sizeof(E)); // little-endian hosts only
    out[i] = (double)e;
  }
}

OnnxTensor fromProto(const onnx::TensorProto &t, const std::string &what) {
  OnnxTensor r;
  r.name = t.name();
  // A bool tensor is read as int32 0/1: cnnc's IR has no bool type, and the bools a CNN
  // export holds are flags read at import time (PyTorch exports a Dropout's `training_mode`
  // as a bool Constant). Raw data holds one byte per element, int32_data one value each.
  const bool isBool = t.data_type() == onnx::TensorProto::BOOL;
  auto dt = isBool ? std::optional<DType>(DType::I32) : dtypeFromOnnx(t.data_type());
  if (!dt)
    throw Error(fmt::format("{}: {} tensors are not supported (cnnc takes float, double, int32, "
                            "int64 and bool constants)",
                            what, onnxElemTypeName(t.data_type())));
  r.dtype = *dt;
  for (int64_t d : t.dims()) {
    if (d < 0)
      throw Error(fmt::format("{}: negative dimension {}", what, d));
    r.shape.push_back(d);
  }
  if (t.data_location() == onnx::TensorProto::EXTERNAL || t.external_data_size() > 0)
    throw Error(fmt::format("{}: tensors stored in external files are not supported", what));
  const size_t esize = isBool ? 1 : dtypeSize(r.dtype);
  const std::optional<int64_t> count = checkedProduct(r.shape);
  if (!count || !checkedMul(*count, (int64_t)esize))
    throw Error(fmt::format("{}: dims {} are too large", what, shapeStr(r.shape)));
  const int64_t n = *count;
  if (t.has_raw_data()) {
    const std::string &raw = t.raw_data();
    if ((int64_t)raw.size() != n * (int64_t)esize)
      throw Error(fmt::format("{}: raw data holds {} bytes, dims {} of {} need {}", what,
                              raw.size(), shapeStr(r.shape), isBool ? "bool" : dtypeName(r.dtype),
                              n * esize));
    if (isBool) {
      for (char c : raw)
        r.values.push_back(c != 0 ? 1.0 : 0.0);
      return r;
    }
    switch (r.dtype) {
    case DType::F32:
      decodeRaw<float>(raw, r.values);
      break;
    case DType::F64:
      decodeRaw<double>(raw, r.values);
      break;
    case DType::I32:
      decodeRaw<int32_t>(raw, r.values);
      break;
    case DType::I64:
      decodeRaw<int64_t>(raw, r.values);
      break;
    }
    return r;
  }
  switch (r.dtype) {
  case DType::F32:
    r.values.assign(t.float_data().begin(), t.float_data().end());
    break;
  case DType::F64:
    r.values.assign(t.double_data().begin(), t.double_data().end());
    break;
  case DType::I32:
    for (int32_t v : t.int32_data())
      r.values.push_back(isBool ? (v != 0 ? 1.0 : 0.0) : (double)v);
    break;
  case DType::I64:
    r.values.assign(t.int64_data().begin(), t.int64_data().end());
    break;
  }
  if ((int64_t)r.values.size() != n)
    throw Error(fmt::format("{}: holds {} values, dims {} need {}", what, r.values.size(),
                            shapeStr(r.shape), n));
  return r;
}

template <class E> static void encodeRaw(const std::vector<double> &v, std::string &raw) {
  raw.resize(v.size() * sizeof(E));
  for (size_t i = 0; i < v.size(); ++i) {
    E e = (E)v[i];
    std::memcpy(raw.data() + i * sizeof(E), &e, sizeof(E));
  }
}

void toProto(const OnnxTensor &t, onnx::TensorProto &out) {
  CNNC_ASSERT((int64_t)t.values.size() == t.numel(), "tensor size");
  out.set_name(t.name);
  out.set_data_type(onnxElemType(t.dtype));
  for (int64_t d : t.shape)
    out.add_dims(d);
  std::string raw;
  switch (t.dtype) {
  case DType::F32:
    encodeRaw<float>(t.values, raw);
    break;
  case DType::F64:
    encodeRaw<double>(t.values, raw);
    break;
  case DType::I32:
    encodeRaw<int32_t>(t.values, raw);
    break;
  case DType::I64:
    encodeRaw<int64_t>(t.values, raw);
    break;
  }
  out.set_raw_data(raw);
}

} // namespace onnxio

OnnxTensor readOnnxTensorFile(const std::string &path) {
  std::string bytes = onnxio::readFileBytes(path);
  onnx::TensorProto t;
  if (!t.ParseFromString(bytes))
    throw Error(
        fmt::format("'{}': not a valid ONNX TensorProto file (truncated or corrupt)", path));
  return onnxio::fromProto(t, fmt::format("'{}'", path));
}

void writeOnnxTensorFile(const std::string &path, const OnnxTensor &t) {
  onnx::TensorProto p;
  onnxio::toProto(t, p);
  std::ofstream out(path, std::ios::binary);
  if (!out || !p.SerializeToOstream(&out))
    throw Error(fmt::format("cannot write '{}'", path));
}

} // namespace cnnc
