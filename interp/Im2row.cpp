// im2row, seed eqs. 18-21: see Im2row.h.
#include "interp/Im2row.h"

namespace cnnc::interp {

template <class T> Tensor<T> im2row(const Tensor<T> &x, int64_t kh, int64_t kw) {
  CNNC_ASSERT(x.dimension() == 3, "im2row takes one image [C,H,W]");
  const int64_t C = x.shape(0), H = x.shape(1), W = x.shape(2);
  CNNC_ASSERT(kh >= 1 && kw >= 1 && kh <= H && kw <= W, "im2row kernel larger than the image");
  const int64_t Ho = H - kh + 1, Wo = W - kw + 1;
  Tensor<T> phi = Tensor<T>::from_shape({(size_t)(Ho * Wo), (size_t)(kh * kw * C)});
  for (int64_t jo = 0; jo < Wo; ++jo)
    for (int64_t io = 0; io < Ho; ++io)
      for (int64_t d = 0; d < C; ++d)
        for (int64_t j = 0; j < kw; ++j)
          for (int64_t i = 0; i < kh; ++i) {
            const int64_t p = io + Ho * jo, q = i + kh * j + kh * kw * d;
            phi(p, q) = x(d, io + i, jo + j);
          }
  return phi;
}

template Tensor<float> im2row(const Tensor<float> &, int64_t, int64_t);
template Tensor<double> im2row(const Tensor<double> &, int64_t, int64_t);

} // namespace cnnc::interp
