// The importer's operators as documentation rows: what each ONNX operator becomes in the IR
// and which of its attributes and inputs are read. `cnnc ops --onnx` renders them (with the
// gradient table's verdict per IR op) into docs/onnx.md's operator table. The rows are checked
// against the lowering table itself: an operator the importer reads without a row here, or a
// row for one it does not read, is an internal error, so the table cannot drift. A Direct op
// of onnxForm (one input per operand, no attributes) needs no row: its row is derived.
#include "frontend/OnnxImport.h"
#include "frontend/OnnxForm.h"
#include "frontend/OnnxImporter.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <set>

namespace cnnc {

namespace {

using K = OpKind;
const char *const kFolded = "folded into a constant at import (static shapes)";

// The operators that are more than an op's Direct form: composites, attributes, broadcasting.
const std::vector<OnnxOperatorDoc> &rows() {
  static const std::vector<OnnxOperatorDoc> r = {
      {"Add", {K::Add}, "numpy broadcasting; opset 6 `broadcast`, `axis`"},
      {"ArgMax", {K::ArgMax}, "`axis`, `keepdims`, `select_last_index`"},
      {"AveragePool", {K::AvgPool, K::Identity}, "2-D: `kernel_shape`, `strides`, `pads`, `auto_pad`, `ceil_mode`, `count_include_pad`"},
      {"BatchNormalization", {K::BatchNorm, K::BnMean, K::BnVar, K::BnUnbias}, "`epsilon`, `momentum`, opset 6 `is_test`/`spatial`; training mode: batch statistics and running-statistics outputs"},
      {"Cast", {}, kFolded},
      {"Clip", {K::Clip}, "`min`, `max` (attributes before opset 11, constant inputs from 11)"},
      {"Concat", {K::Concat}, "`axis`"},
      {"Constant", {K::Constant}, "`value`"},
      {"ConstantOfShape", {}, kFolded},
      {"Conv", {K::Conv2d}, "2-D: `kernel_shape`, `strides`, `pads`, `dilations`, `group`, `auto_pad`"},
      {"ConvTranspose", {K::Conv2dGradInput, K::Add}, "2-D: `strides`, `pads`, `dilations`, `group`, `output_padding`, `output_shape`, `auto_pad`"},
      {"DepthToSpace", {K::Reshape, K::Transpose}, "`blocksize`, `mode` (DCR, CRD)"},
      {"Div", {K::Div}, "numpy broadcasting"},
      {"Dropout", {K::Dropout}, "`ratio`, `training_mode`, `seed`"},
      {"Elu", {K::Elu}, "`alpha`"},
      {"Expand", {K::Expand}, "`shape` known at compile time"},
      {"Flatten", {K::Flatten}, "`axis`"},
      {"Gather", {}, kFolded},
      {"Gemm", {K::FullyConnected, K::MatMul, K::Mul, K::Add}, "`alpha`, `beta`, `transA`, `transB`"},
      {"GlobalAveragePool", {K::GlobalAvgPool}, "2-D"},
      {"GlobalMaxPool", {K::ReduceMax}, "any spatial rank"},
      {"HardSigmoid", {K::HardSigmoid}, "`alpha`, `beta`"},
      {"Identity", {K::Identity}, ""},
      {"InstanceNormalization", {K::ReduceSum, K::Mul, K::Sub, K::Add, K::Sqrt, K::Reciprocal, K::Reshape}, "`epsilon`"},
      {"LayerNormalization", {K::ReduceSum, K::Mul, K::Sub, K::Add, K::Sqrt, K::Reciprocal}, "`axis`, `epsilon`, `stash_type` 1; outputs Mean and InvStdDev"},
      {"LeakyRelu", {K::LeakyRelu}, "`alpha`"},
      {"LogSoftmax", {K::LogSoftmax}, "`axis` (opset < 13: 2-D coercion)"},
      {"LRN", {K::Mul, K::Reshape, K::AvgPool, K::Add, K::Pow, K::Div}, "`size`, `alpha`, `beta`, `bias`"},
      {"MatMul", {K::MatMul, K::BatchMatMul, K::Reshape}, "1-D, 2-D and broadcast N-D operands"},
      {"Max", {K::Max, K::Identity}, "variadic, numpy broadcasting"},
      {"MaxPool", {K::MaxPool}, "2-D: `kernel_shape`, `strides`, `pads`, `dilations`, `ceil_mode`, `auto_pad` (no Indices output)"},
      {"Mean", {K::Add, K::Mul, K::Identity}, "variadic, numpy broadcasting"},
      {"Min", {K::Min, K::Identity}, "variadic, numpy broadcasting"},
      {"Mul", {K::Mul}, "numpy broadcasting"},
      {"Pad", {K::Pad, K::Identity}, "`mode` (constant, reflect, edge), `pads` >= 0, `constant_value`"},
      {"Pow", {K::Pow}, "f32 exponent"},
      {"PRelu", {K::PRelu}, "slope broadcasting to the input"},
      {"Range", {}, kFolded},
      {"ReduceL2", {K::Mul, K::ReduceSum, K::Sqrt, K::Identity}, "`axes`, `keepdims`, `noop_with_empty_axes`"},
      {"ReduceMax", {K::ReduceMax, K::Identity}, "`axes`, `keepdims`, `noop_with_empty_axes`"},
      {"ReduceMean", {K::ReduceSum, K::Mul}, "`axes`, `keepdims`"},
      {"ReduceMin", {K::ReduceMin, K::Identity}, "`axes`, `keepdims`, `noop_with_empty_axes`"},
      {"ReduceSum", {K::ReduceSum, K::Identity}, "`axes`, `keepdims`, `noop_with_empty_axes`"},
      {"Reshape", {K::Reshape}, "`shape` known at compile time, `allowzero`"},
      {"Resize", {K::BatchMatMul, K::Reshape, K::Expand}, "4-D; `mode` nearest or linear, `coordinate_transformation_mode` (not tf_crop_and_resize), `nearest_mode`, scales or sizes known at compile time"},
      {"Selu", {K::Selu}, "`alpha`, `gamma`"},
      {"Shape", {}, kFolded},
      {"Slice", {K::Slice, K::Identity}, "`starts`, `ends`, `axes`, `steps` = 1"},
      {"Softmax", {K::Softmax}, "`axis` (opset < 13: 2-D coercion)"},
      {"SoftmaxCrossEntropyLoss", {K::SoftmaxXent, K::SoftmaxXentNd, K::LogSoftmax}, "`reduction`, `ignore_index`, class weights; `log_prob` output"},
      {"SpaceToDepth", {K::Reshape, K::Transpose}, "`blocksize`"},
      {"Split", {K::Slice}, "`axis`, `split`"},
      {"Squeeze", {K::Reshape}, "`axes`"},
      {"Sub", {K::Sub}, "numpy broadcasting"},
      {"Sum", {K::Add, K::Identity}, "variadic, numpy broadcasting"},
      {"Tile", {K::Reshape, K::Expand}, "`repeats` known at compile time"},
      {"Transpose", {K::Transpose}, "`perm`"},
      {"Unsqueeze", {K::Reshape}, "`axes`"},
      {"Upsample", {K::BatchMatMul, K::Reshape, K::Expand}, "4-D; `mode` nearest or linear, `scales`"},
  };
  return r;
}

} // namespace

std::vector<OnnxOperatorDoc> onnxOperatorDocs() {
  std::vector<OnnxOperatorDoc> all = rows();
  std::set<std::string> read, documented;
  for (const OnnxOperatorDoc &d : all)
    documented.insert(d.opType);
  for (const OpInfo &op : allOps()) // a Direct op's row, unless rows() says more
    if (onnximp::OnnxForm form = onnximp::onnxForm(op.kind);
        form.kind == onnximp::OnnxForm::Direct && documented.insert(form.opType).second)
      all.push_back({form.opType, {op.kind}, ""});
  auto lower = [](std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
  };
  std::sort(all.begin(), all.end(), [&](const OnnxOperatorDoc &a, const OnnxOperatorDoc &b) {
    return lower(a.opType) < lower(b.opType);
  });
  for (const auto &[opType, fn] : onnximp::loweringTable())
    read.insert(opType);
  std::vector<std::string> missing, extra;
  for (const std::string &t : read)
    if (!documented.count(t))
      missing.push_back(t);
  for (const std::string &t : documented)
    if (!read.count(t))
      extra.push_back(t);
  if (!missing.empty() || !extra.empty())
    CNNC_INTERNAL(fmt::format("frontend/OnnxOpsDoc.cpp is out of date: no row for [{}]; rows "
                              "for operators the importer does not read: [{}]",
                              fmt::join(missing, ", "), fmt::join(extra, ", ")));
  return all;
}

} // namespace cnnc
