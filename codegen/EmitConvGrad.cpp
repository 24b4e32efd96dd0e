// The fused conv2d gradients (passes/FuseConvGrad.cpp) as register-blocked products computed
// tile by tile from address arithmetic, never materialising φ(x). With P = Ho·Wo pixels per
// image, R = Cg·kh·kw, per group:
//
// conv2d_grad_filter, dW = φ(x)ᵀ dY (seed eq. 35), tap by tap (emitGradFilter; few input
// channels, or output channels that pad its column blocks, go to the row kernel of
// EmitConvGradRows.cpp when its vectors fill better: useRows):
//   1. x is copied into a zero-padded buffer when the conv pads (no bounds checks);
//   2. dY is transposed to pixel-major panels, one per column block of bw = MB·vl output
//      channels: dYT[g][mb][n·P + pix][bw], VL×VL blocks transposed in registers;
//   3. a task owns a tile of PT input channels × one column block (and all taps, or one when
//      the tiles are too few to feed the threads); per block of about 256 output pixels and
//      per tap (i, j), its PT×MB accumulators (loaded, zero for the first block) take, per
//      pixel, MB vectors of dY times PT broadcasts of x, PT planes apart: constant offsets
//      from one pointer, no tables;
//   4. the accumulators, kept in a [g][mb][c][tap][bw] buffer between blocks, are written
//      to dW [M][Cg][kh][kw].
//   Each dW element sums its pixels in the order (n, oh, ow) whatever the thread count.
// conv2d_grad_input, dX = row2im(dY Fᵀ) (seed eqs. 45-46), where passes/GradInputAsConv.cpp
//   left it (strides, and "valid" convolutions, whose flipped conv would multiply mostly
//   padding zeros). Two kernels:
//   - rows (stride 1 along rows, dY rows of 4 pixels or more; emitGradInputRows): vectors
//     over consecutive output pixels of a row, so that row2im of column r = (c, i, j) is one
//     vector add into the (zero-padded) dX per vector; a tile of RT columns × PV vectors
//     sums over the output channels in registers. Threads: one image each.
//   - scatter (the rest: strided rows, rows of 1-3 pixels): rows = pixels, columns r
//     (vectorised over the packed weight rows, zero-padded to whole blocks), the reduction
//     over the group's Mg output channels; each finished PT × (MB·vl) tile is scatter-added
//     element by element to the (zero-padded) dX by its pixels' and columns' offsets in a
//     fixed order (tiles, then column blocks, then rows, then columns); tail rows are
//     recomputed from the last row but never scattered. Threads: one image each, or several
//     when an image has fewer pixels than a tile has rows.
//   Padding is cropped at the end.
// Scratch (convGradScratchBytes): about the size of x plus dY, never N·P × R. The batch N is
// the runtime one (every stride is independent of it, NCHW). Results do not depend on the
// thread count: every element is summed in one fixed order.
#include "codegen/EmitOps.h"

#include <fmt/format.h>

namespace cnnc::codegen {

using namespace llvm;

namespace {

int64_t align64(int64_t b) {
  return (b + 63) / 64 * 64;
}

// conv2d_grad_input's geometry (the scatter kernel)
struct Geom {
  int64_t N, C, H, W, M, G, Cg, Mg, kh, kw, sh, sw, pt, pl, dh, dw, Ho, Wo, Hp, Wp, P, R;
  bool padded;
  // the register tile: PT pixels × MB vectors of vl lanes over the R columns, padded to
  // whole MB·vl blocks (colsPad)
  int64_t VL, MB, PT, colsPad;
  // the row kernel (emitGradInputRows), when the stride along rows is 1 and dY's rows have
  // 4 pixels or more: vectors of `lanes` (Wo rounded up to a power of two, at most vl)
  // consecutive output pixels of one row
  // (nseg per row, the last one partial when Wo % lanes), RT columns × PV such vectors
  bool rows;
  int64_t lanes, nseg, RT, PV, nrb;
  // rows per vector: when a dY row is exactly `lanes` pixels and that is under vl, one vector
  // holds rpv = vl / lanes consecutive rows, which lie consecutively in NCHW (MNIST's 8×8 dY
  // at AVX-512: 2 rows per 16 lanes instead of 8 lanes idle); else 1
  int64_t rpv;
  int64_t xpadOff, packOff, offsOff, bytes;
};

Geom geom(const Node &n, unsigned vl) {
  const Shape &x = n.type.shape, &dy = n.operands[0]->type.shape, &w = n.operands[1]->type.shape;
  auto st = n.getInts("stride"), pads = n.getInts("pads"), dil = n.getInts("dilation");
  Geom g{};
  g.N = x[0], g.C = x[1], g.H = x[2], g.W = x[3], g.M = dy[1], g.G = n.getInt("groups");
  g.Cg = g.C / g.G, g.Mg = g.M / g.G, g.kh = w[2], g.kw = w[3];
  g.sh = st[0], g.sw = st[1], g.pt = pads[0], g.pl = pads[1], g.dh = dil[0], g.dw = dil[1];
  g.Ho = dy[2], g.Wo = dy[3], g.P = g.Ho * g.Wo, g.R = g.Cg * g.kh * g.kw;
  g.padded = pads[0] || pads[1] || pads[2] || pads[3];
  g.Hp = g.H + pads[0] + pads[2], g.Wp = g.W + pads[1] + pads[3];
  g.VL = vl;
  const int64_t nv = (g.R + vl - 1) / vl;
  // 16 vector registers (AVX2): PT·MB accumulators + MB operand vectors + 1 broadcast
  // (PT·MB = 12 for MB = 2 or 3); AVX-512's 32 hold 24 (the broadcasts fold into the FMAs):
  // the block width that pads fewer lanes
  const int64_t pad3 = (nv + 2) / 3 * 3, pad2 = (nv + 1) / 2 * 2;
  g.MB = nv == 1 ? 1 : pad3 < pad2 ? 3 : 2;
  g.PT = (vl >= 16 ? 2 : 1) * (g.MB == 3 ? 4 : g.MB == 2 ? 6 : 8);
  const int64_t bw = g.MB * vl;
  g.colsPad = (g.R + bw - 1) / bw * bw;
  g.lanes = 1;
  while (g.lanes < g.Wo && g.lanes < (int64_t)vl)
    g.lanes *= 2;
  g.rows = g.sw == 1 && g.Wo >= 4;
  g.nseg = (g.Wo + g.lanes - 1) / g.lanes;
  g.rpv = g.rows && g.Wo == g.lanes && g.lanes < (int64_t)vl ? vl / g.lanes : 1;
  // accumulators: 24 of AVX-512's 32 registers, beside PV dY vectors (the weights'
  // broadcasts fold into the FMAs); 12 of AVX2's 16, beside PV vectors and a broadcast
  g.RT = vl >= 16 ? 6 : 4, g.PV = vl >= 16 ? 4 : 3;
  g.nrb = (g.R + g.RT - 1) / g.RT;
  int64_t off = 0;
  g.xpadOff = off, off += g.padded ? align64(g.N * g.C * g.Hp * g.Wp * 4) : 0;
  g.packOff = off, off += align64(g.Mg * std::max(g.colsPad, g.nrb * g.RT) * 4);
  g.offsOff = off, off += align64(g.R * 4);
  g.bytes = off;
  // the offset table holds i32: every position in the padded input must fit
  if (g.N * g.C * g.Hp * g.Wp >= (int64_t(1) << 31))
    throw Error(fmt::format("{}: the padded input has {} elements; the fused conv gradient "
                            "indexes it with 32-bit offsets",
                            n.describe(), g.N * g.C * g.Hp * g.Wp));
  return g;
}

struct Ops {
  Emitter &e;
  Value *mul(Value *a, int64_t k) { return e.b.CreateMul(a, e.c(k), "", true, true); }
  Value *add(Value *a, Value *c) { return e.b.CreateAdd(a, c, "", true, true); }
  Value *addc(Value *a, int64_t k) { return add(a, e.c(k)); }
  void zero(Value *p, Value *count) {
    e.vecLoop(count, [&](Value *i, unsigned wd) { e.store(e.cfv(0, wd), p, i); });
  }
  void zero(Value *p, int64_t count) { zero(p, e.c(count)); }
  // off(r) = c·Hp·Wp + i·dh·Wp + j·dw: where column r of φ reads, relative to its pixel
  void offsets(const Geom &g, Value *offs) {
    e.loop(g.Cg, [&](Value *c) {
      e.loop(g.kh, [&](Value *i) {
        e.loop(g.kw, [&](Value *j) {
          Value *r = add(mul(add(mul(c, g.kh), i), g.kw), j);
          Value *o = add(add(mul(c, g.Hp * g.Wp), mul(i, g.dh * g.Wp)), mul(j, g.dw));
          e.b.CreateAlignedStore(e.b.CreateTrunc(o, e.i32), e.b.CreateInBoundsGEP(e.i32, offs, r),
                                 Align(4));
        });
      });
    });
  }
  Value *off(Value *offs, Value *r) {
    return e.b.CreateSExt(
        e.b.CreateAlignedLoad(e.i32, e.b.CreateInBoundsGEP(e.i32, offs, r), Align(4)), e.i64);
  }
  // the top-left input position of output pixel (oh, ow) of plane `plane` in the padded layout
  Value *pixelBase(const Geom &g, Value *plane, Value *oh, Value *ow) {
    return add(mul(add(mul(plane, g.Hp), mul(oh, g.sh)), g.Wp), mul(ow, g.sw));
  }
};

// ---- conv2d_grad_filter: dW = φ(x)ᵀ dY (seed eq. 35), one tap at a time
// dW[m][c][i][j] = Σ_{n,oh,ow} x[n][c][oh·sh + i·dh][ow·sw + j·dw] · dY[n][m][oh][ow]
// (x zero-padded). The register tile is PT input channels × MB vectors of output channels
// for one tap (i, j); per output pixel it loads MB vectors of dY (pixel-major, from the
// transposed copy) and broadcasts PT values of x, which sit PT planes apart (constant
// offsets from one pointer): PT·MB FMAs. A task owns the tile's dW entries for its taps, so
// every entry sums its pixels in the order (n, oh, ow) whatever the thread count.
struct FilterGeom {
  int64_t N, C, H, W, M, G, Cg, Mg, kh, kw, sh, sw, pt, pl, dh, dw, Ho, Wo, Hp, Wp, P, taps;
  bool padded;
  int64_t VL, MB, bw, nmb; // MB vectors of VL output channels: a column block of bw = MB·VL
  int64_t PT, nct, ptTail; // PT input channels per tile; nct full tiles, then a tail tile
  int64_t PJ;              // taps per tile along a kernel row (few input channels: the first layer)
  int64_t tapTasks;        // 1: a task runs every tap; else one tap block per task (few tiles)
  int64_t KR;              // output rows per reduction block (about 256 pixels)
  int64_t xpadOff, dytOff, accOff, bytes;
};

FilterGeom filterGeom(const Node &n, unsigned vl, bool narrow) {
  const Shape &x = n.operands[0]->type.shape, &dy = n.operands[1]->type.shape;
  auto st = n.getInts("stride"), pads = n.getInts("pads"), dil = n.getInts("dilation");
  auto k = n.getInts("kernel");
  FilterGeom g{};
  g.N = x[0], g.C = x[1], g.H = x[2], g.W = x[3], g.M = dy[1], g.G = n.getInt("groups");
  g.Cg = g.C / g.G, g.Mg = g.M / g.G, g.kh = k[0], g.kw = k[1], g.taps = g.kh * g.kw;
  g.sh = st[0], g.sw = st[1], g.pt = pads[0], g.pl = pads[1], g.dh = dil[0], g.dw = dil[1];
  g.Ho = dy[2], g.Wo = dy[3], g.P = g.Ho * g.Wo;
  g.padded = pads[0] || pads[1] || pads[2] || pads[3];
  g.Hp = g.H + pads[0] + pads[2], g.Wp = g.W + pads[1] + pads[3];
  // column blocks of MB vectors: 3 when that pads less than 2
  auto blockOf = [&](int64_t lanes) {
    const int64_t nv = (g.Mg + lanes - 1) / lanes, pad3 = (nv + 2) / 3 * 3, pad2 = (nv + 1) / 2 * 2;
    return nv == 1 ? 1 : pad3 < pad2 ? 3 : 2;
  };
  auto padded = [&](int64_t lanes) {
    const int64_t bw = blockOf(lanes) * lanes;
    return (g.Mg + bw - 1) / bw * bw;
  };
  // accumulators: AVX-512's 32 registers hold 24-32 of them beside the MB dY vectors (the
  // broadcasts fold into the FMAs); AVX2's 16 hold 12 beside MB dY vectors and a broadcast
  const bool wide = vl >= 16;
  // 8 lanes in the 32 registers when 512-bit FMAs run at the 256-bit rate
  // (Target::narrowConvs) and that pads at least 10% fewer lanes (MNIST SK's 20 channels:
  // 24 lanes, not 32)
  if (narrow && vl == 16 && 10 * padded(8) <= 9 * padded(16))
    vl = 8;
  g.VL = vl;
  g.MB = blockOf(vl);
  const int64_t ptMax = wide ? (g.MB == 1 ? 24 : g.MB == 2 ? 12 : 8) : (g.MB == 1 ? 8 : g.MB == 2 ? 6 : 4);
  g.bw = g.MB * vl, g.nmb = (g.Mg + g.bw - 1) / g.bw;
  g.PT = std::min(ptMax, g.Cg), g.nct = g.Cg / g.PT, g.ptTail = g.Cg % g.PT;
  // too few input channels to fill the tile (1 or 3): it also spans taps of a kernel row,
  // PJ of them (a divisor of kw), their x values dw apart
  g.PJ = 1;
  if (2 * g.PT < ptMax)
    for (int64_t d = g.kw; d >= 1; --d)
      if (g.kw % d == 0 && g.PT * d <= ptMax) {
        g.PJ = d;
        break;
      }
  const int64_t tiles = g.G * g.nmb * (g.nct + (g.ptTail ? 1 : 0));
  g.tapTasks = tiles < 8 ? 0 : 1;
  g.KR = std::max<int64_t>(1, 256 / std::max<int64_t>(g.Wo, 1));
  int64_t off = 0;
  g.xpadOff = off, off += g.padded ? align64(g.N * g.C * g.Hp * g.Wp * 4) : 0;
  g.dytOff = off, off += align64(g.G * g.nmb * g.N * g.P * g.bw * 4);
  g.accOff = off, off += align64(g.G * g.nmb * g.Cg * g.taps * g.bw * 4);
  g.bytes = off;
  return g;
}

// dYT[g][mb][n·P + pix][l] = dy[n][g·Mg + mb·bw + l][pix] (zero past Mg): VL channels ×
// VL pixels at a time, transposed in registers (threads: one (image, group, vector of
// channels) each).
void packDyT(Emitter &e, const FilterGeom &g, Value *dy, Value *dyT, Value *N) {
  auto &b = e.b;
  Ops o{e};
  const int64_t VL = g.VL, nv = g.nmb * g.MB, full = g.P / VL, tail = g.P % VL;
  auto chunk = [&](Value *src, Value *dst, Value *m0, int64_t pixels) {
    std::vector<Value *> rows(VL);
    for (int64_t l = 0; l < VL; ++l) {
      Value *m = o.addc(m0, l), *in = b.CreateICmpSLT(m, e.c(g.Mg));
      Value *at = e.gep(src, o.mul(e.smin(m, e.c(g.Mg - 1)), g.P));
      Value *v;
      if (pixels == VL) {
        v = b.CreateAlignedLoad(e.vty(VL), at, Align(4));
      } else {
        std::vector<Constant *> mask(VL);
        for (int64_t q = 0; q < VL; ++q)
          mask[q] = b.getInt1(q < pixels);
        v = b.CreateMaskedLoad(e.vty(VL), at, Align(4), ConstantVector::get(mask),
                               e.cfv(0, VL));
      }
      rows[l] = b.CreateSelect(in, v, e.cfv(0, VL));
    }
    rows = transposeSquare(e, rows);
    for (int64_t q = 0; q < pixels; ++q)
      b.CreateAlignedStore(rows[q], e.gep(dst, e.c(q * g.bw)), Align(4));
  };
  e.parallelFor(o.mul(N, g.G * nv), [&](Value *u) {
    Value *nn = b.CreateUDiv(u, e.c(g.G * nv)), *r = b.CreateURem(u, e.c(g.G * nv));
    Value *gi = b.CreateUDiv(r, e.c(nv)), *v = b.CreateURem(r, e.c(nv));
    Value *mb = b.CreateUDiv(v, e.c(g.MB)), *vi = b.CreateURem(v, e.c(g.MB));
    Value *m0 = o.mul(v, VL); // the first channel within the group
    // channel 0 of the group in image nn; chunk() offsets each row by its channel
    Value *src = e.gep(dy, o.mul(o.add(o.mul(nn, g.M), o.mul(gi, g.Mg)), g.P));
    Value *panel = o.mul(o.add(o.mul(gi, g.nmb), mb), g.N * g.P * g.bw);
    Value *dst = e.gep(dyT, o.add(o.add(panel, o.mul(o.mul(nn, g.P), g.bw)), o.mul(vi, VL)));
    if (g.P == 1) { // a 1×1 dY is pixel-major already: copy, zero past Mg
      e.loop(VL, [&](Value *l) {
        Value *m = o.add(m0, l);
        Value *v = e.load(src, e.smin(m, e.c(g.Mg - 1)));
        e.store(b.CreateSelect(b.CreateICmpSLT(m, e.c(g.Mg)), v, e.cf(0)), dst, l);
      });
      return;
    }
    e.loop(full, [&](Value *k) {
      chunk(e.gep(src, o.mul(k, VL)), e.gep(dst, o.mul(k, VL * g.bw)), m0, VL);
    });
    if (tail)
      chunk(e.gep(src, e.c(full * VL)), e.gep(dst, e.c(full * VL * g.bw)), m0, tail);
  }, g.N * g.M * g.P);
}

// The row kernel (EmitConvGradRows.cpp) when its lanes carry more real work: a first layer's
// few input channels (this kernel's tile spans taps to fill its registers, and transposes a
// large dY), or output channels that pad this kernel's column blocks by 10% or more (MNIST
// BASE's 50 in 64 lanes) while rows fill its vectors better.
bool useRows(const FilterGeom &fg, const FilterRowsGeom &rg) {
  if (!rg.valid || getenv("CNNC_NOROWS"))
    return false;
  const double tapLanes = double(fg.Mg) / double(fg.nmb * fg.bw);
  return fg.Cg <= 4 ? rg.lanesUsed >= 0.75 : tapLanes < 0.9 && rg.lanesUsed > tapLanes + 0.05;
}

void emitGradFilter(Emitter &e, const Node &n) {
  const FilterGeom g = filterGeom(n, e.vl, e.plan.layout.narrowConvs);
  if (const FilterRowsGeom rg = filterRowsGeom(n, e.vl, e.plan.layout.narrowConvs); useRows(g, rg))
    return emitGradFilterRows(e, n, rg);
  auto &b = e.b;
  Ops o{e};
  Value *x = e.ptr(n.operands[0]), *dy = e.ptr(n.operands[1]), *dW = e.ptr(&n);
  Value *xp = g.padded ? e.scratch(&n, g.xpadOff) : x, *dyT = e.scratch(&n, g.dytOff),
        *accBuf = e.scratch(&n, g.accOff);
  const int64_t VL = g.VL, MB = g.MB, bw = g.bw, HpWp = g.Hp * g.Wp;
  // the runtime batch (a step compiled at N runs any b <= N: docs/codegen.md "Batch")
  Value *N = e.dim(n.operands[0], 0), *rows = o.mul(N, g.Ho);

  // 1. the zero-padded input
  if (g.padded)
    copyZeroPadded(e, x, xp, o.mul(N, g.C), g.H, g.W, g.Hp, g.Wp, g.pt, g.pl, g.N * g.C * g.H * g.W);
  // 2. dY pixel-major, one panel per (group, column block)
  packDyT(e, g, dy, dyT, N);

  // 3. the tiles: task = (group, column block, channel tile[, tap block])
  const int64_t cts = g.nct + (g.ptTail ? 1 : 0), PJ = g.PJ, jbs = g.kw / PJ,
                tapBlocks = g.kh * jbs, tapGroups = g.tapTasks == 1 ? 1 : tapBlocks;
  std::vector<Value *> acc(g.PT * PJ * MB);
  for (auto &a : acc)
    a = e.entryAlloca(e.vty(VL), "gfacc");
  Value *blocks = b.CreateUDiv(o.addc(rows, g.KR - 1), e.c(g.KR));
  // tile entry (p, s): input channel c0 + p, tap t + s (PJ taps along a kernel row)
  auto tile = [&](Value *gi, Value *mb, Value *c0, Value *tb0, Value *tb1, int64_t PT) {
    Value *panel = e.gep(dyT, o.mul(o.add(o.mul(gi, g.nmb), mb), g.N * g.P * bw));
    // the tile's dW entries, [c][tap][bw] inside the (group, column block) region
    Value *region = e.gep(accBuf, o.mul(o.add(o.mul(o.add(o.mul(gi, g.nmb), mb), g.Cg), c0),
                                        g.taps * bw));
    Value *xg = e.gep(xp, o.mul(o.add(o.mul(gi, g.Cg), c0), HpWp)); // plane (0, g·Cg + c0)
    auto entry = [&](int64_t p, int64_t s, Value *t, int64_t v) {
      return o.add(o.mul(o.add(e.c(p * g.taps + s), t), bw), e.c(v * VL));
    };
    e.loop(blocks, [&](Value *kb) {
      Value *first = b.CreateICmpEQ(kb, e.c(0));
      Value *q0 = o.mul(kb, g.KR), *q1 = e.smin(o.addc(q0, g.KR), rows);
      e.loop(tb0, tb1, [&](Value *tb) {
        Value *i = b.CreateUDiv(tb, e.c(jbs)), *j = o.mul(b.CreateURem(tb, e.c(jbs)), PJ);
        Value *t = o.add(o.mul(i, g.kw), j);
        Value *toff = o.add(o.mul(i, g.dh * g.Wp), o.mul(j, g.dw));
        // the first block starts from zero, the others from what the previous left
        for (auto *a : acc)
          b.CreateStore(e.cfv(0, VL), a);
        e.ifThen(b.CreateNot(first), [&] {
          for (int64_t p = 0; p < PT; ++p)
            for (int64_t s = 0; s < PJ; ++s)
              for (int64_t v = 0; v < MB; ++v)
                b.CreateStore(e.load(region, entry(p, s, t, v), VL), acc[(p * PJ + s) * MB + v]);
        });
        e.loop(q0, q1, [&](Value *q) {
          Value *nn = b.CreateUDiv(q, e.c(g.Ho)), *oh = b.CreateURem(q, e.c(g.Ho));
          Value *xrow = e.gep(xg, o.add(o.add(o.mul(nn, g.C * HpWp), o.mul(oh, g.sh * g.Wp)), toff));
          Value *drow = e.gep(panel, o.mul(q, g.Wo * bw));
          e.loopNoUnroll(g.Wo, [&](Value *ow) {
            Value *dp = e.gep(drow, o.mul(ow, bw)), *xq = e.gep(xrow, o.mul(ow, g.sw));
            std::vector<Value *> dv(MB);
            for (int64_t v = 0; v < MB; ++v)
              dv[v] = b.CreateAlignedLoad(e.vty(VL), e.gep(dp, e.c(v * VL)), Align(4));
            for (int64_t p = 0; p < PT; ++p)
              for (int64_t s = 0; s < PJ; ++s) {
                Value *xs = e.splat(b.CreateAlignedLoad(e.f32, e.gep(xq, e.c(p * HpWp + s * g.dw)),
                                                        Align(4)), VL);
                for (int64_t v = 0; v < MB; ++v) {
                  Value *a = acc[(p * PJ + s) * MB + v];
                  b.CreateStore(e.fma(xs, dv[v], b.CreateLoad(e.vty(VL), a)), a);
                }
              }
          });
        });
        for (int64_t p = 0; p < PT; ++p)
          for (int64_t s = 0; s < PJ; ++s)
            for (int64_t v = 0; v < MB; ++v)
              e.store(b.CreateLoad(e.vty(VL), acc[(p * PJ + s) * MB + v]), region, entry(p, s, t, v));
      });
    });
    // no rows at all (an empty batch): dW is zero
    e.ifThen(b.CreateICmpEQ(blocks, e.c(0)), [&] {
      e.loop(tb0, tb1, [&](Value *tb) {
        Value *t = o.add(o.mul(b.CreateUDiv(tb, e.c(jbs)), g.kw), o.mul(b.CreateURem(tb, e.c(jbs)), PJ));
        for (int64_t p = 0; p < PT; ++p)
          for (int64_t s = 0; s < PJ; ++s)
            for (int64_t v = 0; v < MB; ++v)
              e.store(e.cfv(0, VL), region, entry(p, s, t, v));
      });
    });
  };
  const int64_t tasks = g.G * g.nmb * cts * tapGroups;
  e.parallelFor(tasks, [&](Value *u) {
    Value *tg = b.CreateURem(u, e.c(tapGroups)), *r = b.CreateUDiv(u, e.c(tapGroups));
    Value *ct = b.CreateURem(r, e.c(cts)), *r2 = b.CreateUDiv(r, e.c(cts));
    Value *mb = b.CreateURem(r2, e.c(g.nmb)), *gi = b.CreateUDiv(r2, e.c(g.nmb));
    Value *t0 = tapGroups == 1 ? e.c(0) : tg, *t1 = tapGroups == 1 ? e.c(tapBlocks) : o.addc(tg, 1);
    Value *c0 = o.mul(ct, g.PT);
    if (g.nct)
      e.ifThen(b.CreateICmpULT(ct, e.c(g.nct)), [&] { tile(gi, mb, c0, t0, t1, g.PT); });
    if (g.ptTail)
      e.ifThen(b.CreateICmpEQ(ct, e.c(g.nct)), [&] { tile(gi, mb, c0, t0, t1, g.ptTail); });
  }, g.N * g.P * g.M * g.Cg * g.taps);

  // 4. dW [g·Mg + m][r] <- accBuf [g][mb][r][lane], r = (c, tap): per (group, column block,
  // vector) VL rows × VL lanes at a time, transposed in registers (a lane-by-lane copy reads
  // each accumulator line once per lane: a third of the kernel's time when dY has one pixel,
  // MNIST BASE's conv3). Threads: one (group, column block, vector) each.
  const int64_t R = g.Cg * g.taps, rFull = R / VL, rTail = R % VL;
  e.parallelFor(g.G * g.nmb * MB, [&](Value *u) {
    Value *gi = b.CreateUDiv(u, e.c(g.nmb * MB)), *gv = b.CreateURem(u, e.c(g.nmb * MB));
    Value *mb = b.CreateUDiv(gv, e.c(MB)), *v = b.CreateURem(gv, e.c(MB));
    Value *m0 = o.add(o.mul(mb, bw), o.mul(v, VL)); // the vector's first channel in the group
    Value *src = e.gep(accBuf, o.add(o.mul(o.add(o.mul(gi, g.nmb), mb), R * bw), o.mul(v, VL)));
    Value *dst = e.gep(dW, o.mul(o.add(o.mul(gi, g.Mg), m0), R));
    auto block = [&](Value *r0, int64_t count) {
      std::vector<Value *> rowsT(VL);
      for (int64_t i = 0; i < VL; ++i) // rows past the tail reload the last (never stored)
        rowsT[i] = b.CreateAlignedLoad(e.vty(VL), e.gep(src, o.mul(o.addc(r0, std::min(i, count - 1)), bw)),
                                       Align(4));
      rowsT = transposeSquare(e, rowsT);
      for (int64_t l = 0; l < VL; ++l)
        e.ifThen(b.CreateICmpSLT(o.addc(m0, l), e.c(g.Mg)),
                 [&] { storePrefix(e, rowsT[l], e.gep(dst, o.add(e.c(l * R), r0)), count); });
    };
    e.loop(rFull, [&](Value *rb) { block(o.mul(rb, VL), VL); });
    if (rTail)
      block(e.c(rFull * VL), rTail);
  }, g.M * g.Cg * g.taps);
}

// dX = the interior of the zero-padded accumulator xp (threads: one plane each)
void cropPadding(Emitter &e, const Geom &g, Value *xp, Value *dX, Value *N) {
  if (!g.padded)
    return;
  Ops o{e};
  e.parallelFor(o.mul(N, g.C), [&](Value *pl) {
    e.loop(g.H, [&](Value *h) {
      Value *dst = o.mul(o.add(o.mul(pl, g.H), h), g.W);
      Value *src = o.addc(o.mul(o.addc(o.add(o.mul(pl, g.Hp), h), g.pt), g.Wp), g.pl);
      e.vecLoop(e.c(g.W), [&](Value *i, unsigned wd) {
        e.store(e.load(xp, o.add(src, i), wd), dX, o.add(dst, i));
      });
    });
  }, g.N * g.C * g.H * g.W);
}

// ---- conv2d_grad_input along rows: dX = row2im(dY Fᵀ) (seed eqs. 45-46) with vectors over
// output pixels. For column r = (c, i, j) of Fᵀ and `lanes` consecutive output pixels
// (oh, ow..ow+lanes-1) of one dY row, the products land on consecutive input pixels
// (oh·sh + i·dh, ow + j·dw ..): row2im of a whole vector is one vector add, where the pixel-
// major tile of emitGradInput scatters element by element. Per image and group, a tile of
// RT columns × PV pixel vectors sums over the Mg output channels in order (PV dY vectors
// loaded, RT weights broadcast from a panel [rb][m][RT]), then adds into the zero-padded
// dX column by column, vector by vector: a fixed order at any thread count (threads: one
// image each).
void emitGradInputRows(Emitter &e, const Node &n, const Geom &g) {
  auto &b = e.b;
  Ops o{e};
  Value *dy = e.ptr(n.operands[0]), *w = e.ptr(n.operands[1]), *dX = e.ptr(&n);
  Value *xp = g.padded ? e.scratch(&n, g.xpadOff) : dX, *wpack = e.scratch(&n, g.packOff),
        *offs = e.scratch(&n, g.offsOff);
  Value *N = e.dim(n.operands[0], 0);
  // a vector: RP rows of L pixels (RP = g.rpv; a partial last vector of rows when RP does not
  // divide Ho), or L pixels of one row (RP = 1; a partial last vector of each row when L does
  // not divide Wo)
  const int64_t L = g.lanes, RP = g.rpv, VW = L * RP, RT = g.RT, PV = g.PV, HpWp = g.Hp * g.Wp;
  const int64_t nq = RP > 1 ? (g.Ho + RP - 1) / RP : g.Ho * g.nseg;
  const int64_t npb = (nq + PV - 1) / PV;
  const int64_t tailLanes = RP > 1 ? (g.Ho - (nq - 1) * RP) * L : g.Wo - (g.nseg - 1) * L;
  Type *vt = e.vty(unsigned(VW)), *rowT = e.vty(unsigned(L));
  o.offsets(g, offs);
  std::vector<Value *> acc(RT * PV);
  for (auto &a : acc)
    a = e.entryAlloca(vt, "giracc");
  // the lanes of a partial last vector of a row (none when lanes divides Wo)
  std::vector<Constant *> tm(VW);
  for (int64_t l = 0; l < VW; ++l)
    tm[l] = b.getInt1(l < tailLanes);
  Value *tailMask = ConstantVector::get(tm);
  e.loop(g.G, [&](Value *gi) {
    // wpack[rb][m][t] = F[g·Mg + m][rb·RT + t], zero past R
    e.loop(g.nrb, [&](Value *rb) {
      e.loop(g.Mg, [&](Value *m) {
        Value *src = o.mul(o.add(o.mul(gi, g.Mg), m), g.R);
        Value *dst = o.mul(o.add(o.mul(rb, g.Mg), m), RT);
        for (int64_t t = 0; t < RT; ++t) {
          Value *r = o.addc(o.mul(rb, RT), t), *in = b.CreateICmpSLT(r, e.c(g.R));
          Value *v = e.load(w, o.add(src, e.smin(r, e.c(g.R - 1))));
          e.store(b.CreateSelect(in, v, e.cf(0)), wpack, o.addc(dst, t));
        }
      });
    });
    e.parallelFor(N, [&](Value *nn) {
      Value *dyImg = e.gep(dy, o.mul(o.add(o.mul(nn, g.M), o.mul(gi, g.Mg)), g.P));
      Value *xImg = e.gep(xp, o.mul(o.add(o.mul(nn, g.C), o.mul(gi, g.Cg)), HpWp));
      o.zero(xImg, g.Cg * HpWp);
      e.loop(g.nrb, [&](Value *rb) {
        Value *panel = e.gep(wpack, o.mul(rb, g.Mg * RT));
        e.loop(npb, [&](Value *pb) {
          std::vector<Value *> dyOff(PV), dst(PV), valid(PV), tail(PV);
          std::vector<Value *> oh(PV);
          for (int64_t v = 0; v < PV; ++v) {
            Value *q = o.addc(o.mul(pb, PV), v), *qc = e.smin(q, e.c(nq - 1));
            valid[v] = b.CreateICmpSLT(q, e.c(nq));
            if (RP > 1) { // rows oh .. oh+RP-1, whole
              oh[v] = o.mul(qc, RP);
              tail[v] = b.CreateICmpEQ(qc, e.c(nq - 1));
              dyOff[v] = o.mul(oh[v], g.Wo);
              dst[v] = o.mul(oh[v], g.sh * g.Wp);
              continue;
            }
            oh[v] = b.CreateUDiv(qc, e.c(g.nseg));
            Value *ow = o.mul(b.CreateURem(qc, e.c(g.nseg)), L);
            tail[v] = b.CreateICmpEQ(b.CreateURem(qc, e.c(g.nseg)), e.c(g.nseg - 1));
            dyOff[v] = o.add(o.mul(oh[v], g.Wo), ow);
            dst[v] = o.add(o.mul(oh[v], g.sh * g.Wp), ow);
          }
          // a partial vector loads and stores its real lanes only (dY's last row ends the buffer)
          auto loadV = [&](Value *p, int64_t v) -> Value * {
            if (tailLanes == VW)
              return b.CreateAlignedLoad(vt, p, Align(4));
            Value *mask = b.CreateSelect(tail[v], tailMask, Constant::getAllOnesValue(tailMask->getType()));
            return b.CreateMaskedLoad(vt, p, Align(4), mask, e.cfv(0, unsigned(VW)));
          };
          auto storeV = [&](Value *x, Value *p, int64_t v) {
            if (tailLanes == VW) {
              b.CreateAlignedStore(x, p, Align(4));
              return;
            }
            Value *mask = b.CreateSelect(tail[v], tailMask, Constant::getAllOnesValue(tailMask->getType()));
            b.CreateMaskedStore(x, p, Align(4), mask);
          };
          for (auto *a : acc)
            b.CreateStore(e.cfv(0, unsigned(VW)), a);
          e.loop(g.Mg, [&](Value *m) {
            std::vector<Value *> dv(PV);
            for (int64_t v = 0; v < PV; ++v)
              dv[v] = loadV(e.gep(dyImg, o.add(o.mul(m, g.P), dyOff[v])), v);
            for (int64_t t = 0; t < RT; ++t) {
              Value *wv = e.splat(e.load(panel, o.addc(o.mul(m, RT), t)), unsigned(VW));
              for (int64_t v = 0; v < PV; ++v) {
                Value *a = acc[t * PV + v];
                b.CreateStore(e.fma(wv, dv[v], b.CreateLoad(vt, a)), a);
              }
            }
          });
          // row2im: column by column, vector by vector
          for (int64_t t = 0; t < RT; ++t) {
            Value *r = o.addc(o.mul(rb, RT), t);
            e.ifThen(b.CreateICmpSLT(r, e.c(g.R)), [&] {
              Value *col = e.gep(xImg, o.off(offs, r));
              for (int64_t v = 0; v < PV; ++v)
                e.ifThen(valid[v], [&] {
                  Value *p = e.gep(col, dst[v]);
                  Value *sum = b.CreateLoad(vt, acc[t * PV + v]);
                  if (RP == 1) {
                    storeV(b.CreateFAdd(loadV(p, v), sum), p, v);
                    return;
                  }
                  // row s of the vector lands sh·Wp further down dX (rows past Ho: none)
                  for (int64_t s = 0; s < RP; ++s) {
                    std::vector<int> lanes(L);
                    for (int64_t l = 0; l < L; ++l)
                      lanes[l] = int(s * L + l);
                    auto one = [&] {
                      Value *ps = e.gep(p, e.c(s * g.sh * g.Wp));
                      Value *row = b.CreateShuffleVector(sum, lanes);
                      b.CreateAlignedStore(b.CreateFAdd(b.CreateAlignedLoad(rowT, ps, Align(4)), row), ps,
                                           Align(4));
                    };
                    if (s == 0 || g.Ho % RP == 0)
                      one();
                    else
                      e.ifThen(b.CreateICmpSLT(o.addc(oh[v], s), e.c(g.Ho)), one);
                  }
                });
            });
          }
        });
      });
    }, g.N * g.P * g.R * g.Mg);
  });
  cropPadding(e, g, xp, dX, N);
}

void emitGradInput(Emitter &e, const Node &n) {
  const Geom g = geom(n, e.vl);
  if (g.rows)
    return emitGradInputRows(e, n, g);
  auto &b = e.b;
  Ops o{e};
  Value *dy = e.ptr(n.operands[0]), *w = e.ptr(n.operands[1]), *dX = e.ptr(&n);
  const int64_t VL = g.VL, MB = g.MB, PT = g.PT, bw = MB * VL;
  // the finished tile before its scatter: an alloca, so each thread has its own
  Value *xp = g.padded ? e.scratch(&n, g.xpadOff) : dX, *wpack = e.scratch(&n, g.packOff),
        *tile = e.entryAlloca(ArrayType::get(e.f32, PT * bw), "gitile"),
        *offs = e.scratch(&n, g.offsOff);
  // the runtime batch: dX's first b images
  Value *N = e.dim(n.operands[0], 0);

  o.zero(xp, o.mul(N, g.C * g.Hp * g.Wp));
  o.offsets(g, offs);
  if (g.colsPad != g.R)
    o.zero(wpack, g.Mg * g.colsPad);
  std::vector<Value *> acc(PT * MB);
  for (auto &a : acc)
    a = e.entryAlloca(e.vty(VL), "giacc");
  e.loop(g.G, [&](Value *gi) {
    // F of this group, rows zero-padded to whole column blocks: wpack[m][r] = w[g·Mg + m][r]
    e.loop(g.Mg, [&](Value *m) {
      Value *src = o.mul(o.add(o.mul(gi, g.Mg), m), g.R), *dst = o.mul(m, g.colsPad);
      e.vecLoop(e.c(g.R), [&](Value *r, unsigned wd) {
        e.store(e.load(w, o.add(src, r), wd), wpack, o.add(dst, r));
      });
    });
    // threads: one unit of K whole images each (its tiles in order): an image's windows
    // scatter into its own planes of dX only, so no two threads add into one element, and
    // each element's sum has the same order at any thread count. K = 1 unless an image has
    // fewer pixels than a tile has rows (a 1×1 dY: an fc layer's gradient), when one tile
    // spans K images.
    const int64_t K = g.P < PT ? PT / g.P : 1, unitRows = K * g.P;
    Value *units = b.CreateUDiv(o.addc(N, K - 1), e.c(K));
    e.parallelFor(units, [&](Value *u) {
    e.loop((unitRows + PT - 1) / PT, [&](Value *t) {
      std::vector<Value *> dyb(PT), xb(PT), valid(PT);
      for (int64_t p = 0; p < PT; ++p) {
        Value *row = o.addc(o.mul(t, PT), p), *ri = e.smin(row, e.c(unitRows - 1));
        Value *img = o.add(o.mul(u, K), b.CreateUDiv(ri, e.c(g.P)));
        Value *nn = e.smin(img, b.CreateSub(N, e.c(1))), *pix = b.CreateURem(ri, e.c(g.P));
        valid[p] = b.CreateAnd(b.CreateICmpSLT(row, e.c(unitRows)), b.CreateICmpSLT(img, N));
        Value *oh = b.CreateUDiv(pix, e.c(g.Wo)), *ow = b.CreateURem(pix, e.c(g.Wo));
        dyb[p] = o.add(o.mul(o.add(o.mul(nn, g.M), o.mul(gi, g.Mg)), g.P), pix);
        xb[p] = o.pixelBase(g, o.add(o.mul(nn, g.C), o.mul(gi, g.Cg)), oh, ow);
      }
      e.loop(g.colsPad / bw, [&](Value *cb) {
        Value *col0 = o.mul(cb, bw);
        for (auto *a : acc)
          b.CreateStore(e.cfv(0, VL), a);
        // the tile of dY Fᵀ: rows = pixels, columns r, summed over m in order
        e.loop(g.Mg, [&](Value *m) {
          Value *wrow = o.add(o.mul(m, g.colsPad), col0);
          std::vector<Value *> wv(MB);
          for (int64_t v = 0; v < MB; ++v)
            wv[v] = e.load(wpack, o.addc(wrow, v * VL), VL);
          Value *dm = o.mul(m, g.P);
          for (int64_t p = 0; p < PT; ++p) {
            Value *ds = e.splat(e.load(dy, o.add(dyb[p], dm)), VL);
            for (int64_t v = 0; v < MB; ++v) {
              Value *a = acc[p * MB + v];
              b.CreateStore(e.fma(ds, wv[v], b.CreateLoad(e.vty(VL), a)), a);
            }
          }
        });
        for (int64_t p = 0; p < PT; ++p)
          for (int64_t v = 0; v < MB; ++v)
            e.store(b.CreateLoad(e.vty(VL), acc[p * MB + v]), tile, e.c(p * bw + v * VL));
        // row2im on the tile: valid rows, real columns
        Value *ncols = e.smin(e.c(bw), b.CreateSub(e.c(g.R), col0));
        for (int64_t p = 0; p < PT; ++p)
          e.ifThen(valid[p], [&] {
            e.loop(ncols, [&](Value *cc) {
              Value *at = o.add(xb[p], o.off(offs, o.add(col0, cc)));
              Value *v = e.load(tile, o.addc(cc, p * bw));
              e.store(b.CreateFAdd(e.load(xp, at), v), xp, at);
            });
          });
      });
    });
    }, g.N * g.P * g.R * g.Mg);
  });
  cropPadding(e, g, xp, dX, N);
}

} // namespace

// A window that covers its whole unpadded input: the seed's fully connected layer as a
// convolution (section 6.8; MNIST BASE's 4×4 conv on a 4×4 map). Then φ(x) = x, one row of
// C·kh·kw per image, and dY is N×M: eq. 45 is dX = dY·F and eq. 35 is dW = dYᵀ·X, plain
// matrix products in NCHW as it is. matmul's GEMM runs them at ~300 GFLOP/s on Zen 5 where
// the scatter and tap kernels, built for windows that slide, reached ~110 (MNIST BASE's
// conv3 at batch 100, 2 threads).
static bool fullWindow(const Node &n, const Shape &x, const Shape &w) {
  auto pads = n.getInts("pads"), dil = n.getInts("dilation");
  return n.getInt("groups") == 1 && std::all_of(pads.begin(), pads.end(), [](int64_t p) { return p == 0; }) &&
         dil[0] == 1 && dil[1] == 1 && x[2] == w[2] && x[3] == w[3];
}

// (conv2d_grad_filter's weight shape is its kernel attribute; conv2d_grad_input's x shape is
// its input_shape)
static bool fullWindowGrad(const Node &n) {
  if (n.op == OpKind::Conv2dGradFilter) {
    auto k = n.getInts("kernel");
    return fullWindow(n, n.operands[0]->type.shape, {0, 0, k[0], k[1]});
  }
  return n.op == OpKind::Conv2dGradInput && fullWindow(n, n.getInts("input_shape"), n.operands[1]->type.shape);
}

int64_t convGradScratchBytes(const Node &n, unsigned vl, bool narrow) {
  if (fullWindowGrad(n))
    return 0;
  if (n.op == OpKind::Conv2dGradFilter) {
    const FilterGeom fg = filterGeom(n, vl, narrow);
    const FilterRowsGeom rg = filterRowsGeom(n, vl, narrow);
    return useRows(fg, rg) ? rg.bytes : fg.bytes;
  }
  if (n.op == OpKind::Conv2dGradInput)
    return geom(n, vl).bytes;
  return 0;
}

// filter_flip (passes/GradInputAsConv.cpp): out[g·Cg + c][m][i][j] = w[g·Mg + m][c][kh-1-i][kw-1-j].
// Runs every training step, so it must cost about a copy (threads: one output channel of
// the convolution it feeds, i.e. one input channel c of the original, each).
void emitFilterFlip(Emitter &e, const Node &n) {
  const Shape &ws = n.operands[0]->type.shape;
  const int64_t M = ws[0], Cg = ws[1], kh = ws[2], kw = ws[3], G = n.getInt("groups");
  const int64_t Mg = M / G, taps = kh * kw, VL = e.vl;
  auto &b = e.b;
  Ops o{e};
  Value *w = e.ptr(n.operands[0]), *out = e.ptr(&n);
  // a filter's taps fit a vector (3×3 and smaller at AVX-512, 2×2 at AVX2): one masked load,
  // a reversing shuffle and a masked store per (c, m); else a scalar loop
  std::vector<Constant *> mask(VL);
  std::vector<int> rev(VL);
  for (int64_t t = 0; t < VL; ++t) {
    mask[t] = b.getInt1(t < taps);
    rev[t] = t < taps ? int(taps - 1 - t) : int(t);
  }
  e.parallelFor(e.c(G * Cg), [&](Value *gc) {
    Value *gi = b.CreateUDiv(gc, e.c(Cg)), *c = b.CreateURem(gc, e.c(Cg));
    e.loop(Mg, [&](Value *m) {
      Value *src = e.gep(w, o.mul(o.add(o.mul(o.add(o.mul(gi, Mg), m), Cg), c), taps));
      Value *dst = e.gep(out, o.mul(o.add(o.mul(gc, Mg), m), taps));
      if (taps <= VL) {
        Value *v = b.CreateMaskedLoad(e.vty(VL), src, Align(4), ConstantVector::get(mask),
                                      e.cfv(0, VL));
        b.CreateMaskedStore(b.CreateShuffleVector(v, rev), dst, Align(4), ConstantVector::get(mask));
        return;
      }
      e.loop(taps, [&](Value *t) {
        e.store(e.load(src, b.CreateSub(e.c(taps - 1), t)), dst, t);
      });
    });
  }, M * Cg * taps);
}

// The entries of the emitter table (EmitOps.cpp).
void emitConv2dGradFilter(Emitter &e, const Node &n) {
  if (fullWindowGrad(n)) { // dW[M][K] = dYᵀ·X, summed over the runtime batch
    const Node *x = n.operands[0];
    const int64_t M = n.type.shape[0], K = n.type.numel() / M;
    emitProduct(e, M, K, x->type.shape[0], true, e.ptr(n.operands[1]), e.ptr(x), e.ptr(&n),
                nullptr, e.dim(x, 0));
    return;
  }
  emitGradFilter(e, n);
}

void copyZeroPadded(Emitter &e, Value *x, Value *xp, Value *planes, int64_t H, int64_t W, int64_t Hp,
                    int64_t Wp, int64_t pt, int64_t pl, int64_t work) {
  Ops o{e};
  o.zero(xp, o.mul(planes, Hp * Wp));
  e.parallelFor(planes, [&](Value *p) {
    e.loop(H, [&](Value *h) {
      Value *src = o.mul(o.add(o.mul(p, H), h), W);
      Value *dst = o.addc(o.mul(o.addc(o.add(o.mul(p, Hp), h), pt), Wp), pl);
      e.vecLoop(e.c(W), [&](Value *i, unsigned wd) { e.store(e.load(x, o.add(src, i), wd), xp, o.add(dst, i)); });
    });
  }, work);
}
void emitConv2dGradInput(Emitter &e, const Node &n) {
  if (fullWindowGrad(n)) { // dX[N][K] = dY·F, rows = the runtime batch
    const Node *dy = n.operands[0], *w = n.operands[1];
    const int64_t M = w->type.shape[0], K = w->type.numel() / M;
    emitProduct(e, n.type.shape[0], K, M, false, e.ptr(dy), e.ptr(w), e.ptr(&n), e.dim(dy, 0),
                nullptr);
    return;
  }
  emitGradInput(e, n);
}

} // namespace cnnc::codegen
