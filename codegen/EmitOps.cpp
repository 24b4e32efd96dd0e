// The emitter table (opEmitter: every op of ir/Ops.def to its lowering) and the elementwise
// ops: unary activations, numpy-broadcast arithmetic, the activations' gradients, dropout.
// Each lowering writes the op's result as loops over its operands' buffers, row-major
// N×C×H×W, with the innermost contiguous dimension in SIMD vectors where that is natural
// and a scalar tail. The other families are in the Emit*.cpp files EmitOps.h lists.
#include "codegen/EmitOps.h"

#include <cmath>
#include <limits>

namespace cnnc::codegen {

using namespace llvm;

namespace {

// ------------------------------------------------------------------ elementwise
// y = f(x) over a flat range, in vectors of up to maxW lanes (0: the target's).
using UnaryFn = Value *(*)(Emitter &, Value *x, unsigned w);
void emitMap(Emitter &e, const Node &n, UnaryFn f, unsigned maxW = 0) {
  Value *x = e.ptr(n.operands[0]), *y = e.ptr(&n);
  e.parallelVecLoop(
      e.numel(&n), n.type.numel(),
      [&](Value *i, unsigned w) { e.store(f(e, e.load(x, i, w), w), y, i); }, maxW);
}

// emitMap with a lowering that reads the node's attributes.
using MapFn = std::function<Value *(Value *x, unsigned w)>;
void emitMapOf(Emitter &e, const Node &n, const MapFn &f) {
  Value *x = e.ptr(n.operands[0]), *y = e.ptr(&n);
  e.parallelVecLoop(e.numel(&n), n.type.numel(),
                    [&](Value *i, unsigned w) { e.store(f(e.load(x, i, w), w), y, i); });
}

// min(max(x, lo), hi) as selects: NaN compares false and stays NaN (PyTorch's clamp), where
// minnum/maxnum would replace it.
Value *clampSelect(Emitter &e, Value *x, double lo, double hi, unsigned w) {
  Value *l = e.cfv(lo, w), *h = e.cfv(hi, w);
  Value *up = e.b.CreateSelect(e.b.CreateFCmpOGT(x, h), h, x);
  return e.b.CreateSelect(e.b.CreateFCmpOLT(x, l), l, up);
}

// y = f(dy, v) over a flat range: the activations' vector-Jacobian products.
using ZipFn = Value *(*)(Emitter &, Value *dy, Value *v, unsigned w);
void emitZip(Emitter &e, const Node &n, ZipFn f) {
  Value *dy = e.ptr(n.operands[0]), *v = e.ptr(n.operands[1]), *dx = e.ptr(&n);
  e.parallelVecLoop(e.numel(&n), n.type.numel(), [&](Value *i, unsigned w) {
    e.store(f(e, e.load(dy, i, w), e.load(v, i, w), w), dx, i);
  });
}

Value *copyOf(Emitter &, Value *x, unsigned) {
  return x;
}

// identity, flatten, reshape, inference dropout when the planner did not make them views
void emitCopy(Emitter &e, const Node &n) {
  emitMap(e, n, copyOf);
}

// a (op) b with numpy broadcasting: a loop nest over the output's dims with per-operand
// strides (0 along broadcast dims), adjacent dims merged where both operands allow it.
using CombineFn = std::function<Value *(Value *a, Value *b)>;
void emitBroadcast(Emitter &e, const Node &n, const CombineFn &combine) {
  const Shape &S = n.type.shape;
  const int r = (int)S.size();
  Value *y = e.ptr(&n), *src[2] = {e.ptr(n.operands[0]), e.ptr(n.operands[1])};
  if (r == 0) {
    e.store(combine(e.load(src[0], e.c(0)), e.load(src[1], e.c(0))), y, e.c(0));
    return;
  }
  // strides[k][d]: operand k's stride along output dim d (0 = broadcast)
  std::vector<std::vector<int64_t>> strides(2, std::vector<int64_t>(r, 0));
  for (int k = 0; k < 2; ++k) {
    const Shape &s = n.operands[k]->type.shape;
    int64_t st = 1;
    for (int j = (int)s.size() - 1; j >= 0; --j) {
      strides[k][r - (int)s.size() + j] = s[j] == 1 && S[r - (int)s.size() + j] != 1 ? 0 : st;
      st *= s[j];
    }
  }
  // merge dim d into d+1 when, for both operands, stride[d] == stride[d+1] * S[d+1]
  std::vector<int64_t> ext(S.begin(), S.end());
  std::vector<bool> runtimeDim(r, false);
  if (e.batched(&n))
    runtimeDim[e.batchDim(&n)] = true;
  for (int d = r - 2; d >= 0; --d) {
    bool ok = !runtimeDim[d] && !runtimeDim[d + 1];
    for (int k = 0; k < 2; ++k)
      ok &= strides[k][d] == strides[k][d + 1] * ext[d + 1];
    if (!ok)
      continue;
    ext[d + 1] *= ext[d];
    ext.erase(ext.begin() + d);
    runtimeDim.erase(runtimeDim.begin() + d);
    for (int k = 0; k < 2; ++k)
      strides[k].erase(strides[k].begin() + d);
  }
  const int m = (int)ext.size();
  std::vector<int64_t> ystride(m, 1);
  for (int d = m - 2; d >= 0; --d)
    ystride[d] = ystride[d + 1] * ext[d + 1];
  std::function<void(int, Value *, Value *, Value *)> nest = [&](int d, Value *oy, Value *oa,
                                                                 Value *ob) {
    Value *extent = runtimeDim[d] ? e.batchExtent(ext[d]) : e.c(ext[d]);
    if (d == m - 1) {
      // threads: a flat range in chunks, or the outermost dim below
      auto flat = [&](Value *cnt, const std::function<void(Value *, unsigned)> &f) {
        d == 0 ? e.parallelVecLoop(cnt, n.type.numel(), f) : e.vecLoop(cnt, f);
      };
      flat(extent, [&](Value *i, unsigned w) {
        Value *v[2];
        Value *off[2] = {oa, ob};
        for (int k = 0; k < 2; ++k)
          v[k] = strides[k][d] ? e.load(src[k], e.b.CreateAdd(off[k], i), w)
                               : e.splat(e.load(src[k], off[k]), w);
        e.store(combine(v[0], v[1]), y, e.b.CreateAdd(oy, i));
      });
      return;
    }
    auto outer = [&](Value *i) {
      nest(d + 1, e.b.CreateAdd(oy, e.b.CreateMul(i, e.c(ystride[d]))),
           e.b.CreateAdd(oa, e.b.CreateMul(i, e.c(strides[0][d]))),
           e.b.CreateAdd(ob, e.b.CreateMul(i, e.c(strides[1][d]))));
    };
    d == 0 ? e.parallelFor(extent, outer, n.type.numel()) : e.loop(extent, outer);
  };
  nest(0, e.c(0), e.c(0), e.c(0));
}

void emitBinary(Emitter &e, const Node &n, Instruction::BinaryOps op) {
  emitBroadcast(e, n, [&](Value *a, Value *b) { return e.b.CreateBinOp(op, a, b); });
}

// s x above 0, s alpha (exp(x) - 1) at or below: elu (s = 1) and selu (s = gamma). exp(x) - 1
// loses the low bits near 0, where expm1's series x + x^2/2 + x^3/6 + x^4/24 (relative error
// < 1e-6 for |x| < 0.1) takes over; both sides stay in vectors (no scalar expm1f).
Value *expLinear(Emitter &e, Value *x, double s, double alpha, unsigned w) {
  auto &b = e.b;
  Value *em1 = b.CreateFSub(e.unary(Intrinsic::exp, x), e.cfv(1, w));
  Value *series = e.cfv(1.0 / 24, w);
  for (double k : {1.0 / 6, 0.5, 1.0})
    series = b.CreateFAdd(b.CreateFMul(series, x), e.cfv(k, w));
  series = b.CreateFMul(series, x);
  Value *small = b.CreateFCmpOLT(e.unary(Intrinsic::fabs, x), e.cfv(0.1, w));
  Value *below = b.CreateFMul(b.CreateSelect(small, series, em1), e.cfv(s * alpha, w));
  Value *above = s == 1 ? x : b.CreateFMul(x, e.cfv(s, w));
  return b.CreateSelect(b.CreateFCmpOGT(x, e.cfv(0, w)), above, below);
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
  // ---- elementwise (here)
  case OpKind::Relu: // seed eq. 12
    return [](Emitter &e, const Node &n) {
      emitMap(e, n, [](Emitter &e, Value *x, unsigned) { return e.relu(x); });
    };
  case OpKind::Sigmoid: // 1 / (1 + exp(-x)), seed section 5
    return [](Emitter &e, const Node &n) {
      emitMap(e, n, [](Emitter &e, Value *x, unsigned w) {
        return e.b.CreateFDiv(
            e.cfv(1, w), e.b.CreateFAdd(e.cfv(1, w), e.unary(Intrinsic::exp, e.b.CreateFNeg(x))));
      });
    };
  case OpKind::Tanh: // tanhf: no vector form without a vector libm
    return [](Emitter &e, const Node &n) {
      emitMap(
          e, n, [](Emitter &e, Value *x, unsigned) { return e.libm("tanhf", x); }, 1);
    };
  case OpKind::Softplus: // max(x, 0) + log1pf(exp(-|x|)), as the interpreter: no overflow
    return [](Emitter &e, const Node &n) {
      emitMap(
          e, n,
          [](Emitter &e, Value *x, unsigned) {
            Value *t = e.unary(Intrinsic::exp, e.b.CreateFNeg(e.unary(Intrinsic::fabs, x)));
            return e.b.CreateFAdd(e.maxnum(x, e.cf(0)), e.libm("log1pf", t));
          },
          1); // log1pf: scalar, no vector form without a vector libm
    };
  case OpKind::Clip:
    return [](Emitter &e, const Node &n) {
      const double lo = n.getFloat("min"), hi = n.getFloat("max");
      emitMapOf(e, n, [&](Value *x, unsigned w) { return clampSelect(e, x, lo, hi, w); });
    };
  case OpKind::HardSigmoid: // clamp(alpha x + beta, 0, 1)
    return [](Emitter &e, const Node &n) {
      const double a = n.getFloat("alpha"), bt = n.getFloat("beta");
      emitMapOf(e, n, [&](Value *x, unsigned w) {
        return clampSelect(e, e.b.CreateFAdd(e.b.CreateFMul(x, e.cfv(a, w)), e.cfv(bt, w)), 0, 1, w);
      });
    };
  case OpKind::HardSwish: // x clamp(x + 3, 0, 6) / 6, as PyTorch and the interpreter
    return [](Emitter &e, const Node &n) {
      emitMapOf(e, n, [&](Value *x, unsigned w) {
        Value *r6 = clampSelect(e, e.b.CreateFAdd(x, e.cfv(3, w)), 0, 6, w);
        return e.b.CreateFDiv(e.b.CreateFMul(x, r6), e.cfv(6, w));
      });
    };
  case OpKind::LeakyRelu: // x > 0 ? x : alpha x (NaN: alpha NaN = NaN)
    return [](Emitter &e, const Node &n) {
      const double a = n.getFloat("alpha");
      emitMapOf(e, n, [&](Value *x, unsigned w) {
        return e.b.CreateSelect(e.b.CreateFCmpOGT(x, e.cfv(0, w)), x,
                                e.b.CreateFMul(x, e.cfv(a, w)));
      });
    };
  case OpKind::Elu:
  case OpKind::Selu:
    return [](Emitter &e, const Node &n) {
      const double a = n.getFloat("alpha"), s = n.op == OpKind::Selu ? n.getFloat("gamma") : 1.0;
      emitMapOf(e, n, [&](Value *x, unsigned w) { return expLinear(e, x, s, a, w); });
    };
  case OpKind::Erf: // erff: scalar, no vector form without a vector libm
    return [](Emitter &e, const Node &n) {
      emitMap(e, n, [](Emitter &e, Value *x, unsigned) { return e.libm("erff", x); }, 1);
    };
  case OpKind::Exp:
    return [](Emitter &e, const Node &n) {
      emitMap(e, n, [](Emitter &e, Value *x, unsigned) { return e.unary(Intrinsic::exp, x); });
    };
  case OpKind::Log:
    return [](Emitter &e, const Node &n) {
      emitMap(e, n, [](Emitter &e, Value *x, unsigned) { return e.unary(Intrinsic::log, x); });
    };
  case OpKind::Sqrt:
    return [](Emitter &e, const Node &n) {
      emitMap(e, n, [](Emitter &e, Value *x, unsigned) { return e.unary(Intrinsic::sqrt, x); });
    };
  case OpKind::Reciprocal:
    return [](Emitter &e, const Node &n) {
      emitMap(e, n, [](Emitter &e, Value *x, unsigned w) { return e.b.CreateFDiv(e.cfv(1, w), x); });
    };
  case OpKind::Neg:
    return [](Emitter &e, const Node &n) {
      emitMap(e, n, [](Emitter &e, Value *x, unsigned) { return e.b.CreateFNeg(x); });
    };
  case OpKind::Abs:
    return [](Emitter &e, const Node &n) {
      emitMap(e, n, [](Emitter &e, Value *x, unsigned) { return e.unary(Intrinsic::fabs, x); });
    };
  case OpKind::PRelu: // x > 0 ? x : slope x, the slope broadcast
    return [](Emitter &e, const Node &n) {
      emitBroadcast(e, n, [&](Value *x, Value *s) {
        Value *zero = Constant::getNullValue(x->getType());
        return e.b.CreateSelect(e.b.CreateFCmpOGT(x, zero), x, e.b.CreateFMul(x, s));
      });
    };
  case OpKind::Pow: // powf per lane (LLVM scalarises llvm.pow without a vector libm)
    return [](Emitter &e, const Node &n) {
      emitBroadcast(e, n, [&](Value *a, Value *b) { return e.b.CreateBinaryIntrinsic(Intrinsic::pow, a, b); });
    };
  case OpKind::Max:
  case OpKind::Min:
    return [](Emitter &e, const Node &n) {
      emitBroadcast(e, n, [&](Value *a, Value *b) { return pickNaN(e, a, b, n.op == OpKind::Max); });
    };
  case OpKind::EqualMask: // reduce_max's tie mask
    return [](Emitter &e, const Node &n) {
      emitBroadcast(e, n, [&](Value *a, Value *b) {
        return e.b.CreateSelect(e.b.CreateFCmpOEQ(a, b), ConstantFP::get(a->getType(), 1.0),
                                Constant::getNullValue(a->getType()));
      });
    };
  case OpKind::ClipGrad: // eq. 14 with two bounds: dy where min < x < max
    return [](Emitter &e, const Node &n) {
      const double lo = n.getFloat("min"), hi = n.getFloat("max");
      Value *dy = e.ptr(n.operands[0]), *x = e.ptr(n.operands[1]), *dx = e.ptr(&n);
      e.parallelVecLoop(e.numel(&n), n.type.numel(), [&](Value *i, unsigned w) {
        Value *v = e.load(x, i, w);
        Value *in = e.b.CreateAnd(e.b.CreateFCmpOGT(v, e.cfv(lo, w)),
                                  e.b.CreateFCmpOLT(v, e.cfv(hi, w)));
        e.store(e.b.CreateSelect(in, e.load(dy, i, w), e.cfv(0, w)), dx, i);
      });
    };
  case OpKind::Pad:
    return emitPad;
  case OpKind::PadGrad:
    return emitPadGrad;
  case OpKind::Add:
    return [](Emitter &e, const Node &n) { emitBinary(e, n, Instruction::FAdd); };
  case OpKind::Sub:
    return [](Emitter &e, const Node &n) { emitBinary(e, n, Instruction::FSub); };
  case OpKind::Mul:
    return [](Emitter &e, const Node &n) { emitBinary(e, n, Instruction::FMul); };
  case OpKind::Div:
    return [](Emitter &e, const Node &n) { emitBinary(e, n, Instruction::FDiv); };
  case OpKind::Flatten:
  case OpKind::Reshape:
  case OpKind::Identity:
    return emitCopy;
  case OpKind::Dropout:
    return [](Emitter &e, const Node &n) {
      n.getInt("training") ? emitDropoutTraining(e, n) : emitCopy(e, n);
    };
  case OpKind::ReluGrad: // seed eq. 14: dy where x > 0
    return [](Emitter &e, const Node &n) {
      emitZip(e, n, [](Emitter &e, Value *g, Value *y, unsigned w) {
        return e.b.CreateSelect(e.b.CreateFCmpOGT(y, e.cfv(0, w)), g, e.cfv(0, w));
      });
    };
  case OpKind::SigmoidGrad: // dy * y * (1 - y)
    return [](Emitter &e, const Node &n) {
      emitZip(e, n, [](Emitter &e, Value *g, Value *y, unsigned w) {
        return e.b.CreateFMul(e.b.CreateFMul(g, y), e.b.CreateFSub(e.cfv(1, w), y));
      });
    };
  case OpKind::TanhGrad: // dy * (1 - y^2)
    return [](Emitter &e, const Node &n) {
      emitZip(e, n, [](Emitter &e, Value *g, Value *y, unsigned w) {
        return e.b.CreateFMul(g, e.b.CreateFSub(e.cfv(1, w), e.b.CreateFMul(y, y)));
      });
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
