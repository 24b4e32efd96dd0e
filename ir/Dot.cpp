// Graphviz DOT: one box per node (name, mnemonic, type, the seed equation it cites), inputs,
// params and constants as ellipses, outputs double-bordered, each edge labelled by the
// operand it feeds (the op table's operand name) and the shape that flows along it. A
// module is one digraph with a cluster per function, and a training step's forward,
// backward and update parts (ir/Sections.cpp) in coloured clusters inside it; several
// stages of a pipeline share one digraph by prefixing node ids (`cnnc dump --format=dot
// --print-after-all`). `dot -Tsvg` renders it.
#include "ir/Print.h"

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

// Fill colours of the sections' clusters: light, so that black text stays readable.
static const char *sectionColour(Section s) {
  switch (s) {
  case Section::Forward: return "#e3f2fd";
  case Section::Backward: return "#fff3e0";
  case Section::Update: return "#e8f5e9";
  }
  return "white";
}

static std::string operandName(const Node &n, size_t i) {
  const auto &specs = n.info().operands;
  if (specs.empty())
    return fmt::format("{}", i);
  if (i < specs.size() && !specs[i].variadic)
    return specs[i].name;
  const OperandSpec &last = specs.back(); // variadic: xs[0], xs[1], ...
  return fmt::format("{}[{}]", last.name, i - (specs.size() - 1));
}

static std::string functionClusters(const Function &f, const std::string &title, const std::string &id) {
  auto nid = [&](const Node *n) { return fmt::format("\"{}/{}\"", esc(id), esc(n->name)); };
  std::set<const Node *> outs(f.outputs().begin(), f.outputs().end());
  const auto sec = sectionsOf(f);
  std::string s = fmt::format("  subgraph \"cluster_{}\" {{\n    label=\"{}\"; labelloc=t; fontsize=14;\n",
                              esc(id), esc(title));
  auto nodeLine = [&](const Node &n) {
    std::string label = fmt::format("%{}\\n{} {}", esc(n.name), n.info().mnemonic, n.type.str());
    if (!n.comment.empty())
      label += "\\n// " + esc(n.comment);
    return fmt::format("{} [shape={}, label=\"{}\"{}{}];\n", nid(&n), n.info().source ? "ellipse" : "box",
                       label, outs.count(&n) ? ", peripheries=2" : "",
                       n.op == OpKind::Param ? ", style=filled, fillcolor=\"#eeeeee\"" : "");
  };
  for (Section part : {Section::Forward, Section::Backward, Section::Update}) {
    std::string body;
    for (const auto &n : f.nodes())
      if (auto it = sec.find(n.get()); it != sec.end() && it->second == part)
        body += "      " + nodeLine(*n);
    if (!body.empty())
      s += fmt::format("    subgraph \"cluster_{}/{}\" {{\n      label=\"{}\"; style=filled; fillcolor=\"{}\";\n{}    }}\n",
                       esc(id), sectionName(part), sectionName(part), sectionColour(part), body);
  }
  for (const auto &n : f.nodes())
    if (!sec.count(n.get()))
      s += "    " + nodeLine(*n);
  for (const auto &n : f.nodes())
    for (size_t i = 0; i < n->operands.size(); ++i)
      s += fmt::format("    {} -> {} [label=\"{} {}\"];\n", nid(n->operands[i]), nid(n.get()),
                       esc(operandName(*n, i)), shapeStr(n->operands[i]->type.shape));
  return s + "  }\n";
}

std::string printDotClusters(const Module &m, const std::string &title, const std::string &idPrefix) {
  std::string s;
  for (const auto &f : m.functions())
    s += functionClusters(*f, title.empty() ? "@" + f->name() : fmt::format("@{} {}", f->name(), title),
                          idPrefix + f->name());
  return s;
}

std::string dotGraph(const std::string &title, const std::string &body) {
  return fmt::format("digraph \"{}\" {{\n  label=\"{}\"; labelloc=t; fontsize=16; rankdir=TB;\n"
                     "  node [fontname=\"monospace\", fontsize=10];\n  edge [fontname=\"monospace\", fontsize=8];\n{}}}\n",
                     esc(title), esc(title), body);
}

std::string printDot(const Function &f) {
  return dotGraph("@" + f.name(), functionClusters(f, "@" + f.name(), f.name()));
}

} // namespace cnnc
