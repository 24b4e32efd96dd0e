// `cnnc explain MODEL -o page.html` (issue 18): one self-contained HTML page of a whole
// compile for a student: the network graph beside the `info` table, and the pipeline, the
// IR after each pass as a diff against the stage before with the reason the pass exists.
// A first skeleton: the seed's convolution on a tiny instance, the generated code of one op
// and the training curves are named as sections still to come.
#pragma once

#include "ir/IR.h"

#include <memory>
#include <string>

namespace cnnc::tools {

struct ExplainInput {
  std::string modelName;             // shown in the title
  const Function *network = nullptr; // the inference function, before any pass
  std::string infoTable;             // `cnnc info`'s report of it
  std::unique_ptr<Module> build;     // the module to compile (training or inference), not yet run
  bool training = false;
};

/// The page, as one string: inline styles, inline SVG (drawn by Graphviz's `dot`, run as a
/// child process; without it the section says so), no external request.
std::string explainPage(ExplainInput in);

} // namespace cnnc::tools
