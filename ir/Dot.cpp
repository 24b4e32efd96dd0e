// Graphviz DOT for a function: one box per node (mnemonic, name, type), params and inputs as
// ellipses, outputs double-bordered. `dot -Tsvg` renders it.
#include "ir/IR.h"

#include <fmt/format.h>

#include <set>

namespace cnnc {

static std::string esc(const std::string &s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\')
      o += '\\';
    o += c;
  }
  return o;
}

std::string printDot(const Function &f) {
  std::string s = fmt::format("digraph \"{}\" {{\n  rankdir=TB;\n  node [fontname=\"monospace\", fontsize=10];\n", esc(f.name()));
  std::set<const Node *> outs(f.outputs().begin(), f.outputs().end());
  for (const auto &n : f.nodes()) {
    const char *shape = n->info().source ? "ellipse" : "box";
    std::string label = fmt::format("%{}\\n{} {}", esc(n->name), n->info().mnemonic, n->type.str());
    if (!n->comment.empty())
      label += "\\n// " + esc(n->comment);
    s += fmt::format("  \"{}\" [shape={}, label=\"{}\"{}{}];\n", esc(n->name), shape, label,
                     outs.count(n.get()) ? ", peripheries=2" : "",
                     n->op == OpKind::Param ? ", style=filled, fillcolor=\"#eeeeee\"" : "");
    for (const Node *o : n->operands)
      s += fmt::format("  \"{}\" -> \"{}\";\n", esc(o->name), esc(n->name));
  }
  return s + "}\n";
}

} // namespace cnnc
