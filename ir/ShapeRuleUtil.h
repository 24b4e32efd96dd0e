// The helpers the shape rules share (ShapeRules*.cpp): checked size arithmetic, operand and
// attribute checks, window sizes, broadcasting. Internal to ir/; every failure throws the
// node's error ("%name (op): why", at its location).
#pragma once

#include "ir/IR.h"

#include <string>
#include <vector>

namespace cnnc::shape {

[[noreturn]] void fail(const Node &n, const std::string &msg);
const TensorType &in(const Node &n, size_t i);
// Checked size arithmetic (ir/Checked.h): an overflow is the node's error.
int64_t add(const Node &n, int64_t a, int64_t b);
int64_t mul(const Node &n, int64_t a, int64_t b);
int64_t numel(const Node &n, const Shape &s);
void requireRank(const Node &n, size_t i, int rank, const char *what);
void requireFloat(const Node &n);     // every operand
void requireSameDType(const Node &n); // every operand like the first
/// A 2-value attribute (rows, columns), each >= min.
std::vector<int64_t> pairAttr(const Node &n, const char *name, int64_t min);
/// `pads` [top, left, bottom, right], non-negative.
std::vector<int64_t> padsAttr(const Node &n);
/// Output extent of a sliding window over `size` (+ padding), floor or ceil mode.
int64_t windowOut(const Node &n, const char *axis, int64_t size, int64_t padBegin, int64_t padEnd,
                  int64_t k, int64_t stride, int64_t dilation, bool ceil);
int64_t normAxis(const Node &n, int64_t axis, int rank, bool allowEnd = false);
TensorType same(const Node &n); // the first operand's type
TensorType pool(const Node &n, bool hasDilation);
TensorType broadcast(const Node &n); // numpy broadcasting of two operands
/// Operands from `from` on are per-channel vectors [C] of the first operand's [N, C, ...].
void requirePerChannel(const Node &n, size_t from);
/// A batch statistic needs at least one value per channel.
void requireNonEmptyStatistic(const Node &n, const TensorType &x);
/// The `input_shape` attribute of a gradient op (rank values, non-negative).
Shape inputShapeAttr(const Node &n, int rank);

} // namespace cnnc::shape
