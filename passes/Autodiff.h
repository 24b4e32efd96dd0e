// Reverse-mode automatic differentiation and the training step, in the seed's vec/chain-rule
// formulation (section 3.4, eqs. 10-11): each op's vector-Jacobian product is one rule in
// GradRules.cpp, in the op table's order, citing the seed's equation it implements.
#pragma once

#include "ir/IR.h"

#include <map>
#include <vector>

namespace cnnc {

/// Appends to f the backward nodes of the scalar `loss` with respect to each node of `wrt`
/// and returns each one's gradient node (absent when the loss does not depend on it). Only
/// nodes on a path from `wrt` to the loss get adjoints (unused branches are pruned);
/// contributions to a value used several times are summed in use order.
std::map<const Node *, Node *> appendGradients(Function &f, Node *loss, const std::vector<Node *> &wrt);

namespace grad {
/// Whether op k has a gradient rule (passes/GradRules.cpp; false for the ops marked there as
/// not differentiable: indices, counts, backward ops). Some rules still reject particular
/// operand forms.
bool hasGradient(OpKind k);
} // namespace grad

struct TrainStepOptions {
  /// Running-statistics update rate of batch normalization: r <- (1-a)*r + a*batch_stat,
  /// with the unbiased batch variance (as PyTorch's momentum=0.1).
  double bnMomentum = 0.1;
};

/// Turns a training-mode forward function (the frontend with training=true: batch-norm batch
/// statistics, dropout on, one loss output) into @train_step, in place:
///  inputs   the mini-batch and labels as before, plus %lr, %momentum, %weight_decay (f32[])
///           and %step (i64[], advances the dropout masks);
///  outputs  %loss, %correct (for a softmax loss), then one `update` per trainable param
///           (SGD with momentum and weight decay, seed eq. 8), per momentum buffer, and per
///           batch-norm running statistic (those the function already returns, an ONNX
///           import's, kept as they are).
/// Throws cnnc::Error if the function has no loss.
void buildTrainStep(Function &f, const TrainStepOptions &opts = {});

} // namespace cnnc
