// eliminateDeadCode: removes every node no output depends on.
//   before: a verified function.   after: every node reaches an output; order unchanged.
//   Unused params and inputs go too (a model's interface is what its outputs need).
#include "passes/Passes.h"

#include <set>

namespace cnnc {

bool eliminateDeadCode(Function &f) {
  std::set<const Node *> live(f.outputs().begin(), f.outputs().end());
  auto nodes = f.nodeList();
  for (auto it = nodes.rbegin(); it != nodes.rend(); ++it)
    if (live.count(*it))
      live.insert((*it)->operands.begin(), (*it)->operands.end());
  size_t before = nodes.size();
  f.removeIf([&](const Node *n) { return !live.count(n); });
  return f.nodes().size() != before;
}

} // namespace cnnc
