// docs/ops.md, generated from the op table (`cnnc ops --markdown`); a test keeps the
// committed file equal to this output.
#include "ir/IR.h"

#include <fmt/format.h>

namespace cnnc {

std::string opsMarkdown() {
  std::string s = "# cnnc ops\n\n"
                  "Generated from `ir/Ops.def` by `cnnc ops --markdown`; do not edit.\n"
                  "Attributes show `name: kind = default` (no default: required). Operands\n"
                  "marked `?` are optional, `*` variadic.\n";
  for (const OpInfo &op : allOps()) {
    std::vector<std::string> operands, attrs, traits;
    for (const OperandSpec &o : op.operands)
      operands.push_back(o.name + (o.optional ? "?" : o.variadic ? "*" : ""));
    for (const AttrSpec &a : op.attrs)
      attrs.push_back(a.defaultValue ? fmt::format("`{}: {} = {}`", a.name, attrKindName(a.kind), attrStr(*a.defaultValue))
                                     : fmt::format("`{}: {}`", a.name, attrKindName(a.kind)));
    if (op.source) traits.push_back("source");
    if (op.elementwise) traits.push_back("elementwise");
    if (op.loss) traits.push_back("loss");
    if (op.stochastic) traits.push_back("stochastic");
    if (op.view) traits.push_back("view");
    if (op.macs) traits.push_back("macs");
    if (op.inPlace) traits.push_back("inplace");
    if (!op.source) traits.push_back(fmt::format("batch: {}", batchRuleName(op.batch)));
    s += fmt::format("\n## `{}`\n\n{}\n\n", op.mnemonic, op.doc);
    s += fmt::format("- operands: {}\n", operands.empty() ? "none" : fmt::format("`{}`", fmt::join(operands, ", ")));
    s += fmt::format("- attributes: {}\n", attrs.empty() ? "none" : fmt::format("{}", fmt::join(attrs, ", ")));
    if (!traits.empty())
      s += fmt::format("- traits: {}\n", fmt::join(traits, ", "));
    s += fmt::format("\n```\n{}\n```\n", op.example);
  }
  return s;
}

} // namespace cnnc
