// Gradient checking against central finite differences in f64 on the reference interpreter.
#pragma once

#include "interp/Interpreter.h"
#include "ir/IR.h"

#include <map>
#include <random>
#include <string>
#include <vector>

namespace cnnc::test {

using Feeds = std::map<std::string, interp::Tensor<double>>;

/// Values for every input/param of f: distinct, evenly spaced in [-1, 1) and shuffled, so
/// that no ReLU input is near 0 and no pooling window holds a near-tie (issue: "inputs kept
/// away from kinks"). i32 labels get classes in [0, C); names in `positive` get |v| + 0.5.
Feeds spacedFeeds(const Function &f, uint64_t seed, const std::vector<std::string> &positive = {},
                  int64_t classes = 0);

/// The loss (the function's first output) at the given feeds, in f64.
double lossAt(const Function &f, const Feeds &feeds);

/// Checks, element by element, the autodiff gradient of the first output of the IR in
/// `text` with respect to each node named in `wrt` against the central difference
/// (L(x+h) - L(x-h)) / 2h: |g_ad - g_fd| <= 1e-7 + 1e-5 |g_fd|. Reports the worst element.
/// With `fuse`, the fuse-conv-grad and fuse-bn-grad passes rewrite the gradients' conv2d
/// and batch-norm chains first (one must find one): the fused ops are then what is checked.
void checkGradients(const std::string &text, const std::vector<std::string> &wrt, const Feeds &feeds,
                    double h = 1e-6, bool fuse = false);

/// The autodiff gradients of the first output wrt the named nodes, by name.
Feeds gradients(const std::string &text, const std::vector<std::string> &wrt, const Feeds &feeds,
                bool fuse = false);

} // namespace cnnc::test
