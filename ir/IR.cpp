#include "ir/IR.h"

#include <fmt/format.h>

#include <algorithm>

namespace cnnc {

// ---------------------------------------------------------------------------- Node --
const Attr &Node::get(std::string_view name) const {
  auto it = attrs.find(std::string(name));
  if (it != attrs.end())
    return it->second;
  const AttrSpec *spec = info().attr(name);
  if (!spec)
    CNNC_INTERNAL(fmt::format("op {} has no attribute '{}'", info().mnemonic, name));
  if (!spec->defaultValue)
    CNNC_INTERNAL(fmt::format("{}: required attribute '{}' missing", describe(), name));
  return *spec->defaultValue;
}

template <class T> static const T &getAs(const Node &n, std::string_view name) {
  const Attr &a = n.get(name);
  if (!std::holds_alternative<T>(a))
    CNNC_INTERNAL(fmt::format("{}: attribute '{}' has the wrong kind", n.describe(), name));
  return std::get<T>(a);
}

int64_t Node::getInt(std::string_view name) const { return getAs<int64_t>(*this, name); }
double Node::getFloat(std::string_view name) const { return getAs<double>(*this, name); }
std::vector<int64_t> Node::getInts(std::string_view name) const {
  return getAs<std::vector<int64_t>>(*this, name);
}
std::vector<double> Node::getFloats(std::string_view name) const {
  return getAs<std::vector<double>>(*this, name);
}
std::string Node::getStr(std::string_view name) const { return getAs<std::string>(*this, name); }

std::string Node::describe() const {
  std::string s = fmt::format("node %{} ({})", name, info().mnemonic);
  if (loc.known())
    s += " at " + loc.str();
  return s;
}

// ---------------------------------------------------------------------------- Function --
Node *Function::add(OpKind op, std::string name, std::vector<Node *> operands,
                    std::map<std::string, Attr> attrs, GivenType type, Loc loc, bool uniquify) {
  if (byName_.count(name)) {
    if (!uniquify)
      throw Error(loc, fmt::format("value %{} is defined twice in function @{}", name, name_));
    for (int i = 1;; ++i) {
      std::string cand = fmt::format("{}.{}", name, i);
      if (!byName_.count(cand)) {
        name = cand;
        break;
      }
    }
  }
  auto n = std::make_unique<Node>();
  n->op = op;
  n->name = std::move(name);
  n->operands = std::move(operands);
  n->attrs = std::move(attrs);
  n->loc = std::move(loc);
  if (type.type)
    n->type = std::move(*type.type);
  else if (n->info().source)
    CNNC_INTERNAL(fmt::format("{}: a source needs its type", n->describe()));
  else
    n->type = inferType(*n); // (throws before the node is appended)
  Node *raw = n.get();
  byName_[raw->name] = raw;
  nodes_.push_back(std::move(n));
  return raw;
}

Node *Function::find(std::string_view name) const {
  auto it = byName_.find(name);
  return it == byName_.end() ? nullptr : it->second;
}

void Function::moveToFront(Node *n) {
  CNNC_ASSERT(n->operands.empty(), "only sources can move to the front");
  auto it = std::find_if(nodes_.begin(), nodes_.end(), [&](const auto &p) { return p.get() == n; });
  CNNC_ASSERT(it != nodes_.end(), "node not in this function");
  std::rotate(nodes_.begin(), it, it + 1);
}

void Function::moveBefore(Node *n, const Node *pos) {
  auto at = [&](const Node *x) {
    auto it = std::find_if(nodes_.begin(), nodes_.end(), [&](const auto &p) { return p.get() == x; });
    CNNC_ASSERT(it != nodes_.end(), "node not in this function");
    return it;
  };
  auto from = at(n), to = at(pos);
  for (const Node *o : n->operands)
    CNNC_ASSERT(at(o) < to, "moveBefore would place a node before its operand");
  if (from > to)
    std::rotate(to, from, from + 1);
  else if (from < to)
    std::rotate(from, from + 1, to);
}

std::vector<Node *> Function::nodeList() const {
  std::vector<Node *> out;
  for (auto &n : nodes_)
    out.push_back(n.get());
  return out;
}

void Function::replaceAllUses(Node *from, Node *to) {
  for (auto &n : nodes_)
    for (Node *&o : n->operands)
      if (o == from)
        o = to;
  for (Node *&o : outputs_)
    if (o == from)
      o = to;
}

int Function::useCount(const Node *n) const {
  int c = 0;
  for (auto &m : nodes_)
    for (Node *o : m->operands)
      c += o == n;
  for (Node *o : outputs_)
    c += o == n;
  return c;
}

// ---------------------------------------------------------------------------- Module --
Function &Module::addFunction(std::string name) {
  if (find(name))
    throw Error(fmt::format("function @{} is defined twice", name));
  functions_.push_back(std::make_unique<Function>(std::move(name)));
  return *functions_.back();
}

Function &Module::adopt(std::unique_ptr<Function> f) {
  if (find(f->name()))
    throw Error(fmt::format("function @{} is defined twice", f->name()));
  functions_.push_back(std::move(f));
  return *functions_.back();
}

std::unique_ptr<Function> Module::release(std::string_view name) {
  for (auto it = functions_.begin(); it != functions_.end(); ++it)
    if ((*it)->name() == name) {
      auto f = std::move(*it);
      functions_.erase(it);
      return f;
    }
  CNNC_INTERNAL(fmt::format("no function @{} to release", name));
}

Function *Module::find(std::string_view name) const {
  for (auto &f : functions_)
    if (f->name() == name)
      return f.get();
  return nullptr;
}

Function *Module::find(FunctionRole role) const {
  for (auto &f : functions_)
    if (f->role() == role)
      return f.get();
  return nullptr;
}

/// The textual form of a role: the function's name.
static const char *roleName(FunctionRole r) {
  switch (r) {
  case FunctionRole::Infer:
    return "infer";
  case FunctionRole::TrainStep:
    return "train_step";
  case FunctionRole::Other:
    return nullptr;
  }
  CNNC_INTERNAL("bad function role");
}

void Function::setRole(FunctionRole r) {
  role_ = r;
  if (const char *n = roleName(r))
    name_ = n;
}

FunctionRole roleOfName(std::string_view name) {
  for (FunctionRole r : {FunctionRole::Infer, FunctionRole::TrainStep})
    if (name == roleName(r))
      return r;
  return FunctionRole::Other;
}

Function &Module::main() const {
  CNNC_ASSERT(!functions_.empty(), "module has no function");
  return *functions_.front();
}

} // namespace cnnc
