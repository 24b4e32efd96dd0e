// `cnnc dump`: the IR after the pipeline or any stage of it, as text or Graphviz, the whole
// module after each pass, only the passes that changed it, or their diffs, on stdout or as
// one numbered file per stage (docs/cli.md, "dump").
#pragma once

#include "ir/Print.h"

#include <iosfwd>
#include <string>

namespace cnnc::tools {

struct DumpOptions {
  std::string emit = "final"; // the stage to stop after: input, a pass name, final
  bool printAfterAll = false; // the input, then the module after every pass that changed it
  /// "" (off), "full" (as printAfterAll, and each pass that changed nothing named as such)
  /// or "diff" (the input, then a unified diff against the stage before for each change)
  std::string printChanged;
  std::string format = "text"; // text or dot
  bool printLocs = false;
  std::string dumpDir; // write NN-stage.ir and NN-stage.dot per stage there instead
  bool training = false;
  /// Annotate each node of the final IR with what codegen makes of it for targetCpu (empty:
  /// the host): storage, the layouts its kernel copies or packs operands into, its tile
  /// (codegen::describeLowering). Final text only.
  bool lowering = false;
  std::string targetCpu;
};

/// Runs the pipeline on m as `o` asks, writing to `out`. Throws cnnc::Error (an unknown
/// stage, a directory that cannot be written).
void dumpPipeline(Module &m, const DumpOptions &o, std::ostream &out);

} // namespace cnnc::tools
