// Per-node statistics of a model, as `cnnc info` reports them: parameters, multiply-adds,
// activation memory, and the receptive field in the seed's section 8.2 sense.
#pragma once

#include "ir/IR.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cnnc {

struct NodeStats {
  const Node *node = nullptr;
  int64_t params = 0;          // elements of the param operands this node consumes
  int64_t macs = 0;            // multiply-adds of one forward pass (whole batch)
  int64_t activationBytes = 0; // bytes of the node's result
  /// Receptive field: the spatial extent [rows, cols] in this node's (first 4-D) input on
  /// which one element of the chosen node's output depends, padded pixels included (seed
  /// section 8.2). Empty when the node is not upstream of the chosen node or not spatial.
  std::optional<std::pair<int64_t, int64_t>> receptiveField;
};

struct ModelStats {
  std::vector<NodeStats> nodes; // one per non-source node, in function order
  int64_t totalParams = 0;      // every param node's numel (counted once even if shared)
  int64_t totalMacs = 0;
  int64_t totalActivationBytes = 0;
  const Node *rfTarget = nullptr; // the node whose output element the receptive fields describe
};

/// `rfTarget`: SSA name of the node whose output defines the receptive fields; empty = the
/// last pooling node (maxpool/avgpool/global_avgpool), else the last 4-D node.
ModelStats computeModelStats(const Function &f, const std::string &rfTarget = "");

/// The naive memory of a training step (issue 13), the yardstick of its compiled arena: the
/// bytes of every tensor `trainStep` produces — call it on @train_step right after the
/// `grad` pass, before any other — excluding params, their gradients and the update's
/// param-sized state: the `update` nodes, the SGD and running-statistics arithmetic that
/// computes each new value (the add/sub/mul chains from the update back to sources), and
/// each trainable param's gradient (the operand where that chain meets the backward pass).
int64_t naiveTrainBytes(const Function &trainStep);

} // namespace cnnc
