// Depthwise conv2d (Plan.h's isDepthwise: groups = C = M, one filter per channel): seed eq. 22
// with Cg = 1, i.e. per channel d the plain 2-D correlation
//   y[n][d][oh][ow] = b[d] + sum_{i,j} x[n][d][oh·sh + i·dh - pt][ow·sw + j·dw - pl] ·
//   w[d][0][i][j]
// (the seed's convolution, eq. 17, on one slice). The matrix-product form (EmitConv.cpp)
// puts channels in the vector lanes: with one channel per group, one useful lane per vector.
// This form puts output pixels of one row in the lanes instead:
//  - work item = one plane (image n, channel d); its input plane is copied into its own
//    zero-bordered plane of the scratch first when the conv pads (so no bounds checks and
//    the copy is still in L1/L2 when the taps read it; only its border is zeroed);
//  - RB output rows × one vector of VL consecutive outputs of each row are accumulated in
//    registers: each input row the block reads is loaded once per tap column j (a vector at
//    ow0·sw + j·dw; stride 2 takes the even lanes of two vectors) and multiplied by the
//    broadcast weight w[i][j] into every output row r of the block with r·sh + i·dh = that
//    row, so kh rows of input serve RB rows of output;
//  - a row's last, partial vector loads and stores under a mask (no reads past the plane);
//  - the epilogue: bias as the initial value, then the fused residual (operand 3,
//    fuse-residual) and ReLU (relu=1, fuse-relu), as in EmitConv.cpp.
// A filter_flip folded into the conv (Plan::flipInPack, grad-input-as-conv of a depthwise
// conv) is read in place: w'[d][0][i][j] = w[d][0][kh-1-i][kw-1-j].
// Threads: over planes; a plane's outputs are summed in one fixed order by one thread, so
// results are bitwise identical at any thread count.
#include "codegen/EmitOps.h"
#include "codegen/Plan.h"

namespace cnnc::codegen {

using namespace llvm;

namespace {

Constant *lanesBelow(Emitter &e, unsigned VL, int64_t n) {
  std::vector<Constant *> m(VL);
  for (unsigned l = 0; l < VL; ++l)
    m[l] = e.b.getInt1((int64_t)l < n);
  return ConstantVector::get(m);
}

// VL floats at p, only the first n read (n >= VL: a plain load)
Value *loadFirst(Emitter &e, unsigned VL, Value *p, int64_t n) {
  if (n >= (int64_t)VL)
    return e.b.CreateAlignedLoad(e.vty(VL), p, Align(4));
  return e.b.CreateMaskedLoad(e.vty(VL), p, Align(4), lanesBelow(e, VL, std::max<int64_t>(n, 0)),
                              e.cfv(0, VL));
}

} // namespace

void emitConv2dDepthwise(Emitter &e, const Node &n) {
  auto &b = e.b;
  const Node *xn = n.operands[0];
  const Shape &xs = xn->type.shape, &ws = n.operands[1]->type.shape;
  const int64_t C = xs[1], H = xs[2], W = xs[3], kh = ws[2], kw = ws[3];
  auto st = n.getInts("stride"), pads = n.getInts("pads"), dil = n.getInts("dilation");
  const int64_t sh = st[0], sw = st[1], pt = pads[0], pl = pads[1], dh = dil[0], dw = dil[1];
  const int64_t Ho = n.type.shape[2], Wo = n.type.shape[3];
  const bool padded = pads[0] || pads[1] || pads[2] || pads[3];
  const int64_t Hp = H + pads[0] + pads[2], Wp = W + pads[1] + pads[3];
  const unsigned VL = e.vl;
  // output rows per block: RB accumulators + the kh·kw broadcast weights + one input vector
  // fit AVX2's 16 registers at 3×3
  const int64_t RB = std::min<int64_t>(4, Ho);
  const bool relu = n.getInt("relu") != 0;
  const double reluMax = n.getFloat("relu_max");
  const bool flipped = e.plan.flipInPack.count(n.operands[1]) != 0;

  Value *x = e.ptr(xn), *y = e.ptr(&n), *N = e.dim(xn, 0);
  Value *w = e.ptr(flipped ? n.operands[1]->operands[0] : n.operands[1]);
  Value *bias = n.operands.size() > 2 ? e.ptr(n.operands[2]) : nullptr;
  Value *res = n.operands.size() > 3 ? e.ptr(n.operands[3]) : nullptr;
  Value *xp = padded && xn->type.numel() > 0 ? e.scratch(&n, 0) : x;
  auto mul = [&](Value *a, int64_t k) {
    return k == 1 ? a : b.CreateMul(a, e.c(k), "", true, true);
  };
  auto add = [&](Value *a, int64_t k) {
    return k == 0 ? a : b.CreateAdd(a, e.c(k), "", true, true);
  };
  auto addv = [&](Value *a, Value *c) { return b.CreateAdd(a, c, "", true, true); };

  e.parallelFor(
      b.CreateMul(N, e.c(C)),
      [&](Value *pl_) {
        Value *d = b.CreateURem(pl_, e.c(C));
        Value *xplane = e.gep(x, mul(pl_, H * W));
        if (padded) {
          // this plane's zero-bordered copy: the border zeroed, the interior copied (each
          // float written once)
          xplane = e.gep(xp, mul(pl_, Hp * Wp));
          auto zero = [&](Value *at, int64_t count) {
            if (count > 0)
              e.vecLoop(e.c(count),
                        [&](Value *i, unsigned wd) { e.store(e.cfv(0, wd), xplane, addv(at, i)); });
          };
          zero(e.c(0), pt * Wp);
          zero(e.c((pt + H) * Wp), pads[2] * Wp);
          e.loop(H, [&](Value *h) {
            Value *row = mul(add(h, pt), Wp), *src = mul(h, W), *dst = add(row, pl);
            zero(row, pl);
            zero(add(dst, W), pads[3]);
            e.vecLoop(e.c(W), [&](Value *i, unsigned wd) {
              e.store(e.load(x, addv(addv(mul(pl_, H * W), src), i), wd), xplane, addv(dst, i));
            });
          });
        }
        Value *yplane = e.gep(y, mul(pl_, Ho * Wo));
        Value *rplane = res ? e.gep(res, mul(pl_, Ho * Wo)) : nullptr;
        // the plane's weights, broadcast (tap t = i·kw + j), and its bias
        std::vector<Value *> wv(kh * kw);
        Value *wrow = mul(d, kh * kw);
        for (int64_t t = 0; t < kh * kw; ++t)
          wv[t] = e.splat(e.load(w, add(wrow, flipped ? kh * kw - 1 - t : t)), VL);
        Value *b0 = e.splat(bias ? e.load(bias, d) : e.cf(0), VL);

        // rb output rows from oh0, cnt outputs from ow0 (cnt <= VL)
        auto block = [&](int64_t rb, Value *oh0, Value *ow0, int64_t cnt) {
          std::vector<Value *> acc(rb, b0);
          Value *ih0 = mul(oh0, sh), *iw0 = mul(ow0, sw);
          const int64_t rows = (rb - 1) * sh + (kh - 1) * dh + 1;
          for (int64_t q = 0; q < rows; ++q) {
            bool used = false;
            for (int64_t r = 0; r < rb; ++r)
              used =
                  used || ((q - r * sh) >= 0 && (q - r * sh) % dh == 0 && (q - r * sh) / dh < kh);
            if (!used)
              continue;
            Value *rowp = e.gep(xplane, mul(add(ih0, q), Wp));
            for (int64_t j = 0; j < kw; ++j) {
              Value *p = e.gep(rowp, add(iw0, j * dw));
              Value *xv;
              if (sw == 1) {
                xv = loadFirst(e, VL, p, cnt);
              } else {
                // outputs k < cnt read p[2k]: the even lanes of 2·VL floats, the last 2·cnt - 1
                // read
                const int64_t span = 2 * cnt - 1;
                Value *lo = loadFirst(e, VL, p, span);
                Value *hi = loadFirst(e, VL, e.gep(p, e.c(VL)), span - (int64_t)VL);
                std::vector<int> even(VL);
                for (unsigned l = 0; l < VL; ++l)
                  even[l] = 2 * (int)l;
                xv = b.CreateShuffleVector(lo, hi, even);
              }
              for (int64_t r = 0; r < rb; ++r) {
                const int64_t di = q - r * sh;
                if (di < 0 || di % dh || di / dh >= kh)
                  continue;
                acc[r] = e.fma(xv, wv[di / dh * kw + j], acc[r]);
              }
            }
          }
          for (int64_t r = 0; r < rb; ++r) {
            Value *at = addv(mul(add(oh0, r), Wo), ow0);
            Value *v = acc[r];
            if (rplane)
              v = b.CreateFAdd(v, loadFirst(e, VL, e.gep(rplane, at), cnt));
            if (relu)
              v = e.reluCapped(v, reluMax);
            storePrefix(e, v, e.gep(yplane, at), cnt);
          }
        };
        auto rowBlock = [&](int64_t rb, Value *oh0) {
          if (Wo / VL)
            e.loop(Wo / VL, [&](Value *t) { block(rb, oh0, mul(t, VL), VL); });
          if (Wo % VL)
            block(rb, oh0, e.c(Wo / VL * VL), Wo % VL);
        };
        e.loop(Ho / RB, [&](Value *k) { rowBlock(RB, mul(k, RB)); });
        if (Ho % RB)
          e.loop(e.c(Ho / RB * RB), e.c(Ho), [&](Value *oh) { rowBlock(1, oh); });
      },
      xs[0] * C * Ho * Wo * kh * kw);
}

} // namespace cnnc::codegen
