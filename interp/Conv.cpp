// Reference convolution and pooling, NCHW, as direct loops over output elements.
//
// conv2d is seed eq. 15 generalised with the usual attributes: for output (n, m, oh, ow),
//   y = b[m] + sum_{c in group(m), i < kh, j < kw} w[m, c, i, j] * x[n, g*C/groups + c, ih, iw]
//   ih = oh*stride_h - pad_top + i*dilation_h, iw likewise; positions outside x are zeros.
// Pooling generalises seed eqs. 48-49 to overlapping windows (stride < kernel, seed
// section 7), padding, dilation (max only) and ceil_mode, with PyTorch's rules:
//  - output extent: floor((in + pads - dil*(k-1) - 1) / s) + 1 (ceil with ceil_mode), minus
//    one if ceil_mode made the last window start beyond the input and its leading padding;
//  - max: padded positions never win (they are skipped, i.e. -inf); a NaN in the window makes
//    the result NaN (PyTorch's scan `v > best || isnan(v)`, not std::max, which drops it);
//  - avg: divisor = window size clipped to the padded input (count_include_pad=1) or the
//    number of real input elements in the window (count_include_pad=0).
#include "interp/Kernels.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace cnnc::interp {

int64_t pooledSize(int64_t in, int64_t padBegin, int64_t padEnd, int64_t kernel, int64_t stride,
                   int64_t dilation, bool ceilMode) {
  int64_t span = in + padBegin + padEnd - dilation * (kernel - 1) - 1;
  CNNC_ASSERT(span >= 0 && stride > 0, "window larger than the padded input");
  int64_t out = (ceilMode ? (span + stride - 1) / stride : span / stride) + 1;
  if (ceilMode && (out - 1) * stride >= in + padBegin)
    --out;
  return out;
}

template <class T>
Tensor<T> conv2d(const Tensor<T> &x, const Tensor<T> &w, const Tensor<T> *b, const ConvParams &p) {
  CNNC_ASSERT(x.dimension() == 4 && w.dimension() == 4, "conv2d operands must be 4-D");
  const int64_t N = x.shape(0), C = x.shape(1), H = x.shape(2), W = x.shape(3);
  const int64_t M = w.shape(0), Cg = w.shape(1), kh = w.shape(2), kw = w.shape(3);
  const int64_t G = p.groups;
  CNNC_ASSERT(G > 0 && C == Cg * G && M % G == 0, "conv2d channel/group mismatch");
  CNNC_ASSERT(!b || (b->dimension() == 1 && (int64_t)b->shape(0) == M), "conv2d bias shape");
  const auto [sh, sw] = p.stride;
  const auto [dh, dw] = p.dilation;
  const int64_t pt = p.pads[0], pl = p.pads[1];
  const int64_t Ho = pooledSize(H, pt, p.pads[2], kh, sh, dh, false);
  const int64_t Wo = pooledSize(W, pl, p.pads[3], kw, sw, dw, false);
  const int64_t Mg = M / G;

  Tensor<T> y = Tensor<T>::from_shape({(size_t)N, (size_t)M, (size_t)Ho, (size_t)Wo});
  const T *xd = x.data(), *wd = w.data();
  T *yd = y.data();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t m = 0; m < M; ++m) {
      const int64_t cBase = (m / Mg) * Cg; // first input channel of m's group
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow) {
          T acc = b ? (*b)(m) : T(0);
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t i = 0; i < kh; ++i) {
              const int64_t ih = oh * sh - pt + i * dh;
              if (ih < 0 || ih >= H)
                continue;
              const T *xrow = xd + ((n * C + cBase + c) * H + ih) * W;
              const T *wrow = wd + ((m * Cg + c) * kh + i) * kw;
              for (int64_t j = 0; j < kw; ++j) {
                const int64_t iw = ow * sw - pl + j * dw;
                if (iw >= 0 && iw < W)
                  acc += wrow[j] * xrow[iw];
              }
            }
          yd[((n * M + m) * Ho + oh) * Wo + ow] = acc;
        }
    }
  return y;
}

// Sets every output of a pooling over x [N,C,H,W] to f(plane, H, W, hs, ws): plane is the
// (n, c) input plane, (hs, ws) the window's top-left corner in unpadded coordinates (negative
// inside the leading padding).
template <class T, class F> static Tensor<T> pool(const Tensor<T> &x, const PoolParams &p, F f) {
  CNNC_ASSERT(x.dimension() == 4, "pooling input must be 4-D");
  const int64_t N = x.shape(0), C = x.shape(1), H = x.shape(2), W = x.shape(3);
  const int64_t Ho =
      pooledSize(H, p.pads[0], p.pads[2], p.kernel[0], p.stride[0], p.dilation[0], p.ceilMode);
  const int64_t Wo =
      pooledSize(W, p.pads[1], p.pads[3], p.kernel[1], p.stride[1], p.dilation[1], p.ceilMode);
  Tensor<T> y = Tensor<T>::from_shape({(size_t)N, (size_t)C, (size_t)Ho, (size_t)Wo});
  for (int64_t nc = 0; nc < N * C; ++nc)
    for (int64_t oh = 0; oh < Ho; ++oh)
      for (int64_t ow = 0; ow < Wo; ++ow)
        y.data()[(nc * Ho + oh) * Wo + ow] =
            f(x.data() + nc * H * W, H, W, oh * p.stride[0] - p.pads[0],
              ow * p.stride[1] - p.pads[1]);
  return y;
}

template <class T> Tensor<T> maxPool(const Tensor<T> &x, const PoolParams &p) {
  return pool(x, p, [&](const T *plane, int64_t H, int64_t W, int64_t hs, int64_t ws) {
    T best = -std::numeric_limits<T>::infinity();
    for (int64_t i = 0; i < p.kernel[0]; ++i) {
      const int64_t ih = hs + i * p.dilation[0];
      if (ih < 0 || ih >= H)
        continue;
      for (int64_t j = 0; j < p.kernel[1]; ++j) {
        const int64_t iw = ws + j * p.dilation[1];
        if (iw >= 0 && iw < W && (plane[ih * W + iw] > best || std::isnan(plane[ih * W + iw])))
          best = plane[ih * W + iw];
      }
    }
    return best;
  });
}

template <class T> Tensor<T> avgPool(const Tensor<T> &x, const PoolParams &p) {
  CNNC_ASSERT(p.dilation[0] == 1 && p.dilation[1] == 1, "avgpool has no dilation");
  return pool(x, p, [&](const T *plane, int64_t H, int64_t W, int64_t hs, int64_t ws) {
    // The window clipped to the padded input (PyTorch's pool_size), then to the input.
    int64_t he = std::min(hs + p.kernel[0], H + p.pads[2]);
    int64_t we = std::min(ws + p.kernel[1], W + p.pads[3]);
    const int64_t paddedCount = (he - hs) * (we - ws);
    hs = std::max<int64_t>(hs, 0), ws = std::max<int64_t>(ws, 0);
    he = std::min(he, H), we = std::min(we, W);
    T sum = 0;
    for (int64_t ih = hs; ih < he; ++ih)
      for (int64_t iw = ws; iw < we; ++iw)
        sum += plane[ih * W + iw];
    const int64_t count = p.countIncludePad ? paddedCount : (he - hs) * (we - ws);
    return sum / T(count);
  });
}

// Mean over every spatial axis (2 and up): [N,C,H,W] -> [N,C,1,1].
template <class T> Tensor<T> globalAvgPool(const Tensor<T> &x) {
  CNNC_ASSERT(x.dimension() >= 3, "global_avgpool input must be [N,C,spatial...]");
  auto shape = x.shape();
  size_t spatial = 1;
  for (size_t d = 2; d < shape.size(); ++d)
    spatial *= shape[d], shape[d] = 1;
  Tensor<T> y = Tensor<T>::from_shape(shape);
  for (size_t nc = 0; nc < y.size(); ++nc) {
    T sum = 0;
    for (size_t k = 0; k < spatial; ++k)
      sum += x.data()[nc * spatial + k];
    y.data()[nc] = sum / T(spatial);
  }
  return y;
}

#define INSTANTIATE(T)                                                                             \
  template Tensor<T> conv2d(const Tensor<T> &, const Tensor<T> &, const Tensor<T> *,               \
                            const ConvParams &);                                                   \
  template Tensor<T> maxPool(const Tensor<T> &, const PoolParams &);                               \
  template Tensor<T> avgPool(const Tensor<T> &, const PoolParams &);                               \
  template Tensor<T> globalAvgPool(const Tensor<T> &);
INSTANTIATE(float)
INSTANTIATE(double)

} // namespace cnnc::interp
