// Reference kernels for the dense, shape, normalisation, dropout and loss ops, as direct
// loops over row-major data (no lazy xtensor reductions: see ENVIRONMENT.md on keep_dims).
// Softmax-like ops subtract the maximum first so that exp never overflows.
#include "interp/Kernels.h"
#include "interp/DropoutHash.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace cnnc::interp {

namespace {

template <class T> Tensor<T> withShape(const std::vector<int64_t> &shape) {
  std::vector<size_t> s(shape.begin(), shape.end());
  return Tensor<T>::from_shape(s);
}

template <class T> Tensor<T> scalar(T v) {
  Tensor<T> y = Tensor<T>::from_shape(std::vector<size_t>{});
  y.data()[0] = v;
  return y;
}

template <class T> int64_t prodDims(const Tensor<T> &x, size_t from, size_t to) {
  int64_t p = 1;
  for (size_t d = from; d < to; ++d)
    p *= (int64_t)x.shape(d);
  return p;
}

// Channel-axis view of x [N,C,...]: number of batch entries, channels, and inner elements.
template <class T> void channelDims(const Tensor<T> &x, int64_t &N, int64_t &C, int64_t &inner) {
  CNNC_ASSERT(x.dimension() >= 2, "per-channel op on a tensor of rank < 2");
  N = x.shape(0), C = x.shape(1), inner = prodDims(x, 2, x.dimension());
}

} // namespace

template <class T>
Tensor<T> fullyConnected(const Tensor<T> &x, const Tensor<T> &w, const Tensor<T> *b) {
  CNNC_ASSERT(x.dimension() == 2 && w.dimension() == 2 && x.shape(1) == w.shape(1),
              "fc operand shapes");
  Tensor<T> y = matMul(x, w, false, true);
  if (b) {
    CNNC_ASSERT(b->dimension() == 1 && b->shape(0) == w.shape(0), "fc bias shape");
    for (size_t n = 0; n < y.shape(0); ++n)
      for (size_t m = 0; m < y.shape(1); ++m)
        y(n, m) += (*b)(m);
  }
  return y;
}

// 2-D, or a batch of 2-D products (3-D operands with the same leading size, as the conv2d
// gradient's per-group matrices); trans_a/trans_b transpose the last two dims.
template <class T>
Tensor<T> matMul(const Tensor<T> &a, const Tensor<T> &b, bool transA, bool transB) {
  const size_t r = a.dimension();
  CNNC_ASSERT((r == 2 || r == 3) && b.dimension() == r,
              "matmul operands must both be 2-D or both 3-D");
  const size_t batch = r == 3 ? a.shape(0) : 1;
  CNNC_ASSERT(r == 2 || b.shape(0) == batch, "matmul batch sizes differ");
  const size_t ra = a.shape(r - 2), ca = a.shape(r - 1), rb = b.shape(r - 2), cb = b.shape(r - 1);
  const size_t M = transA ? ca : ra, K = transA ? ra : ca;
  const size_t Kb = transB ? cb : rb, N = transB ? rb : cb;
  CNNC_ASSERT(K == Kb, "matmul inner dimensions differ");
  Tensor<T> y =
      Tensor<T>::from_shape(r == 3 ? std::vector<size_t>{batch, M, N} : std::vector<size_t>{M, N});
  for (size_t g = 0; g < batch; ++g) {
    const T *ad = a.data() + g * ra * ca, *bd = b.data() + g * rb * cb;
    auto A = [&](size_t i, size_t k) { return transA ? ad[k * ca + i] : ad[i * ca + k]; };
    auto B = [&](size_t k, size_t j) { return transB ? bd[j * cb + k] : bd[k * cb + j]; };
    T *yd = y.data() + g * M * N;
    for (size_t i = 0; i < M; ++i)
      for (size_t j = 0; j < N; ++j) {
        T acc = 0;
        for (size_t k = 0; k < K; ++k)
          acc += A(i, k) * B(k, j);
        yd[i * N + j] = acc;
      }
  }
  return y;
}

template <class T> Tensor<T> concat(const std::vector<const Tensor<T> *> &xs, int64_t axis) {
  CNNC_ASSERT(!xs.empty(), "concat of nothing");
  const size_t rank = xs[0]->dimension();
  CNNC_ASSERT(axis >= 0 && (size_t)axis < rank, "concat axis out of range");
  std::vector<int64_t> shape(xs[0]->shape().begin(), xs[0]->shape().end());
  shape[axis] = 0;
  for (const Tensor<T> *x : xs) {
    CNNC_ASSERT(x->dimension() == rank, "concat operands differ in rank");
    for (size_t d = 0; d < rank; ++d)
      CNNC_ASSERT(d == (size_t)axis || x->shape(d) == xs[0]->shape(d), "concat shape mismatch");
    shape[axis] += x->shape(axis);
  }
  // Row-major: the output is `outer` rows, each the concatenation of every input's row of
  // shape[axis..] elements.
  Tensor<T> y = withShape<T>(shape);
  const int64_t outer = prodDims(*xs[0], 0, axis);
  T *out = y.data();
  for (int64_t o = 0; o < outer; ++o)
    for (const Tensor<T> *x : xs) {
      const int64_t row = prodDims(*x, axis, rank);
      out = std::copy_n(x->data() + o * row, row, out);
    }
  return y;
}

// `shape` is concrete: the reshape shape rule resolved its 0 and -1 entries (the one place
// that knows allowzero), so a zero-size dim here is a literal 0.
template <class T> Tensor<T> reshapeTo(const Tensor<T> &x, const std::vector<int64_t> &shape) {
  Tensor<T> y = withShape<T>(shape);
  CNNC_ASSERT(y.size() == x.size(), "reshape changes the element count");
  std::copy_n(x.data(), x.size(), y.data());
  return y;
}

template <class T> Tensor<T> softmax(const Tensor<T> &x, int64_t axis, bool log) {
  CNNC_ASSERT(axis >= 0 && (size_t)axis < x.dimension(), "softmax axis out of range");
  const int64_t outer = prodDims(x, 0, axis), len = x.shape(axis);
  const int64_t inner = prodDims(x, axis + 1, x.dimension());
  Tensor<T> y = Tensor<T>::from_shape(x.shape());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t in = 0; in < inner; ++in) {
      const T *xs = x.data() + o * len * inner + in;
      T *ys = y.data() + o * len * inner + in;
      T mx = -std::numeric_limits<T>::infinity();
      for (int64_t k = 0; k < len; ++k)
        mx = std::max(mx, xs[k * inner]);
      T sum = 0;
      for (int64_t k = 0; k < len; ++k)
        sum += std::exp(xs[k * inner] - mx);
      for (int64_t k = 0; k < len; ++k)
        ys[k * inner] =
            log ? xs[k * inner] - mx - std::log(sum) : std::exp(xs[k * inner] - mx) / sum;
    }
  return y;
}

template <class T>
Tensor<T> batchNorm(const Tensor<T> &x, const Tensor<T> &scale, const Tensor<T> &bias,
                    const Tensor<T> &mean, const Tensor<T> &var, double epsilon) {
  int64_t N, C, inner;
  channelDims(x, N, C, inner);
  for (const Tensor<T> *p : {&scale, &bias, &mean, &var})
    CNNC_ASSERT(p->dimension() == 1 && (int64_t)p->shape(0) == C, "batchnorm parameter shape");
  Tensor<T> y = Tensor<T>::from_shape(x.shape());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      const T invStd = T(1) / std::sqrt(var(c) + T(epsilon));
      const int64_t base = (n * C + c) * inner;
      for (int64_t k = 0; k < inner; ++k)
        y.data()[base + k] = (x.data()[base + k] - mean(c)) * invStd * scale(c) + bias(c);
    }
  return y;
}

// Batch statistics over every axis but the channel axis 1 (N, H, W for NCHW).
template <class T> Tensor<T> bnMean(const Tensor<T> &x) {
  int64_t N, C, inner;
  channelDims(x, N, C, inner);
  Tensor<T> m = Tensor<T>::from_shape({(size_t)C});
  for (int64_t c = 0; c < C; ++c) {
    T sum = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < inner; ++k)
        sum += x.data()[(n * C + c) * inner + k];
    m(c) = sum / T(N * inner);
  }
  return m;
}

template <class T> Tensor<T> bnVar(const Tensor<T> &x, const Tensor<T> &mean) {
  int64_t N, C, inner;
  channelDims(x, N, C, inner);
  CNNC_ASSERT(mean.dimension() == 1 && (int64_t)mean.shape(0) == C, "bn_var mean shape");
  Tensor<T> v = Tensor<T>::from_shape({(size_t)C});
  for (int64_t c = 0; c < C; ++c) {
    T sum = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < inner; ++k) {
        const T d = x.data()[(n * C + c) * inner + k] - mean(c);
        sum += d * d;
      }
    v(c) = sum / T(N * inner); // biased: divides by the count, not count - 1
  }
  return v;
}

template <class T>
Tensor<T> dropout(const Tensor<T> &x, double rate, bool training, uint64_t seed, uint64_t step) {
  if (!training)
    return x;
  // Survivors are multiplied by 1/(1-rate), computed in double and rounded once to T;
  // dropped elements are exactly 0 (never 0 * inf when rate = 1).
  const T scale = T(1.0 / (1.0 - rate));
  const uint64_t key = dropoutKey(seed, step);
  Tensor<T> y = Tensor<T>::from_shape(x.shape());
  for (size_t i = 0; i < x.size(); ++i)
    y.data()[i] = dropoutUniform(key, i) >= rate ? x.data()[i] * scale : T(0);
  return y;
}

template <class T>
Tensor<T> softmaxXent(const Tensor<T> &logits, const Tensor<T> &labels, const std::string &what) {
  CNNC_ASSERT(logits.dimension() == 2 && labels.dimension() == 1 &&
                  labels.shape(0) == logits.shape(0),
              "softmax_xent operand shapes");
  const int64_t N = logits.shape(0), C = logits.shape(1);
  T total = 0;
  for (int64_t n = 0; n < N; ++n) {
    const T l = labels(n);
    if (!(l == std::floor(l) && l >= 0 && l < T(C)))
      throw Error(
          fmt::format("{}: label {} of example {} is not a class index in [0, {})", what, l, n, C));
    // -log softmax(x)[l] = log sum exp(x - max) - (x[l] - max)
    const T *row = logits.data() + n * C;
    const T mx = *std::max_element(row, row + C);
    T sum = 0;
    for (int64_t c = 0; c < C; ++c)
      sum += std::exp(row[c] - mx);
    total += std::log(sum) - (row[(int64_t)l] - mx);
  }
  return scalar<T>(total / T(N));
}

// Seed eq. 6, z = 1/2 ||t - x||^2 per example, averaged over the first dimension.
template <class T> Tensor<T> l2Loss(const Tensor<T> &pred, const Tensor<T> &target) {
  CNNC_ASSERT(pred.shape() == target.shape(), "l2_loss operand shapes differ");
  const T N = pred.dimension() > 0 ? T(pred.shape(0)) : T(1);
  T sum = 0;
  for (size_t i = 0; i < pred.size(); ++i) {
    const T d = target.data()[i] - pred.data()[i];
    sum += d * d;
  }
  return scalar<T>(T(0.5) * sum / N);
}

#define INSTANTIATE(T)                                                                             \
  template Tensor<T> fullyConnected(const Tensor<T> &, const Tensor<T> &, const Tensor<T> *);      \
  template Tensor<T> matMul(const Tensor<T> &, const Tensor<T> &, bool, bool);                     \
  template Tensor<T> concat(const std::vector<const Tensor<T> *> &, int64_t);                      \
  template Tensor<T> reshapeTo(const Tensor<T> &, const std::vector<int64_t> &);                   \
  template Tensor<T> softmax(const Tensor<T> &, int64_t, bool);                                    \
  template Tensor<T> batchNorm(const Tensor<T> &, const Tensor<T> &, const Tensor<T> &,            \
                               const Tensor<T> &, const Tensor<T> &, double);                      \
  template Tensor<T> bnMean(const Tensor<T> &);                                                    \
  template Tensor<T> bnVar(const Tensor<T> &, const Tensor<T> &);                                  \
  template Tensor<T> dropout(const Tensor<T> &, double, bool, uint64_t, uint64_t);                 \
  template Tensor<T> softmaxXent(const Tensor<T> &, const Tensor<T> &, const std::string &);       \
  template Tensor<T> l2Loss(const Tensor<T> &, const Tensor<T> &);
INSTANTIATE(float)
INSTANTIATE(double)

} // namespace cnnc::interp
