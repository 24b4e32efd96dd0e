#include "tools/Preprocess.h"

#include "io/Npz.h"

#include <fmt/format.h>

namespace cnnc::tools {

const Node *preprocessedInput(const Function &f) {
  for (const auto &n : f.nodes())
    if (n->op == OpKind::Input && isFloat(n->type.dtype) && n->type.rank() >= 2)
      return n.get();
  return nullptr;
}

// Nodes cannot be inserted in the middle of a function (the node list is the topological
// order), so the function is rebuilt: the same nodes in the same order, the new ones right
// after the input, and every former use of the input reading %X.scaled instead.
static std::unique_ptr<Function> rebuild(const Function &f, const Node *in) {
  auto g = std::make_unique<Function>(f.name());
  g->setRole(f.role()); // @infer keeps its role (and its name)
  std::map<const Node *, Node *> map;
  for (const auto &n : f.nodes()) {
    std::vector<Node *> ops;
    for (Node *o : n->operands)
      ops.push_back(map.at(o));
    Node *c = g->add(n->op, n->name, ops, n->attrs, n->type, n->loc);
    c->comment = n->comment;
    map[n.get()] = c;
    if (n.get() != in)
      continue;
    TensorType meanType = in->type;
    meanType.shape.erase(meanType.shape.begin()); // per example: [C,H,W], broadcast over N
    TensorType scalar = in->type;
    scalar.shape.clear();
    Node *mean =
        g->add(OpKind::Param, in->name + ".mean", {},
               {{"init", std::string("zeros")}, {"trainable", int64_t(0)}}, meanType, in->loc);
    Node *scale =
        g->add(OpKind::Param, in->name + ".scale", {},
               {{"init", std::string("ones")}, {"trainable", int64_t(0)}}, scalar, in->loc);
    Node *centered = g->add(OpKind::Sub, in->name + ".centered", {c, mean}, {}, in->type, in->loc);
    centered->comment = "preprocessing: minus the training set's per-pixel mean";
    Node *scaled =
        g->add(OpKind::Mul, in->name + ".scaled", {centered, scale}, {}, in->type, in->loc);
    map[n.get()] = scaled; // later nodes read the preprocessed input
  }
  for (const Node *o : f.outputs())
    g->outputs().push_back(map.at(o));
  return g;
}

void addInputPreprocessing(Module &m) {
  std::vector<std::string> names;
  for (const auto &f : m.functions())
    names.push_back(f->name());
  std::vector<std::unique_ptr<Function>> fs;
  for (const std::string &name : names) {
    std::unique_ptr<Function> f = m.release(name);
    const Node *in = preprocessedInput(*f);
    if (in && !f->find(in->name + ".mean"))
      f = rebuild(*f, in);
    fs.push_back(std::move(f));
  }
  for (auto &f : fs)
    m.adopt(std::move(f));
}

bool weightsHavePreprocessing(const Module &m, const std::string &npzPath) {
  const Node *in = preprocessedInput(m.main());
  if (!in)
    return false;
  std::map<std::string, io::Array> arrays;
  try {
    arrays = io::readNpz(npzPath);
  } catch (const io::FormatError &e) {
    throw Error(e.what());
  }
  return arrays.count(in->name + ".mean") && arrays.count(in->name + ".scale");
}

} // namespace cnnc::tools
