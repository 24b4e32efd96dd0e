// The vector-Jacobian products of pooling (seed eqs. 53-56), softmax and batch norm, and
// bn_unbias. Every formula follows the op's definition in ir/Ops.def and the reference
// interpreter (interp/GradKernels.cpp). Threads split independent outputs (planes, rows,
// channels), never a sum: the bits do not depend on the thread count.
#include "codegen/EmitOps.h"

#include <cmath>
#include <limits>

namespace cnnc::codegen {

using namespace llvm;

namespace {

// ------------------------------------------------------------------ pooling gradients
struct PoolG {
  int64_t H, W, Ho, Wo, kh, kw, sh, sw, pt, pl, pb, pr, dh = 1, dw = 1;
};

PoolG poolG(const Node &n, const Shape &x) {
  auto k = n.getInts("kernel"), s = n.getInts("stride"), p = n.getInts("pads");
  PoolG g{x[2],
          x[3],
          n.operands[0]->type.shape[2],
          n.operands[0]->type.shape[3],
          k[0],
          k[1],
          s[0],
          s[1],
          p[0],
          p[1],
          p[2],
          p[3]};
  if (n.op == OpKind::MaxPoolGrad) {
    auto d = n.getInts("dilation");
    g.dh = d[0], g.dw = d[1];
  }
  return g;
}

} // namespace

// Tiled windows (EmitOps.h, TiledPool): each input position belongs to at most one window,
// so dx is written once, without a zeroing pass or a read-modify-write: per tap row, the w
// windows' winners and dy repeated kw times against the lanes' taps, one select per vector.
// Positions of no window (past Ho·kh, Wo·kw) are zeroed.
namespace {
void emitTiledMaxPoolGrad(Emitter &e, const Node &n, const TiledPool &g) {
  auto &b = e.b;
  Value *dy = e.ptr(n.operands[0]), *x = e.ptr(n.operands[1]), *dx = e.ptr(&n);
  const int64_t rest = g.W - g.Wo * g.kw;
  e.parallelFor(e.extent(&n, 0, 2), [&](Value *nc) { // threads: over (image, channel) planes
    Value *plane = b.CreateMul(nc, e.c(g.H * g.W));
    e.loop(g.Ho, [&](Value *oh) {
      Value *orow = b.CreateMul(b.CreateAdd(b.CreateMul(nc, e.c(g.Ho)), oh), e.c(g.Wo));
      e.vecLoop(e.c(g.Wo), [&](Value *ow, unsigned w) {
        Value *best, *win;
        maxWindows(e, g, x, plane, oh, ow, w, best, win);
        const unsigned L = w * unsigned(g.kw);
        Value *winL = repeatLanes(e, win, unsigned(g.kw));
        Value *dyL = repeatLanes(e, e.load(dy, b.CreateAdd(orow, ow), w), unsigned(g.kw));
        Value *col = b.CreateAdd(plane, b.CreateMul(ow, e.c(g.kw)));
        for (int64_t i = 0; i < g.kh; ++i) {
          std::vector<Constant *> taps(L); // lane l of the row's run is tap (i, l mod kw)
          for (unsigned l = 0; l < L; ++l)
            taps[l] = b.getInt32(uint32_t(i * g.kw + l % g.kw));
          Value *tap = L == 1 ? taps[0] : ConstantVector::get(taps);
          Value *v = b.CreateSelect(b.CreateICmpEQ(winL, tap), dyL, e.cfv(0, L));
          Value *ih = b.CreateAdd(b.CreateMul(oh, e.c(g.kh)), e.c(i));
          e.store(v, dx, b.CreateAdd(col, b.CreateMul(ih, e.c(g.W))));
        }
      }, g.w);
      if (rest)
        for (int64_t i = 0; i < g.kh; ++i) {
          Value *ih = b.CreateAdd(b.CreateMul(oh, e.c(g.kh)), e.c(i));
          zeroFill(e, e.gep(dx, b.CreateAdd(plane, b.CreateAdd(b.CreateMul(ih, e.c(g.W)),
                                                                e.c(g.Wo * g.kw)))),
                   e.c(rest));
        }
    });
    if (g.H > g.Ho * g.kh)
      zeroFill(e, e.gep(dx, b.CreateAdd(plane, e.c(g.Ho * g.kh * g.W))),
               e.c((g.H - g.Ho * g.kh) * g.W));
  }, n.type.numel() * 2);
}
} // namespace

void emitMaxPoolGrad(Emitter &e, const Node &n) {
  if (TiledPool tg; tiledMaxPool(n, e.vl, tg))
    return emitTiledMaxPoolGrad(e, n, tg);
  auto &b = e.b;
  const PoolG g = poolG(n, n.type.shape);
  Value *dy = e.ptr(n.operands[0]), *x = e.ptr(n.operands[1]), *dx = e.ptr(&n);
  Value *best = e.entryAlloca(e.f32), *at = e.entryAlloca(e.i64);
  // threads: over (image, channel) planes; a window's gradient lands in its own plane, which
  // its iteration zeroes first
  e.parallelFor(e.extent(&n, 0, 2), [&](Value *nc) {
    Value *plane = b.CreateMul(nc, e.c(g.H * g.W));
    zeroFill(e, b.CreateInBoundsGEP(e.f32, dx, plane), e.c(g.H * g.W));
    e.loop(g.Ho, [&](Value *oh) {
      e.loop(g.Wo, [&](Value *ow) {
        Value *hs = b.CreateSub(b.CreateMul(oh, e.c(g.sh)), e.c(g.pt));
        Value *ws = b.CreateSub(b.CreateMul(ow, e.c(g.sw)), e.c(g.pl));
        b.CreateStore(e.cf(-std::numeric_limits<float>::infinity()), best);
        b.CreateStore(e.c(-1), at);
        e.loop(g.kh, [&](Value *i) {
          Value *ih = b.CreateAdd(hs, b.CreateMul(i, e.c(g.dh)));
          Value *okh = b.CreateAnd(b.CreateICmpSGE(ih, e.c(0)), b.CreateICmpSLT(ih, e.c(g.H)));
          Value *ihc = e.smin(e.smax(ih, e.c(0)), e.c(g.H - 1));
          e.loop(g.kw, [&](Value *j) {
            Value *iw = b.CreateAdd(ws, b.CreateMul(j, e.c(g.dw)));
            Value *ok = b.CreateAnd(
                okh, b.CreateAnd(b.CreateICmpSGE(iw, e.c(0)), b.CreateICmpSLT(iw, e.c(g.W))));
            Value *iwc = e.smin(e.smax(iw, e.c(0)), e.c(g.W - 1));
            Value *pos = b.CreateAdd(b.CreateMul(ihc, e.c(g.W)), iwc);
            Value *v = e.load(x, b.CreateAdd(plane, pos));
            Value *cur = b.CreateLoad(e.f32, best), *ca = b.CreateLoad(e.i64, at);
            // the interpreter's (and PyTorch's) scan: a strictly larger value or a NaN (the
            // last NaN of the window gets the gradient), or the first real tap when the best
            // so far is still the initial -inf and equals it
            Value *take =
                b.CreateOr(e.maxScanTakes(cur, v),
                           b.CreateAnd(b.CreateICmpSLT(ca, e.c(0)), b.CreateFCmpOEQ(v, cur)));
            take = b.CreateAnd(ok, take);
            b.CreateStore(b.CreateSelect(take, v, cur), best);
            b.CreateStore(b.CreateSelect(take, pos, ca), at);
          });
        });
        Value *a = b.CreateLoad(e.i64, at);
        e.ifThen(b.CreateICmpSGE(a, e.c(0)), [&] {
          Value *di = b.CreateAdd(plane, a);
          Value *g1 = e.load(
              dy,
              b.CreateAdd(b.CreateMul(b.CreateAdd(b.CreateMul(nc, e.c(g.Ho)), oh), e.c(g.Wo)), ow));
          e.store(b.CreateFAdd(e.load(dx, di), g1), dx, di);
        });
      });
    });
  }, n.type.numel() * g.kh * g.kw);
}

void emitAvgPoolGrad(Emitter &e, const Node &n) {
  auto &b = e.b;
  const PoolG g = poolG(n, n.type.shape);
  const bool cip = n.getInt("count_include_pad");
  Value *dy = e.ptr(n.operands[0]), *dx = e.ptr(&n);
  e.parallelFor(e.extent(&n, 0, 2), [&](Value *nc) { // threads: as maxpool_grad
    Value *plane = b.CreateMul(nc, e.c(g.H * g.W));
    zeroFill(e, b.CreateInBoundsGEP(e.f32, dx, plane), e.c(g.H * g.W));
    e.loop(g.Ho, [&](Value *oh) {
      e.loop(g.Wo, [&](Value *ow) {
        Value *hs = b.CreateSub(b.CreateMul(oh, e.c(g.sh)), e.c(g.pt));
        Value *ws = b.CreateSub(b.CreateMul(ow, e.c(g.sw)), e.c(g.pl));
        Value *he = e.smin(b.CreateAdd(hs, e.c(g.kh)), e.c(g.H + g.pb));
        Value *we = e.smin(b.CreateAdd(ws, e.c(g.kw)), e.c(g.W + g.pr));
        Value *padCount = b.CreateMul(b.CreateSub(he, hs), b.CreateSub(we, ws));
        Value *h0 = e.smax(hs, e.c(0)), *w0 = e.smax(ws, e.c(0));
        Value *h1 = e.smin(he, e.c(g.H)), *w1 = e.smin(we, e.c(g.W));
        Value *count = cip ? padCount : b.CreateMul(b.CreateSub(h1, h0), b.CreateSub(w1, w0));
        Value *gv = b.CreateFDiv(
            e.load(dy,
                   b.CreateAdd(b.CreateMul(b.CreateAdd(b.CreateMul(nc, e.c(g.Ho)), oh), e.c(g.Wo)),
                               ow)),
            toF32(e, count));
        e.loop(h0, h1, [&](Value *ih) {
          Value *rowp = b.CreateAdd(plane, b.CreateMul(ih, e.c(g.W)));
          e.loop(w0, w1, [&](Value *iw) {
            Value *di = b.CreateAdd(rowp, iw);
            e.store(b.CreateFAdd(e.load(dx, di), gv), dx, di);
          });
        });
      });
    });
  }, n.type.numel() * g.kh * g.kw);
}

// ------------------------------------------------------------------ softmax gradients
void emitSoftmaxGrad(Emitter &e, const Node &n) {
  auto &b = e.b;
  const int r = n.type.rank();
  const int ax = (int)(n.getInt("axis") < 0 ? n.getInt("axis") + r : n.getInt("axis"));
  const bool isLog = n.op == OpKind::LogSoftmaxGrad;
  int64_t inner = 1;
  Value *outer = e.extent(&n, 0, ax);
  for (int d = ax + 1; d < r; ++d)
    inner *= n.type.shape[d];
  const int64_t L = n.type.shape[ax];
  Value *dy = e.ptr(n.operands[0]), *y = e.ptr(n.operands[1]), *dx = e.ptr(&n);
  Value *sum = e.entryAlloca(e.f32);
  e.parallelFor(outer, [&](Value *o) { // threads: over rows
    e.loop(inner, [&](Value *in) {
      Value *base = b.CreateAdd(b.CreateMul(o, e.c(L * inner)), in);
      auto at = [&](Value *k) { return b.CreateAdd(base, b.CreateMul(k, e.c(inner))); };
      b.CreateStore(e.cf(0), sum);
      e.loop(L, [&](Value *k) {
        Value *t = isLog ? e.load(dy, at(k)) : b.CreateFMul(e.load(dy, at(k)), e.load(y, at(k)));
        b.CreateStore(b.CreateFAdd(b.CreateLoad(e.f32, sum), t), sum);
      });
      Value *s = b.CreateLoad(e.f32, sum);
      e.loop(L, [&](Value *k) {
        Value *g = e.load(dy, at(k)), *yv = e.load(y, at(k));
        Value *v = isLog ? b.CreateFSub(g, b.CreateFMul(e.unary(Intrinsic::exp, yv), s))
                         : b.CreateFMul(yv, b.CreateFSub(g, s));
        e.store(v, dx, at(k));
      });
    });
  }, n.type.numel() * 4);
}

// ------------------------------------------------------------------ batch-norm gradients
void emitBatchNormGrad(Emitter &e, const Node &n) {
  auto &b = e.b;
  const Node *xn = n.operands[1];
  int64_t C, inner;
  channelDims(xn, C, inner);
  const std::string wrt = n.getStr("wrt");
  Value *dy = e.ptr(n.operands[0]), *x = e.ptr(xn), *scale = e.ptr(n.operands[2]),
        *mean = e.ptr(n.operands[3]), *var = e.ptr(n.operands[4]), *out = e.ptr(&n);
  Value *eps = e.cf(n.getFloat("epsilon")), *N = e.dim(xn, 0);
  if (wrt == "x") {
    e.parallelFor(e.extent(xn, 0, 2), [&](Value *nc) { // threads: over (image, channel) planes
      Value *c = b.CreateURem(nc, e.c(C));
      Value *k = b.CreateFDiv(e.load(scale, c),
                              e.unary(Intrinsic::sqrt, b.CreateFAdd(e.load(var, c), eps)));
      Value *base = b.CreateMul(nc, e.c(inner));
      e.vecLoop(e.c(inner), [&](Value *i, unsigned w) {
        Value *idx = b.CreateAdd(base, i);
        e.store(b.CreateFMul(e.load(dy, idx, w), e.splat(k, w)), out, idx);
      });
    }, xn->type.numel());
    return;
  }
  Value *sDy = e.entryAlloca(e.f32), *sDyXc = e.entryAlloca(e.f32);
  // threads: over channels (a channel's sums stay on one thread, in the same order)
  e.parallelFor(e.c(C), [&](Value *c) {
    Value *mu = e.load(mean, c);
    b.CreateStore(e.cf(0), sDy);
    b.CreateStore(e.cf(0), sDyXc);
    e.loop(N, [&](Value *nn) {
      Value *base = b.CreateMul(b.CreateAdd(b.CreateMul(nn, e.c(C)), c), e.c(inner));
      if (wrt == "mean") {
        Value *s = sumOver(e, e.c(inner), [&](Value *i, unsigned w) {
          return e.load(dy, b.CreateAdd(base, i), w);
        });
        b.CreateStore(b.CreateFAdd(b.CreateLoad(e.f32, sDy), s), sDy);
      } else {
        Value *s = sumOver(e, e.c(inner), [&](Value *i, unsigned w) {
          Value *idx = b.CreateAdd(base, i);
          return b.CreateFMul(e.load(dy, idx, w), b.CreateFSub(e.load(x, idx, w), e.splat(mu, w)));
        });
        b.CreateStore(b.CreateFAdd(b.CreateLoad(e.f32, sDyXc), s), sDyXc);
      }
    });
    Value *ve = b.CreateFAdd(e.load(var, c), eps);
    Value *invStd = b.CreateFDiv(e.cf(1), e.unary(Intrinsic::sqrt, ve));
    Value *d;
    if (wrt == "scale")
      d = b.CreateFMul(b.CreateLoad(e.f32, sDyXc), invStd);
    else if (wrt == "mean")
      d = b.CreateFMul(b.CreateFMul(b.CreateFNeg(b.CreateLoad(e.f32, sDy)), e.load(scale, c)),
                       invStd);
    else
      d = b.CreateFDiv(
          b.CreateFMul(
              b.CreateFMul(b.CreateFMul(b.CreateLoad(e.f32, sDyXc), e.load(scale, c)), e.cf(-0.5)),
              invStd),
          ve);
    e.store(d, out, c);
  }, xn->type.numel());
}

// bn_train_grad (passes/FuseBatchNormGrad.cpp): one pass, dx = k·dy - k·b - k·a·(x - mean)
// per (image, channel) plane, i.e. dy·k + (x·(-k·a) + (k·a·mean - k·b)).
void emitBnTrainGrad(Emitter &e, const Node &n) {
  auto &b = e.b;
  const Node *xn = n.operands[1];
  int64_t C, inner;
  channelDims(xn, C, inner);
  Value *dy = e.ptr(n.operands[0]), *x = e.ptr(xn), *out = e.ptr(&n);
  Value *scale = e.ptr(n.operands[2]), *mean = e.ptr(n.operands[3]), *var = e.ptr(n.operands[4]),
        *dscale = e.ptr(n.operands[5]), *dbias = e.ptr(n.operands[6]);
  Value *eps = e.cf(n.getFloat("epsilon"));
  Value *M = toF32(e, b.CreateMul(e.dim(xn, 0), e.c(inner)));
  e.parallelFor(e.extent(xn, 0, 2), [&](Value *nc) { // threads: over (image, channel) planes
    Value *c = b.CreateURem(nc, e.c(C));
    Value *invStd = b.CreateFDiv(e.cf(1), e.unary(Intrinsic::sqrt, b.CreateFAdd(e.load(var, c), eps)));
    Value *k = b.CreateFMul(e.load(scale, c), invStd);
    Value *ka = b.CreateFMul(k, b.CreateFDiv(b.CreateFMul(invStd, e.load(dscale, c)), M));
    Value *kb = b.CreateFMul(k, b.CreateFDiv(e.load(dbias, c), M));
    Value *shift = b.CreateFSub(b.CreateFMul(ka, e.load(mean, c)), kb);
    Value *base = b.CreateMul(nc, e.c(inner));
    e.vecLoop(e.c(inner), [&](Value *i, unsigned w) {
      Value *idx = b.CreateAdd(base, i);
      Value *r = e.fma(e.load(dy, idx, w), e.splat(k, w),
                       e.fma(e.load(x, idx, w), e.splat(b.CreateFNeg(ka), w), e.splat(shift, w)));
      e.store(r, out, idx);
    });
  }, xn->type.numel());
}

void emitBnMeanGrad(Emitter &e, const Node &n) {
  auto &b = e.b;
  const Node *xn = n.operands[1];
  int64_t C, inner;
  channelDims(xn, C, inner);
  Value *dm = e.ptr(n.operands[0]), *out = e.ptr(&n), *N = e.dim(xn, 0);
  Value *M = toF32(e, b.CreateMul(N, e.c(inner)));
  e.parallelFor(e.extent(xn, 0, 2), [&](Value *nc) { // threads: over (image, channel) planes
    Value *v = b.CreateFDiv(e.load(dm, b.CreateURem(nc, e.c(C))), M);
    Value *base = b.CreateMul(nc, e.c(inner));
    e.vecLoop(e.c(inner),
              [&](Value *i, unsigned w) { e.store(e.splat(v, w), out, b.CreateAdd(base, i)); });
  }, xn->type.numel());
}

void emitBnVarGrad(Emitter &e, const Node &n) {
  auto &b = e.b;
  const Node *xn = n.operands[1];
  int64_t C, inner;
  channelDims(xn, C, inner);
  Value *dv = e.ptr(n.operands[0]), *x = e.ptr(xn), *mean = e.ptr(n.operands[2]), *out = e.ptr(&n);
  Value *N = e.dim(xn, 0);
  Value *M = toF32(e, b.CreateMul(N, e.c(inner)));
  if (n.getStr("wrt") == "x") {
    e.parallelFor(e.extent(xn, 0, 2), [&](Value *nc) { // threads: over (image, channel) planes
      Value *c = b.CreateURem(nc, e.c(C));
      Value *k = b.CreateFDiv(b.CreateFMul(e.cf(2), e.load(dv, c)), M), *mu = e.load(mean, c);
      Value *base = b.CreateMul(nc, e.c(inner));
      e.vecLoop(e.c(inner), [&](Value *i, unsigned w) {
        Value *idx = b.CreateAdd(base, i);
        e.store(b.CreateFMul(b.CreateFSub(e.load(x, idx, w), e.splat(mu, w)), e.splat(k, w)), out,
                idx);
      });
    }, xn->type.numel());
    return;
  }
  Value *tot = e.entryAlloca(e.f32);
  e.parallelFor(e.c(C), [&](Value *c) { // threads: over channels, as bn_var
    Value *mu = e.load(mean, c);
    b.CreateStore(e.cf(0), tot);
    e.loop(N, [&](Value *nn) {
      Value *base = b.CreateMul(b.CreateAdd(b.CreateMul(nn, e.c(C)), c), e.c(inner));
      Value *s = sumOver(e, e.c(inner), [&](Value *i, unsigned w) {
        return b.CreateFSub(e.load(x, b.CreateAdd(base, i), w), e.splat(mu, w));
      });
      b.CreateStore(b.CreateFAdd(b.CreateLoad(e.f32, tot), s), tot);
    });
    e.store(b.CreateFDiv(
                b.CreateFMul(b.CreateFMul(e.cf(-2), b.CreateLoad(e.f32, tot)), e.load(dv, c)), M),
            out, c);
  }, xn->type.numel());
}

// n/(n-1) for the per-channel count n = N·H·W at the runtime batch (1 when n <= 1), in double
// as the interpreter computes it.
void emitBnUnbias(Emitter &e, const Node &n) {
  auto &b = e.b;
  const Node *xn = n.operands[0];
  int64_t C, inner;
  channelDims(xn, C, inner);
  Type *f64 = b.getDoubleTy();
  Value *cnt = b.CreateMul(e.dim(xn, 0), e.c(inner));
  Value *cf = b.CreateSIToFP(cnt, f64);
  Value *r = b.CreateSelect(b.CreateICmpSGT(cnt, e.c(1)),
                            b.CreateFDiv(cf, b.CreateFSub(cf, ConstantFP::get(f64, 1.0))),
                            ConstantFP::get(f64, 1.0));
  e.store(b.CreateFPTrunc(r, e.f32), e.ptr(&n), e.c(0));
}

} // namespace cnnc::codegen
