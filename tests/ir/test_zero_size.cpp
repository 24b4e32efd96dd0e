// Zero-size tensors in the IR (a 0 dimension), and reshape's 0 / -1 / allowzero rules (ONNX
// Reshape): what the verifier accepts, what the printer writes back, and each rejection of an
// op that has no value over an empty extent.
#include "ir/IR.h"

#include <catch2/catch.hpp>

using namespace cnnc;

namespace {

std::string errorOf(const std::string &body) {
  try {
    parseModule("func @f {\n" + body + "}\n", "z.ir");
  } catch (const Error &e) {
    return e.what();
  }
  return "(no error)";
}

// The type the reshape rule gives x [xs] for this shape attribute.
Shape reshaped(const Shape &xs, const Shape &spec, int64_t allowZero) {
  Function f("f");
  Node *x = f.add(OpKind::Input, "x", {}, {}, {DType::F32, xs});
  std::map<std::string, Attr> a{{"shape", spec}};
  if (allowZero)
    a["allowzero"] = allowZero;
  return inferType(*f.add(OpKind::Reshape, "r", {x}, a)).shape;
}

std::string reshapeError(const Shape &xs, const Shape &spec, int64_t allowZero) {
  try {
    reshaped(xs, spec, allowZero);
  } catch (const Error &e) {
    return e.what();
  }
  return "(no error)";
}

} // namespace

TEST_CASE("zero-size tensors verify, print and parse back", "[ir][zero]") {
  const std::string text = "func @f {\n"
                           "  %x = input : f32[0,3,4]\n"
                           "  %r = reshape(%x) {shape=[3,4,0], allowzero=1} : f32[3,4,0]\n"
                           "  %y = relu(%r) : f32[3,4,0]\n"
                           "  %e = constant {value=[1.0]} : f32[2,0]\n"
                           "  return %y, %e\n"
                           "}\n";
  auto m = parseModule(text, "z.ir"); // parseModule verifies
  CHECK(print(*m) == text);
  CHECK(m->main().find("x")->type.numel() == 0);
  CHECK(m->main().find("x")->type.bytes() == 0);
  // A negative size is still an error (the parser's, and the verifier's for the C++ API),
  // and so is a huge shape hidden behind a 0.
  CHECK_THAT(errorOf("  %x = input : f32[-1,3]\n  return %x\n"),
             Catch::Contains("'-1' is not a dimension size"));
  Function f("f");
  f.outputs().push_back(f.add(OpKind::Input, "x", {}, {}, {DType::F32, {-1, 3}}));
  CHECK_THROWS_WITH(verify(f), Catch::Contains("%x (input): dimension sizes must be "
                                               "non-negative, got f32[-1,3]"));
  CHECK_THAT(errorOf("  %x = input : f32[0,2000000,2000000]\n  return %x\n"),
             Catch::Contains("too large"));
}

TEST_CASE("reshape: 0 copies, or is literal with allowzero=1, -1 is inferred", "[ir][zero][shape]") {
  // allowzero=0 (ONNX's default): 0 copies the input's dim at that index.
  CHECK(reshaped({2, 3, 4}, {0, -1}, 0) == Shape{2, 12});
  CHECK(reshaped({2, 3, 4}, {0, 0, 2, 2}, 0) == Shape{2, 3, 2, 2});
  CHECK(reshaped({0, 3, 4}, {0, 12}, 0) == Shape{0, 12}); // copies a 0
  // allowzero=1: 0 is a literal zero-size dim (the ONNX test reshape_allowzero_reordered).
  CHECK(reshaped({0, 3, 4}, {3, 4, 0}, 1) == Shape{3, 4, 0});
  CHECK(reshaped({0, 3, 4}, {0, 7}, 1) == Shape{0, 7});
  CHECK(reshaped({2, 3, 4}, {4, -1}, 1) == Shape{4, 6}); // no 0: as allowzero=0
  // The same spec means different things under the two settings.
  CHECK_THAT(reshapeError({0, 3, 4}, {3, 0, 4}, 0),
             Catch::Contains("cannot reshape f32[0,3,4] (0 elements) into [3,3,4] (36 elements)"));
  CHECK(reshaped({0, 3, 4}, {3, 0, 4}, 1) == Shape{3, 0, 4});

  CHECK_THAT(reshapeError({0, 3, 4}, {0, -1}, 1),
             Catch::Contains("%r (reshape): 'shape' [0,-1] holds both 0 and -1 with allowzero=1"));
  CHECK_THAT(reshapeError({0, 3, 4}, {0, -1}, 0), // copies the 0: -1 is then ambiguous
             Catch::Contains("cannot infer the -1 of [0,-1] for f32[0,3,4]: the other entries "
                             "multiply to 0"));
  CHECK_THAT(reshapeError({2, 3}, {0, 0, 0}, 0),
             Catch::Contains("shape entry 2 is 0 (copy the input's dim) but the input f32[2,3] "
                             "has only 2 dims"));
  CHECK_THAT(reshapeError({2, 3}, {-1, -1}, 0), Catch::Contains("at most one -1"));
  CHECK_THAT(reshapeError({2, 3}, {-2, -3}, 0), Catch::Contains("bad 'shape' entry -2"));
  CHECK_THAT(reshapeError({2, 3}, {6}, 2), Catch::Contains("'allowzero' must be 0 or 1, got 2"));
  // reshapeAttrs: concrete shapes with a 0 need allowzero=1, others keep the default.
  CHECK(reshapeAttrs({3, 0}).count("allowzero") == 1);
  CHECK(reshapeAttrs({3, 2}).count("allowzero") == 0);
  CHECK(reshaped({0, 3, 4}, std::get<Shape>(reshapeAttrs({12, 0}).at("shape")), 1) == Shape{12, 0});
}

TEST_CASE("empty results and sums over nothing are allowed", "[ir][zero][shape]") {
  // Elementwise, broadcasting (1 -> 0 as in numpy), a batch of 0 through conv and pooling.
  CHECK(errorOf("  %a = input : f32[0,5]\n  %b = input : f32[1,5]\n"
                "  %y = add(%a, %b) : f32[0,5]\n  return %y\n") == "(no error)");
  CHECK(errorOf("  %x = input : f32[0,3,8,8]\n  %w = param : f32[4,3,3,3]\n"
                "  %y = conv2d(%x, %w) : f32[0,4,6,6]\n"
                "  %p = maxpool(%y) {kernel=[2,2], stride=[2,2]} : f32[0,4,3,3]\n  return %p\n") ==
        "(no error)");
  // Sums over an empty extent: matmul/fc with K = 0, conv2d with no input channels, reduce_sum.
  CHECK(errorOf("  %a = input : f32[3,0]\n  %b = input : f32[0,5]\n"
                "  %y = matmul(%a, %b) : f32[3,5]\n  return %y\n") == "(no error)");
  CHECK(errorOf("  %x = input : f32[2,0,5,5]\n  %w = param : f32[4,0,3,3]\n  %b = param : f32[4]\n"
                "  %y = conv2d(%x, %w, %b) : f32[2,4,3,3]\n  return %y\n") == "(no error)");
  CHECK(errorOf("  %x = input : f32[3,0,4]\n  %y = reduce_sum(%x) {axes=[1]} : f32[3,4]\n"
                "  return %y\n") == "(no error)");
  CHECK(errorOf("  %x = input : f32[1,3]\n  %y = expand(%x) {shape=[0,3]} : f32[0,3]\n"
                "  return %y\n") == "(no error)");
}

TEST_CASE("ops with no value over an empty extent are rejected by name", "[ir][zero][errors]") {
  CHECK_THAT(errorOf("  %x = input : f32[1,3,0,4]\n  %y = global_avgpool(%x) : f32[1,3,1,1]\n"
                     "  return %y\n"),
             Catch::Contains("%y (global_avgpool): the mean over an empty spatial extent is undefined"));
  CHECK_THAT(errorOf("  %x = input : f32[1,3,0,4]\n"
                     "  %y = maxpool(%x) {kernel=[1,1]} : f32[1,3,0,4]\n"
                     "  return %y\n"),
             Catch::Contains("%y (maxpool): the input has no rows"));
  CHECK_THAT(errorOf("  %x = input : f32[1,3,5,0]\n  %w = param : f32[2,3,1,1]\n"
                     "  %y = conv2d(%x, %w) {pads=[0,1,0,1]} : f32[1,2,5,2]\n  return %y\n"),
             Catch::Contains("%y (conv2d): the input has no columns"));
  CHECK_THAT(errorOf("  %x = input : f32[1,3,5,5]\n  %w = param : f32[2,3,0,1]\n"
                     "  %y = conv2d(%x, %w) : f32[1,2,5,5]\n  return %y\n"),
             Catch::Contains("the kernel must be at least 1x1"));
  CHECK_THAT(errorOf("  %x = input : f32[0,4,2,2]\n  %m = bn_mean(%x) : f32[4]\n  return %m\n"),
             Catch::Contains("%m (bn_mean): a batch statistic over an empty batch is undefined"));
  CHECK_THAT(errorOf("  %x = input : f32[0,10]\n  %l = input : i32[0]\n"
                     "  %y = softmax_xent(%x, %l) : f32[]\n  return %y\n"),
             Catch::Contains("%y (softmax_xent): the loss averages over the batch"));
  CHECK_THAT(errorOf("  %x = input : f32[4,0]\n  %l = input : i32[4]\n"
                     "  %y = count_correct(%x, %l) : i32[]\n  return %y\n"),
             Catch::Contains("%y (count_correct): the logits f32[4,0] have no classes"));
  CHECK_THAT(errorOf("  %x = input : f32[0,3]\n  %t = input : f32[0,3]\n"
                     "  %y = l2_loss(%x, %t) : f32[]\n  return %y\n"),
             Catch::Contains("%y (l2_loss): the loss averages over the batch"));
  CHECK_THAT(errorOf("  %x = input : f32[0,3]\n  %l = input : i64[0]\n"
                     "  %y = softmax_xent_nd(%x, %l) : f32[]\n  return %y\n"),
             Catch::Contains("reduction \"mean\" over no labels"));
  // An empty batch counts 0 correct, and a summed loss over nothing is 0: both allowed.
  CHECK(errorOf("  %x = input : f32[0,10]\n  %l = input : i32[0]\n"
                "  %y = count_correct(%x, %l) : i32[]\n  return %y\n") == "(no error)");
  CHECK(errorOf("  %x = input : f32[0,3]\n  %l = input : i64[0]\n"
                "  %y = softmax_xent_nd(%x, %l) {reduction=\"sum\"} : f32[]\n  return %y\n") ==
        "(no error)");
}
