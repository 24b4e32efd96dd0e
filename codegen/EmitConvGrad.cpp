// The fused conv2d gradients (passes/FuseConvGrad.cpp), as register-blocked matrix products
// computed tile by tile from address arithmetic, never materialising φ(x) (the forward
// kernel's approach, EmitConv.cpp, and the tile of EmitMatMul.cpp's GEMM: PT rows × MB
// vectors of FMA accumulators). Per group g, with P = Ho·Wo, R = Cg·kh·kw, r = (c, i, j):
//
// conv2d_grad_filter, dW = φ(x)ᵀ dY (seed eq. 35): rows r, columns m (output channels,
//   vectorised), the reduction over the batch's output pixels (n, oh, ow).
//   1. x is copied into a zero-padded buffer when the conv pads (no bounds checks);
//   2. dY of the group is packed pixel-major, KC pixels at a time (what makes m contiguous);
//   3. per block of KC pixels, per column block, per tile of PT rows: the accumulators are
//      loaded from the [rows][mgPad] accumulator buffer (zero for the first block), each
//      pixel adds PT×MB FMAs (MB vectors of dY, PT broadcasts of x at pix(pixel) + off(r),
//      both from small tables), and they are stored back; so every dW element sums its
//      pixels in the fixed order n, oh, ow;
//   4. the accumulator buffer is written to dW [M][Cg][kh][kw].
// conv2d_grad_input, dX = row2im(dY Fᵀ) (seed eqs. 45-46): rows = pixels, columns r
//   (vectorised over the packed weight rows, zero-padded to whole blocks), the reduction
//   over the group's Mg output channels; each finished PT × (MB·vl) tile is scatter-added
//   at once to the (zero-padded) dX by its pixels' and columns' offsets — row2im on the tile
//   — in a fixed order (tiles, then column blocks, then rows, then columns); tail rows are
//   recomputed from the last row but never scattered. Padding is cropped at the end.
// Scratch per op (convGradScratchBytes): the padded copy, the packed operand, offset
// tables off(r) and pix(pixel) (i32), and the accumulator / tile buffer: about the size of x plus dY, never
// N·P × R. The batch N is the runtime one (every stride is independent of it, NCHW).
// Threads (Emitter::parallelFor): the filter gradient splits each K block's packing by pixel
// and its product by (column block, row tile), the K blocks staying in order; the input
// gradient splits by image (an image scatters into its own planes only). Either way each
// element is summed in one fixed order, so results do not depend on the thread count.
#include "codegen/Emitter.h"

#include <fmt/format.h>

namespace cnnc::codegen {

using namespace llvm;

namespace {

int64_t align64(int64_t b) {
  return (b + 63) / 64 * 64;
}

struct Geom {
  int64_t N, C, H, W, M, G, Cg, Mg, kh, kw, sh, sw, pt, pl, dh, dw, Ho, Wo, Hp, Wp, P, R;
  bool padded;
  // the register tile: PT rows × MB vectors of vl lanes; `cols` = the vectorised extent
  // (Mg for the filter gradient, R for the input gradient) padded to whole MB·vl blocks
  int64_t VL, MB, PT, colsPad, rowTiles;
  int64_t KC;                // filter gradient: pixels per reduction block
  int64_t xpadOff, packOff, accOff, offsOff, pixOff, bytes;
};

Geom geom(const Node &n, unsigned vl) {
  const bool filter = n.op == OpKind::Conv2dGradFilter;
  const Shape &x = filter ? n.operands[0]->type.shape : n.type.shape;
  const Shape &dy = filter ? n.operands[1]->type.shape : n.operands[0]->type.shape;
  auto st = n.getInts("stride"), pads = n.getInts("pads"), dil = n.getInts("dilation");
  auto k = filter ? n.getInts("kernel")
                  : std::vector<int64_t>{n.operands[1]->type.shape[2], n.operands[1]->type.shape[3]};
  Geom g{};
  g.N = x[0], g.C = x[1], g.H = x[2], g.W = x[3], g.M = dy[1], g.G = n.getInt("groups");
  g.Cg = g.C / g.G, g.Mg = g.M / g.G, g.kh = k[0], g.kw = k[1];
  g.sh = st[0], g.sw = st[1], g.pt = pads[0], g.pl = pads[1], g.dh = dil[0], g.dw = dil[1];
  g.Ho = dy[2], g.Wo = dy[3], g.P = g.Ho * g.Wo, g.R = g.Cg * g.kh * g.kw;
  g.padded = pads[0] || pads[1] || pads[2] || pads[3];
  g.Hp = g.H + pads[0] + pads[2], g.Wp = g.W + pads[1] + pads[3];
  g.VL = vl;
  const int64_t vec = filter ? g.Mg : g.R, nv = (vec + vl - 1) / vl;
  // 16 vector registers (AVX2): PT·MB accumulators + MB operand vectors + 1 broadcast
  // (PT·MB = 12 for MB = 2 or 3): the block width that pads fewer lanes
  const int64_t pad3 = (nv + 2) / 3 * 3, pad2 = (nv + 1) / 2 * 2;
  g.MB = nv == 1 ? 1 : pad3 < pad2 ? 3 : 2;
  g.PT = g.MB == 3 ? 4 : g.MB == 2 ? 6 : 8;
  const int64_t bw = g.MB * vl;
  g.colsPad = (vec + bw - 1) / bw * bw;
  const int64_t rows = filter ? g.R : g.N * g.P;
  g.rowTiles = (rows + g.PT - 1) / g.PT;
  int64_t off = 0;
  g.xpadOff = off, off += g.padded ? align64(g.N * g.C * g.Hp * g.Wp * 4) : 0;
  g.KC = 256;
  g.packOff = off, off += align64((filter ? g.KC : g.Mg) * g.colsPad * 4);
  g.accOff = off, off += filter ? align64(g.rowTiles * g.PT * g.colsPad * 4) : 0;
  g.offsOff = off, off += align64(g.R * 4);
  g.pixOff = off, off += filter ? align64(g.N * g.P * 4) : 0;
  g.bytes = off;
  // the offset tables hold i32: every position in the padded input must fit
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

void emitGradFilter(Emitter &e, const Node &n) {
  const Geom g = geom(n, e.vl);
  auto &b = e.b;
  Ops o{e};
  Value *x = e.ptr(n.operands[0]), *dy = e.ptr(n.operands[1]), *dW = e.ptr(&n);
  Value *xp = g.padded ? e.scratch(&n, g.xpadOff) : x, *dyT = e.scratch(&n, g.packOff),
        *accBuf = e.scratch(&n, g.accOff), *offs = e.scratch(&n, g.offsOff),
        *pix = e.scratch(&n, g.pixOff);
  const int64_t VL = g.VL, MB = g.MB, PT = g.PT, bw = MB * VL;
  // the runtime batch (a step compiled at N runs any b <= N: docs/codegen.md "Batch")
  Value *N = e.dim(n.operands[0], 0), *pixels = o.mul(N, g.P);

  // 1. the zero-padded input
  if (g.padded) {
    o.zero(xp, o.mul(N, g.C * g.Hp * g.Wp));
    e.parallelFor(o.mul(N, g.C), [&](Value *pl) { // threads: one plane each
      e.loop(g.H, [&](Value *h) {
        Value *src = o.mul(o.add(o.mul(pl, g.H), h), g.W);
        Value *dst = o.addc(o.mul(o.addc(o.add(o.mul(pl, g.Hp), h), g.pt), g.Wp), g.pl);
        e.vecLoop(e.c(g.W), [&](Value *i, unsigned wd) {
          e.store(e.load(x, o.add(src, i), wd), xp, o.add(dst, i));
        });
      });
    }, g.N * g.C * g.H * g.W);
  }
  o.offsets(g, offs);
  // pix[n·P + oh·Wo + ow] = where pixel (n, oh, ow)'s window starts in (padded) x, group 0
  e.loop(N, [&](Value *nn) {
    e.loop(g.Ho, [&](Value *oh) {
      e.loop(g.Wo, [&](Value *ow) {
        Value *px = o.add(o.mul(o.add(o.mul(nn, g.Ho), oh), g.Wo), ow);
        Value *at = o.pixelBase(g, o.mul(nn, g.C), oh, ow);
        e.b.CreateAlignedStore(e.b.CreateTrunc(at, e.i32), e.b.CreateInBoundsGEP(e.i32, pix, px),
                               Align(4));
      });
    });
  });
  if (g.colsPad != g.Mg)
    o.zero(dyT, g.KC * g.colsPad);

  std::vector<Value *> acc(PT * MB);
  for (auto &a : acc)
    a = e.entryAlloca(e.vty(VL), "gfacc");
  e.loop(g.G, [&](Value *gi) {
    // 3. the register-blocked product, KC pixels at a time: the block of dY is packed
    //    pixel-major (2.), stays in cache while the row tiles stream over it, and blocks
    //    after the first accumulate
    Value *gbase = o.mul(gi, g.Cg * g.Hp * g.Wp);
    e.loop(b.CreateUDiv(o.addc(pixels, g.KC - 1), e.c(g.KC)), [&](Value *kb) {
      Value *first = b.CreateICmpEQ(kb, e.c(0));
      Value *k0 = o.mul(kb, g.KC), *k1 = e.smin(o.addc(k0, g.KC), pixels);
      // 2. dyT[px - k0][m] = dy[n][g·Mg + m][pix] for the block's pixels px = n·P + pix
      e.parallelFor(b.CreateSub(k1, k0), [&](Value *pk) { // threads: one pixel's row each
        Value *px = o.add(k0, pk);
        Value *nn = b.CreateUDiv(px, e.c(g.P)), *pp = b.CreateURem(px, e.c(g.P));
        Value *src = o.add(o.mul(o.add(o.mul(nn, g.M), o.mul(gi, g.Mg)), g.P), pp);
        Value *dst = o.mul(b.CreateSub(px, k0), g.colsPad);
        e.loop(g.Mg, [&](Value *m) {
          e.store(e.load(dy, o.add(src, o.mul(m, g.P))), dyT, o.add(dst, m));
        });
      }, g.KC * g.Mg);
      // threads: one (column block, row tile) of the accumulators each; the K blocks stay
      // in order (this loop's parent), so every element sums in the same order at any count
      const int64_t cbs = g.colsPad / bw;
      e.parallelFor(cbs * g.rowTiles, [&](Value *u) {
        Value *cb = b.CreateUDiv(u, e.c(g.rowTiles)), *t = b.CreateURem(u, e.c(g.rowTiles));
        Value *col0 = o.mul(cb, bw);
        {
          std::vector<Value *> xo(PT);
          for (int64_t p = 0; p < PT; ++p)
            xo[p] = o.add(gbase, o.off(offs, e.smin(o.addc(o.mul(t, PT), p), e.c(g.R - 1))));
          for (int64_t p = 0; p < PT; ++p)
            for (int64_t v = 0; v < MB; ++v) {
              Value *at = o.add(o.mul(o.addc(o.mul(t, PT), p), g.colsPad), o.addc(col0, v * VL));
              b.CreateStore(b.CreateSelect(first, e.cfv(0, VL), e.load(accBuf, at, VL)),
                            acc[p * MB + v]);
            }
          e.loop(k0, k1, [&](Value *px) {
            Value *xb = o.off(pix, px);
            Value *drow = o.add(o.mul(b.CreateSub(px, k0), g.colsPad), col0);
            std::vector<Value *> dv(MB);
            for (int64_t v = 0; v < MB; ++v)
              dv[v] = e.load(dyT, o.addc(drow, v * VL), VL);
            for (int64_t p = 0; p < PT; ++p) {
              Value *xs = e.splat(e.load(xp, o.add(xb, xo[p])), VL);
              for (int64_t v = 0; v < MB; ++v) {
                Value *a = acc[p * MB + v];
                b.CreateStore(e.fma(xs, dv[v], b.CreateLoad(e.vty(VL), a)), a);
              }
            }
          });
          for (int64_t p = 0; p < PT; ++p)
            for (int64_t v = 0; v < MB; ++v) {
              Value *at = o.add(o.mul(o.addc(o.mul(t, PT), p), g.colsPad), o.addc(col0, v * VL));
              e.store(b.CreateLoad(e.vty(VL), acc[p * MB + v]), accBuf, at);
            }
        }
      }, g.colsPad * g.R * g.KC);
    });
    // 4. accumulator rows (r) × columns (m) -> dW [g·Mg + m][r]
    e.parallelFor(g.Mg, [&](Value *m) {
      Value *dst = o.mul(o.add(o.mul(gi, g.Mg), m), g.R);
      e.loop(g.R, [&](Value *r) {
        e.store(e.load(accBuf, o.add(o.mul(r, g.colsPad), m)), dW, o.add(dst, r));
      });
    }, g.Mg * g.R);
  });
}

void emitGradInput(Emitter &e, const Node &n) {
  const Geom g = geom(n, e.vl);
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
    // threads: one image each (its tiles in order): an image's windows scatter into its own
    // planes of dX only, so no two threads add into one element, and each element's sum has
    // the same order at any thread count
    e.parallelFor(N, [&](Value *nn) {
    e.loop((g.P + PT - 1) / PT, [&](Value *t) {
      std::vector<Value *> dyb(PT), xb(PT);
      for (int64_t p = 0; p < PT; ++p) {
        Value *pix = e.smin(o.addc(o.mul(t, PT), p), e.c(g.P - 1));
        Value *oh = b.CreateUDiv(pix, e.c(g.Wo)), *ow = b.CreateURem(pix, e.c(g.Wo));
        dyb[p] = o.add(o.mul(o.add(o.mul(nn, g.M), o.mul(gi, g.Mg)), g.P), pix);
        xb[p] = o.pixelBase(g, o.add(o.mul(nn, g.C), o.mul(gi, g.Cg)), oh, ow);
      }
      Value *valid = e.smin(e.c(PT), b.CreateSub(e.c(g.P), o.mul(t, PT)));
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
          e.ifThen(b.CreateICmpSLT(e.c(p), valid), [&] {
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
  // crop the padding: dX = the interior of the padded accumulator
  if (g.padded)
    e.parallelFor(o.mul(N, g.C), [&](Value *pl) { // threads: one plane each
      e.loop(g.H, [&](Value *h) {
        Value *dst = o.mul(o.add(o.mul(pl, g.H), h), g.W);
        Value *src = o.addc(o.mul(o.addc(o.add(o.mul(pl, g.Hp), h), g.pt), g.Wp), g.pl);
        e.vecLoop(e.c(g.W), [&](Value *i, unsigned wd) {
          e.store(e.load(xp, o.add(src, i), wd), dX, o.add(dst, i));
        });
      });
    }, g.N * g.C * g.H * g.W);
}

} // namespace

int64_t convGradScratchBytes(const Node &n, unsigned vl) {
  if (n.op != OpKind::Conv2dGradFilter && n.op != OpKind::Conv2dGradInput)
    return 0;
  return geom(n, vl).bytes;
}

// The entries of the emitter table (EmitOps.cpp).
void emitConv2dGradFilter(Emitter &e, const Node &n) { emitGradFilter(e, n); }
void emitConv2dGradInput(Emitter &e, const Node &n) { emitGradInput(e, n); }

} // namespace cnnc::codegen
