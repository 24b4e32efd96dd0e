// docs/onnx.md's operator table, generated (`cnnc ops --onnx`).
#pragma once

#include <string>

namespace cnnc::tools {

/// The Markdown table of the ONNX operators cnnc imports: the IR ops each becomes (the
/// importer's table, frontend/OnnxOpsDoc.cpp), what it reads, and whether `--train`
/// differentiates it (the gradient table, passes/GradRules.cpp).
std::string onnxOperatorsMarkdown();

} // namespace cnnc::tools
