// The reference kernels of the interpreter: one plain function per op, on row-major
// xt::xarray<T> tensors, written as direct loops so that each one can be checked by reading
// it against the op's definition (ir/Ops.def) and the seed's equations.
//
// Preconditions (operand ranks and shapes consistent) are what the verifier establishes;
// the kernels re-check them with CNNC_ASSERT so that a bug can never read out of bounds.
// Data-dependent user errors (labels) throw cnnc::Error with the `what` prefix the caller
// passes (Node::describe()).
#pragma once

#include "interp/Interpreter.h"

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace cnnc::interp {

struct ConvParams {
  std::array<int64_t, 2> stride{1, 1};
  std::array<int64_t, 4> pads{0, 0, 0, 0}; // top, left, bottom, right
  std::array<int64_t, 2> dilation{1, 1};
  int64_t groups = 1;
};

struct PoolParams {
  std::array<int64_t, 2> kernel{1, 1};
  std::array<int64_t, 2> stride{1, 1};
  std::array<int64_t, 4> pads{0, 0, 0, 0}; // top, left, bottom, right
  std::array<int64_t, 2> dilation{1, 1};   // maxpool only
  bool ceilMode = false;
  bool countIncludePad = false; // avgpool only
};

/// Output extent of one pooled dimension (PyTorch/ONNX rule, see Conv.cpp).
int64_t pooledSize(int64_t in, int64_t padBegin, int64_t padEnd, int64_t kernel, int64_t stride,
                   int64_t dilation, bool ceilMode);

// convolution and pooling (Conv.cpp)
template <class T>
Tensor<T> conv2d(const Tensor<T> &x, const Tensor<T> &w, const Tensor<T> *b, const ConvParams &p);
template <class T> Tensor<T> maxPool(const Tensor<T> &x, const PoolParams &p);
template <class T> Tensor<T> avgPool(const Tensor<T> &x, const PoolParams &p);
template <class T> Tensor<T> globalAvgPool(const Tensor<T> &x);

// dense, shape, normalisation, losses (Kernels.cpp)
template <class T>
Tensor<T> fullyConnected(const Tensor<T> &x, const Tensor<T> &w, const Tensor<T> *b);
template <class T>
Tensor<T> matMul(const Tensor<T> &a, const Tensor<T> &b, bool transA, bool transB);
template <class T> Tensor<T> concat(const std::vector<const Tensor<T> *> &xs, int64_t axis);
/// Row-major reshape to a concrete shape (no 0 or -1 entries to resolve).
template <class T> Tensor<T> reshapeTo(const Tensor<T> &x, const std::vector<int64_t> &shape);
template <class T> Tensor<T> softmax(const Tensor<T> &x, int64_t axis, bool log);
template <class T>
Tensor<T> batchNorm(const Tensor<T> &x, const Tensor<T> &scale, const Tensor<T> &bias,
                    const Tensor<T> &mean, const Tensor<T> &var, double epsilon);
template <class T> Tensor<T> bnMean(const Tensor<T> &x);
template <class T> Tensor<T> bnVar(const Tensor<T> &x, const Tensor<T> &mean);
template <class T>
Tensor<T> dropout(const Tensor<T> &x, double rate, bool training, uint64_t seed, uint64_t step);
template <class T>
Tensor<T> softmaxXent(const Tensor<T> &logits, const Tensor<T> &labels, const std::string &what);
template <class T> Tensor<T> l2Loss(const Tensor<T> &pred, const Tensor<T> &target);

// N-D ops from ONNX models (NdKernels.cpp)
template <class T> Tensor<T> batchMatMul(const Tensor<T> &a, const Tensor<T> &b);
template <class T>
Tensor<T> softmaxXentNd(const Tensor<T> &logits, const Tensor<T> &labels, const Tensor<T> *weights,
                        const std::string &reduction, const std::vector<int64_t> &ignore,
                        const std::string &what);

// padding (PadKernels.cpp)
/// The input index that output index o copies along a dim of input extent n with `begin`
/// padded before it, or -1 for constant fill (mode "constant", "reflect" or "edge").
int64_t padSource(const std::string &mode, int64_t o, int64_t begin, int64_t n);
template <class T>
Tensor<T> padKernel(const Tensor<T> &x, const std::vector<int64_t> &pads, const std::string &mode,
              double value);
template <class T>
Tensor<T> padGradKernel(const Tensor<T> &dy, const std::vector<int64_t> &pads, const std::string &mode);

} // namespace cnnc::interp
