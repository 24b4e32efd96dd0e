// Profiler.h: the profile counters and the clock calls around each site.
#include "codegen/Profiler.h"
#include "codegen/Lower.h"

#include <algorithm>

namespace cnnc::codegen {

using namespace llvm;

Profiler::Profiler(Emitter &e, bool enabled, const std::string &entryName,
                   const std::vector<std::string> &sites)
    : e_(e), sites_(sites) {
  if (!enabled)
    return;
  auto *arr = ArrayType::get(e.i64, std::max<size_t>(sites.size(), 1));
  counters_ = new GlobalVariable(e.mod, arr, false, GlobalValue::ExternalLinkage,
                                 ConstantAggregateZero::get(arr), profileCountersName(entryName));
  clock_ = e.mod.getOrInsertFunction("cnnc_rt_clock_ns", FunctionType::get(e.i64, {}, false));
  if (auto *decl = dyn_cast<llvm::Function>(clock_.getCallee())) {
    // the JIT binds it to cnnc's copy (runtime/Clock.c)
    decl->setVisibility(GlobalValue::HiddenVisibility);
    decl->setDoesNotThrow();
  }
}

void Profiler::timed(const std::function<void()> &emitSite) {
  if (!counters_)
    return emitSite();
  Value *t0 = e_.b.CreateCall(clock_);
  emitSite();
  Value *slot = e_.b.CreateInBoundsGEP(counters_->getValueType(), counters_,
                                       {e_.c(0), e_.c((int64_t)site_++)});
  Value *dt = e_.b.CreateSub(e_.b.CreateCall(clock_), t0);
  e_.b.CreateStore(e_.b.CreateAdd(e_.b.CreateLoad(e_.i64, slot), dt), slot);
}

void Profiler::finish() const {
  CNNC_ASSERT(!counters_ || site_ == sites_.size(), "profile: a site was counted but not timed");
}

} // namespace cnnc::codegen
