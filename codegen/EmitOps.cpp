// The emitter table (opEmitter: every op of ir/Ops.def to its lowering), copies and
// training dropout. Each lowering writes the op's result as loops over its operands'
// buffers, row-major N×C×H×W, with the innermost contiguous dimension in SIMD vectors where
// that is natural and a scalar tail. The elementwise ops (activations, numpy-broadcast
// arithmetic, the activations' gradients) are in EmitElementwise.cpp, the other families in
// the Emit*.cpp files EmitOps.h lists.
#include "codegen/EmitOps.h"

namespace cnnc::codegen {

using namespace llvm;

namespace {

// ------------------------------------------------------------------ copies
// identity, flatten, reshape, inference dropout when the planner did not make them views
void emitCopy(Emitter &e, const Node &n) {
  Value *x = e.ptr(n.operands[0]), *y = e.ptr(&n);
  e.parallelVecLoop(e.numel(&n), n.type.numel(),
                    [&](Value *i, unsigned w) { e.store(e.load(x, i, w), y, i); });
}

// ------------------------------------------------------------------ dropout (training)
// interp/DropoutHash.h, bit for bit: key = mix(mix(seed) ^ step); keep(i) =
// (mix(key ^ i) >> 11) * 2^-53 >= rate (in double); y = keep ? x * (float)(1/(1-rate)) : 0.
Value *splitmix64(Emitter &e, Value *z) {
  auto &b = e.b;
  z = b.CreateAdd(z, e.c((int64_t)0x9e3779b97f4a7c15ULL));
  z = b.CreateMul(b.CreateXor(z, b.CreateLShr(z, 30)), e.c((int64_t)0xbf58476d1ce4e5b9ULL));
  z = b.CreateMul(b.CreateXor(z, b.CreateLShr(z, 27)), e.c((int64_t)0x94d049bb133111ebULL));
  return b.CreateXor(z, b.CreateLShr(z, 31));
}

void emitDropoutTraining(Emitter &e, const Node &n) {
  auto &b = e.b;
  const double rate = n.getFloat("rate");
  const float scale = (float)(1.0 / (1.0 - rate));
  // the optional i64[] step operand; without it the step is 0 (interp's default RunOptions)
  Value *step = n.operands.size() > 1 ? b.CreateLoad(e.i64, e.ptr(n.operands[1])) : e.c(0);
  if (n.operands.size() > 1 &&
      n.operands[1]->type.dtype != DType::I64) // a float step, as held by T
    step = b.CreateFPToUI(e.load(e.ptr(n.operands[1]), e.c(0)), e.i64);
  Value *key = splitmix64(e, b.CreateXor(splitmix64(e, e.c(n.getInt("seed"))), step));
  Value *x = e.ptr(n.operands[0]), *y = e.ptr(&n);
  Type *f64 = b.getDoubleTy();
  e.loop(e.numel(&n), [&](Value *i) {
    Value *u =
        b.CreateFMul(b.CreateUIToFP(b.CreateLShr(splitmix64(e, b.CreateXor(key, i)), 11), f64),
                     ConstantFP::get(f64, 0x1.0p-53));
    Value *keep = b.CreateFCmpOGE(u, ConstantFP::get(f64, rate));
    e.store(b.CreateSelect(keep, b.CreateFMul(e.load(x, i), e.cf(scale)), e.cf(0)), y, i);
  });
}

} // namespace

// max/min with NaN winning: a NaN in b wins too, because comparisons with it are false.
Value *pickNaN(Emitter &e, Value *a, Value *b, bool isMax) {
  Value *wins = isMax ? e.b.CreateFCmpOGT(a, b) : e.b.CreateFCmpOLT(a, b);
  return e.b.CreateSelect(e.b.CreateOr(wins, e.b.CreateFCmpUNO(a, a)), a, b);
}

// [op-table] The emitter table: one entry per op of ir/Ops.def. The switch has no default, and
// -Werror=switch makes a missing op a build error that names it. nullptr: not lowered by
// codegen, on purpose (Lower.cpp binds sources to storage and copies updates at the end).
OpEmitter opEmitter(OpKind k) {
  switch (k) {
  case OpKind::Input:
  case OpKind::Param:
  case OpKind::Constant:
    return nullptr; // not lowered by codegen: bound to storage
  case OpKind::Update:
    return nullptr; // not lowered by codegen: a copy into the param's buffer at the end
  // ---- elementwise (EmitElementwise.cpp: element functions, fused groups)
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
  case OpKind::Erf:
  case OpKind::Exp:
  case OpKind::Log:
  case OpKind::Sqrt:
  case OpKind::Reciprocal:
  case OpKind::Neg:
  case OpKind::Abs:
  case OpKind::PRelu:
  case OpKind::Pow:
  case OpKind::Max:
  case OpKind::Min:
  case OpKind::EqualMask:
  case OpKind::ClipGrad:
  case OpKind::Add:
  case OpKind::Sub:
  case OpKind::Mul:
  case OpKind::Div:
  case OpKind::ReluGrad:
  case OpKind::SigmoidGrad:
  case OpKind::TanhGrad:
    return emitElementwise;
  case OpKind::Pad:
    return emitPad;
  case OpKind::PadGrad:
    return emitPadGrad;
  case OpKind::Flatten:
  case OpKind::Reshape:
  case OpKind::Identity:
    return emitCopy;
  case OpKind::Dropout:
    return [](Emitter &e, const Node &n) {
      n.getInt("training") ? emitDropoutTraining(e, n) : emitCopy(e, n);
    };
  // ---- convolution (EmitConv.cpp, EmitConvGrad.cpp)
  case OpKind::Conv2d:
    return emitConv2d;
  case OpKind::Conv2dGradFilter:
    return emitConv2dGradFilter;
  case OpKind::Conv2dGradInput:
    return emitConv2dGradInput;
  case OpKind::FilterFlip:
    return emitFilterFlip;
  // ---- matrix products (EmitMatMul.cpp)
  case OpKind::FullyConnected:
    return emitFc;
  case OpKind::MatMul:
    return emitMatMul3;
  case OpKind::BatchMatMul:
    return emitBatchMatMul;
  // ---- tensor movement (EmitMove.cpp)
  case OpKind::Concat:
    return emitConcat;
  case OpKind::Transpose:
    return emitTranspose;
  case OpKind::Expand:
    return emitExpand;
  case OpKind::Slice:
    return emitSlice;
  case OpKind::Im2Row:
    return emitIm2Row;
  case OpKind::Row2Im:
    return emitRow2Im;
  // ---- reductions and normalisation (EmitReduce.cpp)
  case OpKind::ReduceSum:
  case OpKind::ReduceMax:
  case OpKind::ReduceMin:
    return emitReduce;
  case OpKind::ArgMax:
    return emitArgMax;
  case OpKind::MaxPool:
  case OpKind::AvgPool:
    return emitPool;
  case OpKind::GlobalAvgPool:
    return emitGlobalAvgPool;
  case OpKind::Softmax:
  case OpKind::LogSoftmax:
    return emitSoftmax;
  case OpKind::BatchNorm:
    return emitBatchNorm;
  case OpKind::BnMean:
  case OpKind::BnVar:
    return emitBnStat;
  // ---- losses (EmitLoss.cpp)
  case OpKind::SoftmaxXent:
    return emitSoftmaxXent;
  case OpKind::L2Loss:
    return emitL2Loss;
  case OpKind::SoftmaxXentNd:
    return emitSoftmaxXentNd;
  case OpKind::CountCorrect:
    return emitCountCorrect;
  case OpKind::SoftmaxXentGrad:
    return emitSoftmaxXentGrad;
  case OpKind::L2LossGrad:
    return emitL2LossGrad;
  // ---- gradients (EmitGrad.cpp)
  case OpKind::MaxPoolGrad:
    return emitMaxPoolGrad;
  case OpKind::AvgPoolGrad:
    return emitAvgPoolGrad;
  case OpKind::SoftmaxGrad:
  case OpKind::LogSoftmaxGrad:
    return emitSoftmaxGrad;
  case OpKind::BatchNormGrad:
    return emitBatchNormGrad;
  case OpKind::BnTrainGrad:
    return emitBnTrainGrad;
  case OpKind::BnMeanGrad:
    return emitBnMeanGrad;
  case OpKind::BnVarGrad:
    return emitBnVarGrad;
  case OpKind::BnUnbias:
    return emitBnUnbias;
  }
  CNNC_INTERNAL("bad op kind");
}

} // namespace cnnc::codegen
