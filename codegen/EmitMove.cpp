// Tensor movement: transpose, expand, slice, concat, and the seed's im2row / row2im (eqs.
// 18-21, 46), all over `walk`, a loop nest that merges contiguous dims.
#include "codegen/EmitOps.h"

#include <cmath>
#include <limits>

namespace cnnc::codegen {

using namespace llvm;

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
void walk(Emitter &e, std::vector<int64_t> ext, std::vector<std::vector<int64_t>> st,
          std::vector<int64_t> base, const Inner &inner, int bd, bool parallelOuter) {
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

namespace {

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

} // namespace

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

} // namespace cnnc::codegen
