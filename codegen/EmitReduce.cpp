// Reductions: reduce_sum, reduce_max/min, argmax, pooling (seed eqs. 48-49), global average
// pooling, softmax and log_softmax, batch norm and its batch statistics. Reductions may sum in another order
// than the interpreter (SIMD partial sums), which the tests bound against the f64 oracle.
// Threads split independent outputs only (an output element, a row, a plane, a channel):
// every sum runs on one thread in a fixed order, so the bits never depend on the count.
#include "codegen/EmitOps.h"

#include <cmath>
#include <limits>

namespace cnnc::codegen {

using namespace llvm;

// Per-channel dims of [N, C, rest...]: C and the product of the rest.
void channelDims(const Node *x, int64_t &C, int64_t &inner) {
  C = x->type.rank() > 1 ? x->type.shape[1] : 1;
  inner = x->type.numel() / (x->type.shape[0] * C);
}

namespace {

// How reduce_sum, reduce_max and reduce_min fold a value into an accumulator: the identity,
// the step (acc, v) on scalars or vectors, and the fold of a vector's lanes.
struct Fold {
  double init;
  std::function<Value *(Value *acc, Value *v)> step;
  std::function<Value *(Value *vec)> lanes;
};

Fold sumFold(Emitter &e) {
  return {0, [&e](Value *a, Value *v) { return e.b.CreateFAdd(a, v); },
          [&e](Value *v) { return e.hsum(v); }};
}

// torch.amax/amin: pickNaN's rule, so a NaN met anywhere stays the result.
Fold extremumFold(Emitter &e, bool isMax) {
  auto step = [&e, isMax](Value *a, Value *v) { return pickNaN(e, v, a, isMax); };
  return {isMax ? -INFINITY : INFINITY, step, [&e, step](Value *v) {
            auto *vt = dyn_cast<FixedVectorType>(v->getType());
            if (!vt)
              return v;
            Value *r = e.b.CreateExtractElement(v, uint64_t(0));
            for (unsigned l = 1; l < vt->getNumElements(); ++l)
              r = step(r, e.b.CreateExtractElement(v, uint64_t(l)));
            return r;
          }};
}

// The fold over i in [0, n) of term(i, w): one vector and one scalar accumulator.
Value *foldOver(Emitter &e, Value *n, const Fold &f, const VecBody &term) {
  Value *accV = e.entryAlloca(e.vty(e.vl)), *accS = e.entryAlloca(e.f32);
  e.b.CreateStore(e.cfv(f.init, e.vl), accV);
  e.b.CreateStore(e.cf(f.init), accS);
  e.vecLoop(n, [&](Value *i, unsigned w) {
    Value *acc = w == 1 ? accS : accV;
    e.b.CreateStore(f.step(e.b.CreateLoad(e.vty(w), acc), term(i, w)), acc);
  });
  return f.step(f.lanes(e.b.CreateLoad(e.vty(e.vl), accV)), e.b.CreateLoad(e.f32, accS));
}

} // namespace

Value *sumOver(Emitter &e, Value *n, const VecBody &term) {
  return foldOver(e, n, sumFold(e), term);
}

void zeroFill(Emitter &e, Value *p, Value *count) {
  e.vecLoop(count, [&](Value *i, unsigned w) { e.store(e.cfv(0, w), p, i); });
}

// ------------------------------------------------------------------ reduce_sum, _max, _min
// Threads split the output elements; each element is summed by one thread over the reduced
// dims in row-major order (a contiguous innermost run through sumOver's SIMD partial sums,
// else element by element), so its bits do not depend on the thread count (the bias
// gradient's reduce_sum(dy) {axes=[0,2,3]} runs on every thread at batch 1 too).
void emitReduce(Emitter &e, const Node &n) {
  const Fold f = n.op == OpKind::ReduceSum ? sumFold(e) : extremumFold(e, n.op == OpKind::ReduceMax);
  const Node *xn = n.operands[0];
  const Shape &xs = xn->type.shape;
  const int r = (int)xs.size();
  std::vector<bool> red(r, false);
  for (int64_t a : n.getInts("axes"))
    red[a < 0 ? a + r : a] = true;
  const auto xst = rowMajorStrides(xs);
  std::vector<int64_t> kext, kst, rext, rst; // kept and reduced dims: extents, x's strides
  int rbd = -1;                              // x's batch dim among the reduced dims
  for (int d = 0; d < r; ++d) {
    if (red[d]) {
      if (d == e.batchDim(xn))
        rbd = (int)rext.size();
      rext.push_back(xs[d]), rst.push_back(xst[d]);
    } else {
      kext.push_back(xs[d]), kst.push_back(xst[d]);
    }
  }
  Value *y = e.ptr(&n), *x = e.ptr(xn), *acc = e.entryAlloca(e.f32);
  e.parallelFor(n.type.rank() ? e.numel(&n) : e.c(1), [&](Value *o) {
    // x's offset of output element o from its kept coordinates, innermost first; the first
    // takes what is left (a kept batch dim is the first non-unit dim: its runtime extent)
    Value *base = e.c(0), *rest = o;
    for (int k = (int)kext.size() - 1; k >= 0; --k) {
      Value *coord = k == 0 ? rest : e.b.CreateURem(rest, e.c(kext[k]));
      if (k > 0)
        rest = e.b.CreateUDiv(rest, e.c(kext[k]));
      base = e.b.CreateAdd(base, e.b.CreateMul(coord, e.c(kst[k])));
    }
    e.b.CreateStore(e.cf(f.init), acc);
    walk(e, rext, {rst}, {0},
         [&](auto &off, Value *cnt, auto &is) {
           Value *start = e.b.CreateAdd(base, off[0]);
           if (is[0] == 1) {
             Value *s = foldOver(e, cnt, f, [&](Value *i, unsigned w) {
               return e.load(x, e.b.CreateAdd(start, i), w);
             });
             e.b.CreateStore(f.step(e.b.CreateLoad(e.f32, acc), s), acc);
           } else {
             e.loop(cnt, [&](Value *i) {
               Value *v = e.load(x, e.b.CreateAdd(start, e.b.CreateMul(i, e.c(is[0]))));
               e.b.CreateStore(f.step(e.b.CreateLoad(e.f32, acc), v), acc);
             });
           }
         },
         rbd);
    e.store(e.b.CreateLoad(e.f32, acc), y, o);
  }, xn->type.numel());
}

// ------------------------------------------------------------------ argmax
// Threads split the output elements; each scans its line along the axis with PyTorch's max
// scan (a NaN wins and stays; select_last_index also takes equal values and later NaNs),
// storing the winner's index as i64.
void emitArgMax(Emitter &e, const Node &n) {
  const Node *xn = n.operands[0];
  const Shape &xs = xn->type.shape;
  const int64_t axis = n.getInt("axis") < 0 ? n.getInt("axis") + (int64_t)xs.size() : n.getInt("axis");
  int64_t inner = 1;
  for (size_t d = axis + 1; d < xs.size(); ++d)
    inner *= xs[d];
  const int64_t len = xs[axis];
  const bool last = n.getInt("select_last_index") != 0;
  Value *x = e.ptr(xn), *y = e.ptr(&n);
  Value *bestV = e.entryAlloca(e.f32), *bestI = e.entryAlloca(e.i64);
  e.parallelFor(e.c(n.type.numel()), [&](Value *o) {
    Value *start = e.b.CreateAdd(e.b.CreateMul(e.b.CreateUDiv(o, e.c(inner)), e.c(len * inner)),
                                 e.b.CreateURem(o, e.c(inner)));
    e.b.CreateStore(e.load(x, start), bestV);
    e.b.CreateStore(e.c(0), bestI);
    e.loop(e.c(1), e.c(len), [&](Value *k) {
      Value *v = e.load(x, e.b.CreateAdd(start, e.b.CreateMul(k, e.c(inner))));
      Value *b = e.b.CreateLoad(e.f32, bestV);
      Value *bNaN = e.b.CreateFCmpUNO(b, b), *vNaN = e.b.CreateFCmpUNO(v, v);
      Value *takes = e.b.CreateOr(e.b.CreateFCmpOGT(v, b), vNaN);
      if (last) // a later equal value or NaN; a NaN best yields only to a NaN
        takes = e.b.CreateSelect(bNaN, vNaN, e.b.CreateOr(takes, e.b.CreateFCmpOEQ(v, b)));
      else // the first NaN stays
        takes = e.b.CreateAnd(takes, e.b.CreateNot(bNaN));
      e.b.CreateStore(e.b.CreateSelect(takes, v, b), bestV);
      e.b.CreateStore(e.b.CreateSelect(takes, k, e.b.CreateLoad(e.i64, bestI)), bestI);
    });
    e.b.CreateStore(e.b.CreateLoad(e.i64, bestI), e.b.CreateInBoundsGEP(e.i64, y, o));
  }, xn->type.numel());
}

namespace {

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

} // namespace

// ------------------------------------------------------------------ tiled max pooling
// MNIST's and VGG's 2×2 stride-2 pooling: the windows of one output row read kh input rows,
// each a contiguous run of w·kw values, so w windows are one vector load per tap row and a
// lane shuffle per tap. The scan is PyTorch's, tap by tap in row-major window order, so the
// maxima and the winning taps are those of the scalar loop (and of the interpreter).
bool tiledMaxPool(const Node &n, unsigned vl, TiledPool &g) {
  const bool fwd = n.op == OpKind::MaxPool;
  const Shape &x = fwd ? n.operands[0]->type.shape : n.type.shape;
  const Shape &y = fwd ? n.type.shape : n.operands[0]->type.shape;
  auto k = n.getInts("kernel"), s = n.getInts("stride"), p = n.getInts("pads"),
       d = n.getInts("dilation");
  if (x.size() != 4 || k != s || p != std::vector<int64_t>{0, 0, 0, 0} ||
      d != std::vector<int64_t>{1, 1})
    return false;
  g = TiledPool{x[2], x[3], y[2], y[3], k[0], k[1], 1};
  if (g.Ho * g.kh > g.H || g.Wo * g.kw > g.W) // ceil mode: a last window sticks out
    return false;
  while (2 * g.w * g.kw <= vl)
    g.w *= 2;
  return true;
}

Value *repeatLanes(Emitter &e, Value *v, unsigned k) {
  if (k == 1)
    return v;
  auto *vt = dyn_cast<FixedVectorType>(v->getType());
  if (!vt)
    return e.b.CreateVectorSplat(k, v);
  std::vector<int> mask;
  for (unsigned l = 0; l < vt->getNumElements(); ++l)
    mask.insert(mask.end(), k, int(l));
  return e.b.CreateShuffleVector(v, mask);
}

void maxWindows(Emitter &e, const TiledPool &g, Value *x, Value *plane, Value *oh, Value *ow,
                unsigned w, Value *&best, Value *&win) {
  auto &b = e.b;
  const unsigned L = w * unsigned(g.kw);
  Value *col = b.CreateAdd(plane, b.CreateMul(ow, e.c(g.kw)));
  for (int64_t i = 0; i < g.kh; ++i) {
    Value *ih = b.CreateAdd(b.CreateMul(oh, e.c(g.kh)), e.c(i));
    Value *r = e.load(x, b.CreateAdd(col, b.CreateMul(ih, e.c(g.W))), L);
    for (int64_t j = 0; j < g.kw; ++j) {
      Value *v = r; // tap (i, j) of each window: lanes j, j + kw, ... of the row's run
      if (L > 1 && w == 1)
        v = b.CreateExtractElement(r, uint64_t(j));
      else if (L > 1 && g.kw > 1) {
        std::vector<int> m(w);
        for (unsigned l = 0; l < w; ++l)
          m[l] = int(j + l * g.kw);
        v = b.CreateShuffleVector(r, m);
      }
      Value *t = b.getInt32(uint32_t(i * g.kw + j));
      if (w > 1)
        t = b.CreateVectorSplat(w, t);
      if (i == 0 && j == 0) { // the first tap always wins its comparison with -inf (or ties it)
        best = v, win = t;
        continue;
      }
      Value *take = e.maxScanTakes(best, v);
      best = b.CreateSelect(take, v, best);
      win = b.CreateSelect(take, t, win);
    }
  }
}

void emitPool(Emitter &e, const Node &n) {
  const PoolGeom g = poolGeom(n);
  const bool isMax = n.op == OpKind::MaxPool, cip = !isMax && n.getInt("count_include_pad");
  Value *x = e.ptr(n.operands[0]), *y = e.ptr(&n);
  if (TiledPool tg; isMax && tiledMaxPool(n, e.vl, tg)) {
    e.parallelFor(e.extent(&n, 0, 2), [&](Value *nc) { // threads: over (image, channel) planes
      Value *plane = e.b.CreateMul(nc, e.c(g.H * g.W));
      e.loop(e.c(g.Ho), [&](Value *oh) {
        Value *orow = e.b.CreateMul(e.b.CreateAdd(e.b.CreateMul(nc, e.c(g.Ho)), oh), e.c(g.Wo));
        e.vecLoop(e.c(g.Wo), [&](Value *ow, unsigned w) {
          Value *best, *win;
          maxWindows(e, tg, x, plane, oh, ow, w, best, win);
          e.store(best, y, e.b.CreateAdd(orow, ow));
        }, tg.w);
      });
    }, n.type.numel() * g.kh * g.kw);
    return;
  }
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
        if (isMax) { // padding never wins: out-of-range taps are skipped by a select; NaN
                     // propagates (PyTorch's scan, Emitter::maxScanTakes)
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
              Value *take = e.b.CreateAnd(ok, e.maxScanTakes(cur, v));
              e.b.CreateStore(e.b.CreateSelect(take, v, cur), acc);
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
  e.parallelFor(e.extent(xn, 0, 2), [&](Value *nc) { // threads: over (image, channel) planes
    Value *base = e.b.CreateMul(nc, e.c(spatial));
    Value *s = sumOver(e, e.c(spatial), [&](Value *i, unsigned w) {
      return e.load(x, e.b.CreateAdd(base, i), w);
    });
    e.store(e.b.CreateFDiv(s, e.cf((double)spatial)), y, nc);
  }, xn->type.numel());
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
  e.parallelFor(outer, [&](Value *o) { // threads: over rows (each normalised on its own)
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
  }, n.type.numel() * 4);
}

void emitBatchNorm(Emitter &e,
                   const Node &n) { // y = x * a + (bias - mean * a), a = scale / sqrt(var + eps)
  const Node *xn = n.operands[0];
  int64_t C, inner;
  channelDims(xn, C, inner);
  Value *x = e.ptr(xn), *y = e.ptr(&n), *scale = e.ptr(n.operands[1]), *bias = e.ptr(n.operands[2]),
        *mean = e.ptr(n.operands[3]), *var = e.ptr(n.operands[4]);
  const bool relu = n.getInt("relu") != 0;
  const double reluMax = n.getFloat("relu_max");
  // threads: over (image, channel) planes, so that batch 1 splits too
  e.parallelFor(e.extent(xn, 0, 2), [&](Value *nc) {
    Value *c = e.b.CreateURem(nc, e.c(C));
    Value *a = e.b.CreateFDiv(
        e.load(scale, c),
        e.unary(Intrinsic::sqrt, e.b.CreateFAdd(e.load(var, c), e.cf(n.getFloat("epsilon")))));
    Value *sh = e.b.CreateFSub(e.load(bias, c), e.b.CreateFMul(e.load(mean, c), a));
    Value *base = e.b.CreateMul(nc, e.c(inner));
    e.vecLoop(e.c(inner), [&](Value *i, unsigned w) {
      Value *idx = e.b.CreateAdd(base, i);
      Value *v = e.fma(e.load(x, idx, w), e.splat(a, w), e.splat(sh, w));
      e.store(relu ? e.reluCapped(v, reluMax) : v, y, idx); // the fused ReLU (fuse-relu): one pass, not two
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
      Value *s = sumOver(e, e.c(inner), [&](Value *i, unsigned w) {
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

} // namespace cnnc::codegen
