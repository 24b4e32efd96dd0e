// Parts.h: a function's code in parts of bounded size, each a noinline internal function
// that the outer function calls in order.
#include "codegen/Parts.h"

#include <fmt/format.h>

namespace cnnc::codegen {

using namespace llvm;

Parts::Parts(Emitter &e, Value *buffersArg, Value *batchArg, bool fixedBatch)
    : e_(e), outer_(e.fn), fixedBatch_(fixedBatch) {
  args_ = {buffersArg, e.workspace, batchArg, e.pool, e.status};
}

void Parts::split() {
  if (e_.fn->getInstructionCount() < kPartInstructions)
    return;
  if (e_.fn == outer_)
    outerIP_ = e_.b.saveIP();
  else
    e_.b.CreateRetVoid();
  LLVMContext &ctx = e_.ctx;
  Type *ptr = e_.ptrTy;
  auto *fty = FunctionType::get(Type::getVoidTy(ctx), {ptr, ptr, e_.i64, ptr, ptr}, false);
  auto *F =
      llvm::Function::Create(fty, GlobalValue::InternalLinkage,
                             fmt::format("{}.part{}", outer_->getName().str(), ++count_), e_.mod);
  F->addFnAttr(Attribute::NoUnwind);
  F->addFnAttr(Attribute::NoInline); // inlined back, the outer function would be giant again
  for (unsigned a = 0; a < 2; ++a)   // as the outer's: the buffers array and the workspace
    F->addParamAttr(a, Attribute::NoAlias);
  {
    IRBuilder<> ob(ctx);
    ob.restoreIP(outerIP_);
    ob.CreateCall(F, args_);
    outerIP_ = ob.saveIP();
  }
  BasicBlock *entry = BasicBlock::Create(ctx, "entry", F),
             *body = BasicBlock::Create(ctx, "body", F);
  BranchInst::Create(body, entry);
  e_.fn = F;
  e_.setHome(F, F->getArg(0));
  e_.workspace = F->getArg(1), e_.pool = F->getArg(3), e_.status = F->getArg(4);
  if (!fixedBatch_)
    e_.batch = F->getArg(2);
  e_.b.SetInsertPoint(body);
}

void Parts::finish() {
  if (e_.fn == outer_)
    return;
  e_.b.CreateRetVoid();
  e_.fn = outer_;
  e_.setHome(outer_, args_[0]);
  e_.workspace = args_[1], e_.pool = args_[3], e_.status = args_[4];
  if (!fixedBatch_)
    e_.batch = args_[2];
  e_.b.restoreIP(outerIP_);
}

} // namespace cnnc::codegen
