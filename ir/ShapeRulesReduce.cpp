// Shape rules of the extremum reductions imported models bring (ReduceMax/ReduceMin,
// GlobalMaxPool, ArgMax) and of the tie mask their gradient uses. Same contract as
// ShapeRules.cpp, whose op-table switch calls these.
#include "ir/ShapeRuleUtil.h"

#include <fmt/format.h>

namespace cnnc {

using namespace shape;

TensorType inferReduceSum(const Node &n); // ShapeRules.cpp: the same axes and keepdims rule

// An extremum of an empty extent has no value (ONNX's -inf/+inf identity is no maximum).
static TensorType extremum(const Node &n) {
  requireFloat(n);
  const TensorType &x = in(n, 0);
  for (int64_t a : n.getInts("axes"))
    if (x.shape[normAxis(n, a, x.rank())] == 0)
      fail(n, fmt::format("the extremum over the empty axis {} of {} is undefined", a, x.str()));
  return inferReduceSum(n);
}
TensorType inferReduceMax(const Node &n) { return extremum(n); }
TensorType inferReduceMin(const Node &n) { return extremum(n); }

TensorType inferArgMax(const Node &n) {
  requireFloat(n);
  const TensorType &x = in(n, 0);
  if (x.rank() == 0)
    fail(n, "needs an input of rank >= 1");
  const int64_t axis = normAxis(n, n.getInt("axis"), x.rank());
  if (x.shape[axis] == 0)
    fail(n, fmt::format("axis {} of {} is empty: there is no largest element", axis, x.str()));
  Shape out;
  for (int d = 0; d < x.rank(); ++d)
    if (d != axis)
      out.push_back(x.shape[d]);
    else if (n.getInt("keepdims"))
      out.push_back(1);
  return {DType::I64, out};
}

TensorType inferEqualMask(const Node &n) {
  requireFloat(n);
  requireSameDType(n);
  return broadcast(n);
}

} // namespace cnnc
