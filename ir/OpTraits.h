// Ops.def's traits at compile time (OpInfo has them at run time, parsed from the same
// strings), for the per-op tables whose entry an op needs exactly when it has a trait.
#pragma once

#include "ir/IR.h"

#include <algorithm>
#include <string_view>

namespace cnnc {

/// Ops.def's trait words at compile time, for the per-op tables whose entry an op needs
/// exactly when it has a trait (a FLOP formula for `macs`, a batch rule for `batch:custom`):
/// such a table is built by an X-macro over Ops.def that instantiates the entry of every op
/// with the trait, so a missing one fails the build naming the op and the table.
namespace detail {
inline constexpr std::string_view kOpTraits[] = {
#define OP(Enum, Mnemonic, Operands, Attrs, Traits, Doc, Example) Traits,
#include "ir/Ops.def"
#undef OP
};
} // namespace detail
constexpr bool opHasTrait(OpKind k, std::string_view trait) {
  const std::string_view s = detail::kOpTraits[(size_t)k];
  for (size_t i = 0; i < s.size();) {
    const size_t end = std::min(s.find(' ', i), s.size());
    if (s.substr(i, end - i) == trait)
      return true;
    i = end + 1;
  }
  return false;
}

/// Whether an op's result may be stored over one of its operands (codegen/Plan.cpp).
enum class InPlace : uint8_t {
  /// Never: it reads operand elements at other indices than the one it writes (a conv, a
  /// pooling window, a reduction), writes before it has read, or is not worth proving.
  No,
  /// Element i of the result reads only element i of each operand that has the result's
  /// type (others, such as a broadcast bias or a per-channel scale, are read at any index),
  /// and its lowering reads them before it writes element i: such an operand that dies at
  /// this node may give the result its block. Also what lets a fused group (PlanFuse.cpp)
  /// whose members are all SameIndex store over one of its outside operands.
  SameIndex,
};

/// [op-table] The in-place column: one entry per op of ir/Ops.def. The switch has no
/// default, and -Werror=switch makes a missing op a build error that names it here.
constexpr InPlace opInPlace(OpKind k) {
  switch (k) {
  // elementwise math (seed eq. 12 and section 5's activations), their gradients and
  // reduce_max's tie mask: one loop that loads element i of each operand, stores element i
  // (codegen/EmitElementwise.cpp, alone, broadcast or in a group)
  case OpKind::Relu:
  case OpKind::Sigmoid:
  case OpKind::Tanh:
  case OpKind::Softplus:
  case OpKind::Clip:
  case OpKind::HardSigmoid:
  case OpKind::HardSwish:
  case OpKind::LeakyRelu:
  case OpKind::Elu:
  case OpKind::Selu:
  case OpKind::PRelu:
  case OpKind::Erf:
  case OpKind::Exp:
  case OpKind::Log:
  case OpKind::Sqrt:
  case OpKind::Reciprocal:
  case OpKind::Neg:
  case OpKind::Abs:
  case OpKind::Add:
  case OpKind::Sub:
  case OpKind::Mul:
  case OpKind::Div:
  case OpKind::Pow:
  case OpKind::Max:
  case OpKind::Min:
  case OpKind::ReluGrad:
  case OpKind::SigmoidGrad:
  case OpKind::TanhGrad:
  case OpKind::ClipGrad:
  case OpKind::EqualMask:
  // y = x·a + b per channel, x[i] loaded before y[i] is stored (EmitReduce.cpp's
  // emitBatchNorm); the per-channel operands never have x's type
  case OpKind::BatchNorm:
    return InPlace::SameIndex;
  // sources and views own no computation; the rest read across indices (windows, products,
  // reductions, normalisations over an axis, data movement) or, like training dropout, have
  // a lowering of their own that is not worth proving for it
  case OpKind::Input:
  case OpKind::Param:
  case OpKind::Constant:
  case OpKind::Conv2d:
  case OpKind::MaxPool:
  case OpKind::AvgPool:
  case OpKind::GlobalAvgPool:
  case OpKind::FullyConnected:
  case OpKind::MatMul:
  case OpKind::BatchMatMul:
  case OpKind::Concat:
  case OpKind::Flatten:
  case OpKind::Reshape:
  case OpKind::Identity:
  case OpKind::Softmax:
  case OpKind::LogSoftmax:
  case OpKind::BnMean:
  case OpKind::BnVar:
  case OpKind::BnUnbias:
  case OpKind::Dropout:
  case OpKind::SoftmaxXent:
  case OpKind::L2Loss:
  case OpKind::SoftmaxXentNd:
  case OpKind::CountCorrect:
  case OpKind::Transpose:
  case OpKind::Expand:
  case OpKind::ReduceSum:
  case OpKind::ReduceMax:
  case OpKind::ReduceMin:
  case OpKind::ArgMax:
  case OpKind::Slice:
  case OpKind::Pad:
  case OpKind::Im2Row:
  case OpKind::Row2Im:
  case OpKind::PadGrad:
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
  case OpKind::Conv2dGradInput:
  case OpKind::FilterFlip:
  case OpKind::Update:
    return InPlace::No;
  }
  return InPlace::No; // not reached: every OpKind is a case above
}

} // namespace cnnc
