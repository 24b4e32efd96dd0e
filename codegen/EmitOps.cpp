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

// inference dropout is the identity (a view, or copied when the planner did not alias it)
void emitDropout(Emitter &e, const Node &n) {
  n.getInt("training") ? emitDropoutTraining(e, n) : emitCopy(e, n);
}

} // namespace

// max/min with NaN winning: a NaN in b wins too, because comparisons with it are false.
Value *pickNaN(Emitter &e, Value *a, Value *b, bool isMax) {
  Value *wins = isMax ? e.b.CreateFCmpOGT(a, b) : e.b.CreateFCmpOLT(a, b);
  return e.b.CreateSelect(e.b.CreateOr(wins, e.b.CreateFCmpUNO(a, a)), a, b);
}

namespace {

// [op-table] The emitter table: the lowering of every op of ir/Ops.def. An elementwise op
// (lowersByElementFn, EmitOps.h) is lowered by emitElementwise from its element function in
// EmitElementwise.cpp and has no entry here. Every other op has one, `lowering<OpKind::X>`:
// kEmitters instantiates it for exactly those ops, so a missing one fails the build naming
// the op ("use of deleted function ... lowering<OpKind::X>"), as BatchRules.cpp's batchRule
// table does. nullptr: not lowered by codegen, on purpose (Lower.cpp binds sources to storage
// and copies updates at the end).
template <OpKind K> constexpr OpEmitter lowering() = delete;
#define LOWERING(Enum, fn)                                                                       \
  template <> constexpr OpEmitter lowering<OpKind::Enum>() { return fn; }
LOWERING(Input, nullptr)    // not lowered by codegen: bound to storage
LOWERING(Param, nullptr)    // not lowered by codegen: bound to storage
LOWERING(Constant, nullptr) // not lowered by codegen: bound to storage
LOWERING(Update, nullptr)   // not lowered by codegen: a copy into the param's buffer at the end
// ---- padding (EmitPad.cpp)
LOWERING(Pad, emitPad)
LOWERING(PadGrad, emitPadGrad)
// ---- copies (above): views the planner did not alias
LOWERING(Flatten, emitCopy)
LOWERING(Reshape, emitCopy)
LOWERING(Identity, emitCopy) // elementwise, but a view
LOWERING(Dropout, emitDropout)
// ---- convolution (EmitConv.cpp, EmitConvGrad.cpp)
LOWERING(Conv2d, emitConv2d)
LOWERING(Conv2dGradFilter, emitConv2dGradFilter)
LOWERING(Conv2dGradInput, emitConv2dGradInput)
LOWERING(FilterFlip, emitFilterFlip)
// ---- matrix products (EmitMatMul.cpp)
LOWERING(FullyConnected, emitFc)
LOWERING(MatMul, emitMatMul3)
LOWERING(BatchMatMul, emitBatchMatMul)
// ---- tensor movement (EmitMove.cpp)
LOWERING(Concat, emitConcat)
LOWERING(Transpose, emitTranspose)
LOWERING(Expand, emitExpand)
LOWERING(Slice, emitSlice)
LOWERING(Im2Row, emitIm2Row)
LOWERING(Row2Im, emitRow2Im)
// ---- reductions and normalisation (EmitReduce.cpp)
LOWERING(ReduceSum, emitReduce)
LOWERING(ReduceMax, emitReduce)
LOWERING(ReduceMin, emitReduce)
LOWERING(ArgMax, emitArgMax)
LOWERING(MaxPool, emitPool)
LOWERING(AvgPool, emitPool)
LOWERING(GlobalAvgPool, emitGlobalAvgPool)
LOWERING(Softmax, emitSoftmax)
LOWERING(LogSoftmax, emitSoftmax)
LOWERING(BatchNorm, emitBatchNorm)
LOWERING(BnMean, emitBnStat)
LOWERING(BnVar, emitBnStat)
// ---- losses (EmitLoss.cpp)
LOWERING(SoftmaxXent, emitSoftmaxXent)
LOWERING(L2Loss, emitL2Loss)
LOWERING(SoftmaxXentNd, emitSoftmaxXentNd)
LOWERING(CountCorrect, emitCountCorrect)
LOWERING(SoftmaxXentGrad, emitSoftmaxXentGrad)
LOWERING(L2LossGrad, emitL2LossGrad)
// ---- gradients (EmitGrad.cpp)
LOWERING(MaxPoolGrad, emitMaxPoolGrad)
LOWERING(AvgPoolGrad, emitAvgPoolGrad)
LOWERING(SoftmaxGrad, emitSoftmaxGrad)
LOWERING(LogSoftmaxGrad, emitSoftmaxGrad)
LOWERING(BatchNormGrad, emitBatchNormGrad)
LOWERING(BnTrainGrad, emitBnTrainGrad)
LOWERING(BnMeanGrad, emitBnMeanGrad)
LOWERING(BnVarGrad, emitBnVarGrad)
LOWERING(BnUnbias, emitBnUnbias)
#undef LOWERING

constexpr auto kEmitters = opTable([]<OpKind K>() -> OpEmitter {
  if constexpr (lowersByElementFn(K)) {
    static_assert(!requires { lowering<K>(); },
                  "an elementwise op's lowering is its element function (EmitElementwise.cpp)");
    return emitElementwise;
  } else {
    return lowering<K>();
  }
});

} // namespace

OpEmitter opEmitter(OpKind k) {
  return kEmitters[(size_t)k];
}

} // namespace cnnc::codegen
