// Fused elementwise groups (Plan::groups, docs/codegen.md "Fused elementwise groups"). A
// chain of n elementwise ops was n loops, each a pass over memory and each about 4 ms of
// LLVM's time to compile (docs/performance.md, "Compile time against depth"); a group is
// one loop that loads what it reads from outside, keeps its intermediate values in
// registers and stores its root (EmitElementwise.cpp). The IR keeps every node (`cnnc
// dump` shows them); only the plan and the lowering see groups.
//
// Invariants of a group (root last, node order):
//  - every node has the `elementwise` trait, is not a view, is f32, and every operand has
//    its shape, so element i of each is element i of the flat range (no broadcasting);
//    outside operands that carry the batch carry it in the root's batch dim;
//  - every member but the root has exactly one user node, in the group, and is not an
//    output, a prepared value, or a node the plan already placed (a view, a fused SGD or
//    flip node): nothing else reads it, so it needs no storage (StorageKind::Fused);
//  - the root is not prepared and has workspace or an output buffer;
//  - at most kMaxGroup nodes: the loop body stays a bounded basic block for LLVM (whose
//    backend costs more than linearly in a block's size), and registers suffice.
#include "codegen/Plan.h"

#include <algorithm>

namespace cnnc::codegen {

namespace {

constexpr size_t kMaxGroup = 64;

} // namespace

std::map<const Node *, std::vector<const Node *>> findElementwiseGroups(const Function &f,
                                                                        const Plan &p) {
  const auto nodes = f.nodeList();
  std::map<const Node *, size_t> index;
  std::map<const Node *, const Node *> soleUser; // nullptr: several users
  for (size_t i = 0; i < nodes.size(); ++i) {
    index[nodes[i]] = i;
    for (const Node *o : nodes[i]->operands) {
      auto [it, fresh] = soleUser.try_emplace(o, nodes[i]);
      if (!fresh && it->second != nodes[i])
        it->second = nullptr;
    }
  }
  // A group's node: elementwise, f32, no broadcasting, batch in the same dim, computed by
  // the entry (not prepared, not empty).
  auto fusable = [&](const Node *n) {
    if (!n->info().elementwise || n->info().view || n->type.dtype != DType::F32 ||
        n->type.numel() == 0 || p.prepared.count(n))
      return false;
    for (const Node *o : n->operands)
      if (o->type.shape != n->type.shape || o->type.dtype != DType::F32 ||
          (p.batched.at(o) && p.batchDim.at(o) != p.batchDim.at(n)))
        return false;
    return true;
  };
  // where a root may store: workspace (not placed yet) or an output's buffer
  auto rootStorage = [&](const Node *n) {
    auto it = p.storage.find(n);
    return it == p.storage.end() || it->second.kind == StorageKind::Buffer;
  };
  std::map<const Node *, std::vector<const Node *>> open; // groups by their current root
  for (const Node *n : nodes) {
    if (!fusable(n) || !rootStorage(n))
      continue;
    std::vector<const Node *> g;
    for (const Node *o : n->operands) {
      auto it = open.find(o);
      if (it == open.end() || soleUser.at(o) != n || p.storage.count(o) ||
          p.batchDim.at(o) != p.batchDim.at(n) || g.size() + it->second.size() + 1 > kMaxGroup)
        continue;
      g.insert(g.end(), it->second.begin(), it->second.end());
      open.erase(it); // o is a member now, not a root
    }
    g.push_back(n);
    open[n] = std::move(g);
  }
  std::map<const Node *, std::vector<const Node *>> groups;
  for (auto &[root, g] : open)
    if (g.size() > 1) {
      std::sort(g.begin(), g.end(), [&](const Node *a, const Node *b) { return index[a] < index[b]; });
      groups[root] = std::move(g);
    }
  return groups;
}

} // namespace cnnc::codegen
