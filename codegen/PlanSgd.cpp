// The SGD update of a training step as one fused, in-place pass (Plan::sgd, docs/codegen.md
// "update"). passes/TrainStep.cpp writes MatConvNet's SGD with momentum and weight decay
// (seed section 3.3, eq. 8) per trainable param w, momentum buffer v and gradient g as
//   %w.decay = mul(%w, %weight_decay)      %w.dir = add(g, %w.decay)
//   %w.inertia = mul(%v, %momentum)        %w.lrdir = mul(%w.dir, %lr)
//   %w.vel = sub(%w.inertia, %w.lrdir)     %w.new = add(%w, %w.vel)
//   update(%v, %w.vel)                     update(%w, %w.new)
// Six passes over the param's size, two workspace values living to the end of the step, and
// two copies. Here they become one loop after the last node (where the copies were, and
// only when the step succeeded): per element, v' = v*momentum - (g + w*decay)*lr and
// w' = w + v', written into v's and w's buffers in place; only g stays alive to the end.
// The loop rounds exactly as the six nodes do (no contraction into FMAs): same bits.
//
// Invariants: a group is fused only when every one of the six nodes has the single user the
// pattern names (nothing else reads an intermediate), the three hyperparameters are f32[]
// inputs, v is a non-trainable param, and every tensor has w's shape; the fused nodes get
// StorageKind::Fused (no storage, no code of their own). Anything else stays unfused.
#include "codegen/Plan.h"

#include <map>

namespace cnnc::codegen {

namespace {

bool scalarInput(const Node *n) {
  return n->op == OpKind::Input && n->type.dtype == DType::F32 && n->type.rank() == 0;
}

} // namespace

std::vector<SgdUpdate> findSgdUpdates(const Function &f) {
  // the update of each param, and every node's users
  std::map<const Node *, const Node *> updateOf;
  for (const Node *o : f.outputs())
    if (o->op == OpKind::Update)
      updateOf[o->operands[0]] = o;
  std::map<const Node *, std::vector<const Node *>> users;
  for (const Node *n : f.nodeList())
    for (const Node *o : n->operands)
      users[o].push_back(n);
  auto onlyUser = [&](const Node *n, const Node *user) {
    auto it = users.find(n);
    return f.useCount(n) == 1 && it != users.end() && it->second.size() == 1 &&
           it->second[0] == user;
  };
  std::vector<SgdUpdate> out;
  for (const Node *wUpd : f.outputs()) { // in output order: the emitted code is deterministic
    if (wUpd->op != OpKind::Update)
      continue;
    const Node *w = wUpd->operands[0], *wNew = wUpd->operands[1];
    if (w->op != OpKind::Param || wNew->op != OpKind::Add || wNew->operands[0] != w ||
        !onlyUser(wNew, wUpd))
      continue;
    const Node *vel = wNew->operands[1];
    if (vel->op != OpKind::Sub)
      continue;
    const Node *inertia = vel->operands[0], *lrdir = vel->operands[1];
    if (inertia->op != OpKind::Mul || lrdir->op != OpKind::Mul)
      continue;
    const Node *v = inertia->operands[0], *momentum = inertia->operands[1];
    const Node *dir = lrdir->operands[0], *lr = lrdir->operands[1];
    if (v->op != OpKind::Param || v->getInt("trainable") || !updateOf.count(v) ||
        updateOf.at(v)->operands[1] != vel || dir->op != OpKind::Add)
      continue;
    const Node *grad = dir->operands[0], *decayed = dir->operands[1];
    if (decayed->op != OpKind::Mul || decayed->operands[0] != w)
      continue;
    const Node *decay = decayed->operands[1], *vUpd = updateOf.at(v);
    // vel's users: w.new and v's update, nothing else
    auto vu = users.find(vel);
    const bool velOk = f.useCount(vel) == 2 && vu != users.end() && vu->second.size() == 2 &&
                       ((vu->second[0] == wNew && vu->second[1] == vUpd) ||
                        (vu->second[0] == vUpd && vu->second[1] == wNew));
    if (!velOk || !onlyUser(inertia, vel) || !onlyUser(lrdir, vel) || !onlyUser(dir, lrdir) ||
        !onlyUser(decayed, dir) || !scalarInput(lr) || !scalarInput(momentum) ||
        !scalarInput(decay))
      continue;
    bool sameShape = true;
    for (const Node *n : {v, grad, decayed, dir, inertia, lrdir, vel, wNew})
      sameShape = sameShape && n->type == w->type;
    if (!sameShape || grad->op == OpKind::Param) // a param's buffer may change at the end
      continue;
    out.push_back({w, v, grad, lr, momentum, decay, wUpd, vUpd, {decayed, dir, inertia, lrdir, vel, wNew}});
  }
  return out;
}

} // namespace cnnc::codegen
