// The seed's numbered equations as LaTeX (Jianxin Wu, "Introduction to Convolutional Neural
// Networks"), for `cnnc explain` to render the equation an IR node cites.
#pragma once

namespace cnnc::tools {

/// Equation n (1-based) of the seed as LaTeX without its number, or nullptr if there is none.
const char *seedEquation(int n);

} // namespace cnnc::tools
