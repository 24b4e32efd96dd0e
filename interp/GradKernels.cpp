// Reference kernels of the autodiff and training ops (GradKernels.h), as direct loops.
//
// Each vector-Jacobian product is the transpose of its forward kernel's Jacobian, written so
// that it can be read against that kernel line by line:
//  - maxpool_grad scans each window exactly as maxPool does (Conv.cpp) and sends dy to the
//    element whose value maxPool returned: the first maximum in row-major window order, or
//    the last NaN of a window holding NaN, as PyTorch does (seed eqs. 53-56); padded
//    positions are skipped, overlapping windows add up.
//  - avgpool_grad clips each window and counts its divisor exactly as avgPool does.
//  - row2im is im2row's loop with the assignment turned into a scatter-add (seed eq. 46).
//  - softmax_xent_grad is the fused (softmax(z) - onehot(t)) * dz / N of seed section 3.1.
//  - batch-norm gradients (wrt x, scale, mean, var, bn_mean, bn_var) are the partial
//    derivatives of the forward formulas with the other operands held fixed; autodiff
//    composes them into the full training-mode gradient.
#include "interp/GradKernels.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>

namespace cnnc::interp {

namespace {

using Dims = std::vector<int64_t>;

template <class T> Tensor<T> withShape(const Dims &shape) {
  return Tensor<T>::from_shape(std::vector<size_t>(shape.begin(), shape.end()));
}

template <class T> Dims dimsOf(const Tensor<T> &x) {
  return Dims(x.shape().begin(), x.shape().end());
}

template <class T> Tensor<T> scalar(T v) {
  Tensor<T> y = Tensor<T>::from_shape(std::vector<size_t>{});
  y.data()[0] = v;
  return y;
}

// Row-major strides of a shape.
Dims stridesOf(const Dims &shape) {
  Dims s(shape.size(), 1);
  for (size_t d = shape.size(); d-- > 1;)
    s[d - 1] = s[d] * shape[d];
  return s;
}

// Calls f(offset) for every index of `shape` in row-major order, where offset =
// base + sum_d index[d] * step[d]: the shared loop of transpose, expand, slice (a gather
// from an input) and reduce_sum (a scatter into an output).
template <class F> void forEachOffset(const Dims &shape, const Dims &step, int64_t base, F f) {
  for (int64_t d : shape)
    if (d == 0)
      return;
  Dims idx(shape.size(), 0);
  int64_t off = base;
  for (;;) {
    f(off);
    size_t d = shape.size();
    while (d-- > 0) { // odometer increment
      if (++idx[d] < shape[d]) {
        off += step[d];
        break;
      }
      off -= (shape[d] - 1) * step[d];
      idx[d] = 0;
    }
    if (d == (size_t)-1)
      return;
  }
}

template <class T>
Tensor<T> gather(const Tensor<T> &x, const Dims &outShape, const Dims &step, int64_t base) {
  Tensor<T> y = withShape<T>(outShape);
  T *out = y.data();
  forEachOffset(outShape, step, base, [&](int64_t off) { *out++ = x.data()[off]; });
  return y;
}

int64_t normAxis(int64_t axis, size_t rank) {
  if (axis < 0)
    axis += (int64_t)rank;
  CNNC_ASSERT(axis >= 0 && axis < (int64_t)rank, "axis out of range");
  return axis;
}

template <class T> void channelDims(const Tensor<T> &x, int64_t &N, int64_t &C, int64_t &inner) {
  CNNC_ASSERT(x.dimension() >= 2, "per-channel op on a tensor of rank < 2");
  N = x.shape(0), C = x.shape(1), inner = 1;
  for (size_t d = 2; d < x.dimension(); ++d)
    inner *= x.shape(d);
}

template <class T> void requireChannels(const Tensor<T> &t, int64_t C, const char *what) {
  CNNC_ASSERT(t.dimension() == 1 && (int64_t)t.shape(0) == C,
              fmt::format("{} must have one value per channel", what));
}

// Labels as softmax_xent checks them (Kernels.cpp): integral, in [0, C).
template <class T>
std::vector<int64_t> checkedLabels(const Tensor<T> &logits, const Tensor<T> &labels,
                                   const std::string &what) {
  CNNC_ASSERT(logits.dimension() == 2 && labels.dimension() == 1 &&
                  labels.shape(0) == logits.shape(0),
              "logits/labels shapes");
  const int64_t N = logits.shape(0), C = logits.shape(1);
  std::vector<int64_t> out(N);
  for (int64_t n = 0; n < N; ++n) {
    const T l = labels(n);
    if (!(l == std::floor(l) && l >= 0 && l < T(C)))
      throw Error(
          fmt::format("{}: label {} of example {} is not a class index in [0, {})", what, l, n, C));
    out[n] = (int64_t)l;
  }
  return out;
}

} // namespace

// ---------------------------------------------------------------------------- tensor ops --
template <class T>
Tensor<T> countCorrect(const Tensor<T> &logits, const Tensor<T> &labels, const std::string &what) {
  const std::vector<int64_t> label = checkedLabels(logits, labels, what);
  const int64_t N = logits.shape(0), C = logits.shape(1);
  int64_t correct = 0;
  for (int64_t n = 0; n < N; ++n) {
    const T *row = logits.data() + n * C;
    int64_t best = 0; // seed eq. 7's arg max, the first one on ties
    for (int64_t c = 1; c < C; ++c)
      if (row[c] > row[best])
        best = c;
    correct += best == label[n];
  }
  return scalar<T>(T(correct));
}

template <class T> Tensor<T> transpose(const Tensor<T> &x, const std::vector<int64_t> &perm) {
  CNNC_ASSERT(perm.size() == x.dimension(), "transpose perm length");
  const Dims xs = dimsOf(x), xst = stridesOf(xs);
  Dims shape, step;
  std::vector<bool> seen(perm.size(), false);
  for (int64_t p : perm) {
    CNNC_ASSERT(p >= 0 && p < (int64_t)perm.size() && !seen[p],
                "transpose perm is not a permutation");
    seen[p] = true;
    shape.push_back(xs[p]), step.push_back(xst[p]);
  }
  return gather(x, shape, step, 0);
}

template <class T> Tensor<T> expand(const Tensor<T> &x, const std::vector<int64_t> &shape) {
  const Dims xs = dimsOf(x), xst = stridesOf(xs);
  CNNC_ASSERT(shape.size() >= xs.size(), "expand to a lower rank");
  const size_t lead = shape.size() - xs.size();
  Dims step(shape.size(), 0); // leading new dims and size-1 dims repeat: step 0
  for (size_t d = 0; d < xs.size(); ++d) {
    CNNC_ASSERT(xs[d] == shape[lead + d] || xs[d] == 1, "expand: shapes do not broadcast");
    if (xs[d] != 1)
      step[lead + d] = xst[d];
  }
  return gather(x, shape, step, 0);
}

// Folds x over `axes` into the output element each input element maps to, in row-major
// input order: the loop of reduce_sum, reduce_max and reduce_min.
template <class T, class F>
Tensor<T> reduceFold(const Tensor<T> &x, const std::vector<int64_t> &axes, bool keepdims, T init,
                     F combine) {
  const Dims xs = dimsOf(x);
  std::vector<bool> reduced(xs.size(), false);
  for (int64_t a : axes) {
    const int64_t ax = normAxis(a, xs.size());
    CNNC_ASSERT(!reduced[ax], "reduce axis listed twice");
    reduced[ax] = true;
  }
  Dims kept(xs); // the output's shape with keepdims; its strides locate each input element
  for (size_t d = 0; d < xs.size(); ++d)
    if (reduced[d])
      kept[d] = 1;
  Dims step = stridesOf(kept);
  for (size_t d = 0; d < xs.size(); ++d)
    if (reduced[d])
      step[d] = 0;
  Dims shape;
  for (size_t d = 0; d < xs.size(); ++d)
    if (!reduced[d] || keepdims)
      shape.push_back(kept[d]);
  Tensor<T> y = withShape<T>(shape);
  std::fill(y.begin(), y.end(), init);
  const T *in = x.data();
  forEachOffset(xs, step, 0, [&](int64_t off) { y.data()[off] = combine(y.data()[off], *in++); });
  return y;
}

template <class T>
Tensor<T> reduceSum(const Tensor<T> &x, const std::vector<int64_t> &axes, bool keepdims) {
  return reduceFold(x, axes, keepdims, T(0), [](T a, T v) { return a + v; });
}

// torch.amax/amin: a NaN anywhere in the extent is the result (v wins when it is NaN; once
// the accumulator is NaN, no comparison with it is true).
template <class T>
Tensor<T> reduceExtremum(const Tensor<T> &x, const std::vector<int64_t> &axes, bool keepdims,
                         bool isMax) {
  const T inf = std::numeric_limits<T>::infinity();
  return reduceFold(x, axes, keepdims, isMax ? -inf : inf, [isMax](T a, T v) {
    return std::isnan(v) || (isMax ? v > a : v < a) ? v : a;
  });
}

// The index along `axis` of the first maximum (the last with `last`), a NaN beating every
// number (numpy's and PyTorch's argmax), held as T.
template <class T> Tensor<T> argMax(const Tensor<T> &x, int64_t axis, bool keepdims, bool last) {
  Dims xs = dimsOf(x);
  axis = normAxis(axis, xs.size());
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d)
    outer *= xs[d];
  for (size_t d = axis + 1; d < xs.size(); ++d)
    inner *= xs[d];
  const int64_t len = xs[axis];
  Dims shape;
  for (size_t d = 0; d < xs.size(); ++d)
    if ((int64_t)d != axis || keepdims)
      shape.push_back((int64_t)d == axis ? 1 : xs[d]);
  Tensor<T> y = withShape<T>(shape);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const T *p = x.data() + o * len * inner + i;
      int64_t best = 0;
      for (int64_t k = 1; k < len; ++k) {
        const T v = p[k * inner], b = p[best * inner];
        if (std::isnan(b) && !(last && std::isnan(v)))
          continue; // the first NaN stays (the last NaN with `last`)
        if (std::isnan(v) || v > b || (last && v == b))
          best = k;
      }
      y.data()[o * inner + i] = T(best);
    }
  return y;
}

template <class T> Tensor<T> slice(const Tensor<T> &x, int64_t axis, int64_t start, int64_t end) {
  axis = normAxis(axis, x.dimension());
  Dims shape = dimsOf(x);
  CNNC_ASSERT(0 <= start && start < end && end <= shape[axis], "slice out of range");
  const Dims step = stridesOf(shape);
  shape[axis] = end - start;
  return gather(x, shape, step, start * step[axis]);
}

// ---------------------------------------------------------------------------- im2row --
namespace {

// The geometry shared by im2row and row2im; `visit(dst, src)` is called for every element of
// the [G, N*Ho*Wo, Cg*kh*kw] matrix (dst, its flat index) whose input pixel is inside x (src,
// the pixel's flat index in [N,C,H,W]); elements in the padding are not visited.
struct Im2rowGeometry {
  int64_t N, C, H, W, G, Cg, kh, kw, Ho, Wo;
  ConvParams p;

  Im2rowGeometry(const Dims &x, const std::array<int64_t, 2> &kernel, const ConvParams &p)
      : N(x[0]), C(x[1]), H(x[2]), W(x[3]), G(p.groups), Cg(0), kh(kernel[0]), kw(kernel[1]), Ho(0),
        Wo(0), p(p) {
    CNNC_ASSERT(x.size() == 4, "im2row input must be 4-D");
    CNNC_ASSERT(G > 0 && C % G == 0, "im2row groups must divide the channels");
    Cg = C / G;
    Ho = pooledSize(H, p.pads[0], p.pads[2], kh, p.stride[0], p.dilation[0], false);
    Wo = pooledSize(W, p.pads[1], p.pads[3], kw, p.stride[1], p.dilation[1], false);
  }
  Dims rowsShape() const { return {G, N * Ho * Wo, Cg * kh * kw}; }

  template <class F> void forEach(F visit) const {
    const int64_t cols = Cg * kh * kw, rows = N * Ho * Wo;
    for (int64_t g = 0; g < G; ++g)
      for (int64_t n = 0; n < N; ++n)
        for (int64_t oh = 0; oh < Ho; ++oh)
          for (int64_t ow = 0; ow < Wo; ++ow) {
            const int64_t row = (n * Ho + oh) * Wo + ow;
            const int64_t rowBase = (g * rows + row) * cols;
            for (int64_t c = 0; c < Cg; ++c)
              for (int64_t i = 0; i < kh; ++i) {
                const int64_t ih = oh * p.stride[0] - p.pads[0] + i * p.dilation[0];
                if (ih < 0 || ih >= H)
                  continue;
                for (int64_t j = 0; j < kw; ++j) {
                  const int64_t iw = ow * p.stride[1] - p.pads[1] + j * p.dilation[1];
                  if (iw < 0 || iw >= W)
                    continue;
                  visit(rowBase + (c * kh + i) * kw + j, ((n * C + g * Cg + c) * H + ih) * W + iw);
                }
              }
          }
  }
};

} // namespace

template <class T>
Tensor<T> im2rowGrouped(const Tensor<T> &x, const std::array<int64_t, 2> &kernel,
                        const ConvParams &p) {
  const Im2rowGeometry geo(dimsOf(x), kernel, p);
  Tensor<T> rows = withShape<T>(geo.rowsShape());
  std::fill(rows.begin(), rows.end(), T(0)); // padding reads 0
  geo.forEach([&](int64_t dst, int64_t src) { rows.data()[dst] = x.data()[src]; });
  return rows;
}

template <class T>
Tensor<T> row2imGrouped(const Tensor<T> &rows, const std::vector<int64_t> &inputShape,
                        const std::array<int64_t, 2> &kernel, const ConvParams &p) {
  const Im2rowGeometry geo(inputShape, kernel, p);
  CNNC_ASSERT(dimsOf(rows) == geo.rowsShape(), "row2im rows shape");
  Tensor<T> x = withShape<T>(inputShape);
  std::fill(x.begin(), x.end(), T(0));
  geo.forEach([&](int64_t dst, int64_t src) { x.data()[src] += rows.data()[dst]; });
  return x;
}

// ------------------------------------------------------------- fused conv2d gradients --
// The loops are im2row's (Im2rowGeometry::forEach) with the matrix product folded in: the
// filter gradient sums over the rows (n, oh, ow) in order, as matMul's k loop does on
// phi(x); the input gradient forms each element of dY F^T (m in order) and adds it to its
// pixel in row2im's order. Padded positions contribute nothing, as phi(x)'s zeros do.
template <class T>
Tensor<T> conv2dGradFilter(const Tensor<T> &x, const Tensor<T> &dy,
                           const std::array<int64_t, 2> &kernel, const ConvParams &p) {
  const Im2rowGeometry geo(dimsOf(x), kernel, p);
  const int64_t M = dy.shape(1), Mg = M / geo.G, kh = geo.kh, kw = geo.kw;
  CNNC_ASSERT(dimsOf(dy) == (Dims{geo.N, M, geo.Ho, geo.Wo}), "conv2d_grad_filter dy shape");
  Tensor<T> dw = withShape<T>({M, geo.Cg, kh, kw});
  const T *xd = x.data(), *dyd = dy.data();
  for (int64_t g = 0; g < geo.G; ++g)
    for (int64_t m = 0; m < Mg; ++m)
      for (int64_t c = 0; c < geo.Cg; ++c)
        for (int64_t i = 0; i < kh; ++i)
          for (int64_t j = 0; j < kw; ++j) {
            T acc = 0;
            for (int64_t n = 0; n < geo.N; ++n) {
              const T *xp = xd + (n * geo.C + g * geo.Cg + c) * geo.H * geo.W;
              const T *dp = dyd + (n * M + g * Mg + m) * geo.Ho * geo.Wo;
              for (int64_t oh = 0; oh < geo.Ho; ++oh) {
                const int64_t ih = oh * p.stride[0] - p.pads[0] + i * p.dilation[0];
                if (ih < 0 || ih >= geo.H)
                  continue;
                for (int64_t ow = 0; ow < geo.Wo; ++ow) {
                  const int64_t iw = ow * p.stride[1] - p.pads[1] + j * p.dilation[1];
                  if (iw >= 0 && iw < geo.W)
                    acc += dp[oh * geo.Wo + ow] * xp[ih * geo.W + iw];
                }
              }
            }
            dw.data()[(((g * Mg + m) * geo.Cg + c) * kh + i) * kw + j] = acc;
          }
  return dw;
}

template <class T>
Tensor<T> conv2dGradInput(const Tensor<T> &dy, const Tensor<T> &w,
                          const std::vector<int64_t> &inputShape, const ConvParams &p) {
  const Im2rowGeometry geo(inputShape, {(int64_t)w.shape(2), (int64_t)w.shape(3)}, p);
  const int64_t M = w.shape(0), Mg = M / geo.G, R = geo.Cg * geo.kh * geo.kw;
  const int64_t HWo = geo.Ho * geo.Wo;
  CNNC_ASSERT(dimsOf(dy) == (Dims{geo.N, M, geo.Ho, geo.Wo}), "conv2d_grad_input dy shape");
  CNNC_ASSERT((int64_t)w.shape(1) == geo.Cg, "conv2d_grad_input weight shape");
  Tensor<T> dx = withShape<T>(inputShape);
  std::fill(dx.begin(), dx.end(), T(0));
  const T *wd = w.data(), *dyd = dy.data();
  T *xd = dx.data();
  for (int64_t g = 0; g < geo.G; ++g)
    for (int64_t n = 0; n < geo.N; ++n)
      for (int64_t oh = 0; oh < geo.Ho; ++oh)
        for (int64_t ow = 0; ow < geo.Wo; ++ow) {
          const T *dp = dyd + (n * M + g * Mg) * HWo + oh * geo.Wo + ow;
          for (int64_t c = 0; c < geo.Cg; ++c)
            for (int64_t i = 0; i < geo.kh; ++i) {
              const int64_t ih = oh * p.stride[0] - p.pads[0] + i * p.dilation[0];
              if (ih < 0 || ih >= geo.H)
                continue;
              for (int64_t j = 0; j < geo.kw; ++j) {
                const int64_t iw = ow * p.stride[1] - p.pads[1] + j * p.dilation[1];
                if (iw < 0 || iw >= geo.W)
                  continue;
                const T *wp = wd + g * Mg * R + (c * geo.kh + i) * geo.kw + j;
                T acc = 0;
                for (int64_t m = 0; m < Mg; ++m)
                  acc += dp[m * HWo] * wp[m * R];
                xd[((n * geo.C + g * geo.Cg + c) * geo.H + ih) * geo.W + iw] += acc;
              }
            }
        }
  return dx;
}

// ---------------------------------------------------------------------------- pooling --
namespace {

// Output extent of a pooling of x [N,C,H,W], as Conv.cpp's pool() computes it.
std::array<int64_t, 2> pooledHW(const Dims &x, const PoolParams &p) {
  CNNC_ASSERT(x.size() == 4, "pooling input must be 4-D");
  return {
      pooledSize(x[2], p.pads[0], p.pads[2], p.kernel[0], p.stride[0], p.dilation[0], p.ceilMode),
      pooledSize(x[3], p.pads[1], p.pads[3], p.kernel[1], p.stride[1], p.dilation[1], p.ceilMode)};
}

} // namespace

template <class T>
Tensor<T> maxPoolGrad(const Tensor<T> &dy, const Tensor<T> &x, const PoolParams &p) {
  const Dims xs = dimsOf(x);
  const auto [Ho, Wo] = pooledHW(xs, p);
  CNNC_ASSERT(dimsOf(dy) == (Dims{xs[0], xs[1], Ho, Wo}), "maxpool_grad dy shape");
  const int64_t H = xs[2], W = xs[3];
  Tensor<T> dx = withShape<T>(xs);
  std::fill(dx.begin(), dx.end(), T(0));
  for (int64_t nc = 0; nc < xs[0] * xs[1]; ++nc) {
    const T *plane = x.data() + nc * H * W;
    T *dplane = dx.data() + nc * H * W;
    for (int64_t oh = 0; oh < Ho; ++oh)
      for (int64_t ow = 0; ow < Wo; ++ow) {
        const int64_t hs = oh * p.stride[0] - p.pads[0], ws = ow * p.stride[1] - p.pads[1];
        // maxPool's scan (PyTorch's): best changes when best < v or v is NaN, so the gradient
        // goes to the first position of the maximum, or to the window's last NaN. `at < 0 &&
        // v == best` covers a window whose maximum is -inf itself (its first real position).
        T best = -std::numeric_limits<T>::infinity();
        int64_t at = -1;
        for (int64_t i = 0; i < p.kernel[0]; ++i) {
          const int64_t ih = hs + i * p.dilation[0];
          if (ih < 0 || ih >= H)
            continue; // padding never wins
          for (int64_t j = 0; j < p.kernel[1]; ++j) {
            const int64_t iw = ws + j * p.dilation[1];
            if (iw < 0 || iw >= W)
              continue;
            const T v = plane[ih * W + iw];
            if (best < v || std::isnan(v) || (at < 0 && v == best))
              best = v, at = ih * W + iw;
          }
        }
        if (at >= 0) // overlapping windows add up (seed section 7)
          dplane[at] += dy.data()[(nc * Ho + oh) * Wo + ow];
      }
  }
  return dx;
}

template <class T>
Tensor<T> avgPoolGrad(const Tensor<T> &dy, const std::vector<int64_t> &inputShape,
                      const PoolParams &p) {
  CNNC_ASSERT(p.dilation[0] == 1 && p.dilation[1] == 1, "avgpool has no dilation");
  const auto [Ho, Wo] = pooledHW(inputShape, p);
  CNNC_ASSERT(dimsOf(dy) == (Dims{inputShape[0], inputShape[1], Ho, Wo}), "avgpool_grad dy shape");
  const int64_t H = inputShape[2], W = inputShape[3];
  Tensor<T> dx = withShape<T>(inputShape);
  std::fill(dx.begin(), dx.end(), T(0));
  for (int64_t nc = 0; nc < inputShape[0] * inputShape[1]; ++nc) {
    T *dplane = dx.data() + nc * H * W;
    for (int64_t oh = 0; oh < Ho; ++oh)
      for (int64_t ow = 0; ow < Wo; ++ow) {
        // avgPool's window and divisor (Conv.cpp), line for line.
        int64_t hs = oh * p.stride[0] - p.pads[0], ws = ow * p.stride[1] - p.pads[1];
        int64_t he = std::min(hs + p.kernel[0], H + p.pads[2]);
        int64_t we = std::min(ws + p.kernel[1], W + p.pads[3]);
        const int64_t paddedCount = (he - hs) * (we - ws);
        hs = std::max<int64_t>(hs, 0), ws = std::max<int64_t>(ws, 0);
        he = std::min(he, H), we = std::min(we, W);
        const int64_t count = p.countIncludePad ? paddedCount : (he - hs) * (we - ws);
        const T g = dy.data()[(nc * Ho + oh) * Wo + ow] / T(count);
        for (int64_t ih = hs; ih < he; ++ih)
          for (int64_t iw = ws; iw < we; ++iw)
            dplane[ih * W + iw] += g;
      }
  }
  return dx;
}

// ---------------------------------------------------------------------------- softmax --
template <class T>
Tensor<T> softmaxGrad(const Tensor<T> &dy, const Tensor<T> &y, int64_t axis, bool log) {
  CNNC_ASSERT(dy.shape() == y.shape(), "softmax_grad operand shapes");
  axis = normAxis(axis, y.dimension());
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d)
    outer *= y.shape(d);
  for (size_t d = axis + 1; d < y.dimension(); ++d)
    inner *= y.shape(d);
  const int64_t len = y.shape(axis);
  Tensor<T> dx = Tensor<T>::from_shape(y.shape());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t in = 0; in < inner; ++in) {
      const int64_t base = o * len * inner + in;
      const T *ys = y.data() + base, *gs = dy.data() + base;
      T *out = dx.data() + base;
      T sum = 0; // log: sum(dy); softmax: sum(dy * y)
      for (int64_t k = 0; k < len; ++k)
        sum += log ? gs[k * inner] : gs[k * inner] * ys[k * inner];
      for (int64_t k = 0; k < len; ++k)
        out[k * inner] = log ? gs[k * inner] - std::exp(ys[k * inner]) * sum
                             : ys[k * inner] * (gs[k * inner] - sum);
    }
  return dx;
}

// ---------------------------------------------------------------------------- batch norm --
// y = (x - mean) * scale / sqrt(var + eps) + bias, per channel c (axis 1).
template <class T>
Tensor<T> batchNormGrad(const Tensor<T> &dy, const Tensor<T> &x, const Tensor<T> &scale,
                        const Tensor<T> &mean, const Tensor<T> &var, double epsilon,
                        const std::string &wrt) {
  CNNC_ASSERT(dy.shape() == x.shape(), "batchnorm_grad dy and x shapes");
  int64_t N, C, inner;
  channelDims(x, N, C, inner);
  requireChannels(scale, C, "batchnorm_grad scale");
  requireChannels(mean, C, "batchnorm_grad mean");
  requireChannels(var, C, "batchnorm_grad var");
  if (wrt == "x") {
    Tensor<T> dx = Tensor<T>::from_shape(x.shape());
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c) {
        const T k = scale(c) / std::sqrt(var(c) + T(epsilon));
        const int64_t base = (n * C + c) * inner;
        for (int64_t e = 0; e < inner; ++e)
          dx.data()[base + e] = dy.data()[base + e] * k;
      }
    return dx;
  }
  CNNC_ASSERT(wrt == "scale" || wrt == "mean" || wrt == "var",
              fmt::format("batchnorm_grad: bad wrt \"{}\"", wrt));
  Tensor<T> d = Tensor<T>::from_shape({(size_t)C});
  for (int64_t c = 0; c < C; ++c) {
    T sumDy = 0, sumDyXc = 0; // sum dy, sum dy * (x - mean) over N and the spatial axes
    for (int64_t n = 0; n < N; ++n) {
      const int64_t base = (n * C + c) * inner;
      for (int64_t e = 0; e < inner; ++e) {
        sumDy += dy.data()[base + e];
        sumDyXc += dy.data()[base + e] * (x.data()[base + e] - mean(c));
      }
    }
    const T ve = var(c) + T(epsilon), invStd = T(1) / std::sqrt(ve);
    if (wrt == "scale")
      d(c) = sumDyXc * invStd;
    else if (wrt == "mean")
      d(c) = -sumDy * scale(c) * invStd;
    else // d/dvar (var + eps)^(-1/2) = -1/2 (var + eps)^(-3/2)
      d(c) = sumDyXc * scale(c) * T(-0.5) * invStd / ve;
  }
  return d;
}

// bn_mean: mean[c] = sum x[., c, .] / M with M = N * inner elements per channel.
// The sum of batchnorm_grad wrt x, bn_var_grad wrt x and bn_mean_grad of the batch
// statistics, with the terms that vanish because sum(x - mean) = 0 dropped (PyTorch's form):
// dx = scale/s * (dy - dbias/M - (x - mean)/s * dscale/M).
template <class T>
Tensor<T> bnTrainGrad(const Tensor<T> &dy, const Tensor<T> &x, const Tensor<T> &scale,
                      const Tensor<T> &mean, const Tensor<T> &var, const Tensor<T> &dscale,
                      const Tensor<T> &dbias, double epsilon) {
  CNNC_ASSERT(dy.shape() == x.shape(), "bn_train_grad dy and x shapes");
  int64_t N, C, inner;
  channelDims(x, N, C, inner);
  for (const Tensor<T> *t : {&scale, &mean, &var, &dscale, &dbias})
    requireChannels(*t, C, "bn_train_grad per-channel operand");
  const T M = T(N * inner);
  Tensor<T> dx = Tensor<T>::from_shape(x.shape());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      const T invStd = T(1) / std::sqrt(var(c) + T(epsilon)), k = scale(c) * invStd;
      const T b = dbias(c) / M, a = invStd * dscale(c) / M;
      const int64_t base = (n * C + c) * inner;
      for (int64_t e = 0; e < inner; ++e)
        dx.data()[base + e] = k * (dy.data()[base + e] - b - (x.data()[base + e] - mean(c)) * a);
    }
  return dx;
}

template <class T> Tensor<T> bnMeanGrad(const Tensor<T> &dmean, const Tensor<T> &x) {
  int64_t N, C, inner;
  channelDims(x, N, C, inner);
  requireChannels(dmean, C, "bn_mean_grad dmean");
  const T M = T(N * inner);
  Tensor<T> dx = Tensor<T>::from_shape(x.shape());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t e = 0; e < inner; ++e)
        dx.data()[(n * C + c) * inner + e] = dmean(c) / M;
  return dx;
}

// bn_var: var[c] = sum (x - mean[c])^2 / M.
template <class T>
Tensor<T> bnVarGrad(const Tensor<T> &dvar, const Tensor<T> &x, const Tensor<T> &mean,
                    const std::string &wrt) {
  int64_t N, C, inner;
  channelDims(x, N, C, inner);
  requireChannels(dvar, C, "bn_var_grad dvar");
  requireChannels(mean, C, "bn_var_grad mean");
  const T M = T(N * inner);
  if (wrt == "x") {
    Tensor<T> dx = Tensor<T>::from_shape(x.shape());
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t e = 0; e < inner; ++e) {
          const int64_t i = (n * C + c) * inner + e;
          dx.data()[i] = T(2) * (x.data()[i] - mean(c)) * dvar(c) / M;
        }
    return dx;
  }
  CNNC_ASSERT(wrt == "mean", fmt::format("bn_var_grad: bad wrt \"{}\"", wrt));
  Tensor<T> dm = Tensor<T>::from_shape({(size_t)C});
  for (int64_t c = 0; c < C; ++c) {
    T sum = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t e = 0; e < inner; ++e)
        sum += x.data()[(n * C + c) * inner + e] - mean(c);
    dm(c) = T(-2) * sum * dvar(c) / M;
  }
  return dm;
}

// ---------------------------------------------------------------------------- losses --
template <class T>
Tensor<T> softmaxXentGrad(const Tensor<T> &dz, const Tensor<T> &logits, const Tensor<T> &labels,
                          const std::string &what) {
  CNNC_ASSERT(dz.size() == 1, "softmax_xent_grad dz must be a scalar");
  const std::vector<int64_t> label = checkedLabels(logits, labels, what);
  const int64_t N = logits.shape(0), C = logits.shape(1);
  Tensor<T> dx = softmax(logits, 1, false);
  const T k = dz.data()[0] / T(N);
  for (int64_t n = 0; n < N; ++n) {
    T *row = dx.data() + n * C;
    row[label[n]] -= T(1);
    for (int64_t c = 0; c < C; ++c)
      row[c] *= k;
  }
  return dx;
}

template <class T>
Tensor<T> l2LossGrad(const Tensor<T> &dz, const Tensor<T> &pred, const Tensor<T> &target) {
  CNNC_ASSERT(dz.size() == 1, "l2_loss_grad dz must be a scalar");
  CNNC_ASSERT(pred.shape() == target.shape(), "l2_loss_grad operand shapes differ");
  // l2Loss's N: the first dimension (1 for a scalar).
  const T k = dz.data()[0] / (pred.dimension() > 0 ? T(pred.shape(0)) : T(1));
  Tensor<T> d = Tensor<T>::from_shape(pred.shape());
  for (size_t i = 0; i < pred.size(); ++i)
    d.data()[i] = (pred.data()[i] - target.data()[i]) * k;
  return d;
}

template <class T> Tensor<T> filterFlip(const Tensor<T> &w, int64_t groups) {
  const int64_t M = w.shape(0), Cg = w.shape(1), kh = w.shape(2), kw = w.shape(3);
  const int64_t Mg = M / groups;
  Tensor<T> out = withShape<T>({Cg * groups, Mg, kh, kw});
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t c = 0; c < Cg; ++c)
      for (int64_t m = 0; m < Mg; ++m)
        for (int64_t i = 0; i < kh; ++i)
          for (int64_t j = 0; j < kw; ++j)
            out.data()[(((g * Cg + c) * Mg + m) * kh + i) * kw + j] =
                w.data()[(((g * Mg + m) * Cg + c) * kh + (kh - 1 - i)) * kw + (kw - 1 - j)];
  return out;
}

#define INSTANTIATE(T)                                                                             \
  template Tensor<T> countCorrect(const Tensor<T> &, const Tensor<T> &, const std::string &);      \
  template Tensor<T> transpose(const Tensor<T> &, const std::vector<int64_t> &);                   \
  template Tensor<T> expand(const Tensor<T> &, const std::vector<int64_t> &);                      \
  template Tensor<T> reduceSum(const Tensor<T> &, const std::vector<int64_t> &, bool);             \
  template Tensor<T> reduceExtremum(const Tensor<T> &, const std::vector<int64_t> &, bool, bool);  \
  template Tensor<T> argMax(const Tensor<T> &, int64_t, bool, bool);                               \
  template Tensor<T> slice(const Tensor<T> &, int64_t, int64_t, int64_t);                          \
  template Tensor<T> im2rowGrouped(const Tensor<T> &, const std::array<int64_t, 2> &,              \
                                   const ConvParams &);                                            \
  template Tensor<T> row2imGrouped(const Tensor<T> &, const std::vector<int64_t> &,                \
                                   const std::array<int64_t, 2> &, const ConvParams &);            \
  template Tensor<T> conv2dGradFilter(const Tensor<T> &, const Tensor<T> &,                       \
                                      const std::array<int64_t, 2> &, const ConvParams &);         \
  template Tensor<T> conv2dGradInput(const Tensor<T> &, const Tensor<T> &,                        \
                                     const std::vector<int64_t> &, const ConvParams &);            \
  template Tensor<T> filterFlip(const Tensor<T> &, int64_t);                                       \
  template Tensor<T> maxPoolGrad(const Tensor<T> &, const Tensor<T> &, const PoolParams &);        \
  template Tensor<T> avgPoolGrad(const Tensor<T> &, const std::vector<int64_t> &,                  \
                                 const PoolParams &);                                              \
  template Tensor<T> softmaxGrad(const Tensor<T> &, const Tensor<T> &, int64_t, bool);             \
  template Tensor<T> batchNormGrad(const Tensor<T> &, const Tensor<T> &, const Tensor<T> &,        \
                                   const Tensor<T> &, const Tensor<T> &, double,                   \
                                   const std::string &);                                           \
  template Tensor<T> bnMeanGrad(const Tensor<T> &, const Tensor<T> &);                             \
  template Tensor<T> bnTrainGrad(const Tensor<T> &, const Tensor<T> &, const Tensor<T> &,         \
                                 const Tensor<T> &, const Tensor<T> &, const Tensor<T> &,         \
                                 const Tensor<T> &, double);                                      \
  template Tensor<T> bnVarGrad(const Tensor<T> &, const Tensor<T> &, const Tensor<T> &,            \
                               const std::string &);                                               \
  template Tensor<T> softmaxXentGrad(const Tensor<T> &, const Tensor<T> &, const Tensor<T> &,      \
                                     const std::string &);                                         \
  template Tensor<T> l2LossGrad(const Tensor<T> &, const Tensor<T> &, const Tensor<T> &);
INSTANTIATE(float)
INSTANTIATE(double)

} // namespace cnnc::interp
