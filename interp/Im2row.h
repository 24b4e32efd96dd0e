// The seed's im2row expansion phi(x) (seed section 6.3, eqs. 18-21), for one image, kept
// as an executable statement of the seed's notation: tests check that phi(x) vec(F)
// reproduces conv2d (seed eq. 22). Not used by the interpreter itself.
#pragma once

#include "interp/Interpreter.h"

namespace cnnc::interp {

/// phi(x) for one image x [C, H^l, W^l] (our CHW slice of NCHW) and a kh x kw kernel,
/// stride 1 and no padding as in the seed: a (H^{l+1} W^{l+1}) x (kh kw C) matrix with
///   row    p = i^{l+1} + H^{l+1} j^{l+1}          (eq. 18)
///   column q = i + kh j + kh kw d^l               (eq. 19)
///   phi(p, q) = x[d^l, i^{l+1} + i, j^{l+1} + j]  (eqs. 20, 21)
/// i.e. the seed's column-major (Matlab) order. With F(q, m) = w[m, d^l, i, j] (each kernel
/// vectorised column-major into a column), phi(x) F (p, m) = y[m, i^{l+1}, j^{l+1}].
template <class T> Tensor<T> im2row(const Tensor<T> &x, int64_t kh, int64_t kw);

} // namespace cnnc::interp
