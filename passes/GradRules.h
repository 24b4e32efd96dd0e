// Internal to the autodiff pass: the context a gradient rule builds its nodes in.
#pragma once

#include "ir/IR.h"

#include <string>
#include <vector>

namespace cnnc::grad {

struct Context {
  Function &f;
  const Node &n;          // the forward node
  Node *dy;               // the adjoint of n's value (same type as n)
  std::vector<bool> need; // need[i]: operand i wants a gradient

  /// Appends a backward node named %<n>.<suffix>, located at n, typed by its shape rule,
  /// commented with the seed equation it implements.
  Node *make(OpKind op, const std::string &suffix, std::vector<Node *> operands,
             std::map<std::string, Attr> attrs = {}, const std::string &eq = "");
  Node *scalar(double v, const std::string &suffix);           // constant f32[] (n's dtype)
  Node *reshape(Node *x, const Shape &shape, const std::string &suffix, const std::string &why = "");
  /// Sums g over broadcast dimensions so that it has `shape` (the adjoint of broadcasting).
  Node *sumTo(Node *g, const Shape &shape, const std::string &suffix);
  Node *operand(size_t i) const { return n.operands[i]; }
};

/// Each operand's gradient contribution (nullptr where not needed or not differentiable).
std::vector<Node *> vjp(Context &c);

} // namespace cnnc::grad
