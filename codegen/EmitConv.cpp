// conv2d as the seed's eq. 22 matrix product, without materialising phi(x):
//   Y[row][m] = sum_{r < Cg*kh*kw} phi(x)[row][r] * W[r][m] + b[m]
// rows = the output pixels of the whole mini-batch (n, oh, ow), m = output channels of a
// group, r = (c, i, j). Per call:
//  1. pack W (and b) to [G][R][mgPad] (channels contiguous, zero-padded to whole vectors),
//  2. copy x into a zero-padded buffer if the conv pads (no bounds checks in the kernel),
//  3. a register tile: PT rows × mb SIMD vectors of channels accumulate over r; each step
//     loads mb weight vectors and broadcasts one input value per row (PT*mb FMAs),
//  4. the pixel-major tile buffer Z is scattered to NCHW.
// A fused ReLU (relu=1) is applied to the accumulators before they are stored (step 3).
// Tail rows are clamped to the last row (recomputed, stored into Z's padding rows); tail
// channels are the zero padding of the packed weights. docs/codegen.md has the tuning plan.
#include "codegen/Emitter.h"

namespace cnnc::codegen {

using namespace llvm;

void emitConv2d(Emitter &e, const Node &n) {
  const ConvGeom g = ConvGeom::of(n, e.vl, e.plan.layout.maxBatch);
  auto &b = e.b;
  const Node *xn = n.operands[0];
  Value *x = e.ptr(xn), *w = e.ptr(n.operands[1]),
        *bias = n.operands.size() > 2 ? e.ptr(n.operands[2]) : nullptr;
  Value *y = e.ptr(&n), *N = e.dim(xn, 0);
  Value *wpack = e.scratch(&n, g.wpackOff), *bpack = e.scratch(&n, g.bpackOff),
        *Z = e.scratch(&n, g.zOff);
  Value *xp = g.padded ? e.scratch(&n, g.xpadOff) : x;
  auto mul = [&](Value *a, int64_t k) { return b.CreateMul(a, e.c(k), "", true, true); };
  auto add = [&](Value *a, Value *c) { return b.CreateAdd(a, c, "", true, true); };
  auto zero = [&](Value *p, int64_t count) {
    e.vecLoop(e.c(count), [&](Value *i, unsigned wd) { e.store(e.cfv(0, wd), p, i); });
  };

  // the fused ReLU (relu=1, passes/FuseRelu.cpp) clamps the finished tile in registers
  const bool relu = n.getInt("relu") != 0;
  auto epilogue = [&](Value *v) { return relu ? e.maxnum(v, e.cfv(0, g.vl)) : v; };

  // 1. pack weights [M][Cg][kh][kw] -> [G][R][mgPad] and the bias -> [G][mgPad]
  if (g.mgPad != g.Mg)
    zero(wpack, g.G * g.R * g.mgPad);
  zero(bpack, g.G * g.mgPad);
  e.loop(g.G, [&](Value *gi) {
    e.loop(g.Mg, [&](Value *m) {
      Value *mt = add(mul(gi, g.Mg), m);
      Value *src = mul(mt, g.R), *dst = add(mul(mul(gi, g.R), g.mgPad), m);
      e.loop(g.R,
             [&](Value *r) { e.store(e.load(w, add(src, r)), wpack, add(dst, mul(r, g.mgPad))); });
      if (bias)
        e.store(e.load(bias, mt), bpack, add(mul(gi, g.mgPad), m));
    });
  });

  // 2. the zero-padded input
  // (threads: over planes, each zeroed and filled by one thread)
  const int64_t rowsMax = g.rowsMax, planesMax = rowsMax / (g.Ho * g.Wo) * g.C;
  if (g.padded) {
    Value *planes = b.CreateMul(N, e.c(g.C));
    e.parallelFor(planes, [&](Value *pl) {
      Value *plane0 = mul(pl, g.Hp * g.Wp);
      e.vecLoop(e.c(g.Hp * g.Wp),
                [&](Value *i, unsigned wd) { e.store(e.cfv(0, wd), xp, add(plane0, i)); });
      e.loop(g.H, [&](Value *h) {
        Value *src = mul(add(mul(pl, g.H), h), g.W);
        Value *dst = add(mul(add(mul(pl, g.Hp), add(h, e.c(g.pt))), g.Wp), e.c(g.pl));
        e.vecLoop(e.c(g.W), [&](Value *i, unsigned wd) {
          e.store(e.load(x, add(src, i), wd), xp, add(dst, i));
        });
      });
    }, planesMax * g.Hp * g.Wp);
  }

  // 3. the register-blocked product, tile by tile
  const int64_t P = g.Ho * g.Wo, PT = g.pt_, MB = g.mb, VL = g.vl;
  Value *rows = b.CreateMul(N, e.c(P));
  Value *tiles = b.CreateUDiv(add(rows, e.c(PT - 1)), e.c(PT));
  std::vector<Value *> acc(PT * MB);
  for (auto &a : acc)
    a = e.entryAlloca(e.vty(VL), "acc");
  e.loop(g.G, [&](Value *gi) {
    // threads: over tiles (each writes its own PT rows of Z; the reduction over r stays
    // within one tile, so the partition cannot change a sum)
    e.parallelFor(tiles, [&](Value *t) {
      std::vector<Value *> base(PT);
      for (int64_t p = 0; p < PT; ++p) {
        Value *row = e.smin(add(mul(t, PT), e.c(p)), b.CreateSub(rows, e.c(1)));
        Value *nn = b.CreateUDiv(row, e.c(P)), *pix = b.CreateURem(row, e.c(P));
        Value *oh = b.CreateUDiv(pix, e.c(g.Wo)), *ow = b.CreateURem(pix, e.c(g.Wo));
        Value *plane = add(mul(nn, g.C), mul(gi, g.Cg));
        base[p] = add(mul(add(mul(plane, g.Hp), mul(oh, g.sh)), g.Wp), mul(ow, g.sw));
      }
      e.loop(g.mgPad / (MB * VL), [&](Value *mbk) {
        Value *col0 = add(mul(gi, g.mgPad), mul(mbk, MB * VL));
        for (int64_t v = 0; v < MB; ++v) {
          Value *bv = e.load(bpack, add(col0, e.c(v * VL)), VL);
          for (int64_t p = 0; p < PT; ++p)
            b.CreateStore(bv, acc[p * MB + v]);
        }
        Value *wcol = add(mul(mul(gi, g.R), g.mgPad), mul(mbk, MB * VL));
        e.loop(g.Cg, [&](Value *c) {
          e.loop(g.kh, [&](Value *i) {
            Value *offRow = mul(add(mul(c, g.Hp), mul(i, g.dh)), g.Wp);
            Value *rRow = mul(add(mul(c, g.kh), i), g.kw);
            e.loop(g.kw, [&](Value *j) {
              Value *off = add(offRow, mul(j, g.dw));
              Value *wrow = add(wcol, mul(add(rRow, j), g.mgPad));
              std::vector<Value *> wv(MB);
              for (int64_t v = 0; v < MB; ++v)
                wv[v] = e.load(wpack, add(wrow, e.c(v * VL)), VL);
              for (int64_t p = 0; p < PT; ++p) {
                Value *xs = e.splat(e.load(xp, add(base[p], off)), VL);
                for (int64_t v = 0; v < MB; ++v) {
                  Value *a = acc[p * MB + v];
                  b.CreateStore(e.fma(xs, wv[v], b.CreateLoad(e.vty(VL), a)), a);
                }
              }
            });
          });
        });
        Value *zcol = mul(mbk, MB * VL);
        for (int64_t p = 0; p < PT; ++p)
          for (int64_t v = 0; v < MB; ++v)
            e.store(epilogue(b.CreateLoad(e.vty(VL), acc[p * MB + v])), Z,
                    add(mul(add(mul(t, PT), e.c(p)), g.mgPad), add(zcol, e.c(v * VL))));
      });
    }, rowsMax * g.R * g.mgPad);
    // 4. Z [rows][mgPad] -> y [N][M][Ho][Wo] for this group's channels
    // (threads: over (image, channel) planes of y)
    e.parallelFor(b.CreateMul(N, e.c(g.Mg)), [&](Value *nm) {
      {
        Value *nn = b.CreateUDiv(nm, e.c(g.Mg)), *m = b.CreateURem(nm, e.c(g.Mg));
        Value *dst = mul(add(mul(nn, g.M), add(mul(gi, g.Mg), m)), P);
        Value *src = add(mul(mul(nn, P), g.mgPad), m);
        e.loop(P, [&](Value *pix) {
          e.store(e.load(Z, add(src, mul(pix, g.mgPad))), y, add(dst, pix));
        });
      }
    }, rowsMax * g.Mg);
  });
}

} // namespace cnnc::codegen
