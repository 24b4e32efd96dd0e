// The differential fuzz target `diff` (DiffTarget.cpp): random model, JIT against the
// interpreter. Kept apart from Targets.cpp because it links LLVM code generation, which the
// readers' targets (and the bad-inputs replay) do not need.
#pragma once

#include "fuzz/Targets.h"

namespace cnnc::fuzz {

/// Runs the model the bytes describe (RandomModel.h) under the JIT and the interpreter;
/// returns "" when they agree or autodiff refused the model (its message, then); a
/// disagreement throws std::logic_error naming the output, element, values and the IR.
const Target &diffTarget();

} // namespace cnnc::fuzz
