// fuse-bn-grad: batch normalization's input gradient over batch statistics in one op.
//
// Autodiff (passes/GradRules.cpp) differentiates y = batchnorm(x, s, b, mean, var) with
// mean = bn_mean(x), var = bn_var(x, mean) term by term, so x's gradient is the sum of
//   dx.1 = batchnorm_grad(dy, x, s, mean, var) {wrt="x"}                  dy·s/σ
//   dx.2 = bn_var_grad(dvar, x, mean) {wrt="x"}                           2(x-μ)·dvar/M
//   dx.3 = bn_mean_grad(dvar.mean + dmean, x)                             (dmean + ...)/M
// with dvar = batchnorm_grad {wrt="var"}, dmean = batchnorm_grad {wrt="mean"} and
// dvar.mean = bn_var_grad {wrt="mean"}: nine passes over x-sized tensors per layer in a
// training step (three writes of dx terms, two adds, four reductions). With
// dscale = batchnorm_grad {wrt="scale"} = Σ dy·(x-μ)/σ and dbias = Σ dy, the sum is
//   dx = s/σ · (dy - dbias/M - (x-μ)/σ · dscale/M)        (M = numel(x)/C)
// once the terms in Σ(x-μ), zero for the batch mean, are dropped: one pass
// (bn_train_grad), after the two reductions that the scale's and bias's gradients need anyway.
//
// Matches: dx.1, dx.2 and dx.3 of the same (dy, x, s, mean, var, epsilon), each read once,
// by an add of autodiff's gradient sum (in any order; other terms of x's gradient, e.g. a
// residual branch's, stay), all three summed into one value, the partial sums read by the
// sum alone; dvar, dmean and dvar.mean used by those terms alone. dscale and dbias are reused when the
// function has them (a trainable scale and bias), else added.
// Guarantees: the adds that summed the three terms are bypassed (their users read the
// fused node or the other terms); values equal the chain's up to rounding and the dropped
// Σ(x-μ) terms (the test compares both with the f64 interpreter); the bypassed nodes are
// left for DCE. Runs after `grad`; bn_train_grad has no VJP rule.
#include "passes/Passes.h"

#include <map>
#include <set>

namespace cnnc {

namespace {

bool sameBn(const Node *g, const Node *bnx) {
  return g->op == OpKind::BatchNormGrad && g->operands == bnx->operands &&
         g->getFloat("epsilon") == bnx->getFloat("epsilon");
}

struct Uses {
  std::map<const Node *, std::vector<Node *>> users;
  std::map<const Node *, size_t> index;
  explicit Uses(Function &f) {
    auto nodes = f.nodeList();
    for (size_t i = 0; i < nodes.size(); ++i) {
      index[nodes[i]] = i;
      for (Node *o : nodes[i]->operands)
        users[o].push_back(nodes[i]);
    }
  }
  // n's one user when n is used once, by an add of two same-typed operands, not an output
  Node *soleAdd(Function &f, const Node *n) const {
    auto it = users.find(n);
    if (f.useCount(n) != 1 || it == users.end() || it->second.size() != 1)
      return nullptr;
    Node *a = it->second[0];
    return a->op == OpKind::Add && a->operands.size() == 2 &&
                   a->operands[0]->type == a->operands[1]->type && a->type == n->type
               ? a
               : nullptr;
  }
  bool onlyUsedBy(Function &f, const Node *n, std::initializer_list<const Node *> by) const {
    auto it = users.find(n);
    if (it == users.end())
      return true;
    int known = 0;
    for (const Node *u : it->second) {
      bool ok = false;
      for (const Node *b : by)
        ok |= u == b;
      if (!ok)
        return false;
      ++known;
    }
    return f.useCount(n) == known;
  }
};

bool rewrite(Function &f, Node *bnx) {
  if (bnx->op != OpKind::BatchNormGrad || bnx->getStr("wrt") != "x")
    return false;
  Node *dy = bnx->operands[0], *x = bnx->operands[1], *mean = bnx->operands[3],
       *var = bnx->operands[4];
  if (mean->op != OpKind::BnMean || mean->operands[0] != x || var->op != OpKind::BnVar ||
      var->operands[0] != x || var->operands[1] != mean)
    return false;
  const Uses u(f);
  Node *dx2 = nullptr, *dx3 = nullptr, *dscale = nullptr, *dbias = nullptr;
  for (Node *n : u.users.count(x) ? u.users.at(x) : std::vector<Node *>{}) {
    if (n->op == OpKind::BnVarGrad && n->getStr("wrt") == "x" && n->operands[2] == mean)
      dx2 = n;
    if (n->op == OpKind::BnMeanGrad)
      dx3 = n;
    if (sameBn(n, bnx) && n->getStr("wrt") == "scale")
      dscale = n;
  }
  if (!dx2 || !dx3)
    return false;
  // dx.2's dvar and dx.3's dmean + dvar.mean, from this batchnorm and used by them alone
  Node *dvar = dx2->operands[0], *g = dx3->operands[0];
  if (!sameBn(dvar, bnx) || dvar->getStr("wrt") != "var" || g->op != OpKind::Add)
    return false;
  Node *dmean = g->operands[0], *dvm = g->operands[1];
  if (dmean->op == OpKind::BnVarGrad)
    std::swap(dmean, dvm);
  if (!sameBn(dmean, bnx) || dmean->getStr("wrt") != "mean" || dvm->op != OpKind::BnVarGrad ||
      dvm->getStr("wrt") != "mean" || dvm->operands != std::vector<Node *>{dvar, x, mean} ||
      !u.onlyUsedBy(f, dvar, {dx2, dvm}) || !u.onlyUsedBy(f, g, {dx3}) ||
      !u.onlyUsedBy(f, dmean, {g}) || !u.onlyUsedBy(f, dvm, {g}))
    return false;
  // The sum: walking on from the terms, an add of a dropped term (dx.2, dx.3, or an add of
  // two dropped values) is bypassed to its other operand; a dropped value read by anything
  // else leaves the chain alone.
  if (!u.soleAdd(f, bnx) || !u.soleAdd(f, dx2) || !u.soleAdd(f, dx3))
    return false;
  std::set<const Node *> gone{dx2, dx3};
  std::vector<Node *> bypassed;
  auto nodes = f.nodeList();
  for (Node *n : nodes) {
    int dropped = 0;
    for (const Node *o : n->operands)
      dropped += gone.count(o);
    if (!dropped)
      continue;
    if (n->op != OpKind::Add || n->operands.size() != 2)
      return false;
    if (dropped == 2)
      gone.insert(n);
    else
      bypassed.push_back(n);
  }
  for (const Node *o : f.outputs())
    if (gone.count(o))
      return false;
  // one sum of all three terms: every add of the chain but the last is read once, by the
  // chain (a partial sum read elsewhere would change value)
  std::set<const Node *> chain(bypassed.begin(), bypassed.end());
  for (const Node *g : gone)
    if (g->op == OpKind::Add)
      chain.insert(g);
  int finals = 0;
  for (const Node *a : chain) {
    bool inChain = false;
    for (const Node *r : u.users.count(a) ? u.users.at(a) : std::vector<Node *>{})
      inChain |= chain.count(r) != 0;
    if (!inChain)
      ++finals;
    else if (f.useCount(a) != 1)
      return false;
  }
  if (finals != 1)
    return false;
  // dx.1 reaches the chain through adds read once (a residual branch's term added first):
  // their values change, so nothing else may read them
  const Node *a = u.soleAdd(f, bnx);
  while (a && !chain.count(a))
    a = u.soleAdd(f, a);
  if (!a)
    return false;
  for (Node *n : u.users.at(dy))
    if (n->op == OpKind::ReduceSum && n->type.shape == Shape{x->type.shape[1]}) {
      std::vector<int64_t> axes;
      for (int64_t d = 0; d < x->type.rank(); ++d)
        if (d != 1)
          axes.push_back(d);
      if (n->getInts("axes") == axes && n->getInt("keepdims") == 0)
        dbias = n;
    }
  // bnx's readers once the sum is bypassed: the fused node must precede the first of them
  // and follow dscale and dbias
  std::set<const Node *> skip(bypassed.begin(), bypassed.end());
  size_t first = SIZE_MAX;
  auto readerOf = [&](const Node *v) { // v read by a bypassed add: its readers read bnx
    std::vector<const Node *> todo{v}, out;
    while (!todo.empty()) {
      const Node *w = todo.back();
      todo.pop_back();
      for (const Node *r : u.users.count(w) ? u.users.at(w) : std::vector<Node *>{})
        if (skip.count(r))
          todo.push_back(r);
        else if (!gone.count(r))
          out.push_back(r);
    }
    return out;
  };
  for (const Node *r : readerOf(bnx))
    first = std::min(first, u.index.at(r));
  for (const Node *o : {dscale, dbias})
    if (o && first != SIZE_MAX && u.index.at(o) >= first)
      return false;
  Node *before = first == SIZE_MAX ? nullptr : nodes[first]; // (none: only outputs read it)
  const Loc loc = bnx->loc;
  auto make = [&](OpKind op, const std::string &name, std::vector<Node *> ops,
                  std::map<std::string, Attr> attrs) {
    Node *n = f.add(op, name, std::move(ops), std::move(attrs), {}, loc, true);
    if (before)
      f.moveBefore(n, before);
    return n;
  };
  const double eps = bnx->getFloat("epsilon");
  if (!dscale)
    dscale = make(OpKind::BatchNormGrad, bnx->name + ".dscale", bnx->operands,
                  {{"wrt", Attr(std::string("scale"))}, {"epsilon", Attr(eps)}});
  if (!dbias) {
    std::vector<int64_t> axes;
    for (int64_t d = 0; d < x->type.rank(); ++d)
      if (d != 1)
        axes.push_back(d);
    dbias = make(OpKind::ReduceSum, bnx->name + ".dbias", {dy}, {{"axes", Attr(axes)}});
  }
  Node *fused = make(OpKind::BnTrainGrad, bnx->name + ".batch",
                     {dy, x, bnx->operands[2], mean, var, dscale, dbias}, {{"epsilon", Attr(eps)}});
  fused->comment = "batchnorm's input gradient over batch statistics in one pass: "
                   "s/σ·(dy - Σdy/M - (x-μ)/σ·Σdy(x-μ)/(σM))";
  // the bypasses, in order (an add's other operand is read when it is bypassed, after the
  // bypasses before it), then bnx's remaining readers take the fused node
  for (Node *a : bypassed) {
    Node *other = gone.count(a->operands[0]) ? a->operands[1] : a->operands[0];
    f.replaceAllUses(a, other);
  }
  for (const Node *r : readerOf(bnx))
    for (Node *&o : const_cast<Node *>(r)->operands)
      if (o == bnx)
        o = fused;
  for (Node *&o : f.outputs()) // an output the sum reached (a gradient asked for by name)
    if (o == bnx)
      o = fused;
  return true;
}

} // namespace

bool fuseBatchNormGrad(Function &f) {
  bool changed = false;
  for (Node *n : f.nodeList())
    changed |= rewrite(f, n);
  return changed;
}

} // namespace cnnc
