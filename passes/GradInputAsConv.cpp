// grad-input-as-conv: a stride-1 conv2d_grad_input becomes a forward conv2d of dY with the
// flipped filter, so that backward-data runs on the register-blocked forward kernel
// (codegen/EmitConv.cpp) instead of the scatter kernel.
//
// Why it is the same sum: with stride 1, seed eq. 46 sums, for input pixel (h, w) and
// channel c, dY F^T over m^{-1}(h, w, c): the output pixels (h + pt - i·dh, w + pl - j·dw)
// for every tap (i, j) that lands inside dY, times F[m][c][i][j], over m. Writing
// i' = kh-1-i, j' = kw-1-j, that is the cross-correlation (seed eq. 15) of dY, padded by
// (kh-1)·dh - pt rows on top (and so on), with the filter F'[c][m][i'][j'] =
// F[m][c][kh-1-i'][kw-1-j'], whose input channels are the original output channels:
//   dx = conv2d_grad_input(dy, w) {input_shape, pads=[pt,pl,pb,pr], dilation=d, groups=G}
//   -> %w.flip = filter_flip(w) {groups=G}                         [C, M/G, kh, kw]
//      dx = conv2d(dy, %w.flip) {pads=[(kh-1)dh-pt, (kw-1)dw-pl, (kh-1)dh-pb, (kw-1)dw-pr],
//                               dilation=d, groups=G}
// Matches only stride 1 and pads <= (k-1)·d on every side (a wider pad would be a negative
// pad, a crop), and only when dx has at most 1.5× as many pixels as dY: the convolution
// also multiplies the zeros of its padding, which is free for a "same" conv (VGG's and
// ResNet's 3×3 pad 1: as many pixels) but not for a "valid" one (measured on Zen 4, 2
// threads, batch 100: MNIST SK's 3×3 on 26×26, 1.17× the pixels, 3.7 ms as a conv vs 5.2
// scattered; MNIST BASE's 5×5 on 12×12, 2.25×, 5.5 vs 2.3; its 4×4 "fc" on a 1×1 dY, 16×,
// far slower). Everything else keeps conv2d_grad_input, whose row kernel
// (codegen/EmitConvGrad.cpp) vectorises over dY's rows.
// Guarantees: dx keeps its name, position and type (its users and the outputs are
// untouched); the sum is the same up to its order (the interpreter's conv2d sums over
// (m, i', j'), the scatter over pixels, so f32 results differ by rounding only; the test
// compares the rewritten function with the original one in f64). The filter_flip node is
// placed right before dx.
#include "passes/Passes.h"

namespace cnnc {

namespace {

bool rewrite(Function &f, Node &dx) {
  if (dx.op != OpKind::Conv2dGradInput)
    return false;
  auto s = dx.getInts("stride"), p = dx.getInts("pads"), d = dx.getInts("dilation");
  Node *dy = dx.operands[0], *w = dx.operands[1];
  const int64_t kh = w->type.shape[2], kw = w->type.shape[3], G = dx.getInt("groups");
  if (s != std::vector<int64_t>{1, 1})
    return false;
  const std::vector<int64_t> flipped{(kh - 1) * d[0] - p[0], (kw - 1) * d[1] - p[1],
                                     (kh - 1) * d[0] - p[2], (kw - 1) * d[1] - p[3]};
  for (int64_t v : flipped)
    if (v < 0)
      return false;
  const Shape &xs = dx.type.shape, &ys = dy->type.shape;
  if (2 * xs[2] * xs[3] > 3 * ys[2] * ys[3])
    return false;
  std::map<std::string, Attr> fa;
  fa["groups"] = Attr(int64_t(G));
  Node *wf = f.add(OpKind::FilterFlip, w->name + ".flip", {w}, std::move(fa), {}, dx.loc, true);
  f.moveBefore(wf, &dx);
  wf->comment = "eq. 46: each kernel turned by 180 degrees, input and output channels swapped";
  std::map<std::string, Attr> ca;
  ca["pads"] = Attr(flipped);
  ca["dilation"] = Attr(d);
  ca["groups"] = Attr(int64_t(G));
  dx.op = OpKind::Conv2d;
  dx.operands = {dy, wf};
  dx.attrs = std::move(ca);
  dx.comment = "eq. 46 at stride 1: dY correlated with the flipped filter";
  return true;
}

} // namespace

bool gradInputAsConv(Function &f) {
  bool changed = false;
  for (Node *n : f.nodeList())
    changed |= rewrite(f, *n);
  return changed;
}

} // namespace cnnc
