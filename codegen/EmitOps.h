// The op lowerings, internal to codegen/: the helpers several families share, and one
// declaration per lowering. Each Emit*.cpp holds one family, by what the code is (matrix
// products, tensor movement, reductions, losses, gradients, convolution); EmitOps.cpp holds
// the table (opEmitter) that maps every op of ir/Ops.def to its lowering, checked complete
// when it compiles.
#pragma once

#include "codegen/Emitter.h"
#include "ir/OpTraits.h"

#include <functional>
#include <vector>

namespace cnnc::codegen {

using VecBody = std::function<llvm::Value *(llvm::Value *, unsigned)>;

/// Whether emitElementwise lowers op k, by its element function (EmitElementwise.cpp's
/// elementFn): the ops with Ops.def's `elementwise` trait, except views (identity: Plan.cpp
/// aliases it, emitCopy copies it when it does not). The two tables are built from this at
/// compile time: such an op has an entry in elementFn and none in opEmitter, any other op the
/// reverse.
constexpr bool lowersByElementFn(OpKind k) {
  return opHasTrait(k, "elementwise") && !opHasTrait(k, "view");
}

// ------------------------------------------------------------------ shared helpers
inline llvm::Value *toF32(Emitter &e, llvm::Value *i) {
  return e.b.CreateSIToFP(i, e.f32);
}
/// The sum over i in [0, n) of term(i, w), vectorised: one vector and one scalar accumulator.
llvm::Value *sumOver(Emitter &e, llvm::Value *n, const VecBody &term);
void zeroFill(Emitter &e, llvm::Value *p, llvm::Value *count);
/// max/min with NaN winning (ONNX, numpy, PyTorch): `a wins || isnan(a) ? a : b` (EmitOps.cpp).
llvm::Value *pickNaN(Emitter &e, llvm::Value *a, llvm::Value *b, bool isMax);
/// Per-channel dims of [N, C, rest...]: C and the product of the rest.
void channelDims(const Node *x, int64_t &C, int64_t &inner);
std::vector<int64_t> rowMajorStrides(const Shape &s);
/// Strides of operand `s` broadcast (numpy rules) to the shape S: 0 along broadcast dims.
std::vector<int64_t> broadcastStrides(const Shape &s, const Shape &S);
/// A loop nest over the index space `ext` (row-major) for K operands with element strides
/// st[k][d] (EmitMove.cpp); `inner(off, n, istride)` emits the innermost run.
using Inner = std::function<void(const std::vector<llvm::Value *> &, llvm::Value *,
                                 const std::vector<int64_t> &)>;
void walk(Emitter &e, std::vector<int64_t> ext, std::vector<std::vector<int64_t>> st,
          std::vector<int64_t> base, const Inner &inner, int bd = -1, bool parallelOuter = false);
/// y[...] = x[...] along a walk whose operand 0 is y (contiguous innermost) and 1 is x.
void copyInner(Emitter &e, llvm::Value *y, llvm::Value *x, const std::vector<llvm::Value *> &off,
               llvm::Value *n, const std::vector<int64_t> &is);
/// conv2d_grad_filter vectorised along output rows (EmitConvGradRows.cpp): its geometry
/// (valid: stride 1 along rows, 3 <= kw <= 7, rows of 4 pixels or more) and its kernel.
struct FilterRowsGeom {
  int64_t N, C, H, W, M, G, Cg, Mg, kh, kw, R, sh, pt, pl, dh, dw, Ho, Wo, P, Hp, Wp;
  bool padded, valid;
  int64_t VL, PV, tail; // lanes; vectors per output row, the last holding `tail` (0: full)
  int64_t rpv;          // dY rows per vector: 2 when a row is half the vector (else 1)
  int64_t MT, nmt;      // output channels per tile, tiles per group
  bool xHeld;           // the kw x vectors held and dY streamed (else the MT dY vectors)
  int64_t CI, NC, KR;   // images per chunk, chunks (compiled batch), rows per block
  double lanesUsed;     // the fraction of lanes holding real work
  int64_t xpadOff, slotOff, bytes;
};
FilterRowsGeom filterRowsGeom(const Node &n, unsigned vl, bool narrowConvs);
/// x [planes][H][W] into the interior of the zero-padded xp [planes][Hp][Wp] (top and left
/// pads pt, pl), for the conv gradients' kernels (EmitConvGrad.cpp). Threads: one plane each.
void copyZeroPadded(Emitter &e, llvm::Value *x, llvm::Value *xp, llvm::Value *planes, int64_t H,
                    int64_t W, int64_t Hp, int64_t Wp, int64_t pt, int64_t pl, int64_t work);
void emitGradFilterRows(Emitter &e, const Node &n, const FilterRowsGeom &g);
/// The VL×VL matrix rows[p][lane] (VL vectors of VL lanes) transposed in registers
/// (EmitConv.cpp).
std::vector<llvm::Value *> transposeSquare(Emitter &e, std::vector<llvm::Value *> rows);
/// The first n lanes of v stored at p (a masked store when n < the vector's lanes).
void storePrefix(Emitter &e, llvm::Value *v, llvm::Value *p, int64_t n);
/// Max pooling whose windows tile the plane: kernel = stride, no padding, no dilation, every
/// window inside (rows past Ho·kh and columns past Wo·kw belong to none). maxpool and
/// maxpool_grad then run vectorised over w windows of a row at once (EmitReduce.cpp).
struct TiledPool {
  int64_t H, W, Ho, Wo, kh, kw;
  unsigned w; // windows per vector: the largest power of two with w·kw <= vl
};
/// Whether maxpool / maxpool_grad `n` tiles its input, and its geometry.
bool tiledMaxPool(const Node &n, unsigned vl, TiledPool &g);
/// PyTorch's scan (Emitter::maxScanTakes) over the windows of output row oh, columns
/// [ow, ow + w) (w = g.w or 1): their maxima and the winning taps (i32, i·kw + j: the last
/// NaN, else the first maximum).
void maxWindows(Emitter &e, const TiledPool &g, llvm::Value *x, llvm::Value *plane,
                llvm::Value *oh, llvm::Value *ow, unsigned w, llvm::Value *&best,
                llvm::Value *&win);
/// v's lanes each repeated k times (a scalar: splat to k lanes).
llvm::Value *repeatLanes(Emitter &e, llvm::Value *v, unsigned k);
/// out[i][j] = sum_k A[i][k] B[j][k] (+ bias[j]) for i < rows (EmitMatMul.cpp).
void emitDotRows(Emitter &e, llvm::Value *A, llvm::Value *rows, int64_t rowsMax, int64_t K,
                 llvm::Value *B, int64_t M, llvm::Value *bias, llvm::Value *out, bool relu = false,
                 double reluMax = INFINITY);

// ------------------------------------------------------------------ lowerings by family
// EmitElementwise.cpp: every op with the `elementwise` trait but views (identity), alone or
// as the root of a fused group (Plan::groups)
void emitElementwise(Emitter &e, const Node &n);
// EmitConv.cpp, EmitConvGrad.cpp
void emitConv2d(Emitter &e, const Node &n);
/// A depthwise conv2d (Plan.h's isDepthwise), vectorised along output rows (EmitConvDw.cpp).
void emitConv2dDepthwise(Emitter &e, const Node &n);
/// conv2d's weights and bias packed into its register tile's panels at `pack`
/// (ConvGeom::packBytes): in the prepare entry when Plan::packed has the conv.
void emitConvPack(Emitter &e, const Node &n, llvm::Value *pack);
void emitConv2dGradFilter(Emitter &e, const Node &n);
void emitConv2dGradInput(Emitter &e, const Node &n);
void emitFilterFlip(Emitter &e, const Node &n);
// EmitMatMul.cpp
void emitFc(Emitter &e, const Node &n);
/// fc's weights packed into the GEMM's panels at `pack` (fcPackBytes, Plan.h): in the
/// prepare entry when Plan::packed has the fc.
void emitFcPack(Emitter &e, const Node &n, llvm::Value *pack);
void emitMatMul3(Emitter &e, const Node &n);
void emitBatchMatMul(Emitter &e, const Node &n);
/// Y[M][N] = A'·B for another op's lowering, A' = ta ? Aᵀ (A stored [K][M]) : A ([M][K]),
/// B stored [K][N]: matmul's register-blocked GEMM, which needs no scratch for this form.
/// rows / depth: the runtime M / K when they follow the batch (else null: M / K).
void emitProduct(Emitter &e, int64_t M, int64_t N, int64_t K, bool ta, llvm::Value *A,
                 llvm::Value *B, llvm::Value *Y, llvm::Value *rows, llvm::Value *depth);
// EmitMove.cpp
void emitTranspose(Emitter &e, const Node &n);
void emitExpand(Emitter &e, const Node &n);
void emitSlice(Emitter &e, const Node &n);
void emitConcat(Emitter &e, const Node &n);
void emitIm2Row(Emitter &e, const Node &n);
void emitRow2Im(Emitter &e, const Node &n);
// EmitPad.cpp
void emitPad(Emitter &e, const Node &n);
void emitPadGrad(Emitter &e, const Node &n);
// EmitReduce.cpp
void emitReduce(Emitter &e, const Node &n); // reduce_sum, reduce_max, reduce_min
void emitArgMax(Emitter &e, const Node &n);
void emitPool(Emitter &e, const Node &n);
void emitGlobalAvgPool(Emitter &e, const Node &n);
void emitSoftmax(Emitter &e, const Node &n);
void emitBatchNorm(Emitter &e, const Node &n);
void emitBnStat(Emitter &e, const Node &n);
// EmitLoss.cpp
void emitSoftmaxXent(Emitter &e, const Node &n);
void emitL2Loss(Emitter &e, const Node &n);
void emitSoftmaxXentGrad(Emitter &e, const Node &n);
void emitL2LossGrad(Emitter &e, const Node &n);
void emitCountCorrect(Emitter &e, const Node &n);
void emitSoftmaxXentNd(Emitter &e, const Node &n);
// EmitGrad.cpp
void emitMaxPoolGrad(Emitter &e, const Node &n);
void emitAvgPoolGrad(Emitter &e, const Node &n);
void emitSoftmaxGrad(Emitter &e, const Node &n);
void emitBatchNormGrad(Emitter &e, const Node &n);
void emitBnMeanGrad(Emitter &e, const Node &n);
void emitBnTrainGrad(Emitter &e, const Node &n);
void emitBnVarGrad(Emitter &e, const Node &n);
void emitBnUnbias(Emitter &e, const Node &n);

} // namespace cnnc::codegen
