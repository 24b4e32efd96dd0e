// The reference interpreter: cnnc's oracle. It executes every op directly and simply, with
// xtensor, in f32 or f64, so that compiled code, passes and gradients can be checked against
// it. It must be obviously right rather than fast.
#pragma once

#include "ir/IR.h"

#include <xtensor/xarray.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace cnnc::interp {

template <class T> using Tensor = xt::xarray<T>;

struct RunOptions {
  /// Counter for stochastic ops (dropout): the mask is a pure function of (the op's seed,
  /// step, element index), so a given step is reproducible bit for bit.
  uint64_t step = 0;
};

/// Evaluates every node of `f` in order, T = float or double (all floating tensors are
/// computed in T; integer tensors such as labels are held as T with integral values).
/// `feeds` gives every `input` and `param` node's value by SSA name; constants come from the
/// IR. Returns one tensor per node, in node order. Throws cnnc::Error naming the missing
/// feed, or a feed whose shape differs from the node's type, or an invalid label.
template <class T>
std::vector<Tensor<T>> evaluate(const Function &f, const std::map<std::string, Tensor<T>> &feeds,
                                const RunOptions &opts = {});

/// Convenience: the values of f's outputs, by SSA name.
template <class T>
std::map<std::string, Tensor<T>> run(const Function &f, const std::map<std::string, Tensor<T>> &feeds,
                                     const RunOptions &opts = {});

extern template std::vector<Tensor<float>> evaluate(const Function &, const std::map<std::string, Tensor<float>> &, const RunOptions &);
extern template std::vector<Tensor<double>> evaluate(const Function &, const std::map<std::string, Tensor<double>> &, const RunOptions &);
extern template std::map<std::string, Tensor<float>> run(const Function &, const std::map<std::string, Tensor<float>> &, const RunOptions &);
extern template std::map<std::string, Tensor<double>> run(const Function &, const std::map<std::string, Tensor<double>> &, const RunOptions &);

} // namespace cnnc::interp
