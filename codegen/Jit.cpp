// In-process compilation with ORC LLJIT: the same lowered and optimised module as the AOT
// path, plus the host process's symbols (libm's expf/tanhf, memset) for what it calls.
#include "codegen/Lower.h"
#include "runtime/Parallel.h"

#include <fmt/format.h>
#include <llvm/ExecutionEngine/Orc/ExecutionUtils.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/Support/Error.h>
#include <llvm/TargetParser/SubtargetFeature.h>

#include <chrono>

namespace cnnc::codegen {

using namespace llvm;

struct JitModel::Impl {
  std::unique_ptr<orc::LLJIT> jit;
  Layout layout;
  int32_t (*entry)(void **, void *, int64_t, void *) = nullptr;
  void (*prepare)(void **, void *, void *) = nullptr; // NULL: nothing prepared
  int64_t *profile = nullptr;                          // TargetOptions::profile's counters
  double seconds = 0;
};

JitModel::JitModel() : impl_(std::make_unique<Impl>()) {}
JitModel::~JitModel() = default;
const Layout &JitModel::layout() const {
  return impl_->layout;
}
double JitModel::compileSeconds() const {
  return impl_->seconds;
}
int64_t *JitModel::profileCounters() const {
  return impl_->profile;
}
void JitModel::prepare(void **buffers, void *workspace, cnnc_rt_pool *pool) const {
  if (impl_->prepare)
    impl_->prepare(buffers, workspace, pool);
}
int32_t JitModel::runPrepared(void **buffers, void *workspace, int64_t batch,
                              cnnc_rt_pool *pool) const {
  return impl_->entry(buffers, workspace, batch, pool);
}
int32_t JitModel::run(void **buffers, void *workspace, int64_t batch, cnnc_rt_pool *pool) const {
  prepare(buffers, workspace, pool);
  return runPrepared(buffers, workspace, batch, pool);
}

template <class T> static T check(Expected<T> v, const char *what) {
  if (!v)
    throw Error(fmt::format("JIT: {}: {}", what, toString(v.takeError())));
  return std::move(*v);
}

std::unique_ptr<JitModel> JitModel::compile(const Function &f, const TargetOptions &o) {
  auto t0 = std::chrono::steady_clock::now();
  Target t = makeTarget(o);
  auto ctx = std::make_unique<LLVMContext>();
  Lowered l = lowerFunction(f, *ctx, t);
  optimizeModule(*l.mod, t, /*jit=*/true);
  l.mod->getFunction(kEntryName)
      ->setVisibility(GlobalValue::DefaultVisibility); // hidden only in a .so
  llvm::Function *prep = l.mod->getFunction(prepareName(kEntryName));
  if (prep)
    prep->setVisibility(GlobalValue::DefaultVisibility);
  if (auto *pf = l.mod->getFunction("cnnc_rt_parallel_for"))
    pf->setVisibility(GlobalValue::DefaultVisibility);
  std::unique_ptr<JitModel> jm(new JitModel());
  jm->impl_->layout = l.plan.layout;

  orc::JITTargetMachineBuilder jtmb{llvm::Triple(t.triple)};
  jtmb.setCPU(t.cpu);
  SubtargetFeatures feats(t.features);
  jtmb.addFeatures(feats.getFeatures());
  jtmb.setCodeGenOptLevel(t.tm->getOptLevel());
  auto jit =
      check(orc::LLJITBuilder().setJITTargetMachineBuilder(std::move(jtmb)).create(), "create");
  jit->getMainJITDylib().addGenerator(
      check(orc::DynamicLibrarySearchGenerator::GetForCurrentProcess(
                jit->getDataLayout().getGlobalPrefix()),
            "host symbols"));
  // The thread pool is this process's copy of runtime/Parallel.c (an executable does not
  // export it to the dynamic-library search above).
  auto &es = jit->getExecutionSession();
  if (auto *ck = l.mod->getFunction("cnnc_rt_clock_ns"))
    ck->setVisibility(GlobalValue::DefaultVisibility);
  if (auto err = jit->getMainJITDylib().define(orc::absoluteSymbols(
          {{es.intern(jit->mangle("cnnc_rt_parallel_for")),
            {orc::ExecutorAddr::fromPtr(&cnnc_rt_parallel_for), JITSymbolFlags::Exported}},
           {es.intern(jit->mangle("cnnc_rt_clock_ns")),
            {orc::ExecutorAddr::fromPtr(&cnnc_rt_clock_ns), JITSymbolFlags::Exported}}})))
    throw Error("JIT: runtime symbols: " + toString(std::move(err)));
  if (auto err = jit->addIRModule(orc::ThreadSafeModule(std::move(l.mod), std::move(ctx))))
    throw Error("JIT: add module: " + toString(std::move(err)));
  auto addr = check(jit->lookup(kEntryName), "lookup");
  jm->impl_->entry = addr.toPtr<int32_t (*)(void **, void *, int64_t, void *)>();
  if (prep)
    jm->impl_->prepare = check(jit->lookup(prepareName(kEntryName)), "lookup")
                             .toPtr<void (*)(void **, void *, void *)>();
  if (t.profile)
    jm->impl_->profile =
        check(jit->lookup(profileCountersName(kEntryName)), "lookup").toPtr<int64_t *>();
  jm->impl_->jit = std::move(jit);
  jm->impl_->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return jm;
}

} // namespace cnnc::codegen
