// The lowerings of the ops that training graphs (@train_step, docs/training.md) and ONNX
// imports add to the forward set: general tensor ops (transpose, expand, slice, reduce_sum),
// the seed's im2row/row2im (eqs. 18-21, 46), the register-blocked matrix product used by
// matmul and batch_matmul (eqs. 35, 45), the vector-Jacobian products (*_grad), losses and
// their gradients, count_correct and training-mode dropout.
//
// Every formula follows the op's definition in ir/Ops.def and the reference interpreter
// (interp/GradKernels.cpp, interp/NdKernels.cpp); reductions may sum in another order (SIMD
// partial sums), which the tests bound against the f64 interpreter. Dropout masks are bit
// for bit those of interp/DropoutHash.h: the splitmix64 constants are repeated below.
// Extents are compile-time constants except along a value's batch dim (Plan.cpp's batch
// analysis): there they follow the runtime batch (e.dim, e.numel, walk's `bd`), and so do the
// reductions over it (eq. 35's K, reduce_sum, the losses, batch norm's counts).
#include "codegen/Emitter.h"

#include <cmath>
#include <limits>

namespace cnnc::codegen {

using namespace llvm;

namespace {

Value *toF32(Emitter &e, Value *i) {
  return e.b.CreateSIToFP(i, e.f32);
}

Value *sumOver(Emitter &e, Value *n, const std::function<Value *(Value *, unsigned)> &term) {
  Value *accV = e.entryAlloca(e.vty(e.vl)), *accS = e.entryAlloca(e.f32);
  e.b.CreateStore(e.cfv(0, e.vl), accV);
  e.b.CreateStore(e.cf(0), accS);
  e.vecLoop(n, [&](Value *i, unsigned w) {
    Value *acc = w == 1 ? accS : accV;
    e.b.CreateStore(e.b.CreateFAdd(e.b.CreateLoad(e.vty(w), acc), term(i, w)), acc);
  });
  return e.b.CreateFAdd(e.hsum(e.b.CreateLoad(e.vty(e.vl), accV)), e.b.CreateLoad(e.f32, accS));
}

void zeroFill(Emitter &e, Value *p, Value *count) {
  e.vecLoop(count, [&](Value *i, unsigned w) { e.store(e.cfv(0, w), p, i); });
}

std::vector<int64_t> rowMajorStrides(const Shape &s) {
  std::vector<int64_t> st(s.size(), 1);
  for (int d = (int)s.size() - 2; d >= 0; --d)
    st[d] = st[d + 1] * s[d + 1];
  return st;
}

// A loop nest over the index space `ext` (row-major) for K operands with element strides
// st[k][d]; dims of extent 1 are dropped and adjacent dims merged where every operand allows.
// `inner(off, n, istride)` emits the innermost run of n elements from offsets off[k] with
// strides istride[k]. Dim `bd` (-1: none) is the batch dim of the index space (every dim
// before it is 1): its extent follows the runtime batch, and it can only merge with the dims
// after it (it stays the outermost loop).
using Inner =
    std::function<void(const std::vector<Value *> &, Value *, const std::vector<int64_t> &)>;
void walk(Emitter &e, std::vector<int64_t> ext, std::vector<std::vector<int64_t>> st,
          std::vector<int64_t> base, const Inner &inner, int bd = -1, bool parallelOuter = false) {
  const size_t K = st.size();
  for (int d = (int)ext.size() - 1; d >= 0; --d)
    if (ext[d] == 1 && d != bd) {
      ext.erase(ext.begin() + d);
      for (auto &s : st)
        s.erase(s.begin() + d);
      bd -= d < bd;
    }
  CNNC_ASSERT(bd <= 0, "walk: a dim of extent > 1 before the batch dim");
  auto extentOf = [&](int d) { return d == bd ? e.batchExtent(ext[d]) : e.c(ext[d]); };
  for (int d = (int)ext.size() - 2; d >= 0; --d) {
    bool ok = d + 1 != bd;
    for (size_t k = 0; k < K; ++k)
      ok &= st[k][d] == st[k][d + 1] * ext[d + 1];
    if (!ok)
      continue;
    ext[d + 1] *= ext[d];
    ext.erase(ext.begin() + d);
    for (auto &s : st)
      s.erase(s.begin() + d);
  }
  std::vector<Value *> off0;
  for (int64_t b0 : base)
    off0.push_back(e.c(b0));
  if (ext.empty()) {
    inner(off0, e.c(1), std::vector<int64_t>(K, 0));
    return;
  }
  const int m = (int)ext.size();
  std::function<void(int, std::vector<Value *>)> nest = [&](int d, std::vector<Value *> off) {
    if (d == m - 1) {
      std::vector<int64_t> is(K);
      for (size_t k = 0; k < K; ++k)
        is[k] = st[k][d];
      inner(off, extentOf(d), is);
      return;
    }
    auto step = [&](Value *i) {
      std::vector<Value *> o(K);
      for (size_t k = 0; k < K; ++k)
        o[k] = e.b.CreateAdd(off[k], e.b.CreateMul(i, e.c(st[k][d])));
      nest(d + 1, o);
    };
    // threads (copies only: operand 0 is written once per index): the outermost dim
    if (d == 0 && parallelOuter) {
      int64_t total = 1;
      for (int64_t x : ext)
        total *= x;
      e.parallelFor(extentOf(d), step, total);
    } else
      e.loop(extentOf(d), step);
  };
  nest(0, off0);
}

// y[...] = x[...] along a walk whose operand 0 is y (contiguous innermost) and 1 is x.
void copyInner(Emitter &e, Value *y, Value *x, const std::vector<Value *> &off, Value *n,
               const std::vector<int64_t> &is) {
  if (is[0] == 1 && is[1] == 1) {
    e.vecLoop(n, [&](Value *i, unsigned w) {
      e.store(e.load(x, e.b.CreateAdd(off[1], i), w), y, e.b.CreateAdd(off[0], i));
    });
  } else if (is[0] == 1 && is[1] == 0) {
    Value *v = e.load(x, off[1]);
    e.vecLoop(n,
              [&](Value *i, unsigned w) { e.store(e.splat(v, w), y, e.b.CreateAdd(off[0], i)); });
  } else {
    e.loop(n, [&](Value *i) {
      e.store(e.load(x, e.b.CreateAdd(off[1], e.b.CreateMul(i, e.c(is[1])))), y,
              e.b.CreateAdd(off[0], e.b.CreateMul(i, e.c(is[0]))));
    });
  }
}

// ------------------------------------------------------------------ tensor ops
void emitTranspose(Emitter &e, const Node &n) {
  const auto perm = n.getInts("perm");
  const auto xs = rowMajorStrides(n.operands[0]->type.shape);
  std::vector<int64_t> ext(n.type.shape.begin(), n.type.shape.end()), in(ext.size());
  for (size_t i = 0; i < ext.size(); ++i)
    in[i] = xs[perm[i]];
  Value *y = e.ptr(&n), *x = e.ptr(n.operands[0]);
  walk(e, ext, {rowMajorStrides(n.type.shape), in}, {0, 0},
       [&](auto &off, Value *cnt, auto &is) { copyInner(e, y, x, off, cnt, is); },
       e.batchDim(&n), true);
}

// Strides of operand `s` broadcast (numpy rules) to the shape S: 0 along broadcast dims.
std::vector<int64_t> broadcastStrides(const Shape &s, const Shape &S) {
  const int r = (int)S.size();
  std::vector<int64_t> st(r, 0);
  int64_t acc = 1;
  for (int j = (int)s.size() - 1; j >= 0; --j) {
    const int d = r - (int)s.size() + j;
    st[d] = s[j] == 1 && S[d] != 1 ? 0 : acc;
    acc *= s[j];
  }
  return st;
}

void emitExpand(Emitter &e, const Node &n) {
  const Shape &S = n.type.shape;
  Value *y = e.ptr(&n), *x = e.ptr(n.operands[0]);
  walk(e, std::vector<int64_t>(S.begin(), S.end()),
       {rowMajorStrides(S), broadcastStrides(n.operands[0]->type.shape, S)}, {0, 0},
       [&](auto &off, Value *cnt, auto &is) { copyInner(e, y, x, off, cnt, is); },
       e.batchDim(&n), true);
}

void emitSlice(Emitter &e, const Node &n) {
  const Shape &xs = n.operands[0]->type.shape;
  const int r = (int)xs.size();
  int64_t ax = n.getInt("axis");
  ax = ax < 0 ? ax + r : ax;
  const auto st = rowMajorStrides(xs);
  int64_t start = n.getInt("start");
  start = start < 0 ? start + xs[ax] : start;
  start = std::clamp<int64_t>(start, 0, xs[ax]);
  Value *y = e.ptr(&n), *x = e.ptr(n.operands[0]);
  const Shape &S = n.type.shape;
  walk(e, std::vector<int64_t>(S.begin(), S.end()), {rowMajorStrides(S), st}, {0, start * st[ax]},
       [&](auto &off, Value *cnt, auto &is) { copyInner(e, y, x, off, cnt, is); },
       e.batchDim(&n), true);
}

void emitReduceSum(Emitter &e, const Node &n) {
  const Shape &xs = n.operands[0]->type.shape;
  const int r = (int)xs.size();
  std::vector<bool> red(r, false);
  for (int64_t a : n.getInts("axes"))
    red[a < 0 ? a + r : a] = true;
  // the output's strides over the input's dims (0 along reduced axes)
  Shape kept;
  for (int d = 0; d < r; ++d)
    if (!red[d])
      kept.push_back(xs[d]);
  const auto ks = rowMajorStrides(kept);
  std::vector<int64_t> ost(r, 0);
  for (int d = 0, k = 0; d < r; ++d)
    if (!red[d])
      ost[d] = ks[k++];
  Value *y = e.ptr(&n), *x = e.ptr(n.operands[0]);
  zeroFill(e, y, n.type.rank() ? e.numel(&n) : e.c(1));
  walk(e, std::vector<int64_t>(xs.begin(), xs.end()), {ost, rowMajorStrides(xs)}, {0, 0},
       [&](auto &off, Value *cnt, auto &is) {
         if (is[0] == 0 && is[1] == 1) {
           Value *s = sumOver(e, cnt, [&](Value *i, unsigned w) {
             return e.load(x, e.b.CreateAdd(off[1], i), w);
           });
           e.store(e.b.CreateFAdd(e.load(y, off[0]), s), y, off[0]);
         } else if (is[0] == 1 && is[1] == 1) {
           e.vecLoop(cnt, [&](Value *i, unsigned w) {
             Value *yi = e.b.CreateAdd(off[0], i);
             e.store(e.b.CreateFAdd(e.load(y, yi, w), e.load(x, e.b.CreateAdd(off[1], i), w)), y,
                     yi);
           });
         } else {
           e.loop(cnt, [&](Value *i) {
             Value *yi = e.b.CreateAdd(off[0], e.b.CreateMul(i, e.c(is[0])));
             Value *xi = e.b.CreateAdd(off[1], e.b.CreateMul(i, e.c(is[1])));
             e.store(e.b.CreateFAdd(e.load(y, yi), e.load(x, xi)), y, yi);
           });
         }
       },
       e.batchDim(n.operands[0]));
}

// ------------------------------------------------------------------ im2row / row2im
struct Im2RowGeom {
  int64_t N, C, H, W, G, Cg, kh, kw, sh, sw, pt, pl, dh, dw, Ho, Wo;
};
Im2RowGeom im2rowGeom(const Node &n, const Shape &x) {
  auto k = n.getInts("kernel"), s = n.getInts("stride"), p = n.getInts("pads"),
       d = n.getInts("dilation");
  Im2RowGeom g{x[0], x[1], x[2], x[3], n.getInt("groups"), 0, k[0], k[1], s[0], s[1], p[0], p[1],
               d[0], d[1], 0,    0};
  g.Cg = g.C / g.G;
  g.Ho = (g.H + p[0] + p[2] - g.dh * (g.kh - 1) - 1) / g.sh + 1;
  g.Wo = (g.W + p[1] + p[3] - g.dw * (g.kw - 1) - 1) / g.sw + 1;
  return g;
}

// Visits every element of the [G, N*Ho*Wo, Cg*kh*kw] matrix: visit(rowsIdx, xIdx (clamped),
// inside) with rows written sequentially (the column index innermost). N is the runtime
// batch (x's dim 0).
void forEachIm2Row(Emitter &e, const Im2RowGeom &g, Value *N,
                   const std::function<void(Value *, Value *, Value *)> &visit) {
  auto &b = e.b;
  const int64_t R = g.Cg * g.kh * g.kw;
  Value *rows = b.CreateMul(N, e.c(g.Ho * g.Wo));
  // threads: over images; image nn's rows (im2row) and its plane of x (row2im's
  // scatter-add) belong to it alone, so no two threads touch one element
  e.loop(g.G, [&](Value *gi) {
    e.parallelFor(N, [&](Value *nn) {
      e.loop(g.Ho, [&](Value *oh) {
        e.loop(g.Wo, [&](Value *ow) {
          Value *row =
              b.CreateAdd(b.CreateMul(b.CreateAdd(b.CreateMul(nn, e.c(g.Ho)), oh), e.c(g.Wo)), ow);
          Value *rowBase = b.CreateMul(b.CreateAdd(b.CreateMul(gi, rows), row), e.c(R));
          Value *hs = b.CreateSub(b.CreateMul(oh, e.c(g.sh)), e.c(g.pt));
          Value *ws = b.CreateSub(b.CreateMul(ow, e.c(g.sw)), e.c(g.pl));
          e.loop(g.Cg, [&](Value *c) {
            Value *plane = b.CreateMul(
                b.CreateAdd(b.CreateMul(nn, e.c(g.C)), b.CreateAdd(b.CreateMul(gi, e.c(g.Cg)), c)),
                e.c(g.H * g.W));
            e.loop(g.kh, [&](Value *i) {
              Value *ih = b.CreateAdd(hs, b.CreateMul(i, e.c(g.dh)));
              Value *okh = b.CreateAnd(b.CreateICmpSGE(ih, e.c(0)), b.CreateICmpSLT(ih, e.c(g.H)));
              Value *ihc = e.smin(e.smax(ih, e.c(0)), e.c(g.H - 1));
              Value *colRow = b.CreateMul(b.CreateAdd(b.CreateMul(c, e.c(g.kh)), i), e.c(g.kw));
              e.loop(g.kw, [&](Value *j) {
                Value *iw = b.CreateAdd(ws, b.CreateMul(j, e.c(g.dw)));
                Value *ok = b.CreateAnd(
                    okh, b.CreateAnd(b.CreateICmpSGE(iw, e.c(0)), b.CreateICmpSLT(iw, e.c(g.W))));
                Value *iwc = e.smin(e.smax(iw, e.c(0)), e.c(g.W - 1));
                visit(b.CreateAdd(rowBase, b.CreateAdd(colRow, j)),
                      b.CreateAdd(plane, b.CreateAdd(b.CreateMul(ihc, e.c(g.W)), iwc)), ok);
              });
            });
          });
        });
      });
    }, g.N * g.Ho * g.Wo * R);
  });
}

void emitIm2Row(Emitter &e, const Node &n) {
  const Im2RowGeom g = im2rowGeom(n, n.operands[0]->type.shape);
  Value *x = e.ptr(n.operands[0]), *y = e.ptr(&n);
  forEachIm2Row(e, g, e.dim(n.operands[0], 0), [&](Value *dst, Value *src, Value *ok) {
    e.store(e.b.CreateSelect(ok, e.load(x, src), e.cf(0)), y, dst);
  });
}

void emitRow2Im(Emitter &e, const Node &n) {
  const Im2RowGeom g = im2rowGeom(n, n.type.shape);
  Value *r = e.ptr(n.operands[0]), *x = e.ptr(&n);
  zeroFill(e, x, e.numel(&n));
  forEachIm2Row(e, g, e.dim(&n, 0), [&](Value *src, Value *dst, Value *ok) {
    Value *add = e.b.CreateSelect(ok, e.load(r, src), e.cf(0));
    e.store(e.b.CreateFAdd(e.load(x, dst), add), x, dst);
  });
}

// ------------------------------------------------------------------ matrix products
// Y[M][N] = A(i,k) B(k,j), A(i,k) = ta ? A[k*M+i] : A[i*K+k], B(k,j) = tb ? B[j*K+k] : B[k*N+j].
// B is packed to [K][Npad] (zero-padded to whole vectors) when it is transposed or N is not a
// multiple of vl; column blocks of MB vectors run outermost (the B panel stays in cache), then
// tiles of PT rows (tail rows clamped to the last row: recomputed, stored twice, same value);
// PT*MB accumulators stay in registers while k runs: each k loads MB vectors of B and
// broadcasts PT scalars of A (the conv kernel's tile, EmitConv.cpp).
struct GemmShape {
  int64_t M, N, K;
  bool ta, tb;
  Value *rows = nullptr; // the runtime row count when it follows the batch (else M)
  Value *depth = nullptr; // the runtime K when the product sums over the batch (eq. 35)
};
bool gemmPacks(const GemmShape &s, unsigned) {
  return s.tb; // else B's rows are read in place, the last partial vector by a masked load
}
int64_t gemmScratch(const GemmShape &s, unsigned vl) {
  return gemmPacks(s, vl) ? s.K * ((s.N + vl - 1) / vl * vl) * 4 : 0;
}

void emitGemm(Emitter &e, const GemmShape &s, Value *A, Value *B, Value *Y, Value *pack) {
  auto &b = e.b;
  const unsigned VL = e.vl;
  const int64_t MB = s.N > (int64_t)VL ? 2 : 1, PT = MB == 2 ? 6 : 8;
  const bool packed = gemmPacks(s, VL);
  const int64_t Npad = (s.N + VL - 1) / VL * VL, ldb = packed ? Npad : s.N;
  auto mul = [&](Value *a, int64_t k) { return b.CreateMul(a, e.c(k), "", true, true); };
  auto add = [&](Value *a, Value *c) { return b.CreateAdd(a, c, "", true, true); };
  if (s.M == 0 || s.N == 0)
    return;
  if (s.K == 0) {
    zeroFill(e, Y, b.CreateMul(s.rows ? s.rows : e.c(s.M), e.c(s.N)));
    return;
  }
  Value *Bp = B;
  if (packed) {
    Bp = pack;
    if (Npad != s.N)
      zeroFill(e, pack, e.c(s.K * Npad));
    e.loop(s.K, [&](Value *k) {
      e.loop(s.N, [&](Value *j) {
        Value *src = s.tb ? add(mul(j, s.K), k) : add(mul(k, s.N), j);
        e.store(e.load(B, src), pack, add(mul(k, Npad), j));
      });
    });
  }
  std::vector<Value *> acc(PT * MB);
  for (auto &a : acc)
    a = e.entryAlloca(e.vty(VL), "gacc");
  Value *lanes = e.entryAlloca(e.vty(VL), "glanes");
  Value *Mv = s.rows ? s.rows : e.c(s.M);
  Value *tiles = b.CreateUDiv(add(Mv, e.c(PT - 1)), e.c(PT));
  Value *lastRow = b.CreateSub(Mv, e.c(1));
  // one column block of `nv` vectors starting at column col0; the last `valid` columns of
  // the block may be fewer than nv*VL (then only those are stored)
  // K runs in blocks of KC (the A block and the B panel stay in L2/L1 when K is long, e.g.
  // eq. 35's K = the batch's output pixels); blocks after the first accumulate onto Y.
  const int64_t KC = 128;
  Value *Kv = s.depth ? s.depth : e.c(s.K);
  Value *kBlocks = b.CreateUDiv(add(Kv, e.c(KC - 1)), e.c(KC));
  auto block = [&](Value *k0, Value *k1, Value *first, Value *col0, int64_t nv, int64_t valid,
                   Value *t0, Value *t1) {
    e.loop(t0, t1, [&](Value *t) {
      std::vector<Value *> row(PT);
      for (int64_t p = 0; p < PT; ++p)
        row[p] = e.smin(add(mul(t, PT), e.c(p)), lastRow);
      for (int64_t p = 0; p < PT; ++p) {
        Value *yrow = add(mul(row[p], s.N), col0);
        for (int64_t v = 0; v < nv; ++v) {
          const int64_t cols = std::min<int64_t>(VL, valid - v * VL);
          Value *old;
          if (cols == (int64_t)VL)
            old = e.load(Y, add(yrow, e.c(v * VL)), VL);
          else {
            b.CreateStore(e.cfv(0, VL), lanes);
            for (int64_t l = 0; l < cols; ++l)
              e.store(e.load(Y, add(yrow, e.c(v * VL + l))), lanes, e.c(l));
            old = b.CreateLoad(e.vty(VL), lanes);
          }
          b.CreateStore(b.CreateSelect(first, e.cfv(0, VL), old), acc[p * MB + v]);
        }
      }
      e.loop(k0, k1, [&](Value *k) {
        std::vector<Value *> bv(nv);
        Value *brow = add(mul(k, ldb), col0);
        for (int64_t v = 0; v < nv; ++v) {
          const int64_t cols = std::min<int64_t>(VL, valid - v * VL);
          if (packed || cols == (int64_t)VL) {
            bv[v] = e.load(Bp, add(brow, e.c(v * VL)), VL);
            continue;
          }
          std::vector<Constant *> m;
          for (unsigned l = 0; l < VL; ++l)
            m.push_back(b.getInt1((int64_t)l < cols));
          bv[v] = b.CreateMaskedLoad(e.vty(VL), e.gep(Bp, add(brow, e.c(v * VL))), Align(4),
                                     ConstantVector::get(m), e.cfv(0, VL));
        }
        for (int64_t p = 0; p < PT; ++p) {
          Value *ai = s.ta ? add(mul(k, s.M), row[p]) : add(mul(row[p], s.K), k);
          Value *as = e.splat(e.load(A, ai), VL);
          for (int64_t v = 0; v < nv; ++v) {
            Value *a = acc[p * MB + v];
            b.CreateStore(e.fma(as, bv[v], b.CreateLoad(e.vty(VL), a)), a);
          }
        }
      });
      for (int64_t p = 0; p < PT; ++p) {
        Value *yrow = add(mul(row[p], s.N), col0);
        for (int64_t v = 0; v < nv; ++v) {
          Value *val = b.CreateLoad(e.vty(VL), acc[p * MB + v]);
          const int64_t cols = std::min<int64_t>(VL, valid - v * VL);
          if (cols == (int64_t)VL) {
            e.store(val, Y, add(yrow, e.c(v * VL)));
            continue;
          }
          b.CreateStore(val, lanes);
          for (int64_t l = 0; l < cols; ++l)
            e.store(e.load(lanes, e.c(l)), Y, add(yrow, e.c(v * VL + l)));
        }
      }
    });
  };
  const int64_t bw = MB * VL, full = s.N / bw, rem = s.N - full * bw;
  // Threads: the output is cut into units of (column block, group of TG row tiles); a unit
  // runs every K block over its tiles in order, so each output element sees the same k
  // order and instructions however units are spread (never split along K: eq. 35's K is
  // the batch's pixels, but its output is small and has enough tiles and column blocks).
  const int64_t cbs = full + (rem ? 1 : 0), tilesMax = (s.M + PT - 1) / PT;
  const int64_t TG = std::max<int64_t>(1, std::min<int64_t>(tilesMax, (16 + cbs - 1) / cbs));
  e.parallelFor(
      cbs * TG,
      [&](Value *u) {
        Value *cb = b.CreateUDiv(u, e.c(TG)), *tg = b.CreateURem(u, e.c(TG));
        Value *t0 = b.CreateUDiv(b.CreateMul(tiles, tg), e.c(TG));
        Value *t1 = b.CreateUDiv(b.CreateMul(tiles, add(tg, e.c(1))), e.c(TG));
        e.loop(kBlocks, [&](Value *kb) {
          Value *k0 = mul(kb, KC), *k1 = e.smin(add(k0, e.c(KC)), Kv);
          Value *first = b.CreateICmpEQ(kb, e.c(0));
          if (full)
            e.ifThen(b.CreateICmpSLT(cb, e.c(full)),
                     [&] { block(k0, k1, first, mul(cb, bw), MB, bw, t0, t1); });
          if (rem)
            e.ifThen(b.CreateICmpEQ(cb, e.c(full)), [&] {
              block(k0, k1, first, e.c(full * bw), (rem + VL - 1) / VL, rem, t0, t1);
            });
        });
      },
      s.M * s.N * s.K);
}

// matmul: 2-D, or 3-D with the same leading size (trans_a/trans_b on the last two dims)
void emitMatMul3(Emitter &e, const Node &n) {
  const Node *a = n.operands[0], *bn = n.operands[1];
  const bool ta = n.getInt("trans_a"), tb = n.getInt("trans_b");
  const int r = n.type.rank();
  const Shape &as = a->type.shape, &bs = bn->type.shape;
  GemmShape s{n.type.shape[r - 2], n.type.shape[r - 1], ta ? as[r - 2] : as[r - 1], ta, tb};
  const int64_t batches = r == 3 ? n.type.shape[0] : 1;
  (void)bs;
  Value *A = e.ptr(a), *B = e.ptr(bn), *Y = e.ptr(&n);
  Value *pack = gemmScratch(s, e.vl) ? e.scratch(&n, 0) : nullptr;
  auto one = [&](Value *bi) {
    emitGemm(e, s, e.gep(A, e.b.CreateMul(bi, e.c(s.M * s.K))),
             e.gep(B, e.b.CreateMul(bi, e.c(s.K * s.N))),
             e.gep(Y, e.b.CreateMul(bi, e.c(s.M * s.N))), pack);
  };
  // the rows follow the runtime batch (inference's products, eq. 45), or K does (eq. 35 sums
  // over the batch's output pixels); Plan.cpp's analysis admits only these, with every dim
  // before them 1, so the matrices' strides do not change
  if (!ta && e.batchDim(&n) == r - 2 && e.batchDim(a) == r - 2)
    s.rows = e.dim(&n, r - 2);
  else if (ta && !tb && e.batchDim(a) == r - 2 && e.batchDim(bn) == r - 2)
    s.depth = e.dim(a, r - 2);
  if (batches == 1)
    one(e.c(0));
  else
    e.loop(batches, one);
}

void emitBatchMatMul(Emitter &e, const Node &n) {
  const Node *a = n.operands[0], *bn = n.operands[1];
  const Shape &as = a->type.shape, &bs = bn->type.shape, &ys = n.type.shape;
  const int ra = (int)as.size(), rb = (int)bs.size(), r = (int)ys.size();
  GemmShape s{as[ra - 2], bs[rb - 1], as[ra - 1], false, false};
  Shape lead(ys.begin(), ys.end() - 2), la(as.begin(), as.end() - 2), lb(bs.begin(), bs.end() - 2);
  auto sa = broadcastStrides(la, lead), sb = broadcastStrides(lb, lead), sy = rowMajorStrides(lead);
  Value *A = e.ptr(a), *B = e.ptr(bn), *Y = e.ptr(&n);
  Value *pack = gemmScratch(s, e.vl) ? e.scratch(&n, 0) : nullptr;
  (void)r;
  // every output batch index, its A and B batch offsets (in matrices)
  std::function<void(size_t, Value *, Value *, Value *)> nest = [&](size_t d, Value *oy, Value *oa,
                                                                    Value *ob) {
    if (d == lead.size()) {
      emitGemm(e, s, e.gep(A, e.b.CreateMul(oa, e.c(s.M * s.K))),
               e.gep(B, e.b.CreateMul(ob, e.c(s.K * s.N))),
               e.gep(Y, e.b.CreateMul(oy, e.c(s.M * s.N))), pack);
      return;
    }
    e.loop(lead[d], [&](Value *i) {
      nest(d + 1, e.b.CreateAdd(oy, e.b.CreateMul(i, e.c(sy[d]))),
           e.b.CreateAdd(oa, e.b.CreateMul(i, e.c(sa[d]))),
           e.b.CreateAdd(ob, e.b.CreateMul(i, e.c(sb[d]))));
    });
  };
  nest(0, e.c(0), e.c(0), e.c(0));
}

// ------------------------------------------------------------------ activations' gradients
void emitActGrad(Emitter &e, const Node &n) {
  Value *dy = e.ptr(n.operands[0]), *v = e.ptr(n.operands[1]), *dx = e.ptr(&n);
  e.parallelVecLoop(e.numel(&n), n.type.numel(), [&](Value *i, unsigned w) {
    Value *g = e.load(dy, i, w), *y = e.load(v, i, w), *r;
    switch (n.op) {
    case OpKind::ReluGrad: // seed eq. 14, [x > 0]
      r = e.b.CreateSelect(e.b.CreateFCmpOGT(y, e.cfv(0, w)), g, e.cfv(0, w));
      break;
    case OpKind::SigmoidGrad:
      r = e.b.CreateFMul(e.b.CreateFMul(g, y), e.b.CreateFSub(e.cfv(1, w), y));
      break;
    default: // tanh_grad
      r = e.b.CreateFMul(g, e.b.CreateFSub(e.cfv(1, w), e.b.CreateFMul(y, y)));
      break;
    }
    e.store(r, dx, i);
  });
}

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

void emitMaxPoolGrad(Emitter &e, const Node &n) {
  auto &b = e.b;
  const PoolG g = poolG(n, n.type.shape);
  Value *dy = e.ptr(n.operands[0]), *x = e.ptr(n.operands[1]), *dx = e.ptr(&n);
  zeroFill(e, dx, e.numel(&n));
  Value *best = e.entryAlloca(e.f32), *at = e.entryAlloca(e.i64);
  // threads: over (image, channel) planes; a window's gradient lands in its own plane
  e.parallelFor(e.extent(&n, 0, 2), [&](Value *nc) {
    Value *plane = b.CreateMul(nc, e.c(g.H * g.W));
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
            // the interpreter's scan: a strictly larger value, or the first real tap when
            // the best so far is still the initial -inf and equals it
            Value *take =
                b.CreateOr(b.CreateFCmpOLT(cur, v),
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
  zeroFill(e, dx, e.numel(&n));
  e.parallelFor(e.extent(&n, 0, 2), [&](Value *nc) { // threads: as maxpool_grad
    Value *plane = b.CreateMul(nc, e.c(g.H * g.W));
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
  e.loop(outer, [&](Value *o) {
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
  });
}

// ------------------------------------------------------------------ batch-norm gradients
void chanDims(const Node *x, int64_t &C, int64_t &inner) {
  C = x->type.rank() > 1 ? x->type.shape[1] : 1;
  inner = x->type.numel() / (x->type.shape[0] * C);
}

void emitBatchNormGrad(Emitter &e, const Node &n) {
  auto &b = e.b;
  const Node *xn = n.operands[1];
  int64_t C, inner;
  chanDims(xn, C, inner);
  const std::string wrt = n.getStr("wrt");
  Value *dy = e.ptr(n.operands[0]), *x = e.ptr(xn), *scale = e.ptr(n.operands[2]),
        *mean = e.ptr(n.operands[3]), *var = e.ptr(n.operands[4]), *out = e.ptr(&n);
  Value *eps = e.cf(n.getFloat("epsilon")), *N = e.dim(xn, 0);
  if (wrt == "x") {
    e.loop(N, [&](Value *nn) {
      e.loop(C, [&](Value *c) {
        Value *k = b.CreateFDiv(e.load(scale, c),
                                e.unary(Intrinsic::sqrt, b.CreateFAdd(e.load(var, c), eps)));
        Value *base = b.CreateMul(b.CreateAdd(b.CreateMul(nn, e.c(C)), c), e.c(inner));
        e.vecLoop(e.c(inner), [&](Value *i, unsigned w) {
          Value *idx = b.CreateAdd(base, i);
          e.store(b.CreateFMul(e.load(dy, idx, w), e.splat(k, w)), out, idx);
        });
      });
    });
    return;
  }
  Value *sDy = e.entryAlloca(e.f32), *sDyXc = e.entryAlloca(e.f32);
  e.loop(C, [&](Value *c) {
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
  });
}

void emitBnMeanGrad(Emitter &e, const Node &n) {
  auto &b = e.b;
  const Node *xn = n.operands[1];
  int64_t C, inner;
  chanDims(xn, C, inner);
  Value *dm = e.ptr(n.operands[0]), *out = e.ptr(&n), *N = e.dim(xn, 0);
  Value *M = toF32(e, b.CreateMul(N, e.c(inner)));
  e.loop(N, [&](Value *nn) {
    e.loop(C, [&](Value *c) {
      Value *v = b.CreateFDiv(e.load(dm, c), M);
      Value *base = b.CreateMul(b.CreateAdd(b.CreateMul(nn, e.c(C)), c), e.c(inner));
      e.vecLoop(e.c(inner),
                [&](Value *i, unsigned w) { e.store(e.splat(v, w), out, b.CreateAdd(base, i)); });
    });
  });
}

void emitBnVarGrad(Emitter &e, const Node &n) {
  auto &b = e.b;
  const Node *xn = n.operands[1];
  int64_t C, inner;
  chanDims(xn, C, inner);
  Value *dv = e.ptr(n.operands[0]), *x = e.ptr(xn), *mean = e.ptr(n.operands[2]), *out = e.ptr(&n);
  Value *N = e.dim(xn, 0);
  Value *M = toF32(e, b.CreateMul(N, e.c(inner)));
  if (n.getStr("wrt") == "x") {
    e.loop(N, [&](Value *nn) {
      e.loop(C, [&](Value *c) {
        Value *k = b.CreateFDiv(b.CreateFMul(e.cf(2), e.load(dv, c)), M), *mu = e.load(mean, c);
        Value *base = b.CreateMul(b.CreateAdd(b.CreateMul(nn, e.c(C)), c), e.c(inner));
        e.vecLoop(e.c(inner), [&](Value *i, unsigned w) {
          Value *idx = b.CreateAdd(base, i);
          e.store(b.CreateFMul(b.CreateFSub(e.load(x, idx, w), e.splat(mu, w)), e.splat(k, w)), out,
                  idx);
        });
      });
    });
    return;
  }
  Value *tot = e.entryAlloca(e.f32);
  e.loop(C, [&](Value *c) {
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
  });
}

// n/(n-1) for the per-channel count n = N·H·W at the runtime batch (1 when n <= 1), in double
// as the interpreter computes it.
void emitBnUnbias(Emitter &e, const Node &n) {
  auto &b = e.b;
  const Node *xn = n.operands[0];
  int64_t C, inner;
  chanDims(xn, C, inner);
  Type *f64 = b.getDoubleTy();
  Value *cnt = b.CreateMul(e.dim(xn, 0), e.c(inner));
  Value *cf = b.CreateSIToFP(cnt, f64);
  Value *r = b.CreateSelect(b.CreateICmpSGT(cnt, e.c(1)),
                            b.CreateFDiv(cf, b.CreateFSub(cf, ConstantFP::get(f64, 1.0))),
                            ConstantFP::get(f64, 1.0));
  e.store(b.CreateFPTrunc(r, e.f32), e.ptr(&n), e.c(0));
}

// ------------------------------------------------------------------ labels, losses
// Label `idx` of `lab` as i64 and whether it is a class index in [0, C): i32/i64 inputs, or
// f32 values that must be integral (as the interpreter holds them).
std::pair<Value *, Value *> loadLabel(Emitter &e, const Node *lab, Value *idx, int64_t C) {
  auto &b = e.b;
  Value *p = e.ptr(lab), *l, *ok = b.getTrue();
  if (lab->type.dtype == DType::I32)
    l = b.CreateSExt(b.CreateLoad(e.i32, b.CreateInBoundsGEP(e.i32, p, idx)), e.i64);
  else if (lab->type.dtype == DType::I64)
    l = b.CreateLoad(e.i64, b.CreateInBoundsGEP(e.i64, p, idx));
  else {
    Value *lf = e.load(p, idx);
    Value *inRange =
        b.CreateAnd(b.CreateFCmpOGE(lf, e.cf(0)), b.CreateFCmpOLT(lf, e.cf((double)C)));
    Value *lc = b.CreateSelect(inRange, lf, e.cf(0));
    l = b.CreateFPToSI(lc, e.i64);
    ok = b.CreateAnd(inRange, b.CreateFCmpOEQ(lc, b.CreateSIToFP(l, e.f32)));
  }
  ok = b.CreateAnd(ok, b.CreateAnd(b.CreateICmpSGE(l, e.c(0)), b.CreateICmpSLT(l, e.c(C))));
  return {e.smin(e.smax(l, e.c(0)), e.c(C - 1)), ok};
}

void badLabelUnless(Emitter &e, Value *ok) {
  e.ifThen(e.b.CreateNot(ok), [&] { e.b.CreateStore(e.b.getInt32(kStatusBadLabel), e.status); });
}

void emitSoftmaxXentGrad(Emitter &e, const Node &n) {
  auto &b = e.b;
  const Node *ln = n.operands[1], *lab = n.operands[2];
  const int64_t C = ln->type.shape[1];
  Value *x = e.ptr(ln), *out = e.ptr(&n), *N = e.dim(ln, 0);
  Value *k = b.CreateFDiv(e.load(e.ptr(n.operands[0]), e.c(0)), toF32(e, N));
  Value *mx = e.entryAlloca(e.f32), *sum = e.entryAlloca(e.f32);
  e.loop(N, [&](Value *nn) {
    auto [l, ok] = loadLabel(e, lab, nn, C);
    badLabelUnless(e, ok);
    Value *row = b.CreateMul(nn, e.c(C));
    b.CreateStore(e.cf(-std::numeric_limits<float>::infinity()), mx);
    e.loop(C, [&](Value *c) {
      b.CreateStore(e.maxnum(b.CreateLoad(e.f32, mx), e.load(x, b.CreateAdd(row, c))), mx);
    });
    Value *m = b.CreateLoad(e.f32, mx);
    b.CreateStore(e.cf(0), sum);
    e.loop(C, [&](Value *c) {
      Value *ex = e.unary(Intrinsic::exp, b.CreateFSub(e.load(x, b.CreateAdd(row, c)), m));
      e.store(ex, out, b.CreateAdd(row, c));
      b.CreateStore(b.CreateFAdd(b.CreateLoad(e.f32, sum), ex), sum);
    });
    Value *inv = b.CreateFDiv(e.cf(1), b.CreateLoad(e.f32, sum));
    e.loop(C, [&](Value *c) {
      Value *idx = b.CreateAdd(row, c);
      Value *p = b.CreateFMul(e.load(out, idx), inv);
      p = b.CreateFSub(p, b.CreateSelect(b.CreateICmpEQ(c, l), e.cf(1), e.cf(0)));
      e.store(b.CreateFMul(p, k), out, idx);
    });
  });
}

void emitL2LossGrad(Emitter &e, const Node &n) {
  const Node *pn = n.operands[1];
  Value *pr = e.ptr(pn), *t = e.ptr(n.operands[2]), *out = e.ptr(&n);
  Value *N = pn->type.rank() ? e.dim(pn, 0) : e.c(1);
  Value *k = e.b.CreateFDiv(e.load(e.ptr(n.operands[0]), e.c(0)), toF32(e, N));
  e.vecLoop(e.numel(pn), [&](Value *i, unsigned w) {
    e.store(e.b.CreateFMul(e.b.CreateFSub(e.load(pr, i, w), e.load(t, i, w)), e.splat(k, w)), out,
            i);
  });
}

void emitCountCorrect(Emitter &e, const Node &n) {
  auto &b = e.b;
  const Node *ln = n.operands[0], *lab = n.operands[1];
  const int64_t C = ln->type.shape[1];
  Value *x = e.ptr(ln), *N = e.dim(ln, 0);
  Value *cnt = e.entryAlloca(e.i32), *best = e.entryAlloca(e.i64);
  b.CreateStore(b.getInt32(0), cnt);
  e.loop(N, [&](Value *nn) {
    auto [l, ok] = loadLabel(e, lab, nn, C);
    badLabelUnless(e, ok);
    Value *row = b.CreateMul(nn, e.c(C));
    b.CreateStore(e.c(0), best);
    e.loop(e.c(1), e.c(C), [&](Value *c) { // seed eq. 7: the first maximum
      Value *bi = b.CreateLoad(e.i64, best);
      Value *gt = b.CreateFCmpOGT(e.load(x, b.CreateAdd(row, c)), e.load(x, b.CreateAdd(row, bi)));
      b.CreateStore(b.CreateSelect(gt, c, bi), best);
    });
    Value *hit = b.CreateAnd(ok, b.CreateICmpEQ(b.CreateLoad(e.i64, best), l));
    b.CreateStore(b.CreateAdd(b.CreateLoad(e.i32, cnt), b.CreateZExt(hit, e.i32)), cnt);
  });
  b.CreateStore(b.CreateLoad(e.i32, cnt), b.CreateInBoundsGEP(e.i32, e.ptr(&n), e.c(0)));
}

void emitSoftmaxXentNd(Emitter &e, const Node &n) {
  auto &b = e.b;
  const Node *ln = n.operands[0], *lab = n.operands[1];
  const Node *wn = n.operands.size() > 2 ? n.operands[2] : nullptr;
  const int64_t N = ln->type.shape[0], C = ln->type.shape[1];
  const int64_t inner = N ? lab->type.numel() / N : 0;
  const std::string red = n.getStr("reduction");
  const auto ignore = n.getInts("ignore_index");
  Value *x = e.ptr(ln), *out = e.ptr(&n);
  Value *total = e.entryAlloca(e.f32), *wsum = e.entryAlloca(e.f32), *mx = e.entryAlloca(e.f32),
        *sum = e.entryAlloca(e.f32);
  b.CreateStore(e.cf(0), total);
  b.CreateStore(e.cf(0), wsum);
  e.loop(N, [&](Value *nn) {
    e.loop(inner, [&](Value *k) {
      Value *li = b.CreateAdd(b.CreateMul(nn, e.c(inner)), k);
      Value *ign = b.getFalse();
      if (!ignore.empty()) {
        Value *raw;
        if (lab->type.dtype == DType::I32)
          raw =
              b.CreateSExt(b.CreateLoad(e.i32, b.CreateInBoundsGEP(e.i32, e.ptr(lab), li)), e.i64);
        else if (lab->type.dtype == DType::I64)
          raw = b.CreateLoad(e.i64, b.CreateInBoundsGEP(e.i64, e.ptr(lab), li));
        else {
          Value *lf = e.load(e.ptr(lab), li);
          ign = b.CreateFCmpOEQ(lf, e.cf((double)ignore[0]));
          raw = nullptr;
        }
        if (raw)
          ign = b.CreateICmpEQ(raw, e.c(ignore[0]));
      }
      auto [l, ok] = loadLabel(e, lab, li, C);
      badLabelUnless(e, b.CreateOr(ign, ok));
      Value *base = b.CreateAdd(b.CreateMul(nn, e.c(C * inner)), k);
      auto at = [&](Value *c) { return b.CreateAdd(base, b.CreateMul(c, e.c(inner))); };
      b.CreateStore(e.cf(-std::numeric_limits<float>::infinity()), mx);
      e.loop(C, [&](Value *c) {
        b.CreateStore(e.maxnum(b.CreateLoad(e.f32, mx), e.load(x, at(c))), mx);
      });
      Value *m = b.CreateLoad(e.f32, mx);
      b.CreateStore(e.cf(0), sum);
      e.loop(C, [&](Value *c) {
        b.CreateStore(b.CreateFAdd(b.CreateLoad(e.f32, sum),
                                   e.unary(Intrinsic::exp, b.CreateFSub(e.load(x, at(c)), m))),
                      sum);
      });
      Value *w = wn ? e.load(e.ptr(wn), l) : e.cf(1);
      Value *term = b.CreateFMul(w, b.CreateFSub(e.unary(Intrinsic::log, b.CreateLoad(e.f32, sum)),
                                                 b.CreateFSub(e.load(x, at(l)), m)));
      term = b.CreateSelect(ok, term, e.cf(std::numeric_limits<float>::quiet_NaN()));
      term = b.CreateSelect(ign, e.cf(0), term);
      w = b.CreateSelect(ign, e.cf(0), w);
      if (red == "none")
        e.store(term, out, li);
      b.CreateStore(b.CreateFAdd(b.CreateLoad(e.f32, total), term), total);
      b.CreateStore(b.CreateFAdd(b.CreateLoad(e.f32, wsum), w), wsum);
    });
  });
  if (red != "none") {
    Value *t = b.CreateLoad(e.f32, total);
    e.store(red == "sum" ? t : b.CreateFDiv(t, b.CreateLoad(e.f32, wsum)), out, e.c(0));
  }
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

} // namespace

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

int64_t trainScratchBytes(const Node &n, unsigned vl) {
  if (n.op == OpKind::MatMul) {
    const Shape &as = n.operands[0]->type.shape;
    const int r = n.type.rank();
    const bool ta = n.getInt("trans_a");
    return gemmScratch({n.type.shape[r - 2], n.type.shape[r - 1], ta ? as[r - 2] : as[r - 1], ta,
                        n.getInt("trans_b") != 0},
                       vl);
  }
  if (n.op == OpKind::BatchMatMul) {
    const Shape &as = n.operands[0]->type.shape, &bs = n.operands[1]->type.shape;
    return gemmScratch({as[as.size() - 2], bs.back(), as.back(), false, false}, vl);
  }
  return 0;
}

OpEmitter trainOpEmitter(OpKind k) {
  switch (k) {
  case OpKind::MatMul:
    return emitMatMul3;
  case OpKind::BatchMatMul:
    return emitBatchMatMul;
  case OpKind::Transpose:
    return emitTranspose;
  case OpKind::Expand:
    return emitExpand;
  case OpKind::ReduceSum:
    return emitReduceSum;
  case OpKind::Slice:
    return emitSlice;
  case OpKind::Im2Row:
    return emitIm2Row;
  case OpKind::Row2Im:
    return emitRow2Im;
  case OpKind::ReluGrad:
  case OpKind::SigmoidGrad:
  case OpKind::TanhGrad:
    return emitActGrad;
  case OpKind::MaxPoolGrad:
    return emitMaxPoolGrad;
  case OpKind::AvgPoolGrad:
    return emitAvgPoolGrad;
  case OpKind::SoftmaxGrad:
  case OpKind::LogSoftmaxGrad:
    return emitSoftmaxGrad;
  case OpKind::BatchNormGrad:
    return emitBatchNormGrad;
  case OpKind::BnMeanGrad:
    return emitBnMeanGrad;
  case OpKind::BnVarGrad:
    return emitBnVarGrad;
  case OpKind::BnUnbias:
    return emitBnUnbias;
  case OpKind::SoftmaxXentGrad:
    return emitSoftmaxXentGrad;
  case OpKind::L2LossGrad:
    return emitL2LossGrad;
  case OpKind::CountCorrect:
    return emitCountCorrect;
  case OpKind::SoftmaxXentNd:
    return emitSoftmaxXentNd;
  default:
    return nullptr;
  }
}

} // namespace cnnc::codegen
