// The generic emitter: IRBuilder plus the few loop and SIMD helpers every op lowering uses.
// Internal to codegen/ (it is the only place that knows LLVM).
//
// Loops are emitted as plain counted loops on i64 (phi, compare, branch); vector code uses
// fixed vectors of `vl` f32 lanes (Target.cpp picks vl from the target's registers) with a
// scalar tail, and SROA/O3 turn the allocas that hold register tiles into registers.
// Floating-point ops carry `reassoc contract` so that reductions may vectorise and
// multiply-adds fuse; NaN/Inf semantics stay IEEE.
#pragma once

#include <cmath>

#include "codegen/Plan.h"

#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Module.h>

#include <functional>

namespace cnnc::codegen {

class Emitter {
public:
  Emitter(llvm::Module &m, llvm::Function *fn, const Plan &plan);

  llvm::LLVMContext &ctx;
  llvm::Module &mod;
  llvm::IRBuilder<> b;
  llvm::Function *fn;
  const Plan &plan;
  const unsigned vl;
  llvm::Type *f32, *i32, *i64, *ptrTy;
  llvm::Value *batch = nullptr;     // i64: the runtime mini-batch
  llvm::Value *workspace = nullptr; // ptr
  llvm::Value *status = nullptr;    // ptr to the i32 return code (the entry's alloca)
  llvm::Value *pool = nullptr;      // ptr: the runtime's cnnc_rt_pool (NULL: one thread)
  /// Module globals of constant nodes, shared by every function of the module.
  std::map<const Node *, llvm::Value *> *constants = nullptr;
  llvm::Value *tailStart_ = nullptr; // the final i of the last strided loop (vecLoop's tail)
  const Node *current = nullptr;     // the node being lowered (names its thread bodies)

  // ------------------------------------------------------------------ values
  llvm::Value *c(int64_t v) { return b.getInt64(v); }
  llvm::Value *cf(double v) { return llvm::ConstantFP::get(f32, v); }
  llvm::Type *vty(unsigned w) { return w == 1 ? f32 : llvm::FixedVectorType::get(f32, w); }
  llvm::Value *splat(llvm::Value *s, unsigned w) { return w == 1 ? s : b.CreateVectorSplat(w, s); }
  llvm::Value *cfv(double v, unsigned w) { return splat(cf(v), w); }

  // ------------------------------------------------------------------ tensors
  /// Where n's value lives (its buffer, workspace block, constant or view root), bound on
  /// first use in the home function's entry block (Lower.cpp): a part of a split entry
  /// binds only what it uses, so the binding costs O(uses), not O(nodes) per part.
  llvm::Value *ptr(const Node *n);
  /// The pointer to buffer i of the entry's `buffers` array (loaded once per home function).
  llvm::Value *bufferPtr(size_t i);
  /// Emits from now on into `home` (an entry or a part of one, Lower.cpp): its first block
  /// must end in a branch, before which bindings go; `buffersArg` is its buffers array.
  void setHome(llvm::Function *home, llvm::Value *buffersArg);
  bool batched(const Node *n) const { return plan.batched.at(n); }
  /// The dim of n that follows the runtime batch, -1 if none (Plan::batchDim).
  int batchDim(const Node *n) const { return plan.batchDim.at(n); }
  /// The runtime extent of a batch dim that is `maxExtent` at the compiled batch:
  /// batch · maxExtent/maxBatch.
  llvm::Value *batchExtent(int64_t maxExtent);
  /// Extent of dim d: runtime for n's batch dim, else a constant.
  llvm::Value *dim(const Node *n, int d);
  /// Product of dims [from, to) (runtime when it includes n's batch dim).
  llvm::Value *extent(const Node *n, int from, int to);
  llvm::Value *numel(const Node *n) { return extent(n, 0, n->type.rank()); }
  llvm::Value *scratch(const Node *n, int64_t byteOffset);

  // ------------------------------------------------------------------ memory
  llvm::Value *gep(llvm::Value *base, llvm::Value *idx) {
    return b.CreateInBoundsGEP(f32, base, idx);
  }
  llvm::Value *load(llvm::Value *base, llvm::Value *idx, unsigned w = 1);
  void store(llvm::Value *v, llvm::Value *base, llvm::Value *idx);
  llvm::Value *entryAlloca(llvm::Type *t, const char *name = "");

  // ------------------------------------------------------------------ math
  llvm::Value *fma(llvm::Value *a, llvm::Value *x, llvm::Value *acc);
  llvm::Value *maxnum(llvm::Value *a, llvm::Value *x) { return b.CreateMaxNum(a, x); }
  /// One step of PyTorch's max scan (max pooling): `x > best || isnan(x) ? x : best`, so a
  /// NaN in the window wins and stays (maxnum would drop it). maxpool_grad takes the same
  /// decision to pick the position its gradient goes to.
  llvm::Value *maxScanTakes(llvm::Value *best, llvm::Value *x) {
    return b.CreateOr(b.CreateFCmpOGT(x, best), b.CreateFCmpUNO(x, x));
  }
  /// max(x, 0) with PyTorch's NaN rule: NaN stays NaN (maxnum would make it 0). `0 > x ? 0 :
  /// x` is one x86 max instruction (maxps returns its second operand on NaN).
  llvm::Value *relu(llvm::Value *x) {
    llvm::Value *zero = llvm::Constant::getNullValue(x->getType());
    return b.CreateSelect(b.CreateFCmpOGT(zero, x), zero, x);
  }
  /// The fused ReLU epilogue of conv2d/fc/batchnorm (relu=1, passes/FuseRelu.cpp): relu(x),
  /// then capped at the node's relu_max when that is finite (a fused clip: ReLU6) by clip's
  /// select, so NaN stays NaN and the bits equal the unfused relu and clip ops'.
  llvm::Value *reluCapped(llvm::Value *x, double max) {
    x = relu(x);
    if (std::isinf(max))
      return x;
    llvm::Value *h = llvm::ConstantFP::get(x->getType(), max);
    return b.CreateSelect(b.CreateFCmpOGT(x, h), h, x);
  }
  /// A read prefetch of p's cache line into L2 (x86 prefetcht1): a hint, no fault.
  void prefetchL2(llvm::Value *p) {
    b.CreateIntrinsic(llvm::Intrinsic::prefetch, {p->getType()},
                      {p, b.getInt32(0), b.getInt32(2), b.getInt32(1)});
  }
  llvm::Value *unary(llvm::Intrinsic::ID id, llvm::Value *x) {
    return b.CreateUnaryIntrinsic(id, x);
  }
  llvm::Value *hsum(llvm::Value *v); // horizontal sum of a vector (scalar passes through)
  llvm::Value *libm(const char *name, llvm::Value *x); // a scalar float libm call, e.g. tanhf
  llvm::Value *smin(llvm::Value *a, llvm::Value *x) {
    return b.CreateSelect(b.CreateICmpSLT(a, x), a, x);
  }
  llvm::Value *smax(llvm::Value *a, llvm::Value *x) {
    return b.CreateSelect(b.CreateICmpSGT(a, x), a, x);
  }

  // ------------------------------------------------------------------ loops
  using Body = std::function<void(llvm::Value *)>;
  /// for (i = lo; i < hi; i += step) body(i)
  void loop(llvm::Value *lo, llvm::Value *hi, Body body, int64_t step = 1);
  /// for (i = 0; i < hi; ++i) body(i), a loop LLVM must not unroll (llvm.loop.unroll.disable):
  /// for register-tile kernels whose iterations must not be merged (EmitConv.cpp).
  void loopNoUnroll(int64_t hi, Body body);
  void loop(int64_t hi, Body body) { loop(c(0), c(hi), body); }
  void loop(llvm::Value *hi, Body body) { loop(c(0), hi, body); }
  /// for i in [0, n): body(i, w) with w = vl lanes while a whole vector fits (up to maxW),
  /// then w = 1 for the tail.
  void vecLoop(llvm::Value *n, const std::function<void(llvm::Value *, unsigned)> &body,
               unsigned maxW = 0);
  /// if (cond) then()
  void ifThen(llvm::Value *cond, const std::function<void()> &then);

  // ------------------------------------------------------------------ threads
  /// Ops whose estimated work (about one unit per multiply-add or element moved) is below
  /// this run on one thread: waking the pool costs about a microsecond, sleeping workers ten.
  static constexpr int64_t kParallelMinWork = 1 << 16;
  /// for (i = 0; i < n; ++i) body(i), the iterations split across the pool's threads
  /// (runtime/Parallel.h: contiguous chunks, deterministic). The body is outlined into its
  /// own function; what it uses from the entry is passed in a struct, except allocas, which
  /// are cloned into it (register tiles and scratch cells are private to each thread) and
  /// the status cell, written atomically. Every iteration must compute outputs no other
  /// iteration reads or writes: then the same instructions compute each element whatever
  /// the thread count, and results are bitwise identical. `work` < kParallelMinWork, or a
  /// call from inside a parallel body, emits the plain loop.
  void parallelFor(llvm::Value *n, Body body, int64_t work = kParallelMinWork);
  /// parallelFor by chunks: body(begin, end) runs the iterations [begin, end) of one chunk
  /// (all of [0, n) when not threaded). A chunk is one thread's, so iteration `begin` can
  /// name per-thread scratch (EmitConv.cpp: the panel a thread packs and reuses).
  using ChunkBody = std::function<void(llvm::Value *, llvm::Value *)>;
  void parallelChunks(llvm::Value *n, ChunkBody body, int64_t work = kParallelMinWork);
  int64_t parallelMinWork = kParallelMinWork; // TargetOptions::parallelMinWork
  void parallelFor(int64_t n, Body body, int64_t work = kParallelMinWork) {
    parallelFor(c(n), body, work);
  }

  /// vecLoop(n, body, maxW) over a flat range of independent elements (at most nMax), in
  /// units of kParallelChunk elements across threads. Units start at multiples of every
  /// vector width, so each element takes the same vector or tail path at any thread count.
  static constexpr int64_t kParallelChunk = 16384;
  void parallelVecLoop(llvm::Value *n, int64_t nMax,
                       const std::function<void(llvm::Value *, unsigned)> &body, unsigned maxW = 0);

private:
  llvm::Function *home_ = nullptr; // fn, or the function a parallel body is outlined from
  llvm::Value *buffers_ = nullptr;
  std::map<const Node *, llvm::Value *> ptrs_;     // bindings in home_
  std::map<size_t, llvm::Value *> bufferPtrs_;     // buffer pointers loaded in home_
  bool inParallel_ = false;
  bool noUnroll_ = false; // the next loop's back edge gets llvm.loop.unroll.disable
  bool scalarTail_ = false; // the next loop is a vecLoop's tail: not vectorised again
  unsigned parallelCount_ = 0;

public:
};

/// The lowering of an op kind: the emitter table (EmitOps.cpp), one entry per op of
/// ir/Ops.def; nullptr = not lowered by codegen on purpose (sources are bound to storage,
/// `update` is a copy at the end of the entry: Lower.cpp).
using OpEmitter = void (*)(Emitter &, const Node &);
OpEmitter opEmitter(OpKind k);

} // namespace cnnc::codegen
