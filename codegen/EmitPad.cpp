// Padding (ONNX Pad: constant, reflect, edge) and its adjoint pad_grad, as loop nests over
// the padded tensor: the outer dims map their index to the source's (interp/PadKernels.cpp's
// padSource, as IR), and the innermost dim runs in three parts, the left border and right
// border element by element and the interior as a SIMD copy (pad) or add (pad_grad). Threads
// split the outermost dim (pad_grad only when that dim is not padded: elsewhere two rows can
// add into one source row).
#include "codegen/EmitOps.h"

namespace cnnc::codegen {

using namespace llvm;

namespace {

struct Mapped {
  Value *index; // the source index, clamped into [0, n) so that it can always be loaded
  Value *valid; // i1: false where constant mode fills
};

// Output index o of a dim with `begin` padded before an input extent n (n >= 1).
Mapped mapIndex(Emitter &e, const std::string &mode, Value *o, int64_t begin, int64_t n) {
  auto &b = e.b;
  Value *i = b.CreateSub(o, e.c(begin));
  Value *below = b.CreateICmpSLT(i, e.c(0)), *above = b.CreateICmpSGE(i, e.c(n));
  Value *clamped = e.smin(e.smax(i, e.c(0)), e.c(n - 1));
  if (mode == "reflect") // -i below, 2(n-1) - i above: one mirror image (pad < n)
    return {b.CreateSelect(below, b.CreateNeg(i),
                           b.CreateSelect(above, b.CreateSub(e.c(2 * (n - 1)), i), i)),
            b.getTrue()};
  if (mode == "edge")
    return {clamped, b.getTrue()};
  return {clamped, b.CreateNot(b.CreateOr(below, above))};
}

// Visits the padded shape S of a tensor X: visit(rowOffset in S, source row offset in X,
// valid, innermost dim's output index range handler). `grad` selects the scatter's thread
// rule. The innermost dim is handled by `row(yoff, xoff, valid)`.
void padNest(Emitter &e, const Node &n, const Shape &X, const Shape &S, int bd, bool grad,
             const std::function<void(Value *, Value *, Value *)> &row) {
  const int r = (int)S.size();
  const auto pads = n.getInts("pads");
  const std::string mode = n.getStr("mode");
  const auto ys = rowMajorStrides(S), xs = rowMajorStrides(X);
  std::function<void(int, Value *, Value *, Value *)> nest = [&](int d, Value *yo, Value *xo,
                                                                  Value *ok) {
    if (d == r - 1) {
      row(yo, xo, ok);
      return;
    }
    Value *ext = d == bd ? e.batchExtent(S[d]) : e.c(S[d]);
    auto step = [&](Value *i) {
      Mapped m = mapIndex(e, mode, i, pads[d], X[d]);
      nest(d + 1, e.b.CreateAdd(yo, e.b.CreateMul(i, e.c(ys[d]))),
           e.b.CreateAdd(xo, e.b.CreateMul(m.index, e.c(xs[d]))), e.b.CreateAnd(ok, m.valid));
    };
    const bool disjoint = !grad || (pads[d] == 0 && pads[d + r] == 0);
    if (d == 0 && disjoint)
      e.parallelFor(ext, step, n.type.numel());
    else
      e.loop(ext, step);
  };
  nest(0, e.c(0), e.c(0), e.b.getTrue());
}

} // namespace

void emitPad(Emitter &e, const Node &n) {
  const Shape &X = n.operands[0]->type.shape, &S = n.type.shape;
  const int r = (int)S.size();
  Value *x = e.ptr(n.operands[0]), *y = e.ptr(&n);
  Value *fill = e.cf(n.getFloat("value"));
  if (r == 0 || n.operands[0]->type.numel() == 0) { // nothing to copy: the fill (or the scalar)
    e.vecLoop(e.numel(&n), [&](Value *i, unsigned w) {
      e.store(r == 0 ? e.load(x, i, w) : e.splat(fill, w), y, i);
    });
    return;
  }
  const auto pads = n.getInts("pads");
  const std::string mode = n.getStr("mode");
  const int64_t pb = pads[r - 1], W = X[r - 1];
  const int bd = e.batchDim(&n);
  padNest(e, n, X, S, bd, false, [&](Value *yo, Value *xo, Value *ok) {
    // the borders, element by element
    auto border = [&](int64_t from, int64_t to) {
      if (from >= to)
        return;
      e.loop(e.c(from), e.c(to), [&](Value *j) {
        Mapped m = mapIndex(e, mode, j, pb, W);
        Value *v = e.load(x, e.b.CreateAdd(xo, m.index));
        e.store(e.b.CreateSelect(e.b.CreateAnd(ok, m.valid), v, fill), y, e.b.CreateAdd(yo, j));
      });
    };
    border(0, pb);
    // the interior: a row of the input (the fill where an outer dim is in the padding)
    Value *cnt = bd == r - 1 ? e.batchExtent(W) : e.c(W);
    Value *dst = e.b.CreateAdd(yo, e.c(pb));
    e.vecLoop(cnt, [&](Value *j, unsigned w) {
      Value *v = e.load(x, e.b.CreateAdd(xo, j), w);
      e.store(e.b.CreateSelect(ok, v, e.splat(fill, w)), y, e.b.CreateAdd(dst, j));
    });
    border(pb + W, S[r - 1]);
  });
}

void emitPadGrad(Emitter &e, const Node &n) {
  const Shape &S = n.operands[0]->type.shape, &X = n.type.shape;
  const int r = (int)S.size();
  Value *dy = e.ptr(n.operands[0]), *dx = e.ptr(&n);
  if (r == 0) {
    e.store(e.load(dy, e.c(0)), dx, e.c(0));
    return;
  }
  zeroFill(e, dx, e.numel(&n));
  if (n.type.numel() == 0)
    return;
  const auto pads = n.getInts("pads");
  const std::string mode = n.getStr("mode");
  const int64_t pb = pads[r - 1], W = X[r - 1];
  const int bd = e.batchDim(&n);
  padNest(e, n, X, S, bd, true, [&](Value *yo, Value *xo, Value *ok) {
    auto border = [&](int64_t from, int64_t to) {
      if (mode == "constant" || from >= to) // constant fill has no source
        return;
      e.loop(e.c(from), e.c(to), [&](Value *j) {
        Mapped m = mapIndex(e, mode, j, pb, W);
        Value *at = e.b.CreateAdd(xo, m.index);
        Value *g = e.b.CreateSelect(ok, e.load(dy, e.b.CreateAdd(yo, j)), e.cf(0));
        e.store(e.b.CreateFAdd(e.load(dx, at), g), dx, at);
      });
    };
    border(0, pb);
    Value *cnt = bd == r - 1 ? e.batchExtent(W) : e.c(W);
    Value *src = e.b.CreateAdd(yo, e.c(pb));
    e.ifThen(ok, [&] {
      e.vecLoop(cnt, [&](Value *j, unsigned w) {
        Value *at = e.b.CreateAdd(xo, j);
        e.store(e.b.CreateFAdd(e.load(dx, at, w), e.load(dy, e.b.CreateAdd(src, j), w)), dx, at);
      });
    });
    border(pb + W, S[r - 1]);
  });
}

} // namespace cnnc::codegen
