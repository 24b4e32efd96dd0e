// `cnnc explain --train-log FILE`: the loss and error curves of a `cnnc train` run, drawn as
// inline SVG from its log.csv (`epoch,train_loss,train_error,test_loss,test_error,...`,
// docs/cli.md); without a file, the section says how to get one.
#pragma once

#include <string>

namespace cnnc::tools {

/// The section's HTML. Throws cnnc::Error naming file:line for a row that is not numbers or
/// a header without the columns above.
std::string trainingCurvesHtml(const std::string &logPath, const std::string &modelPath);

} // namespace cnnc::tools
