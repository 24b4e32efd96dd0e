// The batch rules of the ops whose `batch:` trait in ir/Ops.def is `custom` (the others
// follow one of the shared rules in Plan.cpp's analyseBatch). One rule per such op, found by
// customBatchRule(op); BatchRules.cpp builds that table from Ops.def, so an op marked custom
// without a rule fails the build naming it.
#pragma once

#include "ir/OpTraits.h"

#include <functional>
#include <initializer_list>
#include <map>
#include <string>

namespace cnnc::codegen {

/// What a batch rule sees of one node and decides (Plan.cpp's analyseBatch explains the
/// batch dims).
struct BatchCtx {
  const Node &n;
  const std::map<const Node *, int> &batchDim;   // of the earlier nodes; -1 = not batched
  int64_t NB;                                    // the compiled (maximum) batch
  std::function<void(const std::string &)> fail; // the function becomes fixed-batch, naming why
  int r = n.type.rank();
  bool anyB = false; // some operand carries the batch
  int out = -1;      // the rule's answer: the result's batch dim (-1: not batched)

  int bd(int i) const { return batchDim.at(n.operands[i]); }
  bool B(int i) const { return bd(i) >= 0; }
  /// Ops on N×C×... tensors: the batch must be dim 0 of each of these batched operands.
  void leading(std::initializer_list<int> ops);
};

using BatchRuleFn = void (*)(BatchCtx &);
/// The rule of an op whose batch trait is custom; nullptr for the others.
BatchRuleFn customBatchRule(OpKind k);

inline int normAxis(int64_t axis, int rank) {
  return (int)(axis < 0 ? axis + rank : axis);
}

} // namespace cnnc::codegen
