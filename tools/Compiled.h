// The CLI's bridge to codegen/: running a model compiled by the JIT (`cnnc run --backend jit`)
// and compiling it to LLVM IR, assembly, an object or a shared library (`cnnc compile`).
#pragma once

#include "codegen/Codegen.h"
#include "tools/Model.h"

namespace cnnc::tools {

struct JitTimes {
  double compileSeconds = 0, runSeconds = 0;
};

/// Runs f under the LLVM JIT on f32 copies of `feeds` (every input and param by name);
/// returns f's outputs by name, in f64 for comparison with the interpreter.
std::map<std::string, interp::Tensor<double>> runJit(const Function &f, const Feeds &feeds,
                                                     const codegen::TargetOptions &t = {},
                                                     JitTimes *times = nullptr);

struct CompileRequest {
  std::string output;  // -o
  std::string emit;    // so | llvm | asm | obj
  std::string header;  // --header
  std::string weights; // --weights: embed these (.npz)
  codegen::TargetOptions target;
};
void compileModel(const Function &f, const CompileRequest &r);

} // namespace cnnc::tools
