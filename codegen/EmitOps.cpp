// The per-op lowerings (all but conv2d, in EmitConv.cpp) and the emitter table. Each lowering
// writes the op's result as loops over its operands' buffers, row-major N×C×H×W, with the
// innermost contiguous dimension in SIMD vectors where that is natural and a scalar tail.
#include "codegen/Emitter.h"

#include <cmath>
#include <limits>

namespace cnnc::codegen {

using namespace llvm;
using VecBody = std::function<Value *(Value *, unsigned)>;

namespace {

// sum over i in [0, n) of term(i, w), vectorised: one vector and one scalar accumulator.
Value *reduceSum(Emitter &e, Value *n, const VecBody &term) {
  Value *accV = e.entryAlloca(e.vty(e.vl)), *accS = e.entryAlloca(e.f32);
  e.b.CreateStore(e.cfv(0, e.vl), accV);
  e.b.CreateStore(e.cf(0), accS);
  e.vecLoop(n, [&](Value *i, unsigned w) {
    Value *acc = w == 1 ? accS : accV;
    e.b.CreateStore(e.b.CreateFAdd(e.b.CreateLoad(e.vty(w), acc), term(i, w)), acc);
  });
  return e.b.CreateFAdd(e.hsum(e.b.CreateLoad(e.vty(e.vl), accV)), e.b.CreateLoad(e.f32, accS));
}

Value *toF32(Emitter &e, Value *i) {
  return e.b.CreateSIToFP(i, e.f32);
}

// ------------------------------------------------------------------ elementwise
void emitUnary(Emitter &e, const Node &n) {
  Value *x = e.ptr(n.operands[0]), *y = e.ptr(&n);
  const unsigned maxW = n.op == OpKind::Tanh ? 1 : 0; // tanhf: no vector form without a vector libm
  e.parallelVecLoop(
      e.numel(&n), n.type.numel(),
      [&](Value *i, unsigned w) {
        Value *v = e.load(x, i, w), *r = v;
        switch (n.op) {
        case OpKind::Relu:
          r = e.relu(v);
          break;
        case OpKind::Sigmoid: // 1 / (1 + exp(-x)), seed section 5
          r = e.b.CreateFDiv(
              e.cfv(1, w), e.b.CreateFAdd(e.cfv(1, w), e.unary(Intrinsic::exp, e.b.CreateFNeg(v))));
          break;
        case OpKind::Tanh:
          r = e.libm("tanhf", v);
          break;
        default: // identity, flatten, reshape, inference dropout when not bound as views
          break;
        }
        e.store(r, y, i);
      },
      maxW);
}

// a (op) b with numpy broadcasting: a loop nest over the output's dims with per-operand
// strides (0 along broadcast dims), adjacent dims merged where both operands allow it.
void emitBinary(Emitter &e, const Node &n) {
  const Shape &S = n.type.shape;
  const int r = (int)S.size();
  Value *y = e.ptr(&n), *src[2] = {e.ptr(n.operands[0]), e.ptr(n.operands[1])};
  auto combine = [&](Value *a, Value *b) -> Value * {
    switch (n.op) {
    case OpKind::Add:
      return e.b.CreateFAdd(a, b);
    case OpKind::Sub:
      return e.b.CreateFSub(a, b);
    case OpKind::Mul:
      return e.b.CreateFMul(a, b);
    default:
      return e.b.CreateFDiv(a, b);
    }
  };
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

// ------------------------------------------------------------------ dense
// out[i][j] = sum_k A[i][k] B[j][k] (+ bias[j]) for i < rows: both operands contiguous in k.
// A tile of 4 output columns shares each vector of A; k runs in SIMD vectors, then a tail.
// relu: a fused ReLU epilogue (passes/FuseRelu.cpp): the relu op's max(., 0) on the finished sum.
void emitDotRows(Emitter &e, Value *A, Value *rows, int64_t rowsMax, int64_t K, Value *B,
                 int64_t M, Value *bias, Value *out, bool relu = false) {
  constexpr int64_t JB = 4;
  auto tile = [&](Value *i, Value *j0, int jb) {
    std::vector<Value *> accV(jb), accS(jb);
    for (int t = 0; t < jb; ++t) {
      accV[t] = e.entryAlloca(e.vty(e.vl)), accS[t] = e.entryAlloca(e.f32);
      e.b.CreateStore(e.cfv(0, e.vl), accV[t]);
      e.b.CreateStore(e.cf(0), accS[t]);
    }
    Value *arow = e.b.CreateMul(i, e.c(K));
    e.vecLoop(e.c(K), [&](Value *k, unsigned w) {
      Value *a = e.load(A, e.b.CreateAdd(arow, k), w);
      for (int t = 0; t < jb; ++t) {
        Value *brow = e.b.CreateMul(e.b.CreateAdd(j0, e.c(t)), e.c(K));
        Value *acc = w == 1 ? accS[t] : accV[t];
        e.b.CreateStore(
            e.fma(a, e.load(B, e.b.CreateAdd(brow, k), w), e.b.CreateLoad(e.vty(w), acc)), acc);
      }
    });
    for (int t = 0; t < jb; ++t) {
      Value *j = e.b.CreateAdd(j0, e.c(t));
      Value *s = e.b.CreateFAdd(e.hsum(e.b.CreateLoad(e.vty(e.vl), accV[t])),
                                e.b.CreateLoad(e.f32, accS[t]));
      if (bias)
        s = e.b.CreateFAdd(s, e.load(bias, j));
      if (relu)
        s = e.relu(s);
      e.store(s, out, e.b.CreateAdd(e.b.CreateMul(i, e.c(M)), j));
    }
  };
  // threads: units of (row, group of JG column tiles); a few rows (VGG's fc at batch 1) are
  // split along the columns. Each output is one tile's dot product either way.
  const int64_t T = M / JB, JG = rowsMax >= 16 ? 1 : std::max<int64_t>(1, std::min<int64_t>(T, 16));
  e.parallelFor(
      e.b.CreateMul(rows, e.c(JG)),
      [&](Value *u) {
        Value *i = e.b.CreateUDiv(u, e.c(JG)), *g = e.b.CreateURem(u, e.c(JG));
        Value *t0 = e.b.CreateUDiv(e.b.CreateMul(g, e.c(T)), e.c(JG));
        Value *t1 = e.b.CreateUDiv(e.b.CreateMul(e.b.CreateAdd(g, e.c(1)), e.c(T)), e.c(JG));
        e.loop(t0, t1, [&](Value *t) { tile(i, e.b.CreateMul(t, e.c(JB)), JB); });
        e.ifThen(e.b.CreateICmpEQ(g, e.c(JG - 1)), [&] {
          e.loop(e.c(M / JB * JB), e.c(M), [&](Value *j) { tile(i, j, 1); });
        });
      },
      rowsMax * K * M);
}

void emitFc(Emitter &e, const Node &n) { // y = x w^T + b
  const Node *x = n.operands[0];
  emitDotRows(e, e.ptr(x), e.dim(x, 0), x->type.shape[0], x->type.shape[1], e.ptr(n.operands[1]),
              n.type.shape[1], n.operands.size() > 2 ? e.ptr(n.operands[2]) : nullptr, e.ptr(&n),
              n.getInt("relu") != 0);
}

// ------------------------------------------------------------------ pooling
struct PoolGeom {
  int64_t H, W, Ho, Wo, kh, kw, sh, sw, pt, pl, pb, pr, dh = 1, dw = 1;
};
PoolGeom poolGeom(const Node &n) {
  const Shape &x = n.operands[0]->type.shape;
  auto k = n.getInts("kernel"), s = n.getInts("stride"), p = n.getInts("pads");
  PoolGeom g{x[2], x[3], n.type.shape[2], n.type.shape[3], k[0], k[1], s[0], s[1], p[0], p[1],
             p[2], p[3]};
  if (n.op == OpKind::MaxPool) {
    auto d = n.getInts("dilation");
    g.dh = d[0], g.dw = d[1];
  }
  return g;
}

void emitPool(Emitter &e, const Node &n) {
  const PoolGeom g = poolGeom(n);
  const bool isMax = n.op == OpKind::MaxPool, cip = !isMax && n.getInt("count_include_pad");
  Value *x = e.ptr(n.operands[0]), *y = e.ptr(&n);
  Value *acc = e.entryAlloca(e.f32);
  // threads: over (image, channel) planes
  e.parallelFor(e.extent(&n, 0, 2), [&](Value *nc) {
    Value *plane = e.b.CreateMul(nc, e.c(g.H * g.W));
    e.loop(e.c(g.Ho), [&](Value *oh) {
      e.loop(e.c(g.Wo), [&](Value *ow) {
        Value *hs = e.b.CreateSub(e.b.CreateMul(oh, e.c(g.sh)), e.c(g.pt));
        Value *ws = e.b.CreateSub(e.b.CreateMul(ow, e.c(g.sw)), e.c(g.pl));
        Value *outIdx = e.b.CreateAdd(
            e.b.CreateMul(e.b.CreateAdd(e.b.CreateMul(nc, e.c(g.Ho)), oh), e.c(g.Wo)), ow);
        if (isMax) { // padding never wins: out-of-range taps are skipped by a select
          e.b.CreateStore(e.cf(-std::numeric_limits<float>::infinity()), acc);
          e.loop(e.c(g.kh), [&](Value *i) {
            Value *ih = e.b.CreateAdd(hs, e.b.CreateMul(i, e.c(g.dh)));
            Value *okh =
                e.b.CreateAnd(e.b.CreateICmpSGE(ih, e.c(0)), e.b.CreateICmpSLT(ih, e.c(g.H)));
            Value *ihc = e.smin(e.smax(ih, e.c(0)), e.c(g.H - 1));
            e.loop(e.c(g.kw), [&](Value *j) {
              Value *iw = e.b.CreateAdd(ws, e.b.CreateMul(j, e.c(g.dw)));
              Value *ok = e.b.CreateAnd(okh, e.b.CreateAnd(e.b.CreateICmpSGE(iw, e.c(0)),
                                                           e.b.CreateICmpSLT(iw, e.c(g.W))));
              Value *iwc = e.smin(e.smax(iw, e.c(0)), e.c(g.W - 1));
              Value *v =
                  e.load(x, e.b.CreateAdd(plane, e.b.CreateAdd(e.b.CreateMul(ihc, e.c(g.W)), iwc)));
              Value *cur = e.b.CreateLoad(e.f32, acc);
              e.b.CreateStore(e.b.CreateSelect(ok, e.maxnum(cur, v), cur), acc);
            });
          });
          e.store(e.b.CreateLoad(e.f32, acc), y, outIdx);
          return;
        }
        // average: the window clipped to the padded input (PyTorch's pool_size), then to the input
        Value *he = e.smin(e.b.CreateAdd(hs, e.c(g.kh)), e.c(g.H + g.pb));
        Value *we = e.smin(e.b.CreateAdd(ws, e.c(g.kw)), e.c(g.W + g.pr));
        Value *padCount = e.b.CreateMul(e.b.CreateSub(he, hs), e.b.CreateSub(we, ws));
        Value *h0 = e.smax(hs, e.c(0)), *w0 = e.smax(ws, e.c(0));
        Value *h1 = e.smin(he, e.c(g.H)), *w1 = e.smin(we, e.c(g.W));
        e.b.CreateStore(e.cf(0), acc);
        e.loop(h0, h1, [&](Value *ih) {
          Value *row = e.b.CreateAdd(plane, e.b.CreateMul(ih, e.c(g.W)));
          e.loop(w0, w1, [&](Value *iw) {
            e.b.CreateStore(
                e.b.CreateFAdd(e.b.CreateLoad(e.f32, acc), e.load(x, e.b.CreateAdd(row, iw))), acc);
          });
        });
        Value *count = cip ? padCount : e.b.CreateMul(e.b.CreateSub(h1, h0), e.b.CreateSub(w1, w0));
        e.store(e.b.CreateFDiv(e.b.CreateLoad(e.f32, acc), toF32(e, count)), y, outIdx);
      });
    });
  }, n.type.numel() * g.kh * g.kw);
}

void emitGlobalAvgPool(Emitter &e, const Node &n) {
  const Node *xn = n.operands[0];
  Value *x = e.ptr(xn), *y = e.ptr(&n);
  const int64_t spatial = xn->type.numel() / (xn->type.shape[0] * xn->type.shape[1]);
  e.loop(e.extent(xn, 0, 2), [&](Value *nc) {
    Value *base = e.b.CreateMul(nc, e.c(spatial));
    Value *s = reduceSum(e, e.c(spatial), [&](Value *i, unsigned w) {
      return e.load(x, e.b.CreateAdd(base, i), w);
    });
    e.store(e.b.CreateFDiv(s, e.cf((double)spatial)), y, nc);
  });
}

// ------------------------------------------------------------------ shape
void emitConcat(Emitter &e, const Node &n) {
  const int r = n.type.rank();
  const int ax = (int)(n.getInt("axis") < 0 ? n.getInt("axis") + r : n.getInt("axis"));
  Value *outer = ax == 0 ? e.c(1) : e.extent(&n, 0, ax);
  int64_t inner = 1;
  for (int d = ax + 1; d < r; ++d)
    inner *= n.type.shape[d];
  const int64_t total = n.type.shape[ax] * inner;
  Value *y = e.ptr(&n);
  int64_t off = 0;
  for (const Node *in : n.operands) {
    const int64_t chunk = in->type.shape[ax] * inner;
    Value *x = e.ptr(in);
    e.loop(outer, [&](Value *o) {
      Value *xs = e.b.CreateMul(o, e.c(chunk)),
            *ys = e.b.CreateAdd(e.b.CreateMul(o, e.c(total)), e.c(off));
      e.vecLoop(e.c(chunk), [&](Value *i, unsigned w) {
        e.store(e.load(x, e.b.CreateAdd(xs, i), w), y, e.b.CreateAdd(ys, i));
      });
    });
    off += chunk;
  }
}

// ------------------------------------------------------------------ normalisation
void emitSoftmax(Emitter &e, const Node &n) {
  const int r = n.type.rank();
  const int ax = (int)(n.getInt("axis") < 0 ? n.getInt("axis") + r : n.getInt("axis"));
  const bool isLog = n.op == OpKind::LogSoftmax;
  Value *outer = ax == 0 ? e.c(1) : e.extent(&n, 0, ax);
  const int64_t A = n.type.shape[ax];
  int64_t inner = 1;
  for (int d = ax + 1; d < r; ++d)
    inner *= n.type.shape[d];
  Value *x = e.ptr(n.operands[0]), *y = e.ptr(&n);
  Value *mx = e.entryAlloca(e.f32), *sum = e.entryAlloca(e.f32);
  e.loop(outer, [&](Value *o) {
    e.loop(e.c(inner), [&](Value *in) {
      Value *base = e.b.CreateAdd(e.b.CreateMul(o, e.c(A * inner)), in);
      auto at = [&](Value *a) { return e.b.CreateAdd(base, e.b.CreateMul(a, e.c(inner))); };
      e.b.CreateStore(e.cf(-std::numeric_limits<float>::infinity()), mx);
      e.loop(e.c(A), [&](Value *a) {
        e.b.CreateStore(e.maxnum(e.b.CreateLoad(e.f32, mx), e.load(x, at(a))), mx);
      });
      Value *m = e.b.CreateLoad(e.f32, mx);
      e.b.CreateStore(e.cf(0), sum);
      e.loop(e.c(A), [&](Value *a) {
        Value *ex = e.unary(Intrinsic::exp, e.b.CreateFSub(e.load(x, at(a)), m));
        if (!isLog)
          e.store(ex, y, at(a));
        e.b.CreateStore(e.b.CreateFAdd(e.b.CreateLoad(e.f32, sum), ex), sum);
      });
      Value *s = e.b.CreateLoad(e.f32, sum);
      Value *k = isLog ? e.b.CreateFAdd(m, e.unary(Intrinsic::log, s)) : e.b.CreateFDiv(e.cf(1), s);
      e.loop(e.c(A), [&](Value *a) {
        e.store(isLog ? e.b.CreateFSub(e.load(x, at(a)), k) : e.b.CreateFMul(e.load(y, at(a)), k),
                y, at(a));
      });
    });
  });
}

// Per-channel dims of [N, C, rest...]: C and the product of the rest.
void channelDims(const Node *x, int64_t &C, int64_t &inner) {
  C = x->type.rank() > 1 ? x->type.shape[1] : 1;
  inner = x->type.numel() / (x->type.shape[0] * C);
}

void emitBatchNorm(Emitter &e,
                   const Node &n) { // y = x * a + (bias - mean * a), a = scale / sqrt(var + eps)
  const Node *xn = n.operands[0];
  int64_t C, inner;
  channelDims(xn, C, inner);
  Value *x = e.ptr(xn), *y = e.ptr(&n), *scale = e.ptr(n.operands[1]), *bias = e.ptr(n.operands[2]),
        *mean = e.ptr(n.operands[3]), *var = e.ptr(n.operands[4]);
  e.parallelFor(e.dim(xn, 0), [&](Value *nn) { // threads: over images
    e.loop(e.c(C), [&](Value *c) {
      Value *a = e.b.CreateFDiv(
          e.load(scale, c),
          e.unary(Intrinsic::sqrt, e.b.CreateFAdd(e.load(var, c), e.cf(n.getFloat("epsilon")))));
      Value *sh = e.b.CreateFSub(e.load(bias, c), e.b.CreateFMul(e.load(mean, c), a));
      Value *base = e.b.CreateMul(e.b.CreateAdd(e.b.CreateMul(nn, e.c(C)), c), e.c(inner));
      e.vecLoop(e.c(inner), [&](Value *i, unsigned w) {
        Value *idx = e.b.CreateAdd(base, i);
        e.store(e.fma(e.load(x, idx, w), e.splat(a, w), e.splat(sh, w)), y, idx);
      });
    });
  }, xn->type.numel());
}

void emitBnStat(Emitter &e, const Node &n) { // bn_mean / bn_var over N and the spatial dims
  const Node *xn = n.operands[0];
  int64_t C, inner;
  channelDims(xn, C, inner);
  const bool isVar = n.op == OpKind::BnVar;
  Value *x = e.ptr(xn), *y = e.ptr(&n), *mean = isVar ? e.ptr(n.operands[1]) : nullptr;
  Value *total = e.entryAlloca(e.f32);
  Value *N = e.dim(xn, 0);
  // threads: over channels (a channel's sum stays on one thread, in the same order)
  e.parallelFor(e.c(C), [&](Value *c) {
    Value *mu = isVar ? e.load(mean, c) : nullptr;
    e.b.CreateStore(e.cf(0), total);
    e.loop(N, [&](Value *nn) {
      Value *base = e.b.CreateMul(e.b.CreateAdd(e.b.CreateMul(nn, e.c(C)), c), e.c(inner));
      Value *s = reduceSum(e, e.c(inner), [&](Value *i, unsigned w) {
        Value *v = e.load(x, e.b.CreateAdd(base, i), w);
        if (!isVar)
          return v;
        Value *d = e.b.CreateFSub(v, e.splat(mu, w));
        return e.b.CreateFMul(d, d);
      });
      e.b.CreateStore(e.b.CreateFAdd(e.b.CreateLoad(e.f32, total), s), total);
    });
    e.store(e.b.CreateFDiv(e.b.CreateLoad(e.f32, total), toF32(e, e.b.CreateMul(N, e.c(inner)))), y,
            c);
  }, xn->type.numel());
}

// ------------------------------------------------------------------ losses
void emitSoftmaxXent(Emitter &e, const Node &n) { // mean over the batch of logsumexp - logit[label]
  const Node *ln = n.operands[0], *lab = n.operands[1];
  const int64_t C = ln->type.shape[1];
  Value *x = e.ptr(ln), *labels = e.ptr(lab), *N = e.dim(ln, 0);
  Value *total = e.entryAlloca(e.f32), *mx = e.entryAlloca(e.f32), *sum = e.entryAlloca(e.f32);
  e.b.CreateStore(e.cf(0), total);
  e.loop(N, [&](Value *nn) {
    Value *l;
    if (lab->type.dtype == DType::I32) {
      l = e.b.CreateSExt(e.b.CreateLoad(e.i32, e.b.CreateInBoundsGEP(e.i32, labels, nn)), e.i64);
    } else if (lab->type.dtype == DType::I64) { // ONNX labels
      l = e.b.CreateLoad(e.i64, e.b.CreateInBoundsGEP(e.i64, labels, nn));
    } else {
      Value *lf = e.load(labels, nn);
      l = e.b.CreateFPToSI(lf, e.i64);
      Value *integral = e.b.CreateFCmpOEQ(lf, e.b.CreateSIToFP(l, e.f32));
      l = e.b.CreateSelect(integral, l, e.c(-1));
    }
    Value *bad = e.b.CreateOr(e.b.CreateICmpSLT(l, e.c(0)), e.b.CreateICmpSGE(l, e.c(C)));
    e.ifThen(bad, [&] { e.b.CreateStore(e.b.getInt32(kStatusBadLabel), e.status); });
    Value *lc = e.smin(e.smax(l, e.c(0)), e.c(C - 1));
    Value *row = e.b.CreateMul(nn, e.c(C));
    e.b.CreateStore(e.cf(-std::numeric_limits<float>::infinity()), mx);
    e.loop(e.c(C), [&](Value *c) {
      e.b.CreateStore(e.maxnum(e.b.CreateLoad(e.f32, mx), e.load(x, e.b.CreateAdd(row, c))), mx);
    });
    Value *m = e.b.CreateLoad(e.f32, mx);
    e.b.CreateStore(e.cf(0), sum);
    e.loop(e.c(C), [&](Value *c) {
      Value *ex = e.unary(Intrinsic::exp, e.b.CreateFSub(e.load(x, e.b.CreateAdd(row, c)), m));
      e.b.CreateStore(e.b.CreateFAdd(e.b.CreateLoad(e.f32, sum), ex), sum);
    });
    Value *term = e.b.CreateFSub(e.unary(Intrinsic::log, e.b.CreateLoad(e.f32, sum)),
                                 e.b.CreateFSub(e.load(x, e.b.CreateAdd(row, lc)), m));
    term = e.b.CreateSelect(bad, e.cf(std::numeric_limits<float>::quiet_NaN()), term);
    e.b.CreateStore(e.b.CreateFAdd(e.b.CreateLoad(e.f32, total), term), total);
  });
  e.store(e.b.CreateFDiv(e.b.CreateLoad(e.f32, total), toF32(e, N)), e.ptr(&n), e.c(0));
}

void emitL2Loss(Emitter &e, const Node &n) { // 1/2 ||t - x||^2 averaged over dim 0 (seed eq. 6)
  const Node *pn = n.operands[0];
  Value *x = e.ptr(pn), *t = e.ptr(n.operands[1]);
  Value *s = reduceSum(e, e.numel(pn), [&](Value *i, unsigned w) {
    Value *d = e.b.CreateFSub(e.load(t, i, w), e.load(x, i, w));
    return e.b.CreateFMul(d, d);
  });
  Value *N = pn->type.rank() ? e.dim(pn, 0) : e.c(1);
  e.store(e.b.CreateFDiv(e.b.CreateFMul(s, e.cf(0.5)), toF32(e, N)), e.ptr(&n), e.c(0));
}

} // namespace

// The emitter table, in Ops.def order. Sources have none: Lower.cpp binds them to storage.
OpEmitter opEmitter(OpKind k) {
  switch (k) {
  case OpKind::Input:
  case OpKind::Param:
  case OpKind::Constant:
    return nullptr;
  case OpKind::Conv2d:
    return emitConv2d;
  case OpKind::MaxPool:
  case OpKind::AvgPool:
    return emitPool;
  case OpKind::GlobalAvgPool:
    return emitGlobalAvgPool;
  case OpKind::Relu:
  case OpKind::Sigmoid:
  case OpKind::Tanh:
    return emitUnary;
  case OpKind::FullyConnected:
    return emitFc;
  case OpKind::Add:
  case OpKind::Sub:
  case OpKind::Mul:
  case OpKind::Div:
    return emitBinary;
  case OpKind::Concat:
    return emitConcat;
  case OpKind::Flatten:
  case OpKind::Reshape:
  case OpKind::Identity:
    return emitUnary; // copies, when the planner did not make them views
  case OpKind::Dropout:
    return [](Emitter &e, const Node &n) {
      if (n.getInt("training"))
        emitDropoutTraining(e, n);
      else
        emitUnary(e, n);
    };
  case OpKind::Softmax:
  case OpKind::LogSoftmax:
    return emitSoftmax;
  case OpKind::BatchNorm:
    return emitBatchNorm;
  case OpKind::BnMean:
  case OpKind::BnVar:
    return emitBnStat;
  case OpKind::SoftmaxXent:
    return emitSoftmaxXent;
  case OpKind::L2Loss:
    return emitL2Loss;
  case OpKind::Conv2dGradFilter:
  case OpKind::Conv2dGradInput:
    return convGradOpEmitter(k);
  case OpKind::Update:
    return nullptr; // Plan.cpp/Lower.cpp: a copy into the param's buffer at the end
  default:
    return trainOpEmitter(k); // EmitTrain.cpp: training and ONNX tensor ops
  }
  return nullptr;
}

} // namespace cnnc::codegen
