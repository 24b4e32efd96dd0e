// buildTrainStep: the training step as IR (forward, loss, backward, update in one function).
//   before: a verified training-mode forward function with exactly one loss output.
//   after:  @train_step (see Autodiff.h for its inputs and outputs); verified.
// The update is MatConvNet's SGD with momentum and weight decay (seed section 3.3, eq. 8):
//   v <- momentum * v - lr * (dz/dw + weight_decay * w);   w <- w + v
// with lr, momentum and weight_decay run-time inputs, not compile-time constants. Batch-norm
// running statistics follow r <- (1-a) r + a * batch_stat (the variance unbiased by bn_unbias,
// n/(n-1) at the batch the step runs at); they are
// found as the params %<bn>.mean and %<bn>.var of a batchnorm whose statistics are bn_mean /
// bn_var (the .cnn frontend's naming, docs/training.md). Updates the forward function
// already returns (the ONNX importer's running statistics, with each node's momentum) are
// kept as they are.
#include "passes/Autodiff.h"

#include <fmt/format.h>

namespace cnnc {

namespace {

struct Builder {
  Function &f;
  Loc loc;
  Node *node(OpKind op, const std::string &name, std::vector<Node *> ops, const std::string &comment = "") {
    Node *n = f.add(op, name, std::move(ops), {}, {}, loc, true);
    n->comment = comment;
    return n;
  }
  Node *input(const std::string &name, TensorType t) {
    if (Node *clash = f.find(name))
      throw Error(clash->loc, fmt::format("the training step needs an input named %{}, but the model "
                                          "already defines it: rename that layer", name));
    Node *n = f.add(OpKind::Input, name, {}, {}, std::move(t), loc);
    f.moveToFront(n); // dropout nodes anywhere in the forward pass read %step
    return n;
  }
  Node *scalar(double v, const std::string &name) {
    return f.add(OpKind::Constant, name, {}, {{"value", std::vector<double>{v}}}, {DType::F32, {}}, loc, true);
  }
};

} // namespace

void buildTrainStep(Function &f, const TrainStepOptions &opts) {
  Node *loss = nullptr;
  for (Node *o : f.outputs())
    if (o->info().loss) {
      if (loss)
        throw Error(o->loc, fmt::format("@{} returns two losses (%{} and %{}): training needs exactly one",
                                        f.name(), loss->name, o->name));
      loss = o;
    }
  if (!loss)
    throw Error(fmt::format("@{} has no loss to minimise: end the model with a loss layer "
                            "(`loss softmax` or `loss l2` in .cnn) and build it in training mode",
                            f.name()));
  Builder b{f, loss->loc};
  Node *lr = b.input("lr", {DType::F32, {}});
  Node *momentum = b.input("momentum", {DType::F32, {}});
  Node *decay = b.input("weight_decay", {DType::F32, {}});
  Node *step = b.input("step", {DType::I64, {}});

  std::vector<Node *> params, dropouts, bns;
  for (Node *n : f.nodeList()) {
    if (n->op == OpKind::Param && n->getInt("trainable"))
      params.push_back(n);
    if (n->op == OpKind::Dropout && n->getInt("training") && n->operands.size() == 1)
      n->operands.push_back(step); // masks advance with the step counter
    if (n->op == OpKind::BatchNorm && n->operands[3]->op == OpKind::BnMean)
      bns.push_back(n);
  }

  std::vector<Node *> outputs{loss};
  // before the backward nodes: the dump then reads forward, backward, update (ir/Sections.cpp)
  if (loss->op == OpKind::SoftmaxXent)
    outputs.push_back(b.node(OpKind::CountCorrect, "correct", {loss->operands[0], loss->operands[1]}));
  // State the frontend updates itself (an ONNX import's batch-norm running statistics,
  // frontend/OnnxOps.cpp): returned as they are
  for (Node *o : f.outputs())
    if (o->op == OpKind::Update)
      outputs.push_back(o);
  auto grads = appendGradients(f, loss, params);

  for (Node *p : params) {
    auto g = grads.find(p);
    if (g == grads.end())
      continue; // the loss does not depend on it: SGD leaves it as it is
    b.loc = p->loc;
    const std::string &w = p->name;
    Node *v = f.add(OpKind::Param, w + ".momentum", {}, {{"init", std::string("zeros")}, {"trainable", int64_t(0)}},
                    p->type, p->loc, true);
    Node *wd = b.node(OpKind::Mul, w + ".decay", {p, decay});
    Node *dir = b.node(OpKind::Add, w + ".dir", {g->second, wd}, "dz/dw + weight_decay * w");
    Node *vNew = b.node(OpKind::Sub, w + ".vel", {b.node(OpKind::Mul, w + ".inertia", {v, momentum}),
                                                 b.node(OpKind::Mul, w + ".lrdir", {dir, lr})},
                        "momentum * v - lr * dir (eq. 8 with momentum)");
    outputs.push_back(b.node(OpKind::Update, v->name + ".next", {v, vNew}));
    outputs.push_back(b.node(OpKind::Update, w + ".next", {p, b.node(OpKind::Add, w + ".new", {p, vNew}, "eq. 8")}));
  }

  for (Node *bn : bns) {
    Node *rm = f.find(bn->name + ".mean"), *rv = f.find(bn->name + ".var");
    if (!rm || !rv || rm->op != OpKind::Param || rv->op != OpKind::Param)
      continue; // no running statistics to keep (e.g. a hand-written training graph)
    b.loc = bn->loc;
    Node *x = bn->operands[0];
    const double a = opts.bnMomentum;
    Node *keep = b.scalar(1 - a, bn->name + ".keep"), *rate = b.scalar(a, bn->name + ".rate");
    // n/(n-1) counted on the batch the step runs at, not compiled in: a step compiled for a
    // maximum batch also runs a smaller last batch (docs/codegen.md, "Batch")
    Node *rateU = b.node(OpKind::Mul, bn->name + ".rate_unbiased",
                         {b.node(OpKind::BnUnbias, bn->name + ".unbias", {x}), rate});
    Node *m = b.node(OpKind::Add, rm->name + ".new",
                     {b.node(OpKind::Mul, rm->name + ".old", {rm, keep}), b.node(OpKind::Mul, rm->name + ".batch", {bn->operands[3], rate})},
                     "running mean: (1-a) r + a * batch mean");
    Node *v = b.node(OpKind::Add, rv->name + ".new",
                     {b.node(OpKind::Mul, rv->name + ".old", {rv, keep}), b.node(OpKind::Mul, rv->name + ".batch", {bn->operands[4], rateU})},
                     "running var: (1-a) r + a * unbiased batch var");
    outputs.push_back(b.node(OpKind::Update, rm->name + ".next", {rm, m}));
    outputs.push_back(b.node(OpKind::Update, rv->name + ".next", {rv, v}));
  }
  f.outputs() = outputs;
  f.setRole(FunctionRole::TrainStep);
  verify(f);
}

} // namespace cnnc
