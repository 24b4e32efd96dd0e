// docs/onnx.md's operator table: the importer's rows joined with the gradient rules' verdict
// per IR op, so "trainable" is what autodiff does, not what a hand-written table claims.
#include "tools/OnnxDoc.h"

#include "frontend/OnnxImport.h"
#include "passes/Autodiff.h"

#include <fmt/format.h>

namespace cnnc::tools {

std::string onnxOperatorsMarkdown() {
  std::string s = "| ONNX operator | imported as | attributes and inputs read | trainable |\n"
                  "|---|---|---|---|\n";
  for (const OnnxOperatorDoc &d : onnxOperatorDocs()) {
    std::vector<std::string> ops, noGrad;
    bool computes = false;
    for (OpKind k : d.becomes) {
      ops.push_back(fmt::format("`{}`", opInfo(k).mnemonic));
      computes |= !opInfo(k).source;
      if (!grad::hasGradient(k))
        noGrad.push_back(fmt::format("`{}`", opInfo(k).mnemonic));
    }
    std::string trainable = !computes                     ? "—"
                            : noGrad.empty()              ? "yes"
                            : noGrad.size() == ops.size() ? "no"
                                                          : fmt::format("yes, except {}", fmt::join(noGrad, ", "));
    s += fmt::format("| {} | {} | {} | {} |\n", d.opType,
                     ops.empty() ? std::string("(constant)") : fmt::format("{}", fmt::join(ops, ", ")),
                     d.attributes, trainable);
  }
  return s;
}

} // namespace cnnc::tools
