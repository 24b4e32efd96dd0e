// Internal: IR function -> LLVM module (Lower.cpp) and the target machine around it
// (Target.cpp). Only codegen/ includes this.
#pragma once

#include "codegen/Plan.h"

#include <llvm/IR/Module.h>
#include <llvm/Target/TargetMachine.h>

#include <memory>

namespace cnnc::codegen {

struct Target {
  std::unique_ptr<llvm::TargetMachine> tm;
  std::string triple, cpu, features;
  unsigned vl = 4; // f32 lanes: 16 with AVX-512F, 8 with AVX, else 4
  /// 16 lanes, and a CPU whose 512-bit FMAs run at the rate of its 256-bit ones (AMD Zen 4
  /// executes each zmm FMA as two ymm halves: its measured zmm and ymm peaks are equal), so
  /// that a conv whose output channels pad less to 8-lane vectors runs 8 lanes wide
  /// (ConvGeom::of). Intel's AVX-512 server cores have two 512-bit FMA units: zmm is twice
  /// the ymm rate there, and 16 lanes always win.
  bool narrowConvs = false;
  int optLevel = 3;
  int64_t parallelMinWork = -1; // TargetOptions::parallelMinWork
  bool fuseSgd = true;           // TargetOptions::fuseSgd
  bool fuseElementwise = true;   // TargetOptions::fuseElementwise
  bool inPlace = true;           // TargetOptions::inPlace
  bool sanitizeAddress = false;  // TargetOptions::sanitizeAddress
  bool sanitizeThread = false;   // TargetOptions::sanitizeThread
  bool profile = false;          // TargetOptions::profile
};
Target makeTarget(const TargetOptions &o);
/// The vector ISA the library reports (TargetInfo::isa).
std::string isaName(const Target &t);

struct Lowered {
  std::unique_ptr<llvm::Module> mod;
  Plan plan;
};
/// Lowers f into a module holding the entry (kEntryName) and the descriptor (kDescName) that
/// runtime/CnncApi.c reads; `weights` (param name -> values) are embedded when not null.
Lowered lowerFunction(const Function &f, llvm::LLVMContext &ctx, const Target &t,
                      const std::map<std::string, std::vector<float>> *weights = nullptr,
                      const char *entryName = kEntryName, const char *descName = kDescName);
/// The profile counters' global beside an entry (TargetOptions::profile).
std::string profileCountersName(const std::string &entryName);
/// The prepare entry's symbol beside an entry (emitted when Layout::preparedBytes > 0).
std::string prepareName(const std::string &entryName);
/// The new PassBuilder's default pipeline at t.optLevel, for t's machine, then LLVM's
/// AddressSanitizer (ThreadSanitizer) pass when t.sanitizeAddress (t.sanitizeThread); `jit`:
/// no module constructor/destructor.
void optimizeModule(llvm::Module &m, const Target &t, bool jit = false);
/// Assembly text or object bytes.
std::string emitMachineCode(llvm::Module &m, const Target &t, bool assembly);

} // namespace cnnc::codegen
