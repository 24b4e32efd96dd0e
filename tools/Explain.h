// `cnnc explain MODEL -o page.html` (issue 18): one self-contained HTML page of a whole
// compile for a student: the network graph beside the `info` table, each layer clickable
// (its IR, gradient nodes and the seed's equations: ExplainLayers); the pipeline, the IR
// after each pass as a diff against the stage before with the reason the pass exists; the
// seed's convolution on a tiny instance (ExplainConv); the generated code of one op
// (ExplainCode); the training curves (ExplainTrain). KaTeX is inlined (ExplainAssets).
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
  std::unique_ptr<Module> inference; // the inference build, not yet run, for the generated code
  std::string modelPath;             // as given on the command line (the page's instructions)
  std::string op;                    // --op: the layer whose code is shown ("" = the largest conv)
  bool profile = false;              // --profile: time every node of the compiled model
  std::string trainLog;              // --train-log: cnnc train's log.csv, or ""
};

/// The page, as one string: inline styles and scripts, inline SVG (drawn by Graphviz's `dot`,
/// run as a child process; without it the section says so), no external request. Throws
/// cnnc::Error for an unknown --op or an unreadable training log.
std::string explainPage(ExplainInput in);

} // namespace cnnc::tools
