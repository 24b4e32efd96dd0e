// The verifier: everything a pass or frontend may assume about a function.
//  1. Operands are nodes of this function defined before their user (SSA, topological order).
//  2. Operand counts and attribute names/kinds match the op table; sources have no operands.
//  3. Every dimension is non-negative (0: a zero-size tensor); param init schemes are known.
//  4. Every non-source node's type equals what its shape rule derives.
//  5. The function returns at least one value; every `update` is returned, and no param is
//     updated twice (an update is the param's value after the function, written in place).
#include "ir/IR.h"
#include "ir/ParamInit.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace cnnc {

namespace detail {
// Operand counts and attribute names/kinds: checked before any shape rule looks at a node.
void checkSignature(const Node &n) {
  const OpInfo &info = n.info();
  auto fail = [&](const std::string &msg) {
    throw Error(n.loc, fmt::format("%{} ({}): {}", n.name, info.mnemonic, msg));
  };
  int count = (int)n.operands.size(), lo = info.minOperands(), hi = info.maxOperands();
  if (count < lo || (hi >= 0 && count > hi)) {
    std::vector<std::string> names;
    for (const OperandSpec &o : info.operands)
      names.push_back(o.name + (o.optional ? "?" : o.variadic ? "*" : ""));
    fail(fmt::format("takes operands ({}), got {}", fmt::join(names, ", "), count));
  }
  for (auto &[name, value] : n.attrs) {
    const AttrSpec *spec = info.attr(name);
    if (!spec)
      fail(fmt::format("unknown attribute '{}'", name));
    if (attrKindOf(value) != spec->kind)
      fail(fmt::format("attribute '{}' must be {}, got {}", name, attrKindName(spec->kind),
                       attrStr(value)));
  }
  for (const AttrSpec &spec : info.attrs)
    if (!spec.defaultValue && !n.attrs.count(spec.name))
      fail(fmt::format("missing required attribute '{}'", spec.name));
}
} // namespace detail

void verify(const Function &f) {
  std::set<const Node *> defined;
  for (const auto &up : f.nodes()) {
    const Node &n = *up;
    auto fail = [&](const std::string &msg) {
      throw Error(n.loc, fmt::format("%{} ({}): {}", n.name, n.info().mnemonic, msg));
    };
    for (const Node *o : n.operands)
      if (!defined.count(o))
        fail(fmt::format("operand %{} is not defined before its use", o->name));
    detail::checkSignature(n);
    // Bounded over the nonzero dims: a zero-size [0,2^40,2^40] still has partial products
    // (strides, per-example sizes) that must not overflow.
    // The compiled library's descriptors (runtime/CnncModel.h) hold 8 dims; one limit for
    // every backend keeps the interpreter from accepting what codegen cannot compile.
    if (n.type.rank() > kMaxRank)
      fail(fmt::format("tensors of rank > {} are not supported, got {}", kMaxRank, n.type.str()));
    int64_t numel = 1;
    for (int64_t d : n.type.shape) {
      if (d < 0)
        fail(fmt::format("dimension sizes must be non-negative, got {}", n.type.str()));
      if (__builtin_mul_overflow(numel, std::max<int64_t>(d, 1), &numel) ||
          numel > (int64_t(1) << 40))
        fail(fmt::format("tensor {} is too large (more than 2^40 elements)", n.type.str()));
    }
    if (n.op == OpKind::Param && !validInitScheme(n.getStr("init")))
      fail(fmt::format("unknown init scheme \"{}\"", n.getStr("init")));
    TensorType derived = inferType(n);
    if (derived != n.type)
      fail(fmt::format("declared type {} but the shape rule gives {}", n.type.str(), derived.str()));
    defined.insert(&n);
  }
  if (f.outputs().empty())
    throw Error(fmt::format("function @{} returns nothing", f.name()));
  for (const Node *o : f.outputs())
    if (!defined.count(o))
      throw Error(fmt::format("function @{} returns %{}, which it does not define", f.name(), o->name));
  std::set<const Node *> outs(f.outputs().begin(), f.outputs().end()), updated;
  for (const auto &n : f.nodes()) {
    if (n->op != OpKind::Update)
      continue;
    if (!outs.count(n.get()))
      throw Error(n->loc, fmt::format("%{} (update): an update must be returned by the function", n->name));
    if (!updated.insert(n->operands[0]).second)
      throw Error(n->loc, fmt::format("%{} (update): param %{} is updated twice", n->name, n->operands[0]->name));
  }
}

void verify(const Module &m) {
  for (const auto &f : m.functions())
    verify(*f);
}

} // namespace cnnc
