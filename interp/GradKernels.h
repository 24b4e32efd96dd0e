// Reference kernels of the ops added for autodiff and training (ir/Ops.def, from
// count_correct to update): general tensor ops used by the backward pass, im2row/row2im,
// and the vector-Jacobian products that passes/GradRules.cpp emits. Same conventions as
// Kernels.h: direct loops over row-major data, preconditions re-checked with CNNC_ASSERT,
// data-dependent user errors (labels) thrown as cnnc::Error prefixed by `what`.
#pragma once

#include "interp/Kernels.h"

#include <string>
#include <vector>

namespace cnnc::interp {

// general tensor ops
/// Number of rows of logits [N,C] whose first maximum is the row's label: an i32[] held as T.
template <class T>
Tensor<T> countCorrect(const Tensor<T> &logits, const Tensor<T> &labels, const std::string &what);
/// Result dim i is input dim perm[i].
template <class T> Tensor<T> transpose(const Tensor<T> &x, const std::vector<int64_t> &perm);
/// numpy broadcast of x to `shape` (dims aligned on the right).
template <class T> Tensor<T> expand(const Tensor<T> &x, const std::vector<int64_t> &shape);
/// Sum over `axes` (negative counts from the end); keepdims leaves them as size 1.
template <class T>
Tensor<T> reduceSum(const Tensor<T> &x, const std::vector<int64_t> &axes, bool keepdims);
/// Maximum (isMax) or minimum over `axes`, a NaN in the extent giving NaN (torch.amax/amin).
template <class T>
Tensor<T> reduceExtremum(const Tensor<T> &x, const std::vector<int64_t> &axes, bool keepdims,
                         bool isMax);
/// Index of the first (last: the last) maximum along axis, NaN counting as the largest.
template <class T> Tensor<T> argMax(const Tensor<T> &x, int64_t axis, bool keepdims, bool last);
/// Elements start..end-1 along axis (negative counts from the end).
template <class T> Tensor<T> slice(const Tensor<T> &x, int64_t axis, int64_t start, int64_t end);

// convolution as a matrix product (seed section 6.3-6.7), in cnnc's row-major order; the
// seed's own column-major phi(x) is interp/Im2row.h.
/// x [N,C,H,W] -> [G, N*Ho*Wo, (C/G)*kh*kw]: row (n*Ho+oh)*Wo+ow, column (c*kh+i)*kw+j with c
/// local to group g, value x[n, g*C/G+c, oh*sh-pt+i*dh, ow*sw-pl+j*dw] (0 in the padding).
template <class T>
Tensor<T> im2rowGrouped(const Tensor<T> &x, const std::array<int64_t, 2> &kernel,
                        const ConvParams &p);
/// The adjoint of im2rowGrouped: scatter-adds each element back to its input pixel of an
/// input of shape `inputShape` (seed eq. 46); elements read from the padding are dropped.
template <class T>
Tensor<T> row2imGrouped(const Tensor<T> &rows, const std::vector<int64_t> &inputShape,
                        const std::array<int64_t, 2> &kernel, const ConvParams &p);

// the fused conv2d gradients (passes/FuseConvGrad.cpp), computed without phi(x): each sum
// runs in the same order as the unfused im2row/matmul/row2im chain, so in f64 the two agree
// to the last bit (tests/interp/ConvGradTest.cpp).
/// phi(x)^T dY per group (seed eq. 35), as [M, C/G, kh, kw]; dy is conv2d's output gradient.
template <class T>
Tensor<T> conv2dGradFilter(const Tensor<T> &x, const Tensor<T> &dy,
                           const std::array<int64_t, 2> &kernel, const ConvParams &p);
/// row2im(dY F^T) per group (seed eqs. 45-46) for w [M, C/G, kh, kw], shaped `inputShape`.
template <class T>
Tensor<T> conv2dGradInput(const Tensor<T> &dy, const Tensor<T> &w,
                          const std::vector<int64_t> &inputShape, const ConvParams &p);
/// filter_flip: w [M, C/G, kh, kw] -> [C, M/G, kh, kw], out[g*Cg+c][m][i][j] =
/// w[g*Mg+m][c][kh-1-i][kw-1-j] (the filter of a stride-1 input gradient as a convolution).
template <class T> Tensor<T> filterFlip(const Tensor<T> &w, int64_t groups);

// vector-Jacobian products
/// Each window's dy goes to the element maxPool's value came from: the first maximum in
/// row-major window order (strictly greater replaces), never a padded position.
template <class T>
Tensor<T> maxPoolGrad(const Tensor<T> &dy, const Tensor<T> &x, const PoolParams &p);
/// The exact adjoint of avgPool (same window clipping and divisor).
template <class T>
Tensor<T> avgPoolGrad(const Tensor<T> &dy, const std::vector<int64_t> &inputShape,
                      const PoolParams &p);
/// softmax: y*(dy - sum(dy*y)); log_softmax (log=true): dy - exp(y)*sum(dy), along axis.
template <class T>
Tensor<T> softmaxGrad(const Tensor<T> &dy, const Tensor<T> &y, int64_t axis, bool log);
/// wrt "x" (shape of x) or "scale", "mean", "var" (per channel).
template <class T>
Tensor<T> batchNormGrad(const Tensor<T> &dy, const Tensor<T> &x, const Tensor<T> &scale,
                        const Tensor<T> &mean, const Tensor<T> &var, double epsilon,
                        const std::string &wrt);
template <class T> Tensor<T> bnMeanGrad(const Tensor<T> &dmean, const Tensor<T> &x);
/// bn_train_grad: batchnorm's whole input gradient over batch statistics (ir/Ops.def).
template <class T>
Tensor<T> bnTrainGrad(const Tensor<T> &dy, const Tensor<T> &x, const Tensor<T> &scale,
                      const Tensor<T> &mean, const Tensor<T> &var, const Tensor<T> &dscale,
                      const Tensor<T> &dbias, double epsilon);
/// wrt "x" (shape of x) or "mean" (per channel).
template <class T>
Tensor<T> bnVarGrad(const Tensor<T> &dvar, const Tensor<T> &x, const Tensor<T> &mean,
                    const std::string &wrt);
template <class T>
Tensor<T> softmaxXentGrad(const Tensor<T> &dz, const Tensor<T> &logits, const Tensor<T> &labels,
                          const std::string &what);
template <class T>
Tensor<T> l2LossGrad(const Tensor<T> &dz, const Tensor<T> &pred, const Tensor<T> &target);

} // namespace cnnc::interp
