// Internal to codegen/: the profiling counters of TargetOptions::profile (Profiler.cpp).
#pragma once

#include "codegen/Emitter.h"

#include <functional>
#include <string>
#include <vector>

namespace cnnc::codegen {

// One i64 counter per profile site (a computed node, the update: Layout::profileSites), in a
// global the caller reads (profileCountersName); each site adds the clock's difference around
// its code. Disabled, nothing is emitted, so the module is what it always was.
class Profiler {
public:
  Profiler(Emitter &e, bool enabled, const std::string &entryName,
           const std::vector<std::string> &sites);
  /// Emits the next site's code, timed when enabled.
  void timed(const std::function<void()> &emitSite);
  /// After the last site: every site was timed.
  void finish() const;

private:
  Emitter &e_;
  const std::vector<std::string> &sites_;
  llvm::GlobalVariable *counters_ = nullptr;
  llvm::FunctionCallee clock_;
  size_t site_ = 0;
};

} // namespace cnnc::codegen
