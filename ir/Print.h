// Readable layouts of the textual IR and of its DOT graphs: a training step's forward,
// backward and update sections, wrapped lines, clusters per function and stage. The plain
// forms (print, printDot) are declared in IR.h; every layout parses back to the same IR.
#pragma once

#include "ir/IR.h"

#include <map>
#include <string>

namespace cnnc {

/// The parts of a training step (ir/Sections.cpp says how each node's is found).
enum class Section : uint8_t { Forward, Backward, Update };
const char *sectionName(Section s);
/// Each non-source node's section, and the sources' the graph decides (inputs and params
/// only the update reads); empty for a function without `update` ops.
std::map<const Node *, Section> sectionsOf(const Function &f);

/// How the textual IR is laid out.
struct PrintOptions {
  bool locs = false;     // append ` loc("file":line:col)` to located nodes
  bool sections = false; // `// ----- forward ... -----` etc. before each part of a training step
  int wrap = 0;          // break operand, attribute and return lists longer than this (0 = never)
};
std::string print(const Module &m, const PrintOptions &o);
std::string print(const Function &f, const PrintOptions &o);

/// DOT clusters, one per function of m titled "@name stage" (e.g. "after simplify"), a
/// training step's sections in clusters inside it; node ids start with `idPrefix` so that
/// several stages can share one digraph (dotGraph).
std::string printDotClusters(const Module &m, const std::string &stage, const std::string &idPrefix);
/// One digraph titled `title` around bodies written by printDotClusters.
std::string dotGraph(const std::string &title, const std::string &body);

} // namespace cnnc
