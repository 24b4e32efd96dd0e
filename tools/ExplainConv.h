// `cnnc explain`'s worked example: the seed's convolution made concrete for one conv layer
// of the model, on a tiny instance (the layer's kernel, stride, padding and dilation; one
// example, at most two channels in and out, a few pixels) computed by the reference
// interpreter. The forward conv2d and its gradient are built as IR and differentiated by
// autodiff, so the nodes shown are those a training build holds before `fuse-conv-grad`:
// φ(x) by im2row (seed eqs. 18-21), Y = φ(x)F (eq. 22), dz/dF = φ(x)ᵀ dz/dY (eq. 35), and
// dz/dX = row2im(dz/dY Fᵀ) (eqs. 45-46). z = Σ Y ⊙ G for a fixed G, so that dz/dY = G.
#pragma once

#include "ir/IR.h"

#include <string>

namespace cnnc::tools {

/// The section's HTML for the first conv2d of `network`, or a sentence saying it has none.
/// Matrices are LaTeX (`class="tex"`), rendered by KaTeX with the equations.
std::string convExampleHtml(const Function &network);

} // namespace cnnc::tools
