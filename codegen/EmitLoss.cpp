// Losses and what reads labels: softmax_xent (seed section 3.1), l2_loss (eq. 6),
// softmax_xent_nd (ONNX SoftmaxCrossEntropyLoss), their gradients, count_correct. Labels
// are i32/i64 inputs or integral f32 values; a bad label sets the entry's status.
// Threads: softmax_xent and count_correct compute each example's term on any thread into
// scratch, then one thread adds the terms in example order (the same sum as one thread);
// the gradients split their rows. l2_loss sums fixed chunks on any thread, softmax_xent_nd
// its labels' terms, and one thread adds those in order: bitwise the same at any count.
#include "codegen/EmitOps.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace cnnc::codegen {

using namespace llvm;

// ------------------------------------------------------------------ losses
void emitSoftmaxXent(Emitter &e, const Node &n) { // mean over the batch of logsumexp - logit[label]
  const Node *ln = n.operands[0], *lab = n.operands[1];
  const int64_t C = ln->type.shape[1];
  Value *x = e.ptr(ln), *labels = e.ptr(lab), *N = e.dim(ln, 0);
  Value *total = e.entryAlloca(e.f32), *mx = e.entryAlloca(e.f32), *sum = e.entryAlloca(e.f32);
  Value *terms = e.scratch(&n, 0); // one term per example (lossScratchBytes)
  // threads: over examples, each term into the scratch; then one thread adds them in order
  e.parallelFor(N, [&](Value *nn) {
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
    e.store(e.b.CreateSelect(bad, e.cf(std::numeric_limits<float>::quiet_NaN()), term), terms, nn);
  }, ln->type.numel() * 4);
  e.b.CreateStore(e.cf(0), total);
  e.loop(N, [&](Value *nn) {
    e.b.CreateStore(e.b.CreateFAdd(e.b.CreateLoad(e.f32, total), e.load(terms, nn)), total);
  });
  e.store(e.b.CreateFDiv(e.b.CreateLoad(e.f32, total), toF32(e, N)), e.ptr(&n), e.c(0));
}

// l2_loss sums in chunks of a fixed size, whatever the thread count: each chunk's partial sum
// (SIMD partial sums, as sumOver) goes to scratch, then one thread adds the chunks in order.
constexpr int64_t kL2Chunk = 4096;

void emitL2Loss(Emitter &e, const Node &n) { // 1/2 ||t - x||^2 averaged over dim 0 (seed eq. 6)
  auto &b = e.b;
  const Node *pn = n.operands[0];
  Value *x = e.ptr(pn), *t = e.ptr(n.operands[1]), *parts = e.scratch(&n, 0);
  Value *numel = e.numel(pn), *total = e.entryAlloca(e.f32);
  Value *chunks = b.CreateUDiv(b.CreateAdd(numel, e.c(kL2Chunk - 1)), e.c(kL2Chunk));
  e.parallelFor(chunks, [&](Value *k) { // threads: over chunks
    Value *lo = b.CreateMul(k, e.c(kL2Chunk));
    Value *len = e.smin(e.c(kL2Chunk), b.CreateSub(numel, lo));
    Value *s = sumOver(e, len, [&](Value *i, unsigned w) {
      Value *at = b.CreateAdd(lo, i);
      Value *d = b.CreateFSub(e.load(t, at, w), e.load(x, at, w));
      return b.CreateFMul(d, d);
    });
    e.store(s, parts, k);
  }, pn->type.numel() * 2);
  b.CreateStore(e.cf(0), total);
  e.loop(chunks, [&](Value *k) {
    b.CreateStore(b.CreateFAdd(b.CreateLoad(e.f32, total), e.load(parts, k)), total);
  });
  Value *N = pn->type.rank() ? e.dim(pn, 0) : e.c(1);
  e.store(b.CreateFDiv(b.CreateFMul(b.CreateLoad(e.f32, total), e.cf(0.5)), toF32(e, N)),
          e.ptr(&n), e.c(0));
}

namespace {

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

} // namespace

void emitSoftmaxXentGrad(Emitter &e, const Node &n) {
  auto &b = e.b;
  const Node *ln = n.operands[1], *lab = n.operands[2];
  const int64_t C = ln->type.shape[1];
  Value *x = e.ptr(ln), *out = e.ptr(&n), *N = e.dim(ln, 0);
  Value *k = b.CreateFDiv(e.load(e.ptr(n.operands[0]), e.c(0)), toF32(e, N));
  Value *mx = e.entryAlloca(e.f32), *sum = e.entryAlloca(e.f32);
  e.parallelFor(N, [&](Value *nn) { // threads: over examples (rows)
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
  }, ln->type.numel() * 4);
}

void emitL2LossGrad(Emitter &e, const Node &n) {
  const Node *pn = n.operands[1];
  Value *pr = e.ptr(pn), *t = e.ptr(n.operands[2]), *out = e.ptr(&n);
  Value *N = pn->type.rank() ? e.dim(pn, 0) : e.c(1);
  Value *k = e.b.CreateFDiv(e.load(e.ptr(n.operands[0]), e.c(0)), toF32(e, N));
  e.parallelVecLoop(e.numel(pn), pn->type.numel(), [&](Value *i, unsigned w) {
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
  Value *hits = e.scratch(&n, 0); // one i32 per example (lossScratchBytes)
  e.parallelFor(N, [&](Value *nn) { // threads: over examples; then one thread counts
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
    b.CreateStore(b.CreateZExt(hit, e.i32), b.CreateInBoundsGEP(e.i32, hits, nn));
  }, ln->type.numel());
  b.CreateStore(b.getInt32(0), cnt);
  e.loop(N, [&](Value *nn) {
    Value *h = b.CreateLoad(e.i32, b.CreateInBoundsGEP(e.i32, hits, nn));
    b.CreateStore(b.CreateAdd(b.CreateLoad(e.i32, cnt), h), cnt);
  });
  b.CreateStore(b.CreateLoad(e.i32, cnt), b.CreateInBoundsGEP(e.i32, e.ptr(&n), e.c(0)));
}

/// Scratch of the partial results that one thread adds up in order afterwards: one per
/// example (softmax_xent, count_correct), per chunk (l2_loss), or a term and a weight per
/// label (softmax_xent_nd).
int64_t lossScratchBytes(const Node &n) {
  if (n.op != OpKind::SoftmaxXent && n.op != OpKind::CountCorrect && n.op != OpKind::L2Loss &&
      n.op != OpKind::SoftmaxXentNd)
    return 0;
  const Shape &s = n.operands[0]->type.shape;
  auto bytes = [](int64_t count) { return (std::max<int64_t>(count, 1) * 4 + 63) / 64 * 64; };
  if (n.op == OpKind::SoftmaxXent || n.op == OpKind::CountCorrect)
    return s.empty() || s[0] == 0 ? 0 : bytes(s[0]);
  if (n.op == OpKind::L2Loss)
    return bytes((n.operands[0]->type.numel() + kL2Chunk - 1) / kL2Chunk);
  return 2 * bytes(n.operands[1]->type.numel()); // softmax_xent_nd
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
  // one term and one weight per label (lossScratchBytes), on any thread; then one thread
  // adds them in label order (the same sum as one thread)
  const int64_t labels = N * inner;
  Value *terms = e.scratch(&n, 0),
        *weights = e.scratch(&n, (std::max<int64_t>(labels, 1) * 4 + 63) / 64 * 64);
  e.parallelFor(e.c(labels), [&](Value *li) { // threads: over labels (rows of C logits)
    Value *nn = b.CreateUDiv(li, e.c(std::max<int64_t>(inner, 1)));
    Value *k = b.CreateURem(li, e.c(std::max<int64_t>(inner, 1)));
    Value *ign = b.getFalse();
    if (!ignore.empty()) {
      Value *raw;
      if (lab->type.dtype == DType::I32)
        raw = b.CreateSExt(b.CreateLoad(e.i32, b.CreateInBoundsGEP(e.i32, e.ptr(lab), li)), e.i64);
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
    e.store(term, terms, li);
    e.store(w, weights, li);
  }, ln->type.numel() * 4);
  if (red != "none") {
    b.CreateStore(e.cf(0), total);
    b.CreateStore(e.cf(0), wsum);
    e.loop(labels, [&](Value *li) {
      b.CreateStore(b.CreateFAdd(b.CreateLoad(e.f32, total), e.load(terms, li)), total);
      b.CreateStore(b.CreateFAdd(b.CreateLoad(e.f32, wsum), e.load(weights, li)), wsum);
    });
    Value *t = b.CreateLoad(e.f32, total);
    e.store(red == "sum" ? t : b.CreateFDiv(t, b.CreateLoad(e.f32, wsum)), out, e.c(0));
  }
}

} // namespace cnnc::codegen
