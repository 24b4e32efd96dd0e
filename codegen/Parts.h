// Internal to codegen/: a function's code split into parts of bounded size (Parts.cpp), used
// by Lower.cpp for the entry and the prepare entry.
#pragma once

#include "codegen/Emitter.h"

#include <vector>

namespace cnnc::codegen {

// A function's code, split into parts of bounded size (docs/performance.md, "Compile time").
// LLVM's function passes cost more than linearly in a function's size (dominator trees,
// SCEV, the vectoriser's per-function analyses), so one giant entry made a chain of n
// layers cost ~n² to compile. The first nodes go into `outer` itself; when its code passes
// kPartInstructions, the rest goes into noinline internal functions
// outer.partK(buffers, workspace, batch, pool, status) that `outer` calls in order: every
// function LLVM sees stays bounded, so compile time is linear in the model. A model small
// enough for one part compiles exactly as before. A part binds what it uses (Emitter::ptr).
class Parts {
public:
  static constexpr unsigned kPartInstructions = 3000;

  // `batchArg`: what `outer` passes as the parts' batch; `fixedBatch`: the prepare entry's
  // constant batch, used inside the parts instead of their argument.
  Parts(Emitter &e, llvm::Value *buffersArg, llvm::Value *batchArg, bool fixedBatch);
  // Called between nodes: starts a new part when the current one is full.
  void split();
  // After the last node: back to `outer`, after its last call.
  void finish();

private:
  Emitter &e_;
  llvm::Function *outer_;
  bool fixedBatch_;
  std::vector<llvm::Value *> args_;
  llvm::IRBuilderBase::InsertPoint outerIP_;
  unsigned count_ = 0;
};

} // namespace cnnc::codegen
