// IR function -> LLVM module: binds every value to its storage (Plan), emits each op by the
// emitter table in node order, checks that nothing tensor-level is left, and adds the model
// descriptor that the runtime's C API reads (layout mirrored in runtime/CnncModel.h).
#include "codegen/Lower.h"
#include "codegen/EmitOps.h"
#include "codegen/Parts.h"
#include "codegen/Profiler.h"

#include <fmt/format.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Support/raw_ostream.h>

#include <set>

namespace cnnc::codegen {

using namespace llvm;

// ------------------------------------------------------------------------- Emitter --
Emitter::Emitter(llvm::Module &m, llvm::Function *f, const Plan &p)
    : ctx(m.getContext()), mod(m), b(m.getContext()), fn(f), plan(p), vl(p.layout.vectorWidth) {
  f32 = b.getFloatTy(), i32 = b.getInt32Ty(), i64 = b.getInt64Ty(), ptrTy = b.getPtrTy();
  FastMathFlags fmf;
  fmf.setAllowReassoc();
  fmf.setAllowContract();
  b.setFastMathFlags(fmf);
}

Value *Emitter::batchExtent(int64_t maxExtent) {
  const int64_t k = maxExtent / plan.layout.maxBatch;
  return k == 1 ? batch : b.CreateMul(batch, c(k), "", true, true);
}

Value *Emitter::dim(const Node *n, int d) {
  return d == batchDim(n) ? batchExtent(n->type.shape[d]) : c(n->type.shape[d]);
}

Value *Emitter::extent(const Node *n, int from, int to) {
  const int bd = batchDim(n);
  int64_t k = 1;
  for (int d = from; d < to; ++d)
    if (d != bd)
      k *= n->type.shape[d];
  if (bd >= from && bd < to)
    return k == 1 ? dim(n, bd) : b.CreateMul(dim(n, bd), c(k), "", true, true);
  return c(k);
}

Value *Emitter::scratch(const Node *n, int64_t off) {
  return b.CreateInBoundsGEP(b.getInt8Ty(), workspace, c(plan.scratch.at(n) + off));
}

Value *Emitter::load(Value *base, Value *idx, unsigned w) {
  return b.CreateAlignedLoad(vty(w), gep(base, idx), Align(4));
}

void Emitter::store(Value *v, Value *base, Value *idx) {
  b.CreateAlignedStore(v, gep(base, idx), Align(4));
}

Value *Emitter::entryAlloca(Type *t, const char *name) {
  IRBuilder<> eb(&fn->getEntryBlock(), fn->getEntryBlock().begin());
  return eb.CreateAlloca(t, nullptr, name);
}

Value *Emitter::fma(Value *a, Value *x, Value *acc) {
  return b.CreateIntrinsic(Intrinsic::fmuladd, {a->getType()}, {a, x, acc});
}

Value *Emitter::hsum(Value *v) {
  if (!v->getType()->isVectorTy())
    return v;
  return b.CreateFAddReduce(cf(-0.0), v);
}

Value *Emitter::libm(const char *name, Value *x) {
  FunctionCallee fc = mod.getOrInsertFunction(name, FunctionType::get(f32, {f32}, false));
  if (auto *decl = dyn_cast<llvm::Function>(fc.getCallee())) {
    decl->setDoesNotThrow();
    decl->setOnlyAccessesInaccessibleMemory();
  }
  return b.CreateCall(fc, {x});
}

void Emitter::loopNoUnroll(int64_t hi, Body body) {
  noUnroll_ = true;
  loop(c(0), c(hi), body);
}

void Emitter::loop(Value *lo, Value *hi, Body body, int64_t step) {
  const bool noUnroll = noUnroll_, scalarTail = scalarTail_; // this loop's, not its inner loops'
  noUnroll_ = scalarTail_ = false;
  BasicBlock *pre = b.GetInsertBlock();
  BasicBlock *hdr = BasicBlock::Create(ctx, "loop", fn), *bb = BasicBlock::Create(ctx, "body", fn),
             *exit = BasicBlock::Create(ctx, "exit", fn);
  b.CreateBr(hdr);
  b.SetInsertPoint(hdr);
  PHINode *i = b.CreatePHI(i64, 2, "i");
  i->addIncoming(lo, pre);
  Value *cond = step == 1 ? b.CreateICmpSLT(i, hi)
                          : b.CreateICmpSLE(b.CreateAdd(i, c(step), "", true, true), hi);
  b.CreateCondBr(cond, bb, exit);
  b.SetInsertPoint(bb);
  body(i);
  i->addIncoming(b.CreateAdd(i, c(step), "", true, true), b.GetInsertBlock());
  BranchInst *latch = b.CreateBr(hdr);
  if (noUnroll || scalarTail) {
    std::vector<Metadata *> md{nullptr};
    if (noUnroll)
      md.push_back(MDNode::get(ctx, {MDString::get(ctx, "llvm.loop.unroll.disable")}));
    if (scalarTail) // fewer than w iterations: width 1, no interleaving (docs/performance.md)
      for (const char *k : {"llvm.loop.vectorize.width", "llvm.loop.interleave.count"})
        md.push_back(MDNode::get(ctx, {MDString::get(ctx, k), ConstantAsMetadata::get(b.getInt32(1))}));
    MDNode *id = MDNode::getDistinct(ctx, md);
    id->replaceOperandWith(0, id);
    latch->setMetadata(LLVMContext::MD_loop, id);
  }
  b.SetInsertPoint(exit);
  if (step != 1) { // continue with the remainder: the caller reads the final i via `tailStart`
    tailStart_ = i;
  }
}

void Emitter::vecLoop(Value *n, const std::function<void(Value *, unsigned)> &body, unsigned maxW) {
  const unsigned w = maxW ? std::min(maxW, vl) : vl;
  if (w == 1) {
    loop(n, [&](Value *i) { body(i, 1); });
    return;
  }
  loop(
      c(0), n, [&](Value *i) { body(i, w); }, w);
  // The scalar tail runs fewer than w times: LLVM's vectoriser would only add a vector
  // copy of it that never runs, at a compile-time cost for every op.
  scalarTail_ = true;
  loop(tailStart_, n, [&](Value *i) { body(i, 1); });
}

void Emitter::ifThen(Value *cond, const std::function<void()> &then) {
  BasicBlock *tb = BasicBlock::Create(ctx, "then", fn),
             *done = BasicBlock::Create(ctx, "endif", fn);
  b.CreateCondBr(cond, tb, done);
  b.SetInsertPoint(tb);
  then();
  b.CreateBr(done);
  b.SetInsertPoint(done);
}

void Emitter::parallelFor(Value *n, Body body, int64_t work) {
  parallelChunks(n, [&](Value *lo, Value *hi) { loop(lo, hi, body); }, work);
}

void Emitter::parallelChunks(Value *n, ChunkBody body, int64_t work) {
  if (inParallel_ || work < parallelMinWork || !pool) {
    body(c(0), n);
    return;
  }
  // The body goes straight into a new function F(ctx, begin, end); references to the
  // entry's values are rewired afterwards.
  llvm::Function *outer = fn;
  auto *fty = FunctionType::get(b.getVoidTy(), {ptrTy, i64, i64}, false);
  auto *F = llvm::Function::Create(fty, GlobalValue::InternalLinkage,
                                   // named after the node, so that a profile (perf) of a
                                   // compiled model says which op a thread body belongs to
                                   fmt::format("{}.par{}{}{}", outer->getName().str(), parallelCount_++,
                                               current ? "." : "", current ? current->name : ""),
                                   mod);
  F->addFnAttr(Attribute::NoUnwind);
  F->getArg(0)->setName("ctx"), F->getArg(1)->setName("begin"), F->getArg(2)->setName("end");
  BasicBlock *entryBB = BasicBlock::Create(ctx, "entry", F);
  BasicBlock *bodyBB = BasicBlock::Create(ctx, "par.body", F);
  const IRBuilderBase::InsertPoint saved = b.saveIP();
  Value *savedTail = tailStart_;
  fn = F, inParallel_ = true;
  b.SetInsertPoint(bodyBB);
  body(F->getArg(1), F->getArg(2));
  b.CreateRetVoid();
  fn = outer, inParallel_ = false, tailStart_ = savedTail;
  b.restoreIP(saved);

  // What F uses from the entry: instructions and arguments of `outer`.
  std::vector<Value *> caps;
  std::map<Value *, size_t> capIndex;
  std::map<AllocaInst *, AllocaInst *> privates;
  IRBuilder<> eb(entryBB);
  for (BasicBlock &bb : *F)
    for (Instruction &inst : bb) {
      if (auto *st = dyn_cast<StoreInst>(&inst); st && st->getPointerOperand() == status)
        st->setAtomic(AtomicOrdering::Monotonic); // several threads may flag a bad label
      if (auto *ld = dyn_cast<LoadInst>(&inst); ld && ld->getPointerOperand() == status)
        ld->setAtomic(AtomicOrdering::Monotonic);
      for (Use &u : inst.operands()) {
        Value *v = u.get();
        auto *vi = dyn_cast<Instruction>(v);
        auto *va = dyn_cast<Argument>(v);
        if (!(vi && vi->getFunction() == outer) && !(va && va->getParent() == outer))
          continue;
        auto *al = dyn_cast<AllocaInst>(v);
        if (al && v != status) { // a register tile or scratch cell: one per thread
          auto [it, fresh] = privates.try_emplace(al, nullptr);
          if (fresh)
            it->second = eb.CreateAlloca(al->getAllocatedType(), al->getArraySize(), al->getName());
          u.set(it->second);
          continue;
        }
        if (capIndex.try_emplace(v, caps.size()).second)
          caps.push_back(v);
      }
    }
  // The allocas cloned above must not carry values between the body and the entry.
  for (auto [al, priv] : privates)
    for (User *u : al->users())
      CNNC_ASSERT(!isa<Instruction>(u) || cast<Instruction>(u)->getFunction() != outer,
                  "parallelFor: an alloca is used both inside and outside a parallel body");
  std::vector<Type *> fields;
  for (Value *v : caps)
    fields.push_back(v->getType());
  StructType *capTy = StructType::get(ctx, fields.empty() ? std::vector<Type *>{i64} : fields);
  std::vector<Value *> inF(caps.size());
  for (size_t k = 0; k < caps.size(); ++k)
    inF[k] = eb.CreateLoad(caps[k]->getType(),
                           eb.CreateStructGEP(capTy, F->getArg(0), (unsigned)k), caps[k]->getName());
  eb.CreateBr(bodyBB);
  for (size_t k = 0; k < caps.size(); ++k)
    caps[k]->replaceUsesWithIf(inF[k], [&](Use &u) {
      auto *ui = dyn_cast<Instruction>(u.getUser());
      return ui && ui->getFunction() == F && ui != inF[k];
    });

  // In the entry: fill the struct, run the chunks.
  Value *capsAlloca = entryAlloca(capTy, "par.ctx");
  for (size_t k = 0; k < caps.size(); ++k)
    b.CreateStore(caps[k], b.CreateStructGEP(capTy, capsAlloca, (unsigned)k));
  FunctionCallee pf = mod.getOrInsertFunction(
      "cnnc_rt_parallel_for", FunctionType::get(b.getVoidTy(), {ptrTy, i64, ptrTy, ptrTy}, false));
  if (auto *decl = dyn_cast<llvm::Function>(pf.getCallee())) {
    decl->setVisibility(GlobalValue::HiddenVisibility); // the runtime's copy in the .so
    decl->setDoesNotThrow();
  }
  b.CreateCall(pf, {pool, n, F, capsAlloca});
}

void Emitter::parallelVecLoop(Value *n, int64_t nMax,
                              const std::function<void(Value *, unsigned)> &body, unsigned maxW) {
  if (nMax < parallelMinWork || inParallel_) {
    vecLoop(n, body, maxW);
    return;
  }
  // (a lowered threshold, for tests, also shrinks the units so that small ops split)
  const int64_t U = parallelMinWork < kParallelMinWork ? 64 : kParallelChunk;
  Value *units = b.CreateUDiv(b.CreateAdd(n, c(U - 1)), c(U));
  parallelFor(
      units,
      [&](Value *u) {
        Value *b0 = b.CreateMul(u, c(U), "", true, true);
        vecLoop(
            smin(b.CreateSub(n, b0), c(U)),
            [&](Value *i, unsigned w) { body(b.CreateAdd(b0, i, "", true, true), w); }, maxW);
      },
      nMax);
}

// ------------------------------------------------------------------------- lowering --
namespace {

void checkSupported(const Function &f) {
  for (const auto &n : f.nodes()) {
    // integer inputs: labels (i32, or i64 from ONNX) and the training step counter (i64)
    const bool intInput =
        n->op == OpKind::Input && (n->type.dtype == DType::I32 || n->type.dtype == DType::I64);
    const bool count = n->op == OpKind::CountCorrect && n->type.dtype == DType::I32;
    const bool index = n->op == OpKind::ArgMax; // i64 by its shape rule
    if (n->type.dtype != DType::F32 && !intInput && !count && !index)
      throw Error(fmt::format("{}: codegen stores f32 tensors only (and integer inputs), not {}",
                              n->describe(), n->type.str()));
    if (!n->info().source && !opEmitter(n->op) && n->op != OpKind::Update)
      throw Error(
          fmt::format("{}: codegen does not lower '{}' yet", n->describe(), n->info().mnemonic));
  }
}

Constant *constantData(LLVMContext &ctx, const std::vector<float> &v) {
  return ConstantDataArray::get(ctx, ArrayRef<float>(v.data(), v.size()));
}

GlobalVariable *addGlobal(llvm::Module &m, Constant *init, const std::string &name,
                          bool hidden = true) {
  auto *g = new GlobalVariable(m, init->getType(), true,
                               hidden ? GlobalValue::PrivateLinkage : GlobalValue::ExternalLinkage,
                               init, name);
  g->setAlignment(Align(64));
  return g;
}

} // namespace

// runtime/CnncModel.h's structs, field by field (AbiTest compares their layout with the C
// compiler's offsetof).
StructType *bufferDescType(LLVMContext &ctx) {
  Type *i32 = Type::getInt32Ty(ctx), *i64 = Type::getInt64Ty(ctx), *ptr = PointerType::getUnqual(ctx);
  return StructType::get(ctx, {ptr, i32, i32, i32, i32, ArrayType::get(i64, 8), i64, i64});
}
StructType *modelDescType(LLVMContext &ctx) {
  Type *i32 = Type::getInt32Ty(ctx), *i64 = Type::getInt64Ty(ctx), *ptr = PointerType::getUnqual(ctx);
  return StructType::get(ctx, {i32, i32, i64, i64, i64, ptr, ptr, ptr, ptr, ptr});
}

namespace {

// The descriptor: struct cnnc_model_desc of runtime/CnncModel.h.
void addDescriptor(llvm::Module &m, const Function &f, const Plan &p, llvm::Function *entry,
                   llvm::Function *prepare, const std::map<std::string, std::vector<float>> *weights, const char *descName) {
  LLVMContext &ctx = m.getContext();
  Type *i32 = Type::getInt32Ty(ctx), *i64 = Type::getInt64Ty(ctx),
       *ptr = PointerType::getUnqual(ctx);
  auto *shapeTy = ArrayType::get(i64, 8);
  StructType *bufTy = bufferDescType(ctx);
  std::vector<Constant *> bufs;
  std::vector<float> blob;
  for (const BufferSlot &s : p.layout.buffers) {
    CNNC_ASSERT(s.type.rank() <= 8, "rank > 8 in the descriptor");
    std::vector<Constant *> dims;
    for (int d = 0; d < 8; ++d)
      dims.push_back(ConstantInt::get(i64, d < s.type.rank() ? s.type.shape[d] : 0));
    int64_t woff = -1;
    if (weights && s.kind == BufferKind::Param) {
      auto it = weights->find(s.name);
      if (it == weights->end() || (int64_t)it->second.size() != s.type.numel())
        throw Error(
            fmt::format("embedded weights: no {} values for param %{}", s.type.numel(), s.name));
      woff = (int64_t)blob.size();
      blob.insert(blob.end(), it->second.begin(), it->second.end());
    }
    auto *name = addGlobal(m, ConstantDataArray::getString(ctx, s.name), "cnnc.name." + s.name);
    bufs.push_back(ConstantStruct::get(
        bufTy, {name, ConstantInt::get(i32, (int)s.kind),
                ConstantInt::get(i32, s.type.dtype == DType::I32   ? 1
                                      : s.type.dtype == DType::I64 ? 2
                                                                   : 0),
                ConstantInt::get(i32, s.type.rank()), ConstantInt::get(i32, s.batched),
                ConstantArray::get(shapeTy, dims), ConstantInt::get(i64, s.type.numel()),
                ConstantInt::get(i64, woff)}));
  }
  auto *bufArr =
      addGlobal(m, ConstantArray::get(ArrayType::get(bufTy, bufs.size()), bufs), "cnnc.buffers");
  Constant *wptr = ConstantPointerNull::get(cast<PointerType>(ptr));
  if (weights)
    wptr = addGlobal(m, constantData(ctx, blob.empty() ? std::vector<float>{0.f} : blob),
                     "cnnc.weights");
  StructType *descTy = modelDescType(ctx);
  const Layout &l = p.layout;
  auto *desc = ConstantStruct::get(
      descTy, {ConstantInt::get(i32, 3), ConstantInt::get(i32, (int)l.buffers.size()),
               ConstantInt::get(i64, l.batchPolymorphic ? 1 : l.maxBatch),
               ConstantInt::get(i64, l.maxBatch), ConstantInt::get(i64, l.workspaceBytes),
               addGlobal(m, ConstantDataArray::getString(ctx, f.name()), "cnnc.model_name"), bufArr,
               wptr, entry,
               prepare ? (Constant *)prepare : ConstantPointerNull::get(cast<PointerType>(ptr))});
  auto *g = addGlobal(m, desc, descName, false);
  g->setVisibility(GlobalValue::HiddenVisibility); // linked into the .so's runtime, not exported
}

} // namespace

namespace {

// One param's SGD update in place (Plan::sgd, PlanSgd.cpp): per element
// v' = v*momentum - (g + w*decay)*lr, w' = w + v', rounded exactly as the six elementwise
// nodes it replaces (no fast-math flags, so no FMA contraction): the same bits.
void emitSgdUpdate(Emitter &e, const SgdUpdate &u) {
  auto &b = e.b;
  Value *w = e.ptr(u.w), *v = e.ptr(u.v), *g = e.ptr(u.grad);
  Value *lr = e.load(e.ptr(u.lr), e.c(0)), *mom = e.load(e.ptr(u.momentum), e.c(0)),
        *decay = e.load(e.ptr(u.decay), e.c(0));
  const int64_t n = u.w->type.numel();
  e.parallelVecLoop(e.c(n), n, [&](Value *i, unsigned width) {
    IRBuilderBase::FastMathFlagGuard guard(b);
    b.clearFastMathFlags();
    Value *wi = e.load(w, i, width), *vi = e.load(v, i, width), *gi = e.load(g, i, width);
    Value *dir = b.CreateFAdd(gi, b.CreateFMul(wi, e.splat(decay, width)));
    Value *vel = b.CreateFSub(b.CreateFMul(vi, e.splat(mom, width)),
                              b.CreateFMul(dir, e.splat(lr, width)));
    e.store(vel, v, i);
    e.store(b.CreateFAdd(wi, vel), w, i);
  });
}

} // namespace

// ------------------------------------------------------------------------- binding --
void Emitter::setHome(llvm::Function *home, Value *buffersArg) {
  home_ = home, buffers_ = buffersArg;
  ptrs_.clear(), bufferPtrs_.clear();
}

Value *Emitter::bufferPtr(size_t i) {
  Value *&p = bufferPtrs_[i];
  if (!p) {
    IRBuilder<> pb(home_->getEntryBlock().getTerminator());
    Value *slot = pb.CreateInBoundsGEP(ptrTy, buffers_, c((int64_t)i));
    p = pb.CreateAlignedLoad(ptrTy, slot, Align(8), plan.layout.buffers.at(i).name);
  }
  return p;
}

Value *Emitter::ptr(const Node *n) {
  if (auto it = ptrs_.find(n); it != ptrs_.end())
    return it->second;
  const Storage &s = plan.storage.at(n);
  Value *v = nullptr;
  switch (s.kind) {
  case StorageKind::Buffer:
    v = bufferPtr(s.buffer);
    break;
  case StorageKind::Workspace: {
    IRBuilder<> pb(home_->getEntryBlock().getTerminator());
    v = pb.CreateInBoundsGEP(pb.getInt8Ty(), workspace, c(s.offset), n->name);
    break;
  }
  case StorageKind::Constant: { // one global per node, shared by the module's functions
    Value *&g = (*constants)[n];
    if (!g) {
      auto vals = n->getFloats("value");
      std::vector<float> cv(n->type.numel(), vals.size() == 1 ? (float)vals[0] : 0.f);
      if (vals.size() != 1)
        for (size_t i = 0; i < cv.size(); ++i)
          cv[i] = (float)vals.at(i);
      g = addGlobal(mod, constantData(ctx, cv.empty() ? std::vector<float>{0.f} : cv),
                    "cnnc.const." + n->name);
    }
    v = g;
    break;
  }
  case StorageKind::View:
    v = ptr(s.root);
    break;
  case StorageKind::Fused: // no value of its own (Plan::sgd)
    CNNC_INTERNAL(fmt::format("codegen read {}, whose value the fused SGD update replaced",
                              n->describe()));
  }
  ptrs_[n] = v;
  return v;
}

namespace {

// The home function's entry block: allocas and bindings, then a branch to its code.
void beginHome(Emitter &e, Value *buffersArg) {
  BasicBlock *entry = BasicBlock::Create(e.ctx, "entry", e.fn),
             *body = BasicBlock::Create(e.ctx, "body", e.fn);
  BranchInst::Create(body, entry);
  e.setHome(e.fn, buffersArg);
  e.b.SetInsertPoint(body);
}

// The prepare entry: void prepare(buffers, workspace, pool) computes Plan::prepared and
// packs Plan::packed's conv weights into the first Layout::preparedBytes of the
// workspace. It reads params and constants only (inputs and outputs may be NULL).
llvm::Function *emitPrepare(llvm::Module &m, const Function &f, const Plan &plan, const Target &t,
                            const std::string &name, std::map<const Node *, Value *> &constants) {
  LLVMContext &ctx = m.getContext();
  Type *ptr = PointerType::getUnqual(ctx);
  auto *fty = FunctionType::get(Type::getVoidTy(ctx), {ptr, ptr, ptr}, false);
  auto *fn = llvm::Function::Create(fty, GlobalValue::ExternalLinkage, name, m);
  fn->setVisibility(GlobalValue::HiddenVisibility);
  fn->addFnAttr(Attribute::NoUnwind);
  fn->getArg(0)->setName("buffers"), fn->getArg(1)->setName("workspace"),
      fn->getArg(2)->setName("pool");
  Emitter e(m, fn, plan);
  e.constants = &constants;
  beginHome(e, fn->getArg(0));
  e.batch = e.c(plan.layout.maxBatch), e.workspace = fn->getArg(1), e.pool = fn->getArg(2);
  if (t.parallelMinWork >= 0)
    e.parallelMinWork = t.parallelMinWork;
  e.status = e.entryAlloca(e.i32, "status");
  Parts parts(e, fn->getArg(0), e.batch, true);
  for (const Node *n : f.nodeList()) {
    const bool prepared = plan.prepared.count(n) > 0;
    auto it = plan.packed.find(n);
    if (!prepared && it == plan.packed.end())
      continue;
    parts.split();
    e.current = n;
    if (prepared)
      opEmitter(n->op)(e, *n);
    if (it == plan.packed.end())
      continue;
    Value *pack = e.b.CreateInBoundsGEP(e.b.getInt8Ty(), e.workspace, e.c(it->second));
    if (n->op == OpKind::FullyConnected)
      emitFcPack(e, *n, pack);
    else
      emitConvPack(e, *n, pack);
  }
  parts.finish();
  e.b.CreateRetVoid();
  return fn;
}

} // namespace

Lowered lowerFunction(const Function &f, LLVMContext &ctx, const Target &t,
                      const std::map<std::string, std::vector<float>> *weights,
                      const char *entryName, const char *descName) {
  checkSupported(f);
  Lowered out;
  out.plan = planFunction(f, t.vl, t.fuseSgd, t.narrowConvs, t.fuseElementwise, t.inPlace);
  const Plan &plan = out.plan;
  out.mod = std::make_unique<llvm::Module>("cnnc." + f.name(), ctx);
  llvm::Module &m = *out.mod;
  Type *ptr = PointerType::getUnqual(ctx);
  auto *fty =
      FunctionType::get(Type::getInt32Ty(ctx), {ptr, ptr, Type::getInt64Ty(ctx), ptr}, false);
  auto *fn = llvm::Function::Create(fty, GlobalValue::ExternalLinkage, entryName, m);
  fn->setVisibility(GlobalValue::HiddenVisibility);
  fn->addFnAttr(Attribute::NoUnwind);
  for (unsigned a = 0; a < 2; ++a)
    fn->addParamAttr(a, Attribute::NoAlias);
  fn->getArg(0)->setName("buffers"), fn->getArg(1)->setName("workspace"),
      fn->getArg(2)->setName("batch"), fn->getArg(3)->setName("pool");

  Emitter e(m, fn, plan);
  std::map<const Node *, Value *> constants;
  e.constants = &constants;
  beginHome(e, fn->getArg(0));
  e.batch = fn->getArg(2), e.workspace = fn->getArg(1), e.pool = fn->getArg(3);
  if (t.parallelMinWork >= 0)
    e.parallelMinWork = t.parallelMinWork;
  e.status = e.entryAlloca(e.i32, "status");
  e.b.CreateStore(e.b.getInt32(kStatusOk), e.status);
  // The ASan build (docs/hardening.md): a workspace block is poisoned outside its life, so a
  // kernel that strays out of its value or scratch, into a free or another live block, fails.
  // The prepared state (the first preparedBytes) lives across calls: never poisoned.
  const int64_t pre = plan.layout.preparedBytes;
  const bool poison = t.sanitizeAddress && plan.layout.workspaceBytes > pre;
  auto asanRegion = [&](const char *what, int64_t off, int64_t bytes) {
    FunctionCallee fc = m.getOrInsertFunction(
        what, FunctionType::get(Type::getVoidTy(ctx), {ptr, e.i64}, false));
    e.b.CreateCall(fc, {e.b.CreateInBoundsGEP(e.b.getInt8Ty(), e.workspace, e.c(off)), e.c(bytes)});
  };
  if (poison)
    asanRegion("__asan_poison_memory_region", pre, plan.layout.workspaceBytes - pre);
  Parts parts(e, fn->getArg(0), fn->getArg(2), false);
  auto computes = [&](const Node *n) {
    const StorageKind sk = plan.storage.at(n).kind;
    return !(n->info().source || sk == StorageKind::Constant || sk == StorageKind::View ||
             sk == StorageKind::Fused || // computed by the fused SGD pass at the end
             plan.prepared.count(n) || n->type.numel() == 0);
  };
  const bool hasUpdate = !plan.updates.empty() || !plan.sgd.empty();
  std::vector<std::string> &sites = out.plan.layout.profileSites;
  if (t.profile) { // one site per computed node, in order, and one for the update
    for (const Node *n : f.nodeList())
      if (computes(n) && opEmitter(n->op))
        sites.push_back(n->name);
    if (hasUpdate)
      sites.push_back(kProfileUpdateSite);
  }
  Profiler profiler(e, t.profile, entryName, sites);
  std::set<const Node *> lowered;
  size_t index = 0;
  for (const Node *n : f.nodeList()) {
    parts.split();
    if (poison) {
      if (index > 0)
        for (auto [off, bytes] : plan.dead[index - 1])
          asanRegion("__asan_poison_memory_region", off, bytes);
      for (auto [off, bytes] : plan.born[index])
        if (bytes > 0)
          asanRegion("__asan_unpoison_memory_region", off, bytes);
    }
    ++index;
    if (!computes(n)) {
      lowered.insert(n); // nothing to compute here (a zero-size result: nothing to write)
      continue;
    }
    if (OpEmitter em = opEmitter(n->op)) {
      e.current = n;
      profiler.timed([&] { em(e, *n); });
      lowered.insert(n);
    }
  }
  auto update = [&] {
    e.ifThen(e.b.CreateICmpEQ(e.b.CreateLoad(e.i32, e.status), e.b.getInt32(kStatusOk)), [&] {
      for (const SgdUpdate &u : plan.sgd)
        emitSgdUpdate(e, u);
      for (auto [buf, o] : plan.updates) {
        Value *src = e.ptr(o), *dst = e.bufferPtr(buf);
        if (storageRoot(plan, o) == o->operands[0])
          continue; // the value is the param itself
        e.parallelVecLoop(e.numel(o), o->type.numel(),
                          [&](Value *i, unsigned w) { e.store(e.load(src, i, w), dst, i); });
      }
    });
  };
  if (hasUpdate) // after every read of the old values
    profiler.timed(update);
  for (auto [buf, o] : plan.outputCopies) {
    Value *src = e.ptr(o), *dst = e.bufferPtr(buf);
    if (o->type.dtype == DType::I32) { // a labels input returned as is: copy the bits
      e.loop(e.numel(o), [&](Value *i) {
        Value *v = e.b.CreateLoad(e.i32, e.b.CreateInBoundsGEP(e.i32, src, i));
        e.b.CreateStore(v, e.b.CreateInBoundsGEP(e.i32, dst, i));
      });
      continue;
    }
    e.vecLoop(e.numel(o), [&](Value *i, unsigned w) { e.store(e.load(src, i, w), dst, i); });
  }
  if (poison) // the caller owns the workspace again
    asanRegion("__asan_unpoison_memory_region", 0, plan.layout.workspaceBytes);
  parts.finish();
  e.b.CreateRet(e.b.CreateLoad(e.i32, e.status));

  profiler.finish();
  // The lowering check: every tensor-level op became loops.
  for (const Node *n : f.nodeList())
    if (!lowered.count(n))
      CNNC_INTERNAL(fmt::format("codegen left {} unlowered: no emitter for op '{}'", n->describe(),
                                n->info().mnemonic));
  llvm::Function *prep = nullptr;
  if (plan.layout.preparedBytes > 0)
    prep = emitPrepare(m, f, plan, t, prepareName(entryName), constants);
  addDescriptor(m, f, plan, fn, prep, weights, descName);
  std::string err;
  raw_string_ostream os(err);
  if (verifyModule(m, &os))
    CNNC_INTERNAL("codegen produced an invalid LLVM module: " + os.str());
  return out;
}

std::string profileCountersName(const std::string &entryName) {
  return entryName + "_profile_ns";
}

std::string prepareName(const std::string &entryName) {
  return entryName + "_prepare";
}

DescriptorLayout descriptorLayout(const TargetOptions &o) {
  const Target t = makeTarget(o);
  const DataLayout dl = t.tm->createDataLayout();
  LLVMContext ctx;
  auto offsets = [&](StructType *st, std::vector<uint64_t> &out, uint64_t &size) {
    const StructLayout *l = dl.getStructLayout(st);
    for (unsigned i = 0; i < st->getNumElements(); ++i)
      out.push_back(l->getElementOffset(i));
    size = l->getSizeInBytes();
  };
  DescriptorLayout d;
  offsets(bufferDescType(ctx), d.buffer, d.bufferSize);
  offsets(modelDescType(ctx), d.model, d.modelSize);
  return d;
}

} // namespace cnnc::codegen
