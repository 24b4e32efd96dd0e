// What each op of ir/Ops.def is in ONNX: the per-op table read by the importer (OnnxOps.cpp's
// loweringTable registers the Direct ops from it) and the exporter (OnnxExport.cpp).
#pragma once

#include "ir/IR.h"

namespace cnnc::onnximp {

/// What an op of ir/Ops.def is in ONNX: the per-op table (onnxForm below; one entry per op, a
/// missing one fails the build). Direct ops map one to one onto an ONNX operator
/// (one input per operand, no attributes) both ways; Custom ops have import code in
/// loweringTable and export code in OnnxExport.cpp; None ops have no ONNX form (why: the
/// export error).
struct OnnxForm {
  enum Kind { Direct, Custom, None } kind;
  const char *opType = nullptr; // Direct: the ONNX op_type
  const char *why = nullptr;    // None
};

// [op-table] The per-op ONNX table: one entry per op of ir/Ops.def. The switch has no default, and
// -Werror=switch makes a missing op a build error that names it. constexpr, so that the
// export (OnnxExport.cpp) checks at compile time that every Custom op has its export code.
constexpr OnnxForm onnxForm(OpKind k) {
  const OnnxForm custom{OnnxForm::Custom};
  auto direct = [](const char *opType) { return OnnxForm{OnnxForm::Direct, opType}; };
  auto none = [](const char *why) { return OnnxForm{OnnxForm::None, nullptr, why}; };
  const char *training = "a training-graph op: export an inference graph";
  const char *gradient = "a gradient op: export an inference graph";
  switch (k) {
  case OpKind::Relu:
    return direct("Relu");
  case OpKind::Sigmoid:
    return direct("Sigmoid");
  case OpKind::Tanh:
    return direct("Tanh");
  case OpKind::Softplus:
    return direct("Softplus");
  case OpKind::HardSwish: // opset 14 (exportOpset)
    return direct("HardSwish");
  case OpKind::Erf:
    return direct("Erf");
  case OpKind::Exp:
    return direct("Exp");
  case OpKind::Log:
    return direct("Log");
  case OpKind::Sqrt:
    return direct("Sqrt");
  case OpKind::Reciprocal:
    return direct("Reciprocal");
  case OpKind::Neg:
    return direct("Neg");
  case OpKind::Abs:
    return direct("Abs");
  case OpKind::Pow:
    return direct("Pow");
  case OpKind::Input:    // graph inputs
  case OpKind::Param:    // initializers
  case OpKind::Constant: // Constant nodes
  case OpKind::Conv2d:
  case OpKind::MaxPool:
  case OpKind::AvgPool:
  case OpKind::GlobalAvgPool:
  case OpKind::FullyConnected: // Gemm
  case OpKind::MatMul:         // MatMul, or Gemm when transposed
  case OpKind::BatchMatMul:    // MatMul of 3-D and higher
  case OpKind::Add:            // import folds constants, opset 6 aligns at `axis`
  case OpKind::Sub:
  case OpKind::Mul:
  case OpKind::Div:
  case OpKind::Concat:
  case OpKind::Flatten:
  case OpKind::Reshape:
  case OpKind::Identity:
  case OpKind::Softmax:
  case OpKind::LogSoftmax:
  case OpKind::BatchNorm:
  case OpKind::Dropout:
  case OpKind::SoftmaxXent: // SoftmaxCrossEntropyLoss
  case OpKind::SoftmaxXentNd:
  case OpKind::Clip:        // min/max as inputs (OnnxOpsModels.cpp)
  case OpKind::HardSigmoid:
  case OpKind::LeakyRelu:
  case OpKind::Pad:
  case OpKind::Transpose:
  case OpKind::Expand:
  case OpKind::ReduceSum:   // also ReduceMean on import (reduce_sum times 1/count)
  case OpKind::ReduceMax:   // also GlobalMaxPool (over H and W, keepdims)
  case OpKind::ReduceMin:
  case OpKind::ArgMax:
  case OpKind::Slice:
  case OpKind::Conv2dGradInput: // ConvTranspose
  case OpKind::PRelu:       // opset 6's per-channel slope
  case OpKind::Elu:         // alpha
  case OpKind::Selu:        // alpha, gamma
  case OpKind::Max:         // variadic on import: a chain of binary max
  case OpKind::Min:
    return custom;
  case OpKind::BnMean:
  case OpKind::BnVar:
  case OpKind::BnUnbias:
  case OpKind::CountCorrect:
  case OpKind::Update:
    return none(training);
  case OpKind::L2Loss:
    return none("no ONNX loss operator is l2_loss: export an inference graph");
  case OpKind::Im2Row:
  case OpKind::Row2Im:
    return none("the seed's phi(x) has no ONNX operator: export an inference graph");
  case OpKind::ReluGrad:
  case OpKind::SigmoidGrad:
  case OpKind::TanhGrad:
  case OpKind::MaxPoolGrad:
  case OpKind::AvgPoolGrad:
  case OpKind::SoftmaxGrad:
  case OpKind::LogSoftmaxGrad:
  case OpKind::BatchNormGrad:
  case OpKind::BnMeanGrad:
  case OpKind::BnVarGrad:
  case OpKind::BnTrainGrad:
  case OpKind::SoftmaxXentGrad:
  case OpKind::L2LossGrad:
  case OpKind::Conv2dGradFilter:
  case OpKind::FilterFlip:
  case OpKind::ClipGrad:
  case OpKind::PadGrad:
  case OpKind::EqualMask:
    return none(gradient);
  }
  CNNC_INTERNAL("bad op kind");
}

} // namespace cnnc::onnximp
