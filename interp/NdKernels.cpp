// Reference kernels of the N-D ops that ONNX models bring: batch_matmul (numpy-broadcast batch
// dimensions) and softmax_xent_nd (ONNX SoftmaxCrossEntropyLoss with class weights,
// ignore_index and reduction). Direct loops, like Kernels.cpp.
#include "interp/Kernels.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace cnnc::interp {

template <class T> Tensor<T> batchMatMul(const Tensor<T> &a, const Tensor<T> &b) {
  const size_t ra = a.dimension(), rb = b.dimension(), r = std::max(ra, rb);
  CNNC_ASSERT(ra >= 2 && rb >= 2, "batch_matmul operands must be at least 2-D");
  const size_t M = a.shape(ra - 2), K = a.shape(ra - 1), N = b.shape(rb - 1);
  CNNC_ASSERT(b.shape(rb - 2) == K, "batch_matmul inner dimensions differ");
  // Batch dimensions right-aligned, size-1 dimensions broadcast.
  std::vector<size_t> da(r - 2, 1), db(r - 2, 1), out(r);
  for (size_t i = 0; i + 2 < ra; ++i)
    da[r - ra + i] = a.shape(i);
  for (size_t i = 0; i + 2 < rb; ++i)
    db[r - rb + i] = b.shape(i);
  size_t batches = 1;
  for (size_t i = 0; i + 2 < r; ++i) {
    CNNC_ASSERT(da[i] == db[i] || da[i] == 1 || db[i] == 1, "batch dimensions do not broadcast");
    out[i] = da[i] == 1 ? db[i] : da[i]; // numpy: 1 broadcasts to 0 as well (not max)
    batches *= out[i];
  }
  out[r - 2] = M, out[r - 1] = N;
  Tensor<T> y = Tensor<T>::from_shape(out);
  for (size_t bi = 0; bi < batches; ++bi) {
    size_t rem = bi, offA = 0, offB = 0, strideA = 1, strideB = 1;
    for (size_t d = r - 2; d-- > 0;) {
      const size_t idx = rem % out[d];
      rem /= out[d];
      offA += (da[d] == 1 ? 0 : idx) * strideA, strideA *= da[d];
      offB += (db[d] == 1 ? 0 : idx) * strideB, strideB *= db[d];
    }
    const T *A = a.data() + offA * M * K, *B = b.data() + offB * K * N;
    T *Y = y.data() + bi * M * N;
    for (size_t i = 0; i < M; ++i)
      for (size_t j = 0; j < N; ++j) {
        T acc = 0;
        for (size_t k = 0; k < K; ++k)
          acc += A[i * K + k] * B[k * N + j];
        Y[i * N + j] = acc;
      }
  }
  return y;
}

template <class T>
Tensor<T> softmaxXentNd(const Tensor<T> &logits, const Tensor<T> &labels, const Tensor<T> *weights,
                        const std::string &reduction, const std::vector<int64_t> &ignore,
                        const std::string &what) {
  CNNC_ASSERT(logits.dimension() >= 2 && labels.dimension() + 1 == logits.dimension(),
              "softmax_xent_nd operand ranks");
  const int64_t N = logits.shape(0), C = logits.shape(1);
  const int64_t inner = (int64_t)labels.size() / std::max<int64_t>(N, 1);
  CNNC_ASSERT((int64_t)logits.size() == N * C * inner, "softmax_xent_nd operand shapes");
  Tensor<T> each = Tensor<T>::from_shape(labels.shape());
  T total = 0, weightSum = 0;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < inner; ++k) {
      const T l = labels.data()[n * inner + k];
      T &e = each.data()[n * inner + k];
      if (!ignore.empty() && l == T(ignore[0])) {
        e = 0;
        continue;
      }
      if (!(l == std::floor(l) && l >= 0 && l < T(C)))
        throw Error(fmt::format("{}: label {} at position {} is not a class index in [0, {})", what,
                                l, n * inner + k, C));
      // -w[l] * log softmax(x)[l], along the class axis (stride `inner`).
      const T *x = logits.data() + n * C * inner + k;
      T mx = x[0];
      for (int64_t c = 1; c < C; ++c)
        mx = std::max(mx, x[c * inner]);
      T sum = 0;
      for (int64_t c = 0; c < C; ++c)
        sum += std::exp(x[c * inner] - mx);
      const T w = weights ? weights->data()[(int64_t)l] : T(1);
      e = w * (std::log(sum) - (x[(int64_t)l * inner] - mx));
      total += e;
      weightSum += w;
    }
  if (reduction == "none")
    return each;
  Tensor<T> y = Tensor<T>::from_shape(std::vector<size_t>{});
  y.data()[0] = reduction == "sum" ? total : total / weightSum;
  return y;
}

#define INSTANTIATE(T)                                                                             \
  template Tensor<T> batchMatMul(const Tensor<T> &, const Tensor<T> &);                            \
  template Tensor<T> softmaxXentNd(const Tensor<T> &, const Tensor<T> &, const Tensor<T> *,        \
                                   const std::string &, const std::vector<int64_t> &,              \
                                   const std::string &);
INSTANTIATE(float)
INSTANTIATE(double)

} // namespace cnnc::interp
