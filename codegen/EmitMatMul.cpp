// Matrix products: the register-blocked GEMM behind matmul and batch_matmul (seed eqs. 35,
// 45: the conv gradients' products before fuse-conv-grad) and fc from 2 rows on, and fc's dot
// rows at one row (seed section 6.8). Extents are constants except along the batch dim
// (Plan.cpp), where they follow the runtime batch.
#include "codegen/EmitOps.h"

#include <cmath>
#include <limits>

namespace cnnc::codegen {

using namespace llvm;

// ------------------------------------------------------------------ dense
// out[i][j] = sum_k A[i][k] B[j][k] (+ bias[j]) for i < rows: both operands contiguous in k.
// A tile of 4 output columns shares each vector of A; k runs in SIMD vectors, then a tail.
// relu: a fused ReLU epilogue (passes/FuseRelu.cpp): the relu op's max(., 0) on the finished sum,
// capped at reluMax when finite (a fused clip).
void emitDotRows(Emitter &e, Value *A, Value *rows, int64_t rowsMax, int64_t K, Value *B,
                 int64_t M, Value *bias, Value *out, bool relu, double reluMax) {
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
        s = e.reluCapped(s, reluMax);
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

namespace {

// ------------------------------------------------------------------ matrix products
// Y[M][N] = A(i,k) B(k,j), A(i,k) = ta ? A[k*M+i] : A[i*K+k], B(k,j) = tb ? B[j*K+k] : B[k*N+j].
// B is packed into panels [N/bw][K][bw] (bw = MB vectors; the last panel zero-padded) when
// it is transposed, so that a column block's k steps read one contiguous stream (fc's
// weights: prepacked once, Plan::packed); column blocks run outermost (the panel's K block
// stays in L1 across the row tiles), then
// tiles of PT rows (tail rows clamped to the last row: recomputed, stored twice, same value);
// PT*MB accumulators stay in registers while k runs: each k loads MB vectors of B and
// broadcasts PT scalars of A (the conv kernel's tile, EmitConv.cpp).
struct GemmShape {
  int64_t M, N, K;
  bool ta, tb;
  Value *rows = nullptr; // the runtime row count when it follows the batch (else M)
  Value *depth = nullptr; // the runtime K when the product sums over the batch (eq. 35)
  Value *bias = nullptr;  // fc's epilogue on the finished sums: + bias[j], then ReLU if relu
  bool relu = false;
  double reluMax = INFINITY; // relu's cap (a fused clip)
  bool prepacked = false; // B's panels are already at `pack` (the prepare entry made them)
};

int64_t gemmMB(const GemmShape &s, unsigned vl) { return s.N > (int64_t)vl ? 2 : 1; }

bool gemmPacks(const GemmShape &s, unsigned) {
  return s.tb; // else B's rows are read in place, the last partial vector by a masked load
}

int64_t gemmPackBytes(const GemmShape &s, unsigned vl) {
  const int64_t bw = gemmMB(s, vl) * vl;
  return s.K * ((s.N + bw - 1) / bw * bw) * 4;
}

int64_t gemmScratch(const GemmShape &s, unsigned vl) {
  return gemmPacks(s, vl) && !s.prepacked ? gemmPackBytes(s, vl) : 0;
}

// B's panels: panel cb holds columns [cb*bw, cb*bw + bw) as [K][bw], zero past N. One panel
// per parallel iteration; each reads bw rows of B (tb) side by side along k.
void emitGemmPack(Emitter &e, const GemmShape &s, Value *B, Value *pack) {
  auto &b = e.b;
  const int64_t bw = gemmMB(s, e.vl) * e.vl, cbs = (s.N + bw - 1) / bw;
  e.parallelFor(
      cbs,
      [&](Value *cb) {
        e.loop(s.K, [&](Value *k) {
          e.loop(bw, [&](Value *jj) {
            Value *j = b.CreateAdd(b.CreateMul(cb, e.c(bw)), jj);
            Value *jc = e.smin(j, e.c(s.N - 1)); // past N: a valid read, replaced by 0
            Value *src = s.tb ? b.CreateAdd(b.CreateMul(jc, e.c(s.K)), k)
                              : b.CreateAdd(b.CreateMul(k, e.c(s.N)), jc);
            Value *v = b.CreateSelect(b.CreateICmpSLT(j, e.c(s.N)), e.load(B, src), e.cf(0));
            e.store(v, pack, b.CreateAdd(b.CreateMul(cb, e.c(s.K * bw)),
                                         b.CreateAdd(b.CreateMul(k, e.c(bw)), jj)));
          });
        });
      },
      s.K * cbs * bw);
}

void emitGemm(Emitter &e, const GemmShape &s, Value *A, Value *B, Value *Y, Value *pack) {
  auto &b = e.b;
  const unsigned VL = e.vl;
  const int64_t MB = gemmMB(s, VL), PT = MB == 2 ? 6 : 8;
  const bool packed = gemmPacks(s, VL);
  const int64_t ldb = packed ? MB * VL : s.N; // a panel's row, or B's
  auto mul = [&](Value *a, int64_t k) { return b.CreateMul(a, e.c(k), "", true, true); };
  auto add = [&](Value *a, Value *c) { return b.CreateAdd(a, c, "", true, true); };
  if (s.M == 0 || s.N == 0)
    return;
  if (s.K == 0) {
    zeroFill(e, Y, b.CreateMul(s.rows ? s.rows : e.c(s.M), e.c(s.N)));
    return;
  }
  Value *Bp = packed ? pack : B;
  if (packed && !s.prepacked)
    emitGemmPack(e, s, B, pack);
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
  // the last K block's epilogue (fc): + bias, ReLU
  auto epilogue = [&](Value *val, Value *last, Value *col, int64_t cols) {
    if (!s.bias && !s.relu)
      return val;
    Value *f = val;
    if (s.bias) {
      std::vector<Constant *> m;
      for (unsigned l = 0; l < VL; ++l)
        m.push_back(b.getInt1((int64_t)l < cols));
      f = b.CreateFAdd(f, cols == (int64_t)VL ? e.load(s.bias, col, VL)
                                               : b.CreateMaskedLoad(e.vty(VL), e.gep(s.bias, col),
                                                                    Align(4), ConstantVector::get(m),
                                                                    e.cfv(0, VL)));
    }
    if (s.relu)
      f = e.reluCapped(f, s.reluMax);
    return b.CreateSelect(last, f, val);
  };
  auto block = [&](Value *k0, Value *k1, Value *first, Value *last, Value *col0, int64_t nv,
                   int64_t valid, Value *t0, Value *t1) {
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
        // a panel starts at col0*K (packed), a row of B at k*N
        Value *brow = packed ? add(mul(col0, s.K), mul(k, ldb)) : add(mul(k, ldb), col0);
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
          const int64_t cols = std::min<int64_t>(VL, valid - v * VL);
          Value *val = epilogue(b.CreateLoad(e.vty(VL), acc[p * MB + v]), last,
                                add(col0, e.c(v * VL)), cols);
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
          Value *last = b.CreateICmpEQ(kb, b.CreateSub(kBlocks, e.c(1)));
          if (full)
            e.ifThen(b.CreateICmpSLT(cb, e.c(full)),
                     [&] { block(k0, k1, first, last, mul(cb, bw), MB, bw, t0, t1); });
          if (rem)
            e.ifThen(b.CreateICmpEQ(cb, e.c(full)), [&] {
              block(k0, k1, first, last, e.c(full * bw), (rem + VL - 1) / VL, rem, t0, t1);
            });
        });
      },
      s.M * s.N * s.K);
}

// fc y = x w^T + b as the GEMM: A = x, B(k,j) = w[j][k] (tb), prepacked panels.
GemmShape fcGemm(const Node &n) {
  GemmShape s{n.type.shape[0], n.type.shape[1], n.operands[0]->type.shape[1], false, true};
  s.prepacked = true;
  return s;
}

} // namespace

// fc (seed section 6.8). One row (batch 1) is a matrix-vector product bound by streaming w:
// the dot rows above read each weight once. From kFcGemmRows rows on, the dot rows would
// stream w once per row (VGG's fc6: 411 MB per row), so the GEMM reads it once per call
// from panels packed by the prepare entry (Plan::packed, when w is fixed), with rows
// broadcast and bias + ReLU on the last K block. The row count may follow the runtime
// batch: both paths are emitted and it picks one. Each path's reduction order per output is
// fixed (independent of the thread count).
constexpr int64_t kFcGemmRows = 2;

int64_t fcPackBytes(const Node &n, unsigned vl) {
  if (n.op != OpKind::FullyConnected || n.type.shape[0] < kFcGemmRows || n.type.numel() == 0 ||
      n.operands[0]->type.shape[1] == 0)
    return 0;
  return gemmPackBytes(fcGemm(n), vl);
}

void emitFcPack(Emitter &e, const Node &n, Value *pack) {
  emitGemmPack(e, fcGemm(n), e.ptr(n.operands[1]), pack);
}

void emitFc(Emitter &e, const Node &n) { // y = x w^T + b
  const Node *x = n.operands[0];
  Value *rows = e.dim(x, 0), *bias = n.operands.size() > 2 ? e.ptr(n.operands[2]) : nullptr;
  const bool relu = n.getInt("relu") != 0;
  const double reluMax = n.getFloat("relu_max");
  auto dotRows = [&] {
    emitDotRows(e, e.ptr(x), rows, x->type.shape[0], x->type.shape[1], e.ptr(n.operands[1]),
                n.type.shape[1], bias, e.ptr(&n), relu, reluMax);
  };
  auto it = e.plan.packed.find(&n);
  if (it == e.plan.packed.end()) {
    dotRows();
    return;
  }
  GemmShape s = fcGemm(n);
  s.rows = rows, s.bias = bias, s.relu = relu, s.reluMax = reluMax;
  Value *gemm = e.b.CreateICmpSGE(rows, e.c(kFcGemmRows));
  e.ifThen(gemm, [&] {
    emitGemm(e, s, e.ptr(x), e.ptr(n.operands[1]), e.ptr(&n),
             e.b.CreateInBoundsGEP(e.b.getInt8Ty(), e.workspace, e.c(it->second)));
  });
  e.ifThen(e.b.CreateNot(gemm), dotRows);
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

void emitProduct(Emitter &e, int64_t M, int64_t N, int64_t K, bool ta, Value *A, Value *B,
                 Value *Y, Value *rows, Value *depth) {
  GemmShape s{M, N, K, ta, false};
  s.rows = rows, s.depth = depth;
  emitGemm(e, s, A, B, Y, nullptr); // B untransposed: never packed (gemmPacks)
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

} // namespace cnnc::codegen
