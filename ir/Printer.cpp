// The textual IR. One line per node:
//   %name = mnemonic(%operand, ...) {attr=value, ...} : type [loc("file":line:col)] [// comment]
// Attributes are printed in the op table's order and only when they differ from the table's
// default, so a dump shows what is particular to each node. The parser reads this back:
// print(parse(print(m))) == print(m) is a tested invariant.
#include "ir/IR.h"

#include <fmt/format.h>

namespace cnnc {

static std::string printAttrs(const Node &n) {
  std::vector<std::string> parts;
  const OpInfo &info = n.info();
  for (const AttrSpec &spec : info.attrs) {
    auto it = n.attrs.find(spec.name);
    if (it == n.attrs.end() || (spec.defaultValue && *spec.defaultValue == it->second))
      continue;
    parts.push_back(fmt::format("{}={}", spec.name, attrStr(it->second)));
  }
  for (auto &[k, v] : n.attrs) // not in the table: the verifier rejects these, but show them
    if (!info.attr(k))
      parts.push_back(fmt::format("{}={}", k, attrStr(v)));
  if (parts.empty())
    return "";
  return fmt::format(" {{{}}}", fmt::join(parts, ", "));
}

static std::string printNode(const Node &n, bool printLocs) {
  std::string s = fmt::format("  %{} = {}", n.name, n.info().mnemonic);
  if (!n.operands.empty() || !n.info().source) {
    std::vector<std::string> ops;
    for (const Node *o : n.operands)
      ops.push_back("%" + o->name);
    s += fmt::format("({})", fmt::join(ops, ", "));
  }
  s += printAttrs(n);
  s += " : " + n.type.str();
  if (printLocs && n.loc.known())
    s += fmt::format(" loc(\"{}\":{}:{})", n.loc.file, n.loc.line, n.loc.col);
  if (!n.comment.empty())
    s += "  // " + n.comment;
  return s;
}

std::string print(const Function &f, bool printLocs) {
  std::string s = fmt::format("func @{} {{\n", f.name());
  for (const auto &n : f.nodes())
    s += printNode(*n, printLocs) + "\n";
  std::vector<std::string> outs;
  for (const Node *o : f.outputs())
    outs.push_back("%" + o->name);
  s += fmt::format("  return {}\n}}\n", fmt::join(outs, ", "));
  return s;
}

std::string print(const Module &m, bool printLocs) {
  std::string s;
  for (const auto &f : m.functions()) {
    if (!s.empty())
      s += "\n";
    s += print(*f, printLocs);
  }
  return s;
}

} // namespace cnnc
