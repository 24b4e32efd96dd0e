// conv2d_grad_filter vectorised over output pixels (seed eq. 35, dW = φ(x)ᵀ dY), for the
// layers the tap-by-tap kernel (EmitConvGrad.cpp) serves badly: few input channels (a first
// layer: its tile cannot fill the registers) or output channels that pad its column blocks
// (MNIST BASE's 50: 64 lanes). Here the lanes run along an output row instead:
//   dW[m][c][i][j] = Σ_{n,oh} Σ_ow dY[n][m][oh][ow] · x[n][c][oh·sh + i·dh][ow + j·dw]
// With stride 1 along rows, VL consecutive ow of a dY row and of the x row shifted by j·dw are
// both contiguous: no transposed copy of dY, no φ(x). A register tile is MT output channels
// × the kw taps of one kernel row (c, i): per VL pixels, MT dY vectors and kw x vectors
// (unaligned, masked at a row's end), MT·kw FMAs into vector accumulators.
//
// Work is split into fixed chunks of CI images (independent of the thread count): a task owns
// (chunk, group, tile of MT channels) and runs its rows in blocks that keep the tile's dY in
// L1, every (c, i) per block; its accumulators wait in a slot [chunk][g][tile][m][r][VL] between
// blocks. A last pass sums each dW element over the chunks in order and over the lanes
// (VL rows transposed in registers and added), so every element is summed in one order
// whatever the thread count.
#include "codegen/EmitOps.h"

#include <algorithm>

namespace cnnc::codegen {

using namespace llvm;

namespace {

int64_t align64(int64_t b) { return (b + 63) / 64 * 64; }

} // namespace

FilterRowsGeom filterRowsGeom(const Node &n, unsigned vl, bool narrow) {
  const Shape &x = n.operands[0]->type.shape, &dy = n.operands[1]->type.shape;
  auto st = n.getInts("stride"), pads = n.getInts("pads"), dil = n.getInts("dilation");
  auto k = n.getInts("kernel");
  FilterRowsGeom g{};
  g.N = x[0], g.C = x[1], g.H = x[2], g.W = x[3], g.M = dy[1], g.G = n.getInt("groups");
  g.Cg = g.C / g.G, g.Mg = g.M / g.G, g.kh = k[0], g.kw = k[1], g.R = g.Cg * g.kh * g.kw;
  g.sh = st[0], g.pt = pads[0], g.pl = pads[1], g.dh = dil[0], g.dw = dil[1];
  g.Ho = dy[2], g.Wo = dy[3], g.P = g.Ho * g.Wo;
  g.padded = pads[0] || pads[1] || pads[2] || pads[3];
  g.Hp = g.H + pads[0] + pads[2], g.Wp = g.W + pads[1] + pads[3];
  if (st[1] != 1 || g.kw < 3 || g.kw > 7 || g.Wo < 4 || g.N == 0)
    return g;
  // 8 lanes unless 16 fill a row as well and the 512-bit FMA runs at full rate
  const int64_t regs = vl >= 16 ? 32 : 16;
  auto pv = [&](int64_t lanes) { return (g.Wo + lanes - 1) / lanes; };
  g.VL = vl >= 16 && !narrow && pv(16) * 16 <= pv(8) * 8 ? 16 : 8;
  g.PV = pv(g.VL), g.tail = g.Wo % g.VL, g.rpv = 1;
  // rows of exactly 8 pixels, an even count per image, full-rate 512-bit FMAs: 16 lanes hold
  // two consecutive rows (MNIST BASE's conv2, 8×8: 8 lanes would leave half of each zmm idle).
  // dY's two rows are contiguous; x's two rows are two loads joined.
  if (vl >= 16 && !narrow && g.Wo == 8 && g.Ho % 2 == 0)
    g.VL = 16, g.PV = 1, g.tail = 0, g.rpv = 2;
  // MT·kw accumulators and either MT dY vectors and one x vector, or (xHeld) the kw x
  // vectors, one dY vector and a spare: whichever holds more channels (VGG's conv1_1 at 16
  // lanes: 8 × 3 instead of 7 × 3, so 64 channels in 8 tiles instead of 70 in 10); tiles
  // balanced
  const int64_t dyHeld = (regs - 2) / (g.kw + 1), xHeld = (regs - g.kw - 2) / g.kw;
  g.xHeld = xHeld > dyHeld;
  const int64_t mtMax = std::max<int64_t>(1, std::max(dyHeld, xHeld));
  g.nmt = (g.Mg + mtMax - 1) / mtMax, g.MT = (g.Mg + g.nmt - 1) / g.nmt;
  // chunks of about 4096 output pixels; row blocks of about 16 KB of the tile's dY
  g.CI = std::clamp<int64_t>(4096 / g.P, 1, g.N), g.NC = (g.N + g.CI - 1) / g.CI;
  g.KR = std::max<int64_t>(1, 4096 / (g.MT * g.PV * g.VL));
  // the fraction of lanes holding real work (the tap kernel compares its own: EmitConvGrad.cpp)
  g.lanesUsed = double(g.Wo * g.rpv) / double(g.PV * g.VL) * double(g.Mg) / double(g.nmt * g.MT);
  g.valid = true;
  int64_t off = 0;
  g.xpadOff = off, off += g.padded ? align64(g.N * g.C * g.Hp * g.Wp * 4) : 0;
  g.slotOff = off, off += align64(g.NC * g.G * g.nmt * g.MT * g.R * g.VL * 4);
  g.bytes = off;
  return g;
}

void emitGradFilterRows(Emitter &e, const Node &n, const FilterRowsGeom &g) {
  auto &b = e.b;
  auto mul = [&](Value *a, int64_t k) { return b.CreateMul(a, e.c(k), "", true, true); };
  auto add = [&](Value *a, Value *c) { return b.CreateAdd(a, c, "", true, true); };
  auto addc = [&](Value *a, int64_t k) { return add(a, e.c(k)); };
  Value *x = e.ptr(n.operands[0]), *dy = e.ptr(n.operands[1]), *dW = e.ptr(&n);
  Value *xp = g.padded ? e.scratch(&n, g.xpadOff) : x, *slots = e.scratch(&n, g.slotOff);
  const int64_t VL = g.VL, MT = g.MT, KW = g.kw, HpWp = g.Hp * g.Wp, RP = g.rpv, HoR = g.Ho / RP;
  const int64_t slotSize = MT * g.R * VL; // floats per task
  Value *N = e.dim(n.operands[0], 0);     // the runtime batch
  Value *NC = b.CreateUDiv(addc(N, g.CI - 1), e.c(g.CI));

  // 1. the zero-padded input
  if (g.padded)
    copyZeroPadded(e, x, xp, mul(N, g.C), g.H, g.W, g.Hp, g.Wp, g.pt, g.pl, g.N * g.C * g.H * g.W);

  // a row's vector pv: full, or masked past the row's end (zeros: they add nothing)
  std::vector<Constant *> tailMask(VL);
  for (int64_t l = 0; l < VL; ++l)
    tailMask[l] = b.getInt1(l < g.tail);
  auto loadRow = [&](Value *p, bool last) -> Value * {
    if (!last || !g.tail)
      return b.CreateAlignedLoad(e.vty(VL), p, Align(4));
    return b.CreateMaskedLoad(e.vty(VL), p, Align(4), ConstantVector::get(tailMask), e.cfv(0, VL));
  };

  // 2. the tiles: task = (chunk, group, tile of MT output channels)
  std::vector<Value *> acc(MT * KW);
  for (auto &a : acc)
    a = e.entryAlloca(e.vty(VL), "gfracc");
  e.parallelFor(mul(NC, g.G * g.nmt), [&](Value *u) {
    Value *ch = b.CreateUDiv(u, e.c(g.G * g.nmt)), *gt = b.CreateURem(u, e.c(g.G * g.nmt));
    Value *gi = b.CreateUDiv(gt, e.c(g.nmt)), *mt = b.CreateURem(gt, e.c(g.nmt));
    Value *slot = e.gep(slots, mul(u, slotSize));
    Value *n0 = mul(ch, g.CI), *images = e.smin(e.c(g.CI), b.CreateSub(N, n0));
    // (a "row" is RP rows of dY)
    Value *rows = mul(images, HoR), *blocks = b.CreateUDiv(addc(rows, g.KR - 1), e.c(g.KR));
    // the tile's channels, clamped to the group's last (computed, never written)
    std::vector<Value *> mOff(MT);
    for (int64_t mi = 0; mi < MT; ++mi) {
      Value *m = e.smin(addc(mul(mt, MT), mi), e.c(g.Mg - 1));
      mOff[mi] = mul(add(mul(gi, g.Mg), m), g.P); // + n·M·P: channel plane in image n
    }
    e.loop(blocks, [&](Value *kb) {
      Value *first = b.CreateICmpEQ(kb, e.c(0));
      Value *q0 = mul(kb, g.KR), *q1 = e.smin(addc(q0, g.KR), rows);
      e.loop(g.Cg * g.kh, [&](Value *ci) { // r-tile (c, i): columns r = ci·kw + j
        Value *c = b.CreateUDiv(ci, e.c(g.kh)), *i = b.CreateURem(ci, e.c(g.kh));
        auto slotAt = [&](int64_t mi, int64_t j) {
          return e.gep(slot, add(e.c(mi * g.R * VL + j * VL), mul(ci, KW * VL)));
        };
        for (int64_t mi = 0; mi < MT; ++mi)
          for (int64_t j = 0; j < KW; ++j)
            b.CreateStore(b.CreateSelect(first, e.cfv(0, VL),
                                         b.CreateAlignedLoad(e.vty(VL), slotAt(mi, j), Align(4))),
                          acc[mi * KW + j]);
        Value *xc = e.gep(xp, mul(add(mul(gi, g.Cg), c), HpWp)); // plane (0, g·Cg + c)
        Value *xi = e.gep(xc, mul(i, g.dh * g.Wp));
        e.loop(q0, q1, [&](Value *q) {
          Value *nn = add(n0, b.CreateUDiv(q, e.c(HoR))), *oh = mul(b.CreateURem(q, e.c(HoR)), RP);
          Value *xrow = e.gep(xi, add(mul(nn, g.C * HpWp), mul(oh, g.sh * g.Wp)));
          Value *dimg = add(mul(nn, g.M * g.P), mul(oh, g.Wo));
          auto pixels = [&](Value *p0, bool last) {
            auto dyAt = [&](int64_t mi) { return loadRow(e.gep(dy, add(add(dimg, mOff[mi]), p0)), last); };
            auto xAt = [&](int64_t j) -> Value * {
              Value *p = e.gep(xrow, addc(p0, j * g.dw));
              if (RP == 1)
                return loadRow(p, last);
              // rows oh and oh + 1 of dY read x rows sh·Wp apart: two half vectors joined
              Type *half = e.vty(VL / 2);
              std::vector<int> both(VL);
              for (int64_t l = 0; l < VL; ++l)
                both[l] = int(l);
              return b.CreateShuffleVector(b.CreateAlignedLoad(half, p, Align(4)),
                                           b.CreateAlignedLoad(half, e.gep(p, e.c(g.sh * g.Wp)), Align(4)),
                                           both);
            };
            auto fma = [&](Value *xv, Value *dv, int64_t mi, int64_t j) {
              Value *a = acc[mi * KW + j];
              b.CreateStore(e.fma(xv, dv, b.CreateLoad(e.vty(VL), a)), a);
            };
            if (g.xHeld) { // kw x vectors live, each dY vector used at once
              std::vector<Value *> xv(KW);
              for (int64_t j = 0; j < KW; ++j)
                xv[j] = xAt(j);
              for (int64_t mi = 0; mi < MT; ++mi) {
                Value *dv = dyAt(mi);
                for (int64_t j = 0; j < KW; ++j)
                  fma(xv[j], dv, mi, j);
              }
              return;
            }
            std::vector<Value *> dv(MT);
            for (int64_t mi = 0; mi < MT; ++mi)
              dv[mi] = dyAt(mi);
            for (int64_t j = 0; j < KW; ++j) {
              Value *xv = xAt(j);
              for (int64_t mi = 0; mi < MT; ++mi)
                fma(xv, dv[mi], mi, j);
            }
          };
          const int64_t full = g.tail ? g.PV - 1 : g.PV;
          if (full == 1)
            pixels(e.c(0), false);
          else if (full > 1)
            e.loopNoUnroll(full, [&](Value *v) { pixels(mul(v, VL), false); });
          if (g.tail)
            pixels(e.c(full * VL), true);
        });
        for (int64_t mi = 0; mi < MT; ++mi)
          for (int64_t j = 0; j < KW; ++j)
            b.CreateAlignedStore(b.CreateLoad(e.vty(VL), acc[mi * KW + j]), slotAt(mi, j), Align(4));
      });
    });
  }, g.N * g.P * g.M * g.R);

  // 3. dW[g·Mg + m][r] = Σ_chunks Σ_lanes slot (chunks in order; VL columns at a time, their
  // lane vectors transposed and added: lane l of the sum is column r0 + l's total)
  e.parallelFor(g.G * g.Mg, [&](Value *gm) {
    Value *gi = b.CreateUDiv(gm, e.c(g.Mg)), *m = b.CreateURem(gm, e.c(g.Mg));
    Value *mt = b.CreateUDiv(m, e.c(MT)), *mi = b.CreateURem(m, e.c(MT));
    Value *first = e.gep(slots, add(mul(add(mul(gi, g.nmt), mt), slotSize), mul(mi, g.R * VL)));
    auto columns = [&](Value *r0, int64_t count) {
      std::vector<Value *> sums(VL);
      for (int64_t l = 0; l < VL; ++l) { // columns past count repeat the last (never stored)
        Value *sum = e.entryAlloca(e.vty(VL), "gfrsum");
        b.CreateStore(e.cfv(0, VL), sum);
        Value *col = mul(addc(r0, std::min(l, count - 1)), VL);
        e.loop(NC, [&](Value *chk) {
          Value *p = e.gep(first, add(mul(chk, g.G * g.nmt * slotSize), col));
          b.CreateStore(b.CreateFAdd(b.CreateLoad(e.vty(VL), sum),
                                     b.CreateAlignedLoad(e.vty(VL), p, Align(4))), sum);
        });
        sums[l] = b.CreateLoad(e.vty(VL), sum);
      }
      sums = transposeSquare(e, sums);
      Value *total = sums[0];
      for (int64_t l = 1; l < VL; ++l)
        total = b.CreateFAdd(total, sums[l]);
      storePrefix(e, total, e.gep(dW, add(mul(gm, g.R), r0)), count);
    };
    e.loop(g.R / VL, [&](Value *rb) { columns(mul(rb, VL), VL); });
    if (g.R % VL)
      columns(e.c(g.R / VL * VL), g.R % VL);
  }, g.NC * g.M * g.R * VL);
}

} // namespace cnnc::codegen
