// The sections of a training step (forward, backward, update), read off the graph alone so
// that a parsed dump sections exactly as the function it was printed from. Used by the
// printer (section comments) and the DOT writer (coloured clusters); not semantic.
//   forward  = every node a non-`update` output needs (the loss, the count of correct ones);
//   update   = `update` ops, the inputs and params the forward part does not read (lr,
//              momentum, weight decay, momentum buffers, running statistics) and everything
//              computed from them;
//   backward = what starts at the loss's adjoint (the op that takes an operand named `dz`,
//              Ops.def: softmax_xent_grad, l2_loss_grad) and what follows from it.
// A node computed from forward values and constants only (the kernel reshaped as the seed's
// matrix F, a batch-norm unbias factor) is in the section of its users, backward first.
// Constants are sources too: like inputs and params, the printer keeps them where they are.
#include "ir/Print.h"

#include <set>

namespace cnnc {

const char *sectionName(Section s) {
  switch (s) {
  case Section::Forward: return "forward";
  case Section::Backward: return "backward";
  case Section::Update: return "update";
  }
  return "?";
}

std::map<const Node *, Section> sectionsOf(const Function &f) {
  std::map<const Node *, Section> sec;
  bool anyUpdate = false;
  for (const auto &n : f.nodes())
    anyUpdate |= n->op == OpKind::Update;
  if (!anyUpdate)
    return sec; // not a training step: one section, none printed

  // forward: what the non-update outputs need
  std::set<const Node *> fwd;
  std::vector<const Node *> work;
  for (const Node *o : f.outputs())
    if (o->op != OpKind::Update && fwd.insert(o).second)
      work.push_back(o);
  while (!work.empty()) {
    const Node *n = work.back();
    work.pop_back();
    for (const Node *o : n->operands)
      if (fwd.insert(o).second)
        work.push_back(o);
  }

  auto takesLossAdjoint = [](const Node &n) {
    const auto &specs = n.info().operands;
    for (size_t i = 0; i < specs.size() && i < n.operands.size(); ++i)
      if (specs[i].name == "dz")
        return true;
    return false;
  };
  std::vector<const Node *> open; // computed from forward values and constants only
  for (const auto &up : f.nodes()) {
    const Node *n = up.get();
    if (fwd.count(n)) {
      sec[n] = Section::Forward;
      continue;
    }
    if (n->op == OpKind::Update || n->op == OpKind::Input || n->op == OpKind::Param) {
      sec[n] = Section::Update;
      continue;
    }
    bool fromUpdate = false, fromBackward = takesLossAdjoint(*n);
    for (const Node *o : n->operands) {
      auto it = sec.find(o);
      if (it == sec.end())
        continue;
      fromUpdate |= it->second == Section::Update;
      fromBackward |= it->second == Section::Backward;
    }
    if (fromUpdate)
      sec[n] = Section::Update;
    else if (fromBackward)
      sec[n] = Section::Backward;
    else if (!n->info().source)
      open.push_back(n);
  }
  // the open nodes go with their users, last first so that chains resolve
  std::map<const Node *, std::vector<const Node *>> users;
  for (const auto &n : f.nodes())
    for (const Node *o : n->operands)
      users[o].push_back(n.get());
  for (auto it = open.rbegin(); it != open.rend(); ++it) {
    Section s = Section::Update;
    for (const Node *u : users[*it])
      if (auto su = sec.find(u); su != sec.end() && su->second == Section::Backward)
        s = Section::Backward;
    sec[*it] = s;
  }
  return sec;
}

} // namespace cnnc
