// conv2d as the seed's eq. 22 matrix product, without materialising phi(x):
//   Y[row][m] = sum_{r < Cg*kh*kw} phi(x)[row][r] * W[r][m] + b[m]
// rows = output pixels (n, oh, ow), m = output channels of a group, r = (c, i, j).
//  1. Packing (emitConvPack): W to one contiguous panel per column block of mb·vl channels,
//     [G][ncb][kh·kw][Cg][cols] (tap-major: the kernel runs tap by tap), zero past Mg, and the bias to [G][ncb][cols]. When the weights
//     depend on params alone this runs in the prepare entry, once per change of the
//     params (Plan::packed), not per call; in a training step it runs per call.
//  2. The input is copied into a zero-bordered buffer if the conv pads, so that the kernel
//     has no bounds checks and stride/dilation are address arithmetic; channel-blocked
//     ([N][C/vl][Hp][Wp][vl], ConvGeom::blocked) on AVX2, with the panel [..][C/vl][taps]
//     [vl][cols] and the reduction block by block, taps inside (docs/codegen.md).
//  3. The register tile: `tile` consecutive output pixels of one row × mb vectors of
//     channels accumulate over the whole reduction in registers (bias as the initial
//     value). Each step loads mb weight vectors from the panel and broadcasts one input
//     value per pixel: tile·mb FMAs per tile + mb loads. The reduction runs tap by tap
//     (unrolled), each over the input channels (a loop). A row is cut into tiles of two
//     sizes one pixel apart, each size its own copy of the kernel (no clamped or
//     recomputed pixels).
//  4. The finished tile (fused ReLU applied) is transposed in registers (channel vectors
//     -> pixel vectors) and stored to N×C×H×W: per channel, `tile` consecutive pixels of
//     one output row.
// Working set: the panel of one column block (R·cols floats: 590 KB for VGG's 512-channel
// layers at AVX-512, 295 KB at AVX2) stays in L2 while the tiles of a row stream; the
// input rows a tile reads (Cg·kh lines) come from L1/L2. Threads split the rows
// (group, column block, image, output row), so each writes its own outputs.
#include "codegen/EmitOps.h"

namespace cnnc::codegen {

using namespace llvm;

namespace {

Value *mul(Emitter &e, Value *a, int64_t k) {
  return k == 1 ? a : e.b.CreateMul(a, e.c(k), "", true, true);
}
Value *add(Emitter &e, Value *a, Value *c) {
  return e.b.CreateAdd(a, c, "", true, true);
}
Value *add(Emitter &e, Value *a, int64_t k) {
  return k == 0 ? a : add(e, a, e.c(k));
}

} // namespace

// The VL×VL matrix rows[p][lane] transposed: log2(VL) stages of two-source shuffles
// (vpermt2ps / vshufps and friends); stage s swaps the off-diagonal s×s blocks of each 2s×2s
// block.
std::vector<Value *> transposeSquare(Emitter &e, std::vector<Value *> rows) {
  const unsigned VL = (unsigned)rows.size();
  for (unsigned s = VL / 2; s >= 1; s /= 2) {
    std::vector<int> lo(VL), hi(VL);
    for (unsigned l = 0; l < VL; ++l) {
      const bool even = (l / s) % 2 == 0;
      lo[l] = even ? (int)l : (int)(VL + l - s);
      hi[l] = even ? (int)(l + s) : (int)(VL + l);
    }
    for (unsigned i = 0; i < VL; ++i)
      if ((i / s) % 2 == 0) {
        Value *a = rows[i], *c = rows[i + s];
        rows[i] = e.b.CreateShuffleVector(a, c, lo);
        rows[i + s] = e.b.CreateShuffleVector(a, c, hi);
      }
  }
  return rows;
}

// The mask of a vector's first n of VL lanes.
static Constant *prefixMask(Emitter &e, unsigned VL, int64_t n) {
  std::vector<Constant *> mask(VL);
  for (unsigned l = 0; l < VL; ++l)
    mask[l] = e.b.getInt1((int64_t)l < n);
  return ConstantVector::get(mask);
}

// The first n lanes of v stored at p (a masked store when n < the vector's lanes).
void storePrefix(Emitter &e, Value *v, Value *p, int64_t n) {
  const unsigned VL = cast<FixedVectorType>(v->getType())->getNumElements();
  if (n == (int64_t)VL) {
    e.b.CreateAlignedStore(v, p, Align(4));
    return;
  }
  e.b.CreateMaskedStore(v, p, Align(4), prefixMask(e, VL, n));
}

// The panels, VL channels × VL reduction rows at a time: VL channels' rows of W (each R =
// Cg·kh·kw contiguous floats) are loaded VL floats at a time, transposed in registers, and
// each resulting vector (one r = (c, tap) for VL channels) stored to its panel row
// tap·Cg + c. In a training step this runs every call, so it must cost about a copy.
// A filter_flip folded into the pack (Plan::flipInPack; grad-input-as-conv, seed eq. 46)
// is read in place: W[mt][(c, tap)] = w[g·Cg + c][mt - g·Mg][taps-1-tap], so a chunk runs
// over the taps of one c (a reversed load of the channel's taps) and the channels' rows
// are strided by Mg·taps instead of R.
namespace {

// One vector of column block gcb's panel (VL of its channels) and of its bias (see above).
// Stored as panel `slot` (gcb itself, or a thread's reused panel: emitConv2d).
void packVector(Emitter &e, const Node &n, const ConvGeom &g, Value *pack, Value *gcb, Value *v,
                Value *slot) {
  auto &b = e.b;
  const int64_t VL = g.vl, taps = g.kh * g.kw, full = g.R / VL, tail = g.R % VL;
  const bool flipped = e.plan.flipInPack.count(n.operands[1]) != 0;
  Value *w = e.ptr(flipped ? n.operands[1]->operands[0] : n.operands[1]);
  Value *bias = n.operands.size() > 2 ? e.ptr(n.operands[2]) : nullptr;
  Value *wpack = pack, *bpack = b.CreateInBoundsGEP(b.getInt8Ty(), pack, e.c(g.wpackBytes));
  Value *gi = b.CreateUDiv(gcb, e.c(g.ncb)), *cb = b.CreateURem(gcb, e.c(g.ncb));
  Value *m0 = add(e, mul(e, cb, g.cols), mul(e, v, VL)); // the vector's first channel
  Value *panel = e.gep(wpack, add(e, mul(e, slot, g.R * g.cols), mul(e, v, VL)));
  // the panel row of r = (c, tap): tap·Cg + c, or blocked ((c/VL)·taps + tap)·VL + c%VL
  auto storeRow = [&](Value *c, Value *tap, Value *v) {
    Value *row = g.blocked ? add(e, mul(e, add(e, mul(e, b.CreateUDiv(c, e.c(VL)), taps), tap), VL),
                                 b.CreateURem(c, e.c(VL)))
                           : add(e, mul(e, tap, g.Cg), c);
    b.CreateAlignedStore(v, e.gep(panel, mul(e, row, g.cols)), Align(4));
  };
  // VL vectors of `count` floats, one per channel of the vector (src(l), masked past count
  // and zero past Mg), transposed in registers: result q holds element q of every channel
  auto loadT = [&](const std::function<Value *(Value *)> &src, int64_t count) {
    std::vector<Value *> rows(VL);
    std::vector<Constant *> mask(VL);
    for (int64_t q = 0; q < VL; ++q)
      mask[q] = b.getInt1(q < count);
    for (int64_t l = 0; l < VL; ++l) {
      Value *m = add(e, m0, l), *in = b.CreateICmpSLT(m, e.c(g.Mg));
      Value *at = src(e.smin(m, e.c(g.Mg - 1)));
      Value *x = count == VL ? (Value *)b.CreateAlignedLoad(e.vty(VL), at, Align(4))
                             : b.CreateMaskedLoad(e.vty(VL), at, Align(4),
                                                  ConstantVector::get(mask), e.cfv(0, VL));
      rows[l] = b.CreateSelect(in, x, e.cfv(0, VL));
    }
    return transposeSquare(e, rows);
  };
  if (flipped) {
    // per c: channel mc's taps are w[g·Cg + c][mc][0 .. taps-1], flipped tap t' = taps-1-t;
    // runs of VL taps are loaded and transposed, a short last run is gathered (a transpose
    // for one or two rows would cost as much as for VL: 9 taps at AVX2)
    Value *lanes = b.CreateStepVector(VectorType::get(e.i64, VL, false));
    Value *ml = b.CreateAdd(e.splat(m0, VL), lanes);
    Value *inl = b.CreateICmpSLT(ml, e.splat(e.c(g.Mg), VL));
    Value *mcl = b.CreateSelect(inl, ml, e.splat(e.c(g.Mg - 1), VL));
    e.loop(g.Cg, [&](Value *c) {
      Value *base = mul(e, add(e, mul(e, gi, g.Cg), c), g.Mg); // w[g·Cg + c][0][0] / taps
      // The VL channels' taps of channel c + kAhead (VL·taps floats, contiguous) prefetched
      // into L2: successive c are Mg·taps floats apart (18 KB at VGG's 512 channels), a
      // stride the hardware prefetchers do not follow across pages, so without this every
      // c's lines came from memory in turn (conv5_x backward-data at batch 1: the pack took
      // a quarter of the call).
      constexpr int64_t kAhead = 8;
      Value *ahead = add(e, mul(e, add(e, add(e, mul(e, gi, g.Cg), c), kAhead), g.Mg), m0);
      for (int64_t f = 0; f < VL * taps; f += 16)
        e.prefetchL2(b.CreateGEP(e.f32, w, add(e, mul(e, ahead, taps), f)));
      for (int64_t t0 = 0; t0 < taps; t0 += VL) {
        const int64_t count = std::min<int64_t>(VL, taps - t0);
        if (count * 4 < VL) {
          for (int64_t t = t0; t < t0 + count; ++t) {
            Value *idx = b.CreateAdd(b.CreateMul(b.CreateAdd(e.splat(base, VL), mcl), e.splat(e.c(taps), VL)),
                                     e.splat(e.c(t), VL));
            Value *ptrs = b.CreateInBoundsGEP(e.f32, w, idx);
            Value *x = b.CreateMaskedGather(e.vty(VL), ptrs, Align(4), inl, e.cfv(0, VL));
            storeRow(c, e.c(taps - 1 - t), x);
          }
          continue;
        }
        auto rows = loadT([&](Value *mc) { return e.gep(w, add(e, mul(e, add(e, base, mc), taps), t0)); },
                          count);
        for (int64_t q = 0; q < count; ++q)
          storeRow(c, e.c(taps - 1 - (t0 + q)), rows[q]);
      }
    });
  } else {
    // W's rows r0 .. r0+count-1 (one (c, tap) each)
    auto chunk = [&](Value *r0, int64_t count) {
      auto rows = loadT([&](Value *mc) { return e.gep(w, add(e, mul(e, add(e, mul(e, gi, g.Mg), mc), g.R), r0)); },
                        count);
      for (int64_t q = 0; q < count; ++q) {
        Value *r = add(e, r0, q);
        storeRow(b.CreateUDiv(r, e.c(taps)), b.CreateURem(r, e.c(taps)), rows[q]);
      }
    };
    e.loop(full, [&](Value *k) { chunk(mul(e, k, VL), VL); });
    if (tail)
      chunk(e.c(full * VL), tail);
  }
  e.loop(VL, [&](Value *l) {
    Value *m = add(e, m0, l), *in = b.CreateICmpSLT(m, e.c(g.Mg));
    Value *mt = add(e, mul(e, gi, g.Mg), e.smin(m, e.c(g.Mg - 1)));
    Value *bv = bias ? b.CreateSelect(in, e.load(bias, mt), e.cf(0)) : e.cf(0);
    e.store(bv, bpack, add(e, add(e, mul(e, slot, g.cols), mul(e, v, VL)), l));
  });
}

} // namespace

void emitConvPack(Emitter &e, const Node &n, Value *pack) {
  const ConvGeom g = ConvGeom::of(n, e.vl, true, e.plan.layout.narrowConvs);
  const int64_t vecs = g.cols / g.vl;
  // (threads: one vector of one column block's panel each)
  e.parallelFor(g.G * g.ncb * vecs, [&](Value *u) {
    Value *gcb = e.b.CreateUDiv(u, e.c(vecs));
    packVector(e, n, g, pack, gcb, e.b.CreateURem(u, e.c(vecs)), gcb);
  }, g.G * g.mgPad * g.R);
}

void emitConv2d(Emitter &e, const Node &n) {
  if (isDepthwise(n))
    return emitConv2dDepthwise(e, n);
  auto it = e.plan.packed.find(&n);
  const bool prepacked = it != e.plan.packed.end();
  const ConvGeom g = ConvGeom::of(n, e.vl, prepacked, e.plan.layout.narrowConvs);
  auto &b = e.b;
  const Node *xn = n.operands[0];
  Value *x = e.ptr(xn), *y = e.ptr(&n), *N = e.dim(xn, 0);
  Value *pack = prepacked ? b.CreateInBoundsGEP(b.getInt8Ty(), e.workspace, e.c(it->second))
                          : e.scratch(&n, g.packOff);
  // (threads, and the order of the work: see the end)
  const int64_t blocks = g.G * g.ncb;
  const int64_t rowBytes = g.Cg * g.Wp * 4, nmax = xn->type.shape[0];
  const int64_t B = std::max<int64_t>(1, ((512 * 1024) / std::max<int64_t>(rowBytes, 1) - (g.kh - 1)) /
                                           std::max<int64_t>(g.sh, 1));
  const int64_t inputBytes = nmax * g.C * g.plane * 4;
  const bool rowMajor = g.wpackBytes <= 256 * 1024;
  const bool banded = !rowMajor && g.Ho * g.Wo != 1 && B < nmax * g.Ho &&
                      (nmax * g.Ho + B - 1) / B * g.wpackBytes < g.ncb * inputBytes;
  // Weights packed per call (a training step, or weights that are inputs) and the work
  // block by block: each block's panel is packed by the thread that runs it, right before
  // its tiles, into the one panel buffer that thread reuses, so that the pack's writes and
  // the kernel's reads stay in L2 (VGG's conv5_x backward-data at batch 1: the pack was
  // 12-15% of the call).
  const bool packInItems = !prepacked && !rowMajor && !banded && blocks > 1;
  if (!prepacked && !packInItems)
    emitConvPack(e, n, pack);
  Value *wpack = pack, *bpack = b.CreateInBoundsGEP(b.getInt8Ty(), pack, e.c(g.wpackBytes));
  // (no scratch at all when x is empty and the weights are prepacked: nothing to pad)
  Value *xp = (g.padded || g.subsampled) && g.bytes > 0 ? e.scratch(&n, g.xpadOff) : x;
  if (g.subsampled && g.bytes > 0) {
    // the pixels a strided 1×1 conv reads, compact: [N][C][Ho·Wo], or channel-blocked
    // [N][C/VL][Ho·Wo][VL] (g.blocked, as the padded copy below). Threads: planes.
    const int64_t H = g.sub[0], W = g.sub[1], sh = g.sub[2], sw = g.sub[3], Ho = g.sub[4], Wo = g.sub[5];
    const int64_t V = g.blocked ? g.vl : 1;
    e.parallelFor(b.CreateMul(N, e.c(g.C)), [&](Value *pl) {
      Value *blk = b.CreateUDiv(pl, e.c(V)), *lane = b.CreateURem(pl, e.c(V));
      e.loop(Ho, [&](Value *oh) {
        Value *src = add(e, mul(e, pl, H * W), mul(e, oh, sh * W));
        Value *dst = add(e, mul(e, add(e, mul(e, blk, g.plane), mul(e, oh, Wo)), V), lane);
        e.loop(Wo, [&](Value *ow) {
          e.store(e.load(x, add(e, src, mul(e, ow, sw))), xp, add(e, dst, mul(e, ow, V)));
        });
      });
    }, xn->type.numel());
  }

  // 2. the zero-padded input (threads: over planes, each zeroed and filled by one thread).
  // Blocked (g.blocked): planes of VL channels, [N][C/VL][Hp][Wp][VL], each row's pixels
  // transposed in registers (VL planes' VL pixels -> VL pixels' VL channels).
  const unsigned VL = g.vl;
  const int64_t PX = g.blocked ? VL : 1; // floats between a plane's neighbouring pixels
  if (g.padded && g.bytes > 0) {
    // (a plane holds PX channels: 1, or VL when blocked)
    Value *planes = b.CreateMul(N, e.c(g.C / PX));
    e.parallelFor(planes, [&](Value *pl) {
      Value *plane0 = mul(e, pl, g.plane * PX);
      e.vecLoop(e.c(g.plane * PX),
                [&](Value *i, unsigned wd) { e.store(e.cfv(0, wd), xp, add(e, plane0, i)); });
      if (!g.blocked) {
        e.loop(g.H, [&](Value *h) {
          Value *src = mul(e, add(e, mul(e, pl, g.H), h), g.W);
          Value *dst = add(e, add(e, mul(e, pl, g.plane), mul(e, add(e, h, g.pt), g.Wp)), g.pl);
          e.vecLoop(e.c(g.W), [&](Value *i, unsigned wd) {
            e.store(e.load(x, add(e, src, i), wd), xp, add(e, dst, i));
          });
        });
        return;
      }
      e.loop(g.H, [&](Value *h) {
        // VL pixels from w0 of row h in each of the block's VL planes
        auto chunk = [&](Value *w0, int64_t count) {
          std::vector<Value *> rows(VL);
          std::vector<Constant *> mask(VL);
          for (unsigned q = 0; q < VL; ++q)
            mask[q] = b.getInt1((int64_t)q < count);
          for (unsigned l = 0; l < VL; ++l) {
            Value *src = e.gep(x, add(e, mul(e, add(e, mul(e, add(e, mul(e, pl, VL), l), g.H), h), g.W), w0));
            rows[l] = count == (int64_t)VL
                          ? (Value *)b.CreateAlignedLoad(e.vty(VL), src, Align(4))
                          : b.CreateMaskedLoad(e.vty(VL), src, Align(4), ConstantVector::get(mask),
                                               e.cfv(0, VL));
          }
          rows = transposeSquare(e, rows);
          Value *dst = add(e, plane0, mul(e, add(e, mul(e, add(e, h, g.pt), g.Wp), add(e, w0, g.pl)), VL));
          for (int64_t q = 0; q < count; ++q)
            b.CreateAlignedStore(rows[q], e.gep(xp, add(e, dst, q * VL)), Align(4));
        };
        e.loop(g.W / VL, [&](Value *k) { chunk(mul(e, k, VL), VL); });
        if (g.W % VL)
          chunk(e.c(g.W / VL * VL), g.W % VL);
      });
    }, xn->type.numel() * g.Hp * g.Wp / std::max<int64_t>(1, g.H * g.W));
  }

  // the fused ReLU (relu=1, passes/FuseRelu.cpp) clamps the finished tile in registers
  const bool relu = n.getInt("relu") != 0;
  const double reluMax = n.getFloat("relu_max"); // a fused clip's cap (ReLU6)
  const unsigned MB = g.mb;
  const int64_t COLS = g.cols, maxTile = g.tile;
  std::vector<Value *> acc(maxTile * MB);
  for (auto &a : acc)
    a = e.entryAlloca(e.vty(VL), "acc");

  // 3. one tile: T pixels whose inputs start at xbase + off(p) (off(p) constant except in
  // a clamped tail), column block cb of group gi, accumulated into acc[p][v].
  Value *panelSlot = nullptr; // the panel to read when it is not gcb's own (packInItems)
  auto accumulate = [&](int64_t T, Value *gcb, Value *xbase, const std::vector<Value *> &off) {
    if (panelSlot)
      gcb = panelSlot;
    Value *wbase = mul(e, gcb, g.R * COLS);
    for (unsigned v = 0; v < MB; ++v) {
      Value *bv = e.load(bpack, add(e, mul(e, gcb, COLS), v * VL), VL);
      for (int64_t p = 0; p < T; ++p)
        b.CreateStore(bv, acc[p * MB + v]);
    }
    // One tap (i, j) over all Cg channels: its own loop, so that no input value is
    // shared between taps. (With every tap in one loop body, LLVM reuses the broadcast of
    // x[p + j] for pixel p + 1 at tap j - 1, keeps a dozen broadcasts live beside the 28
    // accumulators and spills.)
    // one step of the reduction: (c, i, j) at input offset xo, panel row wo
    auto step = [&](Value *xo, Value *wo) {
      std::vector<Value *> wv(MB);
      for (unsigned v = 0; v < MB; ++v)
        wv[v] = e.load(wpack, add(e, wo, v * VL), VL);
      for (int64_t p = 0; p < T; ++p) {
        Value *xs = e.splat(e.load(xp, add(e, xo, off[p])), VL);
        for (unsigned v = 0; v < MB; ++v) {
          Value *a = acc[p * MB + v];
          b.CreateStore(e.fma(xs, wv[v], b.CreateLoad(e.vty(VL), a)), a);
        }
      }
    };
    // The first tap's loop also prefetches, into L2, the tile's pixels of the input row that
    // the next output row reads first (kh-1 rows down, plus the stride): in planes, that row's
    // channels are a plane (Hp·Wp floats) apart, a stride that crosses a 4 KB page every step
    // or two, where the hardware prefetchers stop; at batch 32 the input is out of cache
    // (conv4_2: 59 MB) and each new row waited on memory (Zen 5, 1 thread: 680 -> 610 ms; b1
    // about 2% faster).
    auto tapLoop = [&](Value *xt, Value *wt, bool prefetchNextRow = false) {
      e.loopNoUnroll(g.Cg, [&](Value *c) { // (unrolled, taps would merge again: conv1_1)
        Value *xo = add(e, xt, mul(e, c, g.plane));
        if (prefetchNextRow) {
          const int64_t ahead = ((g.kh - 1) * g.dh + g.sh) * g.Wp;
          // the tile's first and last pixel: its lines (past the last row: beyond the buffer, a
          // plain GEP, not inbounds, and a prefetch never faults)
          for (int64_t p : {int64_t(0), T - 1})
            e.prefetchL2(b.CreateGEP(e.f32, xp, add(e, xo, add(e, off[p], e.c(ahead)))));
        }
        step(xo, add(e, wt, mul(e, c, COLS)));
      });
    };
    const int64_t panelRow = g.Cg * COLS; // one tap's rows of the panel
    if (g.blocked) {
      // Blocks of VL channels outermost, then the taps, each tap's VL channels unrolled: a
      // block's input lines (T·sw pixels × kh rows) are reused from L1 by every tap, and the
      // panel ([cblock][tap][VL][cols]) is read in order. Taps and channels stay loops
      // (not unrolled), so that no broadcast is shared between steps (see above).
      e.loopNoUnroll(g.Cg / VL, [&](Value *cb) {
        Value *xc = add(e, xbase, mul(e, cb, g.plane * VL));
        Value *wc = add(e, wbase, mul(e, cb, g.kh * g.kw * VL * COLS));
        e.loopNoUnroll(g.kh, [&](Value *i) {
          e.loopNoUnroll(g.kw, [&](Value *j) {
            Value *xt = add(e, xc, mul(e, add(e, mul(e, i, g.dh * g.Wp), mul(e, j, g.dw)), VL));
            Value *wt = add(e, wc, mul(e, add(e, mul(e, i, g.kw), j), VL * COLS));
            for (unsigned c = 0; c < VL; ++c)
              step(add(e, xt, c), add(e, wt, c * COLS));
          });
        });
      });
    } else if (g.Cg * g.kh <= 16 && g.kh * g.kw <= 25) {
      // Few input channels (the first layer: 3): a loop over the kernel's columns j, each
      // iteration every (c, i) unrolled — distinct rows or planes, so again nothing is
      // shared between steps, and the few steps per tap cost no loop each.
      e.loopNoUnroll(g.kw, [&](Value *j) {
        Value *xj = add(e, xbase, mul(e, j, g.dw)), *wj = add(e, wbase, mul(e, j, panelRow));
        for (int64_t c = 0; c < g.Cg; ++c)
          for (int64_t i = 0; i < g.kh; ++i)
            step(add(e, xj, c * g.plane + i * g.dh * g.Wp),
                 add(e, wj, (i * g.kw * g.Cg + c) * COLS));
      });
    } else if (g.kh * g.kw <= 25) { // taps unrolled: constant offsets
      for (int64_t i = 0; i < g.kh; ++i)
        for (int64_t j = 0; j < g.kw; ++j)
          tapLoop(add(e, xbase, (i * g.dh * g.Wp + j * g.dw) * PX), add(e, wbase, (i * g.kw + j) * panelRow),
                  i == 0 && j == 0 && PX == 1);
    } else {
      e.loop(g.kh, [&](Value *i) {
        e.loop(g.kw, [&](Value *j) {
          Value *xt = add(e, xbase, mul(e, add(e, mul(e, i, g.dh * g.Wp), mul(e, j, g.dw)), PX));
          Value *wt = add(e, wbase, mul(e, add(e, mul(e, i, g.kw), j), panelRow));
          tapLoop(xt, wt);
        });
      });
    }
  };
  // The epilogue: a residual r (operand 3, fuse-residual) is added, then the fused ReLU. A
  // tile's accumulators hold pixel-major vectors of channels, r is N×C×H×W like y: r is
  // loaded where y is stored, after the transpose, so the ReLU waits for it there.
  Value *res = n.operands.size() > 3 ? e.ptr(n.operands[3]) : nullptr;
  auto finished = [&](int64_t p, unsigned v) {
    Value *r = b.CreateLoad(e.vty(VL), acc[p * MB + v]);
    return relu && !res ? e.reluCapped(r, reluMax) : r;
  };
  // v (the values stored at y[at], lanes under `mask`) with r[at] added and the ReLU applied
  auto withResidual = [&](Value *v, Value *at, Value *mask) {
    if (!res)
      return v;
    Value *sum = b.CreateFAdd(v, b.CreateMaskedLoad(e.vty(VL), e.gep(res, at), Align(4), mask,
                                                    e.cfv(0, VL)));
    return relu ? e.reluCapped(sum, reluMax) : sum;
  };

  // 4. a row tile to NCHW: per vector of channels, the tile's pixel vectors (pixel-major)
  // are transposed in registers, VL pixels at a time, and each channel's run of pixels is
  // stored contiguously (masked when shorter than a vector)
  auto storeRow = [&](int64_t T, Value *gi, Value *cb, Value *nn, Value *oh, Value *ow0) {
    Value *m0 = mul(e, cb, COLS);
    Value *ybase0 = add(e, mul(e, add(e, mul(e, nn, g.M), add(e, mul(e, gi, g.Mg), m0)), g.Ho), oh);
    for (unsigned v = 0; v < MB; ++v)
      for (int64_t p0 = 0; p0 < T; p0 += VL) {
        const int64_t n = std::min<int64_t>(VL, T - p0);
        std::vector<Value *> rows(VL, Constant::getNullValue(e.vty(VL)));
        for (int64_t p = 0; p < n; ++p)
          rows[p] = finished(p0 + p, v);
        rows = transposeSquare(e, rows);
        for (unsigned l = 0; l < VL; ++l) {
          const int64_t ch = v * VL + l; // within the column block
          auto store = [&] {
            Value *at = add(e, mul(e, add(e, ybase0, ch * g.Ho), g.Wo), add(e, ow0, p0));
            storePrefix(e, withResidual(rows[l], at, prefixMask(e, VL, n)), e.gep(y, at), n);
          };
          if (g.Mg % COLS == 0 || ch == 0)
            store();
          else // the last column block of a group may be partial
            e.ifThen(b.CreateICmpSLT(add(e, m0, ch), e.c(g.Mg)), store);
        }
      }
  };

  Value *tiles;
  std::function<void(Value *, Value *, Value *)> runTiles; // (gi, cb, work item's tile index)
  if (g.planeTiles) {
    // Plane tiles (ConvGeom::planeTiles): tile t of an image holds its output pixels k0 ..
    // k0+T-1 in raster order, running on into the next rows; pixel k0+p reads the input at
    // row (ph+p)/Wo, column (ph+p)%Wo from the tile's first row, ph = k0 % Wo. Those offsets
    // are constants of (T, ph): each pair that occurs is its own copy of the kernel, picked
    // per tile. The outputs are consecutive in N×C×H×W, so the store is the row tile's.
    const int64_t nfull = g.nfull, per = g.nfull + g.ntail;
    tiles = b.CreateMul(N, e.c(per)); // work items: every image's tiles
    runTiles = [&, nfull, per](Value *gi, Value *cb, Value *t) {
      Value *gcb = add(e, mul(e, gi, g.ncb), cb);
      Value *nn = b.CreateUDiv(t, e.c(per)), *ti = b.CreateURem(t, e.c(per));
      Value *isFull = b.CreateICmpSLT(ti, e.c(nfull));
      Value *k0 = b.CreateSelect(isFull, mul(e, ti, g.tile),
                                 add(e, mul(e, b.CreateSub(ti, e.c(nfull)), g.tail), nfull * g.tile));
      Value *ph = b.CreateURem(k0, e.c(g.Wo));
      Value *rowBase = add(e, mul(e, add(e, mul(e, nn, g.C), mul(e, gi, g.Cg)), g.plane),
                           mul(e, b.CreateUDiv(k0, e.c(g.Wo)), g.sh * g.Wp * PX));
      for (const auto &[T, phase] : g.phases) {
        Value *size = T == g.tile ? isFull : b.CreateNot(isFull);
        e.ifThen(b.CreateAnd(size, b.CreateICmpEQ(ph, e.c(phase))), [&, T = T, phase = phase] {
          std::vector<Value *> off(T);
          for (int64_t p = 0; p < T; ++p)
            off[p] = e.c((((phase + p) / g.Wo) * g.sh * g.Wp + ((phase + p) % g.Wo) * g.sw) * PX);
          accumulate(T, gcb, rowBase, off);
          storeRow(T, gi, cb, nn, e.c(0), k0);
        });
      }
    };
  } else if (g.Ho * g.Wo != 1) {
    // Row tiles: `tile` consecutive pixels of one output row, inputs sw apart.
    const int64_t nfull = g.nfull;
    std::vector<Value *> off(g.tile);
    for (int64_t p = 0; p < g.tile; ++p)
      off[p] = e.c(p * g.sw * PX);
    tiles = b.CreateMul(N, e.c(g.Ho)); // work items: output rows
    runTiles = [&, off, nfull](Value *gi, Value *cb, Value *row) {
      Value *gcb = add(e, mul(e, gi, g.ncb), cb);
      Value *nn = b.CreateUDiv(row, e.c(g.Ho)), *oh = b.CreateURem(row, e.c(g.Ho));
      // (blocked: channel c's block starts at (c/VL)·plane·VL = c·plane for c a multiple of VL)
      Value *rowBase = add(e, mul(e, add(e, mul(e, nn, g.C), mul(e, gi, g.Cg)), g.plane),
                           mul(e, oh, g.sh * g.Wp * PX));
      auto one = [&](int64_t T, Value *ow0) {
        accumulate(T, gcb, add(e, rowBase, mul(e, ow0, g.sw * PX)), off);
        storeRow(T, gi, cb, nn, oh, ow0);
      };
      e.loop(nfull, [&](Value *t) { one(g.tile, mul(e, t, g.tile)); });
      if (g.ntail == 1)
        one(g.tail, e.c(nfull * g.tile));
      else if (g.ntail)
        e.loop(g.ntail, [&](Value *t) { one(g.tail, add(e, mul(e, t, g.tail), nfull * g.tile)); });
    };
  } else {
    // Image tiles (a 1×1 output, e.g. a conv over its whole input, seed section 6.8):
    // `tile` consecutive images, inputs C·Hp·Wp apart; the results are rows of [N][M],
    // stored as vectors. Images past the last whole tile run one by one.
    const int64_t T = g.tile, img = g.C * g.plane;
    Value *whole = b.CreateUDiv(N, e.c(T));
    tiles = add(e, whole, b.CreateURem(N, e.c(T))); // work items: whole tiles, then singles
    runTiles = [&, T, img, whole](Value *gi, Value *cb, Value *t) {
      Value *gcb = add(e, mul(e, gi, g.ncb), cb);
      Value *m0 = add(e, mul(e, gi, g.Mg), mul(e, cb, COLS));
      Value *lanes = e.b.CreateStepVector(VectorType::get(e.i64, VL, false));
      auto one = [&](int64_t n, Value *n0) {
        Value *xbase = mul(e, add(e, mul(e, n0, g.C), mul(e, gi, g.Cg)), g.plane);
        std::vector<Value *> off(n);
        for (int64_t p = 0; p < n; ++p)
          off[p] = e.c(p * img);
        accumulate(n, gcb, xbase, off);
        for (int64_t p = 0; p < n; ++p)
          for (unsigned v = 0; v < MB; ++v) {
            Value *at = add(e, add(e, mul(e, add(e, n0, p), g.M), m0), v * VL);
            // lanes past the group's Mg channels (a partial last block) are not stored
            Value *ch = b.CreateAdd(e.splat(add(e, mul(e, cb, COLS), v * VL), VL), lanes);
            Value *mask = b.CreateICmpSLT(ch, e.splat(e.c(g.Mg), VL));
            b.CreateMaskedStore(withResidual(finished(p, v), at, mask), e.gep(y, at), Align(4), mask);
          }
      };
      Value *isWhole = b.CreateICmpSLT(t, whole);
      e.ifThen(isWhole, [&] { one(T, mul(e, t, T)); });
      e.ifThen(b.CreateNot(isWhole), [&] { one(1, add(e, mul(e, whole, T), b.CreateSub(t, whole))); });
    };
  }

  // (threads: over tiles of a column block — output rows, or groups of images — each
  // computed whole by one thread; the reduction stays within a tile, so the partition
  // cannot change a sum.) The order: when all the panels fit in L2 together, tile by
  // tile, each through every column block, so that the inputs a tile reads are reused
  // from cache across the blocks (VGG's conv1_2: 147 KB of panels, 13 MB of input); else
  // block by block, so that one panel stays in L2 while the tiles stream (conv4_2: 9.4 MB
  // of panels).
  //
  // Between the two, for row tiles: bands of B output rows whose input rows (about 512 KB)
  // stay in L2 while every column block runs over the band, each block's panel read once
  // per band. Chosen when it moves less than streaming the input once per column block
  // (VGG's conv2_x and conv3_1 at batch 32: 0.2-0.4 GB instead of 0.4-0.9 GB).
  if (packInItems) { // item = one block, packed then run over every tile
    const int64_t vecs = g.cols / VL;
    // (a chunk of blocks is one thread's: its blocks share the panel of its first block,
    // which then stays in L2 instead of every panel going out to memory)
    e.parallelChunks(e.c(blocks), [&](Value *lo, Value *hi) {
      panelSlot = lo;
      e.loop(lo, hi, [&](Value *gcb) {
        e.loop(vecs, [&](Value *v) { packVector(e, n, g, pack, gcb, v, lo); });
        e.loop(tiles, [&](Value *t) {
          runTiles(b.CreateUDiv(gcb, e.c(g.ncb)), b.CreateURem(gcb, e.c(g.ncb)), t);
        });
      });
      panelSlot = nullptr;
    }, xn->type.shape[0] * g.Ho * g.Wo * g.G * g.mgPad * g.R);
    return;
  }
  // Every item is one tile's worth of work (no padding items: the runtime cuts the items
  // into equal chunks, and a chunk of empty items would leave its thread idle at the end).
  Value *items = b.CreateMul(tiles, e.c(blocks));
  e.parallelFor(items, [&](Value *item) {
    if (banded) {
      // item = (band, block, row within the band); the last band has the tiles % B rest
      Value *whole = b.CreateUDiv(tiles, e.c(B)), *rest = b.CreateURem(tiles, e.c(B));
      Value *inWhole = b.CreateICmpULT(item, mul(e, whole, B * blocks));
      Value *i2 = b.CreateSub(item, mul(e, whole, B * blocks));
      Value *len = b.CreateSelect(inWhole, e.c(B), e.smax(rest, e.c(1)));
      Value *band = b.CreateSelect(inWhole, b.CreateUDiv(item, e.c(blocks * B)), whole);
      Value *r = b.CreateSelect(inWhole, b.CreateURem(item, e.c(blocks * B)), i2);
      Value *gcb = b.CreateUDiv(r, len), *t = add(e, mul(e, band, B), b.CreateURem(r, len));
      runTiles(b.CreateUDiv(gcb, e.c(g.ncb)), b.CreateURem(gcb, e.c(g.ncb)), t);
      return;
    }
    Value *gcb = rowMajor ? b.CreateURem(item, e.c(blocks)) : b.CreateUDiv(item, tiles);
    Value *t = rowMajor ? b.CreateUDiv(item, e.c(blocks)) : b.CreateURem(item, tiles);
    runTiles(b.CreateUDiv(gcb, e.c(g.ncb)), b.CreateURem(gcb, e.c(g.ncb)), t);
  }, xn->type.shape[0] * g.Ho * g.Wo * g.G * g.mgPad * g.R);
}

} // namespace cnnc::codegen
