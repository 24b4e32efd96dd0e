// Seeded parameter initialisation, by the scheme a `param` node names in its `init`
// attribute. Every scheme draws from a counter-based generator keyed by (seed, parameter
// name), so a parameter's initial value does not depend on which other parameters exist or
// in which order they are initialised.
//
// Schemes (the attribute's string):
//   zeros, ones, const(V)
//   gauss(S)      S * randn: MatConvNet's 0.01*randn for the seed's Exercise 6 is gauss(0.01)
//   he            randn * sqrt(2 / fan_in)                  (He et al. 2015)
//   xavier        uniform(-a, a), a = sqrt(6 / (fan_in + fan_out))  (Glorot & Bengio 2010)
// fan_in = prod(shape[1:]) (C/groups * kh * kw for a conv weight), fan_out = shape[0] *
// prod(shape[2:]).
#pragma once

#include "ir/IR.h"

#include <cstdint>
#include <string>
#include <vector>

namespace cnnc {

/// Values for a param node (numel of its type), row-major. Throws cnnc::Error naming the node
/// for an unknown scheme.
std::vector<double> initParam(const Node &param, uint64_t seed);
/// Checks that `scheme` is a known scheme string (used by the verifier and frontends).
bool validInitScheme(const std::string &scheme);

} // namespace cnnc
