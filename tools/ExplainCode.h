// `cnnc explain`'s generated code. The section of one op: `--op NAME` (by default the conv2d
// with the most multiply-adds) of the inference build after the pipeline, compiled alone for
// the host by codegen, as LLVM IR and assembly, the fused multiply-adds highlighted (the
// register tile's are the run of them in the innermost loop); with `--profile`, the whole
// compiled model's time per node (tools/Profile.h). Every layer's panel shows the same for
// that layer's nodes, trimmed to the hot loop (the innermost loop with the most FMAs) so
// that VGG-16's page stays small: a 3x3 conv's whole LLVM IR is ~200 KB, its hot loop ~5 KB.
#pragma once

#include "ir/IR.h"

#include <map>
#include <string>

namespace cnnc::tools {

/// The section's HTML. `network` is the inference function before any pass (it names the
/// layers), `compiled` the same after the pipeline; `op` a layer name or "" (the conv with
/// the most multiply-adds). Throws cnnc::Error naming `op` when no layer has that name.
std::string generatedCodeHtml(const Function &network, const Function &compiled,
                              const std::string &op, bool profile);

/// The generated code of `n` (a computed node of a function after the pipeline) compiled
/// alone for this machine: LLVM IR and assembly, FMAs highlighted. `trimmed`: each cut to
/// its hot loop, with a line saying what was cut and `whole` (HTML: where to see it whole,
/// or ""). A node codegen does not compile gets a line saying why.
std::string kernelHtml(const Node &n, bool trimmed, const std::string &whole);

/// Each layer's "generated code" block for its panel, by layer name: the trimmed code of
/// the nodes of `compiled` it owns (a node belongs to the layer it names, else to the first
/// layer whose location it carries: each kernel is shown once), or for a layer with none,
/// the kernel it was fused into. `title` names the build ("inference", "training step").
std::map<std::string, std::string> layerCodeHtml(const Function &network, const Function &compiled,
                                                 const std::string &title);

} // namespace cnnc::tools
