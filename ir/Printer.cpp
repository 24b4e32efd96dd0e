// The textual IR. One line per node:
//   %name = mnemonic(%operand, ...) {attr=value, ...} : type [loc("file":line:col)] [// comment]
// Attributes are printed in the op table's order and only when they differ from the table's
// default, so a dump shows what is particular to each node. The parser reads this back:
// print(parse(print(m))) == print(m) is a tested invariant, for every PrintOptions: section
// headers are whole-line comments and wrapped lines are whitespace to the parser.
#include "ir/Print.h"

#include <fmt/format.h>

#include <optional>
#include <set>

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

// A node as pieces that may each start a new line when the node is wrapped: one per
// operand, attribute and trailing part, so that a break never splits a name or a literal.
static std::vector<std::string> nodePieces(const Node &n, bool printLocs) {
  std::vector<std::string> p{fmt::format("  %{} = {}", n.name, n.info().mnemonic)};
  if (!n.operands.empty() || !n.info().source) {
    p.back() += "(";
    for (size_t i = 0; i < n.operands.size(); ++i)
      p.push_back("%" + n.operands[i]->name + (i + 1 < n.operands.size() ? ", " : ")"));
    if (n.operands.empty())
      p.back() += ")";
  }
  std::string attrs = printAttrs(n);
  // " {a=1, b=[1,1]}": split after each ", " outside brackets and quotes
  bool inStr = false;
  int depth = 0;
  for (size_t at = 0, i = 0; i < attrs.size(); ++i) {
    const char c = attrs[i];
    if (c == '"' && attrs[i - 1] != '\\')
      inStr = !inStr;
    else if (!inStr && (c == '[' || c == ']'))
      depth += c == '[' ? 1 : -1;
    if ((c == ',' && !inStr && !depth && i + 1 < attrs.size() && attrs[i + 1] == ' ') || i + 1 == attrs.size()) {
      size_t stop = c == ',' ? i + 2 : i + 1;
      p.push_back(attrs.substr(at, stop - at));
      at = stop;
    }
  }
  p.push_back(" : " + n.type.str());
  if (printLocs && n.loc.known())
    p.push_back(fmt::format(" loc({}:{}:{})", quote(n.loc.file), n.loc.line, n.loc.col));
  return p;
}

// Joins pieces into lines of at most `wrap` columns (0: one line); continuation lines are
// indented by `indent` spaces. A piece longer than the width gets a line of its own.
static std::string joinWrapped(const std::vector<std::string> &pieces, int wrap, size_t indent) {
  std::string out, line;
  for (const std::string &piece : pieces) {
    if (wrap > 0 && !line.empty() && line.size() + piece.size() > (size_t)wrap &&
        line.find_first_not_of(' ') != std::string::npos && line.size() > indent) {
      out += line.substr(0, line.find_last_not_of(' ') + 1) + "\n";
      line = std::string(indent, ' ') + piece.substr(piece.find_first_not_of(' '));
    } else {
      line += piece;
    }
  }
  return out + line;
}

static std::string printNode(const Node &n, const PrintOptions &o) {
  std::string s = joinWrapped(nodePieces(n, o.locs), o.wrap, 6);
  if (!n.comment.empty())
    s += "  // " + escapeControl(n.comment);
  return s;
}

// The header of each part of a training step: what it computes, where the seed derives it.
static const char *sectionTitle(Section s) {
  switch (s) {
  case Section::Forward:
    return "forward: the network, then the loss z (seed sections 2-3)";
  case Section::Backward:
    return "backward: dz/dx and dz/dw, last layer first (seed section 3.4, eqs. 10-11)";
  case Section::Update:
    return "update: SGD with momentum and weight decay (seed eq. 8), running statistics";
  }
  return "?";
}

std::string print(const Function &f, const PrintOptions &o) {
  std::string s = fmt::format("func @{} {{\n", f.name());
  std::map<const Node *, Section> sec;
  if (o.sections)
    sec = sectionsOf(f);
  // Sources ride with the section of the next computed node: a header goes before a run of
  // inputs and params, never between them and their first user.
  std::vector<const Node *> pending;
  std::optional<Section> cur;
  std::set<Section> seen;
  auto flush = [&](std::optional<Section> next) {
    if (next && next != cur) {
      s += fmt::format("  // ----- {}{} -----\n", sectionTitle(*next), seen.count(*next) ? " (continued)" : "");
      seen.insert(*next);
      cur = next;
    }
    for (const Node *p : pending)
      s += printNode(*p, o) + "\n";
    pending.clear();
  };
  for (const auto &n : f.nodes()) {
    pending.push_back(n.get());
    if (auto it = sec.find(n.get()); it != sec.end() && !n->info().source)
      flush(it->second);
  }
  flush(std::nullopt);
  std::vector<std::string> outs{"  return "};
  for (size_t i = 0; i < f.outputs().size(); ++i)
    outs.push_back("%" + f.outputs()[i]->name + (i + 1 < f.outputs().size() ? ", " : ""));
  s += joinWrapped(outs, o.wrap, 9) + "\n}\n";
  return s;
}

std::string print(const Module &m, const PrintOptions &o) {
  std::string s;
  for (const auto &f : m.functions()) {
    if (!s.empty())
      s += "\n";
    s += print(*f, o);
  }
  return s;
}

std::string print(const Function &f, bool printLocs) { return print(f, PrintOptions{printLocs}); }

std::string print(const Module &m, bool printLocs) { return print(m, PrintOptions{printLocs}); }

} // namespace cnnc
