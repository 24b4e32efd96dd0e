// The reference interpreter: verifies the function, then evaluates its nodes in order (the
// node list is a topological order), each by the plain kernel of its op (Kernels.h).
//
// Invariants: every value is a row-major xt::xarray<T> whose shape equals its node's type
// (checked after every node: a mismatch is a bug in a kernel or in a shape rule, hence an
// internal error). Integer tensors (labels) are held as T with integral values.
#include "interp/Interpreter.h"
#include "interp/GradKernels.h"
#include "interp/Kernels.h"

#include <fmt/format.h>
#include <xtensor/xmath.hpp>

#include <algorithm>
#include <cmath>
#include <unordered_map>

namespace cnnc::interp {

namespace {

template <size_t K> std::array<int64_t, K> ints(const Node &n, const char *name) {
  std::vector<int64_t> v = n.getInts(name);
  CNNC_ASSERT(v.size() == K,
              fmt::format("{}: attribute '{}' needs {} entries", n.describe(), name, K));
  std::array<int64_t, K> a{};
  std::copy(v.begin(), v.end(), a.begin());
  return a;
}

int64_t axisOf(const Node &n, size_t rank) {
  int64_t axis = n.getInt("axis");
  if (axis < 0)
    axis += (int64_t)rank;
  if (axis < 0 || axis >= (int64_t)rank)
    throw Error(
        fmt::format("{}: axis {} out of range for rank {}", n.describe(), n.getInt("axis"), rank));
  return axis;
}

template <class T> bool sameShape(const Tensor<T> &t, const Shape &s) {
  return t.dimension() == s.size() && std::equal(s.begin(), s.end(), t.shape().begin());
}

template <class T> Shape shapeOf(const Tensor<T> &t) {
  return Shape(t.shape().begin(), t.shape().end());
}

template <class T> Tensor<T> source(const Node &n, const std::map<std::string, Tensor<T>> &feeds) {
  if (n.op == OpKind::Constant) {
    std::vector<double> v = n.getFloats("value");
    Tensor<T> y =
        Tensor<T>::from_shape(std::vector<size_t>(n.type.shape.begin(), n.type.shape.end()));
    if (v.size() != 1 && (int64_t)v.size() != n.type.numel())
      throw Error(fmt::format("{}: {} values for a constant of type {}", n.describe(), v.size(),
                              n.type.str()));
    for (size_t i = 0; i < y.size(); ++i)
      y.data()[i] = T(v.size() == 1 ? v[0] : v[i]);
    return y;
  }
  auto it = feeds.find(n.name);
  if (it == feeds.end())
    throw Error(
        fmt::format("{}: no value fed for %{} (expected {})", n.describe(), n.name, n.type.str()));
  if (!sameShape(it->second, n.type.shape))
    throw Error(fmt::format("{}: the value fed for %{} has shape {}, but its type is {}",
                            n.describe(), n.name, shapeStr(shapeOf(it->second)), n.type.str()));
  return it->second;
}

// max(x, 0) with PyTorch's NaN rule: NaN stays NaN (seed eq. 12 says nothing of NaN).
template <class T> Tensor<T> relu(const Tensor<T> &x) {
  return Tensor<T>(xt::where(x < T(0), T(0), x));
}

// min(max(x, lo), hi), NaN staying NaN (comparisons with NaN are false).
template <class T> Tensor<T> clipValues(const Tensor<T> &x, T lo, T hi) {
  return Tensor<T>(xt::where(x < lo, lo, xt::where(x > hi, hi, x)));
}

// conv2d/fc/batchnorm with relu=1 (passes/FuseRelu.cpp): the same max(0, .) as the relu op, after the
// product, so fused and unfused graphs agree exactly; a finite relu_max (a fused clip, ReLU6)
// then caps it as clip's min(., max) does, NaN staying NaN.
template <class T> Tensor<T> fusedRelu(const Node &n, Tensor<T> y) {
  if (n.getInt("relu")) {
    y = relu(y);
    if (const double hi = n.getFloat("relu_max"); !std::isinf(hi))
      y = clipValues(y, T(0), T(hi));
  }
  return y;
}

// f(dy, v) elementwise: the activations' vector-Jacobian products (same shapes: the shape
// rules check them).
template <class T, class F> Tensor<T> zip(const Tensor<T> &dy, const Tensor<T> &v, F f) {
  CNNC_ASSERT(dy.shape() == v.shape(), "activation gradient operand shapes");
  Tensor<T> dx = Tensor<T>::from_shape(v.shape());
  for (size_t i = 0; i < v.size(); ++i)
    dx.data()[i] = f(dy.data()[i], v.data()[i]);
  return dx;
}

// [op-table] The interpreter's kernels: one case per op of Ops.def, forward and gradient ops
// alike. The switch has no default, and -Werror=switch makes a missing op a build error that
// names it.
template <class T>
Tensor<T> evalNode(const Node &n, const std::vector<const Tensor<T> *> &in,
                   const std::map<std::string, Tensor<T>> &feeds, const RunOptions &opts) {
  auto opt = [&](size_t i) { return in.size() > i ? in[i] : nullptr; };
  switch (n.op) {
  case OpKind::Input:
  case OpKind::Param:
  case OpKind::Constant:
    return source(n, feeds);
  case OpKind::Conv2d: {
    ConvParams p{ints<2>(n, "stride"), ints<4>(n, "pads"), ints<2>(n, "dilation"),
                 n.getInt("groups")};
    Tensor<T> y = conv2d(*in[0], *in[1], opt(2), p);
    if (in.size() > 3) // the residual connection fuse-residual folded in, before the ReLU
      y = Tensor<T>(y + *in[3]);
    return fusedRelu(n, std::move(y));
  }
  case OpKind::MaxPool:
  case OpKind::AvgPool: {
    PoolParams p;
    p.kernel = ints<2>(n, "kernel"), p.stride = ints<2>(n, "stride"), p.pads = ints<4>(n, "pads");
    p.ceilMode = n.getInt("ceil_mode") != 0;
    if (n.op == OpKind::MaxPool) {
      p.dilation = ints<2>(n, "dilation");
      return maxPool(*in[0], p);
    }
    p.countIncludePad = n.getInt("count_include_pad") != 0;
    return avgPool(*in[0], p);
  }
  case OpKind::GlobalAvgPool:
    return globalAvgPool(*in[0]);
  case OpKind::Relu: // seed eq. 12
    return relu(*in[0]);
  case OpKind::Sigmoid:
    return Tensor<T>(T(1) / (T(1) + xt::exp(-*in[0])));
  case OpKind::Tanh:
    return Tensor<T>(xt::tanh(*in[0]));
  case OpKind::Softplus: // log(1 + exp(x)) as max(x, 0) + log1p(exp(-|x|)): no overflow
    return Tensor<T>(xt::maximum(*in[0], T(0)) + xt::log1p(xt::exp(-xt::abs(*in[0]))));
  case OpKind::Clip: // comparisons leave NaN as it is (PyTorch's clamp)
    return clipValues(*in[0], T(n.getFloat("min")), T(n.getFloat("max")));
  case OpKind::HardSigmoid: {
    const T a = T(n.getFloat("alpha")), b = T(n.getFloat("beta"));
    return clipValues(Tensor<T>(a * *in[0] + b), T(0), T(1));
  }
  case OpKind::HardSwish: // x relu6(x + 3) / 6, PyTorch's formula
    return Tensor<T>(*in[0] * clipValues(Tensor<T>(*in[0] + T(3)), T(0), T(6)) / T(6));
  case OpKind::LeakyRelu:
    return Tensor<T>(xt::where(*in[0] > T(0), *in[0], *in[0] * T(n.getFloat("alpha"))));
  case OpKind::Elu:
  case OpKind::Selu: { // s x above 0, s alpha (exp(x) - 1) below, by expm1 as PyTorch
    const T alpha = T(n.getFloat("alpha")), s = T(n.op == OpKind::Selu ? n.getFloat("gamma") : 1.0);
    return Tensor<T>(s * xt::where(*in[0] > T(0), *in[0], alpha * xt::expm1(*in[0])));
  }
  case OpKind::PRelu: // the slope broadcasts to x (the shape rule checked it)
    return Tensor<T>(xt::where(*in[0] > T(0), *in[0], *in[0] * *in[1]));
  case OpKind::Erf:
    return Tensor<T>(xt::erf(*in[0]));
  case OpKind::Exp:
    return Tensor<T>(xt::exp(*in[0]));
  case OpKind::Log:
    return Tensor<T>(xt::log(*in[0]));
  case OpKind::Sqrt:
    return Tensor<T>(xt::sqrt(*in[0]));
  case OpKind::Reciprocal:
    return Tensor<T>(T(1) / *in[0]);
  case OpKind::Neg:
    return Tensor<T>(-*in[0]);
  case OpKind::Abs:
    return Tensor<T>(xt::abs(*in[0]));
  case OpKind::Pad:
    return padKernel(*in[0], n.getInts("pads"), n.getStr("mode"), n.getFloat("value"));
  case OpKind::PadGrad:
    return padGradKernel(*in[0], n.getInts("pads"), n.getStr("mode"));
  case OpKind::FullyConnected:
    return fusedRelu(n, fullyConnected(*in[0], *in[1], opt(2)));
  case OpKind::MatMul:
    return matMul(*in[0], *in[1], n.getInt("trans_a") != 0, n.getInt("trans_b") != 0);
  // Elementwise binary ops: xtensor broadcasts with numpy's rules.
  case OpKind::Add:
    return Tensor<T>(*in[0] + *in[1]);
  case OpKind::Sub:
    return Tensor<T>(*in[0] - *in[1]);
  case OpKind::Mul:
    return Tensor<T>(*in[0] * *in[1]);
  case OpKind::Div:
    return Tensor<T>(*in[0] / *in[1]);
  case OpKind::Pow:
    return Tensor<T>(xt::pow(*in[0], *in[1]));
  case OpKind::Max: // a NaN in a wins by the isnan test, one in b because a > NaN is false
    return Tensor<T>(xt::where(xt::greater(*in[0], *in[1]) || xt::isnan(*in[0]), *in[0], *in[1]));
  case OpKind::Min:
    return Tensor<T>(xt::where(xt::less(*in[0], *in[1]) || xt::isnan(*in[0]), *in[0], *in[1]));
  case OpKind::Concat:
    return concat(in, axisOf(n, in[0]->dimension()));
  case OpKind::Flatten: // the shape rules derived the result (reshape's 0, -1, allowzero)
  case OpKind::Reshape:
    return reshapeTo(*in[0], n.type.shape);
  case OpKind::Identity:
    return *in[0];
  case OpKind::Softmax:
  case OpKind::LogSoftmax:
    return softmax(*in[0], axisOf(n, in[0]->dimension()), n.op == OpKind::LogSoftmax);
  case OpKind::BatchNorm:
    return fusedRelu(n, batchNorm(*in[0], *in[1], *in[2], *in[3], *in[4], n.getFloat("epsilon")));
  case OpKind::BnMean:
    return bnMean(*in[0]);
  case OpKind::BnVar:
    return bnVar(*in[0], *in[1]);
  case OpKind::BnUnbias: { // counted on the tensor as it is now: its batch is the run's
    const double count = (double)in[0]->size() / (double)in[0]->shape(1);
    return Tensor<T>(xt::xarray<T>(T(count > 1 ? count / (count - 1) : 1.0)));
  }
  case OpKind::Dropout: {
    const double rate = n.getFloat("rate");
    if (!(rate >= 0 && rate <= 1))
      throw Error(fmt::format("{}: dropout rate {} is not in [0, 1]", n.describe(), rate));
    // The step comes from the optional operand (an integer scalar held as T, hence exact
    // only up to 2^24 in f32), else from the run.
    uint64_t step = opts.step;
    if (const Tensor<T> *s = opt(1)) {
      const T v = s->data()[0];
      if (!(v >= 0 && v == std::floor(v)))
        throw Error(fmt::format("{}: step {} is not a non-negative integer", n.describe(), v));
      step = (uint64_t)v;
    }
    return dropout(*in[0], rate, n.getInt("training") != 0, (uint64_t)n.getInt("seed"), step);
  }
  case OpKind::SoftmaxXent:
    return softmaxXent(*in[0], *in[1], n.describe());
  case OpKind::L2Loss:
    return l2Loss(*in[0], *in[1]);
  case OpKind::BatchMatMul:
    return batchMatMul(*in[0], *in[1]);
  case OpKind::SoftmaxXentNd:
    return softmaxXentNd(*in[0], *in[1], opt(2), n.getStr("reduction"), n.getInts("ignore_index"),
                         n.describe());
  case OpKind::CountCorrect:
    return countCorrect(*in[0], *in[1], n.describe());
  case OpKind::Transpose:
    return transpose(*in[0], n.getInts("perm"));
  case OpKind::Expand:
    return expand(*in[0], n.getInts("shape"));
  case OpKind::ReduceSum:
    return reduceSum(*in[0], n.getInts("axes"), n.getInt("keepdims") != 0);
  case OpKind::ReduceMax:
  case OpKind::ReduceMin:
    return reduceExtremum(*in[0], n.getInts("axes"), n.getInt("keepdims") != 0,
                          n.op == OpKind::ReduceMax);
  case OpKind::ArgMax:
    return argMax(*in[0], n.getInt("axis"), n.getInt("keepdims") != 0,
                  n.getInt("select_last_index") != 0);
  case OpKind::EqualMask: // 1 where equal: NaN equals nothing, as in torch.amax's backward
    return Tensor<T>(xt::where(xt::equal(*in[0], *in[1]), T(1), T(0)));
  case OpKind::Slice:
    return slice(*in[0], axisOf(n, in[0]->dimension()), n.getInt("start"), n.getInt("end"));
  case OpKind::Im2Row:
  case OpKind::Row2Im: {
    ConvParams p{ints<2>(n, "stride"), ints<4>(n, "pads"), ints<2>(n, "dilation"),
                 n.getInt("groups")};
    if (n.op == OpKind::Im2Row)
      return im2rowGrouped(*in[0], ints<2>(n, "kernel"), p);
    return row2imGrouped(*in[0], n.getInts("input_shape"), ints<2>(n, "kernel"), p);
  }
  case OpKind::Conv2dGradFilter:
  case OpKind::Conv2dGradInput: {
    ConvParams p{ints<2>(n, "stride"), ints<4>(n, "pads"), ints<2>(n, "dilation"),
                 n.getInt("groups")};
    if (n.op == OpKind::Conv2dGradFilter)
      return conv2dGradFilter(*in[0], *in[1], ints<2>(n, "kernel"), p);
    return conv2dGradInput(*in[0], *in[1], n.getInts("input_shape"), p);
  }
  case OpKind::FilterFlip:
    return filterFlip(*in[0], n.getInt("groups"));
  case OpKind::ReluGrad: // seed eq. 14; the subgradient at 0 is 0
    return zip(*in[0], *in[1], [](T g, T x) { return x > T(0) ? g : T(0); });
  case OpKind::SigmoidGrad: // seed section 5
    return zip(*in[0], *in[1], [](T g, T y) { return g * y * (T(1) - y); });
  case OpKind::TanhGrad:
    return zip(*in[0], *in[1], [](T g, T y) { return g * (T(1) - y * y); });
  case OpKind::ClipGrad: { // eq. 14 with two bounds: 0 at and beyond them
    const T lo = T(n.getFloat("min")), hi = T(n.getFloat("max"));
    return zip(*in[0], *in[1], [=](T g, T x) { return x > lo && x < hi ? g : T(0); });
  }
  case OpKind::MaxPoolGrad:
  case OpKind::AvgPoolGrad: {
    PoolParams p;
    p.kernel = ints<2>(n, "kernel"), p.stride = ints<2>(n, "stride"), p.pads = ints<4>(n, "pads");
    p.ceilMode = n.getInt("ceil_mode") != 0;
    if (n.op == OpKind::MaxPoolGrad) {
      p.dilation = ints<2>(n, "dilation");
      return maxPoolGrad(*in[0], *in[1], p);
    }
    p.countIncludePad = n.getInt("count_include_pad") != 0;
    return avgPoolGrad(*in[0], n.getInts("input_shape"), p);
  }
  case OpKind::SoftmaxGrad:
  case OpKind::LogSoftmaxGrad:
    return softmaxGrad(*in[0], *in[1], axisOf(n, in[1]->dimension()),
                       n.op == OpKind::LogSoftmaxGrad);
  case OpKind::BatchNormGrad:
    return batchNormGrad(*in[0], *in[1], *in[2], *in[3], *in[4], n.getFloat("epsilon"),
                         n.getStr("wrt"));
  case OpKind::BnMeanGrad:
    return bnMeanGrad(*in[0], *in[1]);
  case OpKind::BnTrainGrad:
    return bnTrainGrad(*in[0], *in[1], *in[2], *in[3], *in[4], *in[5], *in[6], n.getFloat("epsilon"));
  case OpKind::BnVarGrad:
    return bnVarGrad(*in[0], *in[1], *in[2], n.getStr("wrt"));
  case OpKind::SoftmaxXentGrad:
    return softmaxXentGrad(*in[0], *in[1], *in[2], n.describe());
  case OpKind::L2LossGrad:
    return l2LossGrad(*in[0], *in[1], *in[2]);
  case OpKind::Update: // the param's value after the function: its second operand
    return *in[1];
  }
  CNNC_INTERNAL(fmt::format("{}: no interpreter kernel", n.describe()));
}

} // namespace

template <class T>
std::vector<Tensor<T>> evaluate(const Function &f, const std::map<std::string, Tensor<T>> &feeds,
                                const RunOptions &opts) {
  verify(f);
  std::unordered_map<const Node *, size_t> index;
  std::vector<Tensor<T>> values;
  values.reserve(f.nodes().size());
  for (const auto &node : f.nodes()) {
    std::vector<const Tensor<T> *> in;
    for (const Node *o : node->operands)
      in.push_back(&values.at(index.at(o)));
    Tensor<T> y = evalNode(*node, in, feeds, opts);
    if (!sameShape(y, node->type.shape))
      CNNC_INTERNAL(fmt::format("{}: computed shape {} differs from its type {}", node->describe(),
                                shapeStr(shapeOf(y)), node->type.str()));
    index[node.get()] = values.size();
    values.push_back(std::move(y));
  }
  return values;
}

template <class T>
std::map<std::string, Tensor<T>>
run(const Function &f, const std::map<std::string, Tensor<T>> &feeds, const RunOptions &opts) {
  std::vector<Tensor<T>> values = evaluate(f, feeds, opts);
  std::unordered_map<const Node *, size_t> index;
  for (size_t i = 0; i < f.nodes().size(); ++i)
    index[f.nodes()[i].get()] = i;
  std::map<std::string, Tensor<T>> out;
  for (const Node *o : f.outputs())
    out[o->name] = values.at(index.at(o));
  return out;
}

template std::vector<Tensor<float>>
evaluate(const Function &, const std::map<std::string, Tensor<float>> &, const RunOptions &);
template std::vector<Tensor<double>>
evaluate(const Function &, const std::map<std::string, Tensor<double>> &, const RunOptions &);
template std::map<std::string, Tensor<float>>
run(const Function &, const std::map<std::string, Tensor<float>> &, const RunOptions &);
template std::map<std::string, Tensor<double>>
run(const Function &, const std::map<std::string, Tensor<double>> &, const RunOptions &);

} // namespace cnnc::interp
