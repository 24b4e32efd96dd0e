// `cnnc explain`'s generated-code section: one op of the inference build after the pipeline
// (`--op NAME`; by default the conv2d with the most multiply-adds), compiled alone for the
// host by codegen, as LLVM IR and assembly, the fused multiply-adds highlighted (the
// register tile's are the run of them in the innermost loop); with `--profile`, the whole
// compiled model's time per node (tools/Profile.h).
#pragma once

#include "ir/IR.h"

#include <string>

namespace cnnc::tools {

/// The section's HTML. `network` is the inference function before any pass (it names the
/// layers), `compiled` the same after the pipeline; `op` a layer name or "" (the conv with
/// the most multiply-adds). Throws cnnc::Error naming `op` when no layer has that name.
std::string generatedCodeHtml(const Function &network, const Function &compiled, const std::string &op, bool profile);

} // namespace cnnc::tools
