// The thin per-target part: the TargetMachine (host CPU and features by default, or
// --target-cpu/--target-features), the SIMD width the emitters use, the O3 pipeline and
// assembly/object emission.
#include "codegen/Lower.h"

#include <fmt/format.h>
#include <llvm/Config/llvm-config.h>
#include <llvm/IR/LegacyPassManager.h>
#include <llvm/MC/MCSubtargetInfo.h>
#include <llvm/MC/TargetRegistry.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/TargetParser/Host.h>
#include <llvm/Transforms/Instrumentation/AddressSanitizer.h>
#include <llvm/Transforms/Instrumentation/ThreadSanitizer.h>

#include <mutex>

namespace cnnc::codegen {

using namespace llvm;

Target makeTarget(const TargetOptions &o) {
  static std::once_flag once;
  std::call_once(once, [] {
    InitializeNativeTarget();
    InitializeNativeTargetAsmPrinter();
    InitializeNativeTargetAsmParser();
  });
  Target t;
  t.triple = sys::getProcessTriple();
  t.cpu = o.cpu.empty() ? sys::getHostCPUName().str() : o.cpu;
  t.features = o.features;
  if (o.cpu.empty() && o.features.empty())
    for (const auto &kv : sys::getHostCPUFeatures())
      t.features += fmt::format("{}{}{}", t.features.empty() ? "" : ",", kv.getValue() ? "+" : "-",
                                kv.getKey().str());
  t.optLevel = std::clamp(o.optLevel, 0, 3);
  t.parallelMinWork = o.parallelMinWork;
  t.fuseSgd = o.fuseSgd;
  t.fuseElementwise = o.fuseElementwise;
  t.inPlace = o.inPlace;
  t.sanitizeAddress = o.sanitizeAddress;
  t.sanitizeThread = o.sanitizeThread;
  t.profile = o.profile;
  if (t.sanitizeAddress && t.sanitizeThread)
    throw Error("codegen: AddressSanitizer and ThreadSanitizer exclude each other");
  std::string err;
  const llvm::Target *T = TargetRegistry::lookupTarget(t.triple, err);
  if (!T)
    throw Error(fmt::format("codegen: no LLVM target for {}: {}", t.triple, err));
  if (!o.cpu.empty() && // (owned: LeakSanitizer found this object leaked once per target)
      !std::unique_ptr<MCSubtargetInfo>(T->createMCSubtargetInfo(t.triple, "", ""))
           ->isCPUStringValid(o.cpu))
    throw Error(fmt::format("--target-cpu {}: not a CPU LLVM knows for {}", o.cpu, t.triple));
  static const CodeGenOptLevel levels[] = {CodeGenOptLevel::None, CodeGenOptLevel::Less,
                                           CodeGenOptLevel::Default, CodeGenOptLevel::Aggressive};
  t.tm.reset(T->createTargetMachine(t.triple, t.cpu, t.features, llvm::TargetOptions(), Reloc::PIC_,
                                    std::nullopt, levels[t.optLevel]));
  if (!t.tm)
    throw Error(fmt::format("codegen: cannot create a target machine for {} {}", t.triple, t.cpu));
  const MCSubtargetInfo *sti = t.tm->getMCSubtargetInfo();
  t.vl = sti->checkFeatures("+avx512f") ? 16 : sti->checkFeatures("+avx") ? 8 : 4;
  if (o.vectorWidth) {
    if (o.vectorWidth != 4 && o.vectorWidth != 8 && o.vectorWidth != 16)
      throw Error(fmt::format("codegen: vector width {} (lanes) is not 4, 8 or 16", o.vectorWidth));
    t.vl = o.vectorWidth;
  }
  // (the CPUs known to split zmm FMAs; others assume full-width units)
  t.narrowConvs = t.vl == 16 && (o.narrowConvs > 0 || (o.narrowConvs < 0 && t.cpu == "znver4"));
  return t;
}

std::string isaName(const Target &t) {
  const MCSubtargetInfo *sti = t.tm->getMCSubtargetInfo();
  return sti->checkFeatures("+avx512f")               ? "AVX-512"
         : sti->checkFeatures("+avx2,+fma")           ? "AVX2+FMA"
         : sti->checkFeatures("+avx")                 ? "AVX"
                                                      : "SSE";
}

const char *llvmVersion() {
  return LLVM_VERSION_STRING;
}

TargetInfo describeTarget(const TargetOptions &o) {
  Target t = makeTarget(o);
  return {t.cpu, isaName(t)};
}

// LLVM's AddressSanitizer pass (docs/hardening.md), as clang runs it: after the
// optimisation pipeline, so that only the loads and stores that survive O3 are checked. The shadow
// memory and the reports are the host process's ASan runtime: a .so refers to its __asan_* symbols
// (resolved when an ASan process dlopens it), the JIT binds them to the process's own. A .so gets
// the usual module constructor and destructor (register/unregister its globals' redzones at
// dlopen/dlclose); JIT code gets neither: nothing would unregister its globals when the
// JitModel frees their memory, so later mappings at the same addresses would look poisoned.
// Its globals get no redzones then, but loads and stores into buffers and the workspace are
// checked all the same.
// ThreadSanitizer likewise (the module pass only adds the constructor that calls
// __tsan_init: the process has done that already for JIT code).
static void addSanitizers(ModulePassManager &mpm, const Target &t, bool jit) {
  if (t.sanitizeAddress)
    mpm.addPass(AddressSanitizerPass(AddressSanitizerOptions(), /*UseGlobalGC=*/!jit,
                                     /*UseOdrIndicator=*/!jit,
                                     jit ? AsanDtorKind::None : AsanDtorKind::Global,
                                     jit ? AsanCtorKind::None : AsanCtorKind::Global));
  if (t.sanitizeThread) {
    if (!jit)
      mpm.addPass(ModuleThreadSanitizerPass());
    mpm.addPass(createModuleToFunctionPassAdaptor(ThreadSanitizerPass()));
  }
}

void optimizeModule(llvm::Module &m, const Target &t, bool jit) {
  m.setTargetTriple(t.triple);
  m.setDataLayout(t.tm->createDataLayout());
  for (llvm::Function &f : m) {
    if (f.isDeclaration())
      continue;
    f.addFnAttr("target-cpu", t.cpu);
    if (!t.features.empty())
      f.addFnAttr("target-features", t.features);
    // our explicit vectors are vl wide: keep them whole (znver4 otherwise prefers 256 bits)
    f.addFnAttr("min-legal-vector-width", std::to_string(t.vl * 32));
    f.addFnAttr("prefer-vector-width", std::to_string(t.vl * 32));
    if (t.sanitizeAddress) // the sanitizer passes instrument only functions marked so
      f.addFnAttr(Attribute::SanitizeAddress);
    if (t.sanitizeThread)
      f.addFnAttr(Attribute::SanitizeThread);
  }
  const bool sanitize = t.sanitizeAddress || t.sanitizeThread;
  if (t.optLevel == 0 && !sanitize)
    return;
  LoopAnalysisManager lam;
  FunctionAnalysisManager fam;
  CGSCCAnalysisManager cgam;
  ModuleAnalysisManager mam;
  PassBuilder pb(t.tm.get());
  pb.registerModuleAnalyses(mam);
  pb.registerCGSCCAnalyses(cgam);
  pb.registerFunctionAnalyses(fam);
  pb.registerLoopAnalyses(lam);
  pb.crossRegisterProxies(lam, fam, cgam, mam);
  static const OptimizationLevel levels[] = {OptimizationLevel::O0, OptimizationLevel::O1,
                                             OptimizationLevel::O2, OptimizationLevel::O3};
  if (t.optLevel == 0) { // the sanitizers alone
    ModulePassManager mpm;
    addSanitizers(mpm, t, jit);
    mpm.run(m, mam);
    return;
  }
  if (sanitize)
    pb.registerOptimizerLastEPCallback(
        [&t, jit](ModulePassManager &mpm, OptimizationLevel) { addSanitizers(mpm, t, jit); });
  pb.buildPerModuleDefaultPipeline(levels[t.optLevel]).run(m, mam);
}

std::string emitMachineCode(llvm::Module &m, const Target &t, bool assembly) {
  SmallVector<char, 0> buf;
  raw_svector_ostream os(buf);
  legacy::PassManager pm;
  if (t.tm->addPassesToEmitFile(
          pm, os, nullptr, assembly ? CodeGenFileType::AssemblyFile : CodeGenFileType::ObjectFile))
    throw Error("codegen: the target cannot emit this file type");
  pm.run(m);
  return std::string(buf.begin(), buf.end());
}

Layout layoutFor(const Function &f, const TargetOptions &o) {
  const Target t = makeTarget(o);
  return planFunction(f, t.vl, o.fuseSgd, t.narrowConvs, o.fuseElementwise, o.inPlace).layout;
}

std::map<const Node *, std::string> describeLowering(const Function &f, const TargetOptions &o) {
  const Target t = makeTarget(o);
  return describePlan(f, planFunction(f, t.vl, o.fuseSgd, t.narrowConvs, o.fuseElementwise, o.inPlace));
}

EmittedCode emitLlvmAndAsm(const Function &f, const TargetOptions &o) {
  const Target t = makeTarget(o);
  LLVMContext ctx;
  Lowered l = lowerFunction(f, ctx, t);
  optimizeModule(*l.mod, t);
  EmittedCode code;
  raw_string_ostream os(code.llvm);
  l.mod->print(os, nullptr);
  os.flush();
  code.assembly = emitMachineCode(*l.mod, t, true);
  return code;
}

std::string emit(const Function &f, EmitKind kind, const TargetOptions &o, bool optimize) {
  Target t = makeTarget(o);
  if (!optimize)
    t.optLevel = 0;
  LLVMContext ctx;
  Lowered l = lowerFunction(f, ctx, t);
  optimizeModule(*l.mod, t);
  if (kind == EmitKind::LLVM) {
    std::string s;
    raw_string_ostream os(s);
    l.mod->print(os, nullptr);
    return os.str();
  }
  return emitMachineCode(*l.mod, t, kind == EmitKind::Asm);
}

} // namespace cnnc::codegen
