// Shape rules and the verifier: each inconsistency is one error naming the node.
#include "ir/IR.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>

using namespace cnnc;

static std::string errorOf(const std::string &body) {
  try {
    parseModule("func @f {\n" + body + "}\n", "v.ir");
  } catch (const Error &e) {
    return e.what();
  }
  return "(no error)";
}

TEST_CASE("conv2d output sizes: stride, dilation, asymmetric padding, groups", "[ir][shape]") {
  Function f("f");
  Node *x = f.add(OpKind::Input, "x", {}, {}, {DType::F32, {2, 4, 11, 10}});
  Node *w = f.add(OpKind::Param, "w", {}, {}, {DType::F32, {6, 2, 3, 4}});
  Node *y = f.add(OpKind::Conv2d, "y", {x, w},
                  {{"stride", std::vector<int64_t>{2, 3}},
                   {"pads", std::vector<int64_t>{0, 1, 1, 2}},
                   {"dilation", std::vector<int64_t>{2, 1}},
                   {"groups", int64_t(2)}});
  // rows: (11 + 0 + 1 - (2*(3-1)+1)) / 2 + 1 = 4; cols: (10 + 1 + 2 - 4) / 3 + 1 = 4
  CHECK(inferType(*y) == TensorType{DType::F32, {2, 6, 4, 4}});
  // The seed's "same" padding floor((K-1)/2) before, floor(K/2) after keeps the size for an
  // even kernel too (section 6.1).
  Node *w2 = f.add(OpKind::Param, "w2", {}, {}, {DType::F32, {3, 4, 4, 2}});
  Node *same = f.add(OpKind::Conv2d, "same", {x, w2}, {{"pads", std::vector<int64_t>{1, 0, 2, 1}}});
  CHECK(inferType(*same).shape == Shape{2, 3, 11, 10});
}

TEST_CASE("pooling output sizes, ceil mode", "[ir][shape]") {
  Function f("f");
  Node *x = f.add(OpKind::Input, "x", {}, {}, {DType::F32, {1, 1, 3, 4}});
  // The seed's overlapping 2x2 stride-1 example (section 7): 3x4 -> 2x3.
  Node *p = f.add(OpKind::MaxPool, "p", {x}, {{"kernel", std::vector<int64_t>{2, 2}}});
  CHECK(inferType(*p).shape == Shape{1, 1, 2, 3});
  Node *x2 = f.add(OpKind::Input, "x2", {}, {}, {DType::F32, {1, 1, 6, 6}});
  Node *c = f.add(OpKind::MaxPool, "c", {x2},
                  {{"kernel", std::vector<int64_t>{3, 3}}, {"stride", std::vector<int64_t>{2, 2}},
                   {"ceil_mode", int64_t(1)}});
  CHECK(inferType(*c).shape == Shape{1, 1, 3, 3}); // floor mode gives 2x2
  // ceil mode never starts a window in the trailing padding (PyTorch/ONNX rule).
  Node *c2 = f.add(OpKind::AvgPool, "c2", {x2},
                   {{"kernel", std::vector<int64_t>{2, 2}}, {"stride", std::vector<int64_t>{2, 2}},
                    {"pads", std::vector<int64_t>{1, 1, 1, 1}}, {"ceil_mode", int64_t(1)}});
  CHECK(inferType(*c2).shape == Shape{1, 1, 4, 4});
}

TEST_CASE("verifier errors name the node and the problem", "[ir][verifier][errors]") {
  CHECK_THAT(errorOf("  %x = input : f32[1,3,8,8]\n  %w = param : f32[4,2,3,3]\n"
                     "  %y = conv2d(%x, %w) : f32[1,4,6,6]\n  return %y\n"),
             Catch::Contains("v.ir:4:3: error: %y (conv2d): the weight [4,2,3,3] expects 2 input channels"));
  CHECK_THAT(errorOf("  %x = input : f32[1,3,8,8]\n  %y = relu(%x) : f32[1,3,8,9]\n  return %y\n"),
             Catch::Contains("%y (relu): declared type f32[1,3,8,9] but the shape rule gives f32[1,3,8,8]"));
  CHECK_THAT(errorOf("  %x = input : f32[1,3,4,4]\n  %y = maxpool(%x) {kernel=[5,5]} : f32[1,3,1,1]\n  return %y\n"),
             Catch::Contains("window of 5 rows (kernel 5, dilation 1) is larger than its padded input 4"));
  CHECK_THAT(errorOf("  %x = input : f32[1,3,4,4]\n  %y = maxpool(%x) : f32[1,3,1,1]\n  return %y\n"),
             Catch::Contains("missing required attribute 'kernel'"));
  CHECK_THAT(errorOf("  %x = input : f32[1,3,4,4]\n  %y = maxpool(%x) {kernel=[2,2], stride=[0,1]} : f32[1,3,1,1]\n  return %y\n"),
             Catch::Contains("'stride' values must be >= 1"));
  CHECK_THAT(errorOf("  %x = input : f32[1,3,4,4]\n  %y = relu(%x, %x) : f32[1,3,4,4]\n  return %y\n"),
             Catch::Contains("%y (relu): takes operands (x), got 2"));
  CHECK_THAT(errorOf("  %a = input : f32[1,3]\n  %b = input : f32[1,4]\n  %y = add(%a, %b) : f32[1,4]\n  return %y\n"),
             Catch::Contains("shapes [1,3] and [1,4] do not broadcast"));
  CHECK_THAT(errorOf("  %a = input : f32[1,3,2,2]\n  %b = input : f32[1,4,2,3]\n  %y = concat(%a, %b) : f32[1,7,2,2]\n  return %y\n"),
             Catch::Contains("cannot concatenate [1,3,2,2] and [1,4,2,3] along axis 1"));
  CHECK(errorOf("  %x = input : f32[0,3]\n  return %x\n") == "(no error)"); // zero-size: fine
  CHECK_THAT(errorOf("  %x = input : f32[2,-3]\n  return %x\n"),
             Catch::Contains("v.ir:2:22: error: '-3' is not a dimension size"));
  CHECK_THAT(errorOf("  %x = input : f32[4,10]\n  %l = input : f32[4]\n  %y = softmax_xent(%x, %l) : f32[]\n  return %y\n"),
             Catch::Contains("the labels must be i32[4]"));
  CHECK_THAT(errorOf("  %w = param {init=\"magic\"} : f32[4]\n  return %w\n"),
             Catch::Contains("unknown init scheme \"magic\""));
  CHECK_THAT(errorOf("  %x = input : f32[4,10]\n  %y = reshape(%x) {shape=[3,-1]} : f32[3,13]\n  return %y\n"),
             Catch::Contains("cannot reshape f32[4,10] into [3,-1]"));
  CHECK_THAT(errorOf("  %x = input : f32[4,10]\n  %y = dropout(%x) {rate=1.0} : f32[4,10]\n  return %y\n"),
             Catch::Contains("'rate' must be in [0, 1)"));
  CHECK_THAT(errorOf("  %x = input : f32[65536,65536,65536]\n  return %x\n"),
             Catch::Contains("too large"));
}

TEST_CASE("nodes made with the C++ API are checked before shape rules index operands", "[ir][verifier]") {
  Function f("f");
  Node *x = f.add(OpKind::Input, "x", {}, {}, {DType::F32, {1, 2}});
  // Function::add runs the shape rule: a bad node throws and is not added
  CHECK_THROWS_WITH(f.add(OpKind::Add, "bad", {x}),
                    Catch::Contains("%bad (add): takes operands (a, b), got 1"));
  CHECK(f.find("bad") == nullptr);
  CHECK_THROWS_WITH(f.add(OpKind::Softmax, "bad2", {x}, {{"axis", 1.5}}),
                    Catch::Contains("attribute 'axis' must be int, got 1.5"));
  CHECK(f.nodes().size() == 1);
  // and a good one comes with its type
  CHECK(f.add(OpKind::Relu, "r", {x})->type == TensorType{DType::F32, {1, 2}});
}
