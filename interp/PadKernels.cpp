// Reference kernels of padding (ONNX Pad: constant, reflect, edge) and its adjoint, direct
// loops like Kernels.cpp: every output element of pad is found by mapping its index, dim by
// dim, to the input index it copies (or to none: the constant), and pad_grad adds every dy
// element to that same source.
#include "interp/Kernels.h"

#include <algorithm>

namespace cnnc::interp {

// The input index that output index o of a dim of input extent n copies, with `begin`
// elements padded before it; -1 when it is constant fill.
int64_t padSource(const std::string &mode, int64_t o, int64_t begin, int64_t n) {
  int64_t i = o - begin;
  if (i >= 0 && i < n)
    return i;
  if (mode == "edge")
    return i < 0 ? 0 : n - 1;
  if (mode == "reflect") // one mirror image (pad < n): -1 -> 1, n -> n - 2
    return i < 0 ? -i : 2 * (n - 1) - i;
  return -1;
}

namespace {

// For every element of the padded shape (row-major), visit(flat padded index, flat source
// index or -1).
template <class F>
void forEachPadded(const std::vector<size_t> &xs, const std::vector<int64_t> &pads,
                   const std::string &mode, F visit) {
  const size_t r = xs.size();
  CNNC_ASSERT(pads.size() == 2 * r, "pad: one begin and one end per dim");
  std::vector<int64_t> ys(r), xstride(r, 1);
  int64_t total = 1;
  for (size_t d = 0; d < r; ++d) {
    ys[d] = (int64_t)xs[d] + pads[d] + pads[d + r];
    total *= ys[d];
  }
  for (size_t d = r; d-- > 1;)
    xstride[d - 1] = xstride[d] * (int64_t)xs[d];
  std::vector<int64_t> idx(r, 0);
  for (int64_t flat = 0; flat < total; ++flat) {
    int64_t src = 0;
    for (size_t d = 0; d < r && src >= 0; ++d) {
      int64_t s = padSource(mode, idx[d], pads[d], (int64_t)xs[d]);
      src = s < 0 ? -1 : src + s * xstride[d];
    }
    visit(flat, src);
    for (size_t d = r; d-- > 0;) { // next index, row-major
      if (++idx[d] < ys[d])
        break;
      idx[d] = 0;
    }
  }
}

} // namespace

template <class T>
Tensor<T> padKernel(const Tensor<T> &x, const std::vector<int64_t> &pads, const std::string &mode,
              double value) {
  std::vector<size_t> xs(x.shape().begin(), x.shape().end()), ys = xs;
  for (size_t d = 0; d < xs.size(); ++d)
    ys[d] += (size_t)(pads[d] + pads[d + xs.size()]);
  Tensor<T> y = Tensor<T>::from_shape(ys);
  forEachPadded(xs, pads, mode, [&](int64_t o, int64_t s) {
    y.data()[o] = s < 0 ? T(value) : x.data()[s];
  });
  return y;
}

template <class T>
Tensor<T> padGradKernel(const Tensor<T> &dy, const std::vector<int64_t> &pads, const std::string &mode) {
  std::vector<size_t> xs(dy.shape().begin(), dy.shape().end());
  for (size_t d = 0; d < xs.size(); ++d)
    xs[d] -= (size_t)(pads[d] + pads[d + xs.size()]);
  Tensor<T> dx = Tensor<T>::from_shape(xs);
  std::fill(dx.begin(), dx.end(), T(0));
  forEachPadded(xs, pads, mode, [&](int64_t o, int64_t s) {
    if (s >= 0)
      dx.data()[s] += dy.data()[o];
  });
  return dx;
}

#define INSTANTIATE(T)                                                                             \
  template Tensor<T> padKernel(const Tensor<T> &, const std::vector<int64_t> &, const std::string &,     \
                         double);                                                                  \
  template Tensor<T> padGradKernel(const Tensor<T> &, const std::vector<int64_t> &, const std::string &);
INSTANTIATE(float)
INSTANTIATE(double)

} // namespace cnnc::interp
