// Private to the ONNX frontend: the protobuf schema (Debian's libonnx, built with ONNX_ML)
// and the conversions between TensorProto and OnnxTensor.
#pragma once

#include "frontend/OnnxTensor.h"

#include <onnx/onnx_pb.h>

#include <string>

namespace cnnc::onnxio {

/// Decodes a TensorProto (raw_data or the typed repeated fields; external data is
/// rejected). `what` names the tensor in error messages.
OnnxTensor fromProto(const onnx::TensorProto &t, const std::string &what);
/// Encodes t as a TensorProto with raw_data.
void toProto(const OnnxTensor &t, onnx::TensorProto &out);

/// Reads a whole file into memory; throws cnnc::Error if it cannot.
std::string readFileBytes(const std::string &path);

} // namespace cnnc::onnxio
