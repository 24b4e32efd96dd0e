// The custom batch rules (BatchRules.h): for each op whose `batch:` trait is `custom`, where
// its result carries the mini-batch given where its operands do, and what makes the function
// fixed-batch. The shared rules, the invariants (a batched value's dims before the batch dim
// are 1, the batch dim is maxBatch·k) and the check of every rule's answer are Plan.cpp's
// analyseBatch; a rule here only sets `out` and calls `fail`.
#include "codegen/BatchRules.h"

#include <vector>

namespace cnnc::codegen {

void BatchCtx::leading(std::initializer_list<int> ops) {
  for (int i : ops)
    if (i < (int)n.operands.size() && B(i) && bd(i) != 0)
      fail("an operand carries the batch in another dim than 0");
}

namespace {

// the first dim of extent != 1 (rank if none)
int firstNonUnit(const TensorType &t) {
  int d = 0;
  while (d < t.rank() && t.shape[d] == 1)
    ++d;
  return d;
}

// One rule per op with batch:custom. kCustomBatch instantiates batchRule<K> for exactly
// those ops, so an op marked custom without a rule fails the build ("use of deleted function
// batchRule<OpKind::X>").
template <OpKind K> void batchRule(BatchCtx &c) = delete;

template <> void batchRule<OpKind::Input>(BatchCtx &c) {
  if (c.r >= 1) { // one example per row of dim 0 (the caller's buffers are batch-major)
    c.out = c.n.type.shape[0] == c.NB ? 0 : -1;
    if (c.out < 0)
      c.fail("inputs disagree on the batch size");
  }
}
void neverBatched(BatchCtx &) {}
template <> void batchRule<OpKind::Param>(BatchCtx &c) {
  neverBatched(c);
}
template <> void batchRule<OpKind::Constant>(BatchCtx &c) {
  neverBatched(c);
}

template <> void batchRule<OpKind::MatMul>(BatchCtx &c) {
  // rows (dim r-2 of a, not transposed) follow the batch: runtime M (inference's fc-like
  // products, eq. 45); a transposed a and b both batched in dim r-2: the product sums over
  // the batch, runtime K (eq. 35's φ(x)^T dY, fc's dw = dy^T x)
  const bool ta = c.n.getInt("trans_a"), tb = c.n.getInt("trans_b");
  if (c.B(0) && !c.B(1) && !ta && c.bd(0) == c.r - 2)
    c.out = c.r - 2;
  else if (c.B(0) && c.B(1) && ta && !tb && c.bd(0) == c.r - 2 && c.bd(1) == c.r - 2 &&
           c.n.operands[0]->type.shape[c.r - 2] == c.n.operands[1]->type.shape[c.r - 2])
    c.out = -1;
  else if (c.anyB)
    c.fail("the batch is neither the rows of the first operand nor the reduction of both");
}

template <> void batchRule<OpKind::Concat>(BatchCtx &c) {
  c.out = c.anyB ? 0 : -1;
  for (size_t i = 0; i < c.n.operands.size(); ++i)
    if (c.B((int)i) != c.anyB || (c.B((int)i) && c.bd((int)i) != 0))
      c.fail("concatenates batched and unbatched tensors");
  if (c.anyB && normAxis(c.n.getInt("axis"), c.r) == 0)
    c.fail("concatenates along the batch");
}

void reshapeRule(BatchCtx &c) {
  if (c.B(0)) { // each example's elements must stay whole rows of the result's batch dim
    const TensorType &x = c.n.operands[0]->type;
    const int64_t per = x.numel() / c.NB; // elements per example
    c.out = firstNonUnit(c.n.type);
    int64_t inner = 1;
    for (int d = c.out + 1; d < c.r; ++d)
      inner *= c.n.type.shape[d];
    if (c.out >= c.r || per % inner != 0 || c.n.type.shape[c.out] != c.NB * (per / inner))
      c.fail("reshapes across the batch");
  }
}
template <> void batchRule<OpKind::Flatten>(BatchCtx &c) {
  reshapeRule(c);
}
template <> void batchRule<OpKind::Reshape>(BatchCtx &c) {
  reshapeRule(c);
}

template <> void batchRule<OpKind::Transpose>(BatchCtx &c) {
  if (c.B(0)) {
    c.out = firstNonUnit(c.n.type);
    if (c.out >= c.r || c.n.getInts("perm")[c.out] != c.bd(0))
      c.fail("moves the batch behind another dim");
  }
}

template <> void batchRule<OpKind::Expand>(BatchCtx &c) {
  if (c.B(0)) {
    c.out = c.r - c.n.operands[0]->type.rank() + c.bd(0);
    if (c.n.type.shape[c.out] != c.n.operands[0]->type.shape[c.bd(0)])
      c.fail("expands along the batch");
  }
}

void reduceRule(BatchCtx &c) {
  if (c.B(0)) {
    std::vector<bool> red(c.n.operands[0]->type.rank(), false);
    for (int64_t a : c.n.getInts("axes"))
      red[normAxis(a, (int)red.size())] = true;
    if (!red[c.bd(0)]) { // kept: its place among the result's dims
      c.out = c.bd(0);
      if (!c.n.getInt("keepdims"))
        for (int d = 0; d < c.bd(0); ++d)
          c.out -= red[d];
    } // reduced: a runtime trip count, an unbatched result
  }
}
template <> void batchRule<OpKind::ReduceSum>(BatchCtx &c) {
  reduceRule(c);
}
template <> void batchRule<OpKind::ReduceMax>(BatchCtx &c) {
  reduceRule(c);
}
template <> void batchRule<OpKind::ReduceMin>(BatchCtx &c) {
  reduceRule(c);
}

template <> void batchRule<OpKind::Slice>(BatchCtx &c) {
  c.out = c.bd(0);
  if (c.out >= 0 && normAxis(c.n.getInt("axis"), c.r) == c.out)
    c.fail("slices the batch");
}

void padRule(BatchCtx &c) {
  c.out = c.bd(0); // the batch dim stays in place, unpadded
  const auto pads = c.n.getInts("pads");
  if (c.out >= 0 && (pads[c.out] || pads[c.out + c.r]))
    c.fail("pads the batch");
}
template <> void batchRule<OpKind::Pad>(BatchCtx &c) {
  padRule(c);
}
template <> void batchRule<OpKind::PadGrad>(BatchCtx &c) {
  padRule(c);
}

template <> void batchRule<OpKind::Conv2d>(BatchCtx &c) {
  c.leading({0, 3});
  c.out = c.B(0) ? 0 : -1;
  if ((c.n.operands.size() > 1 && c.B(1)) || (c.n.operands.size() > 2 && c.B(2)))
    c.fail("a weight operand carries the batch");
  if (c.n.operands.size() > 3 && c.B(3) != c.B(0)) // the residual: the result's own batch
    c.fail("the residual and the input disagree on carrying the batch");
}

template <> void batchRule<OpKind::Im2Row>(BatchCtx &c) {
  c.leading({0});
  if (c.B(0)) {
    c.out = 1; // [G, N·Ho·Wo, R]: rows are (n, oh, ow)
    if (c.n.getInt("groups") != 1)
      c.fail("im2row with groups > 1 puts the batch behind the groups (the rows' stride "
             "would follow the runtime batch)");
  }
}

template <> void batchRule<OpKind::Row2Im>(BatchCtx &c) {
  if (c.B(0)) {
    c.out = 0;
    if (c.bd(0) != 1 || c.n.getInt("groups") != 1)
      c.fail("row2im of rows that are not [1, N·Ho·Wo, R]");
  }
}

template <> void batchRule<OpKind::MaxPoolGrad>(BatchCtx &c) {
  c.leading({0, 1});
  c.out = c.B(0) ? 0 : -1;
  if (c.B(0) != c.B(1))
    c.fail("one operand carries the batch and the other does not");
}
template <> void batchRule<OpKind::AvgPoolGrad>(BatchCtx &c) {
  c.leading({0, 1});
  c.out = c.B(0) ? 0 : -1;
}
template <> void batchRule<OpKind::BnMeanGrad>(BatchCtx &c) {
  c.leading({0, 1});
  c.out = c.B(1) ? 0 : -1;
  if (c.B(0))
    c.fail("the mean's gradient carries the batch");
}

void bnGradRule(BatchCtx &c) {
  c.leading({0, 1});
  for (int i = 2; i < (int)c.n.operands.size(); ++i)
    if (c.B(i))
      c.fail("a per-channel operand carries the batch");
  if (c.B(0) != c.B(1))
    c.fail("one operand carries the batch and the other does not");
  c.out = c.B(1) && (c.n.op == OpKind::BnTrainGrad || c.n.getStr("wrt") == "x") ? 0 : -1;
}
template <> void batchRule<OpKind::BatchNormGrad>(BatchCtx &c) {
  bnGradRule(c);
}
template <> void batchRule<OpKind::BnTrainGrad>(BatchCtx &c) {
  bnGradRule(c);
}

template <> void batchRule<OpKind::BnVarGrad>(BatchCtx &c) {
  c.leading({1});
  if (c.B(0) || c.B(2))
    c.fail("a per-channel operand carries the batch");
  c.out = c.B(1) && c.n.getStr("wrt") == "x" ? 0 : -1;
}

void bnStatRule(BatchCtx &c) { // reduces over the batch with a runtime count: not batched
  c.leading({0});
  if (c.n.operands.size() > 1 && c.B(1))
    c.fail("the mean carries the batch");
}
template <> void batchRule<OpKind::BnMean>(BatchCtx &c) {
  bnStatRule(c);
}
template <> void batchRule<OpKind::BnVar>(BatchCtx &c) {
  bnStatRule(c);
}
template <> void batchRule<OpKind::BnUnbias>(BatchCtx &c) {
  bnStatRule(c);
}

// a loss (and the accuracy count) sums over the batch with a runtime count (eq. 35's K);
// φ(x)ᵀ·dY reduces over the batch's pixels (runtime K)
void pairReductionRule(BatchCtx &c) {
  c.leading({0, 1});
  if (c.B(0) != c.B(1))
    c.fail("one operand carries the batch and the other does not");
}
template <> void batchRule<OpKind::SoftmaxXent>(BatchCtx &c) {
  pairReductionRule(c);
}
template <> void batchRule<OpKind::L2Loss>(BatchCtx &c) {
  pairReductionRule(c);
}
template <> void batchRule<OpKind::CountCorrect>(BatchCtx &c) {
  pairReductionRule(c);
}
template <> void batchRule<OpKind::Conv2dGradFilter>(BatchCtx &c) {
  pairReductionRule(c);
}

void lossGradRule(BatchCtx &c) {
  c.leading({1, 2});
  if (c.B(0) || c.B(1) != c.B(2))
    c.fail("the operands do not carry the batch consistently");
  c.out = c.B(1) ? 0 : -1;
}
template <> void batchRule<OpKind::SoftmaxXentGrad>(BatchCtx &c) {
  lossGradRule(c);
}
template <> void batchRule<OpKind::L2LossGrad>(BatchCtx &c) {
  lossGradRule(c);
}

template <> void batchRule<OpKind::Update>(BatchCtx &c) {
  if (c.anyB)
    c.fail("a param's new value carries the batch");
}

constexpr auto kCustomBatch = opTable([]<OpKind K>() -> BatchRuleFn {
  if constexpr (opHasTrait(K, "batch:custom"))
    return &batchRule<K>;
  else
    return nullptr; // a shared rule of Plan.cpp
});

} // namespace

BatchRuleFn customBatchRule(OpKind k) {
  return kCustomBatch[(size_t)k];
}

} // namespace cnnc::codegen
