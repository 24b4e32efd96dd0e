// appendGradients: reverse-mode differentiation (seed section 3.4).
//   before: a verified function; `loss` a float scalar node of it.
//   after:  the same nodes, then the backward nodes; outputs unchanged. Every appended node
//           is located at the forward node it differentiates and typed by its shape rule.
// Algorithm:
//   1. relevant = nodes on a path from some wrt node to the loss (others get no adjoint);
//   2. the loss's adjoint is the constant 1;
//   3. nodes in reverse order: a node's adjoint is the sum of its users' contributions (in
//      the order they were made: deterministic), and its rule (GradRules.cpp) turns it into
//      contributions for its relevant operands.
#include "passes/Autodiff.h"
#include "passes/GradRules.h"

#include <fmt/format.h>

#include <set>

namespace cnnc {

namespace grad {

Node *Context::make(OpKind op, const std::string &suffix, std::vector<Node *> operands,
                    std::map<std::string, Attr> attrs, const std::string &eq) {
  Node *x = f.add(op, n.name + "." + suffix, std::move(operands), std::move(attrs), {}, n.loc, true);
  // every backward node says where it comes from; a rule with nothing more particular to
  // say is the chain rule itself
  x->comment = eq.empty() ? "chain rule (eqs. 10-11)" : eq;
  return x;
}

Node *Context::scalar(double v, const std::string &suffix) {
  Node *x = f.add(OpKind::Constant, n.name + "." + suffix, {}, {{"value", std::vector<double>{v}}},
                  {n.type.dtype == DType::F64 ? DType::F64 : DType::F32, {}}, n.loc, true);
  return x;
}

Node *Context::reshape(Node *x, const Shape &shape, const std::string &suffix, const std::string &why) {
  if (x->type.shape == shape)
    return x;
  return make(OpKind::Reshape, suffix, {x}, reshapeAttrs(shape),
              why.empty() ? "the same values, another shape: vec() is unchanged (section 2.1)" : why);
}

Node *Context::sumTo(Node *g, const Shape &shape, const std::string &suffix) {
  const Shape &gs = g->type.shape;
  if (gs == shape)
    return g;
  size_t lead = gs.size() - shape.size();
  std::vector<int64_t> axes;
  for (size_t i = 0; i < gs.size(); ++i)
    if (i < lead || (shape[i - lead] == 1 && gs[i] != 1))
      axes.push_back((int64_t)i);
  Node *s = make(OpKind::ReduceSum, suffix + ".sum", {g}, {{"axes", axes}, {"keepdims", int64_t(1)}},
                 "a broadcast value's gradient sums over the axes it was copied along");
  return reshape(s, shape, suffix);
}

} // namespace grad

std::map<const Node *, Node *> appendGradients(Function &f, Node *loss, const std::vector<Node *> &wrt) {
  if (loss->type.rank() != 0 || !isFloat(loss->type.dtype))
    throw Error(loss->loc, fmt::format("%{} ({}): a loss must be a float scalar, got {}", loss->name,
                                       loss->info().mnemonic, loss->type.str()));
  std::vector<Node *> nodes = f.nodeList(); // the forward nodes only

  // 1. Nodes that depend on a wrt node, then those of them the loss depends on.
  std::set<const Node *> fromWrt(wrt.begin(), wrt.end()), relevant;
  for (Node *n : nodes)
    for (Node *o : n->operands)
      if (fromWrt.count(o))
        fromWrt.insert(n);
  std::set<const Node *> toLoss{loss};
  for (auto it = nodes.rbegin(); it != nodes.rend(); ++it)
    if (toLoss.count(*it))
      toLoss.insert((*it)->operands.begin(), (*it)->operands.end());
  for (const Node *n : fromWrt)
    if (toLoss.count(n))
      relevant.insert(n);

  // 2-3. Adjoint contributions, accumulated in creation order.
  std::map<const Node *, std::vector<Node *>> contrib;
  std::map<const Node *, Node *> adjoint; // every node that has one, wrt nodes included
  if (relevant.count(loss)) {
    Node *one = f.add(OpKind::Constant, loss->name + ".dz", {}, {{"value", std::vector<double>{1.0}}},
                      loss->type, loss->loc, true);
    one->comment = "dz/dz = 1";
    contrib[loss].push_back(one);
  }
  for (auto it = nodes.rbegin(); it != nodes.rend(); ++it) {
    Node *n = *it;
    auto c = contrib.find(n);
    if (c == contrib.end())
      continue;
    Node *dy = c->second[0];
    for (size_t i = 1; i < c->second.size(); ++i) {
      dy = f.add(OpKind::Add, n->name + ".grad", {dy, c->second[i]}, {}, {}, n->loc, true);
      dy->comment = "a value used several times: its gradients add up";
    }
    adjoint[n] = dy;
    grad::Context ctx{f, *n, dy, {}};
    bool any = false;
    for (Node *o : n->operands) {
      ctx.need.push_back(relevant.count(o) != 0);
      any |= ctx.need.back();
    }
    if (!any)
      continue;
    std::vector<Node *> g = grad::vjp(ctx);
    for (size_t i = 0; i < n->operands.size(); ++i)
      if (ctx.need[i] && i < g.size() && g[i])
        contrib[n->operands[i]].push_back(g[i]);
  }
  // The wrt nodes are forward nodes: the loop above already summed their contributions.
  std::map<const Node *, Node *> out;
  for (Node *w : wrt)
    if (auto a = adjoint.find(w); a != adjoint.end())
      out[w] = a->second;
  return out;
}

} // namespace cnnc
