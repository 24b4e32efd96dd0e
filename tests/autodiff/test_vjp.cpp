// Every gradient rule against central finite differences in f64 (issue 3): each op with the
// attribute combinations that matter, inputs kept away from kinks (GradCheck.h).
#include "GradCheck.h"

#include "passes/GradRules.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>

using namespace cnnc;
using namespace cnnc::test;

namespace {

// One op under test: `decls` declares its operands (as params: everything differentiable),
// `op` defines %y; the loss is l2_loss(%y, %t) so that dz/dy = (y - t)/N is generic.
void checkOp(const std::string &decls, const std::string &op, const std::string &yType,
             const std::vector<std::string> &wrt, const std::vector<std::string> &positive = {},
             int64_t classes = 0, bool fuse = false) {
  std::string text = fmt::format("func @t {{\n{}  {}\n  %t = input : {}\n  %loss = l2_loss(%y, %t) : f32[]\n"
                                 "  return %loss\n}}\n",
                                 decls, op, yType);
  INFO(text);
  auto m = parseModule(text, "t.ir");
  checkGradients(text, wrt, spacedFeeds(m->main(), 42, positive, classes), 1e-6, fuse);
}

std::string p(const std::string &name, const std::string &type) {
  return fmt::format("  %{} = param : {}\n", name, type);
}

} // namespace

// Each case twice: the explicit chain autodiff emits, and the fused ops fuse-conv-grad makes
// of it (conv2d_grad_filter / conv2d_grad_input).
TEST_CASE("conv2d: dF = phi^T dY (eq. 35), dX = row2im(dY F^T) (eqs. 45-46), bias", "[autodiff][conv]") {
  const bool fuse = GENERATE(false, true);
  INFO((fuse ? "fused" : "unfused"));
  SECTION("plain with bias") {
    checkOp(p("x", "f32[2,3,5,5]") + p("w", "f32[4,3,3,3]") + p("b", "f32[4]"),
            "%y = conv2d(%x, %w, %b) : f32[2,4,3,3]", "f32[2,4,3,3]", {"x", "w", "b"}, {}, 0, fuse);
  }
  SECTION("stride 2, asymmetric padding") {
    checkOp(p("x", "f32[1,2,6,5]") + p("w", "f32[3,2,3,2]"),
            "%y = conv2d(%x, %w) {stride=[2,2], pads=[0,1,1,2]} : f32[1,3,3,4]", "f32[1,3,3,4]", {"x", "w"}, {}, 0, fuse);
  }
  SECTION("the seed's same padding for an even kernel") {
    checkOp(p("x", "f32[1,2,5,5]") + p("w", "f32[2,2,4,4]"),
            "%y = conv2d(%x, %w) {pads=[1,1,2,2]} : f32[1,2,5,5]", "f32[1,2,5,5]", {"x", "w"}, {}, 0, fuse);
  }
  SECTION("dilation 2, stride (1,2)") {
    checkOp(p("x", "f32[1,2,7,7]") + p("w", "f32[2,2,3,3]") + p("b", "f32[2]"),
            "%y = conv2d(%x, %w, %b) {stride=[1,2], dilation=[2,2], pads=[1,1,1,1]} : f32[1,2,5,3]", "f32[1,2,5,3]",
            {"x", "w", "b"}, {}, 0, fuse);
  }
  SECTION("a fused ReLU epilogue masks the adjoint first (eq. 14)") {
    checkOp(p("x", "f32[2,3,5,5]") + p("w", "f32[4,3,3,3]") + p("b", "f32[4]"),
            "%y = conv2d(%x, %w, %b) {pads=[1,1,1,1], relu=1} : f32[2,4,5,5]", "f32[2,4,5,5]", {"x", "w", "b"});
  }
  SECTION("a capped fused ReLU (a fused ReLU6, relu_max) masks the adjoint to 0 < y < max") {
    checkOp(p("x", "f32[2,3,5,5]") + p("w", "f32[4,3,3,3]") + p("b", "f32[4]"),
            "%y = conv2d(%x, %w, %b) {pads=[1,1,1,1], relu=1, relu_max=0.5} : f32[2,4,5,5]", "f32[2,4,5,5]",
            {"x", "w", "b"});
  }
  SECTION("a fused residual r (fuse-residual) gets dz/dY as it is, after the ReLU's mask") {
    checkOp(p("x", "f32[2,3,5,5]") + p("w", "f32[4,3,3,3]") + p("b", "f32[4]") + p("r", "f32[2,4,5,5]"),
            "%y = conv2d(%x, %w, %b, %r) {pads=[1,1,1,1], relu=1} : f32[2,4,5,5]", "f32[2,4,5,5]",
            {"x", "w", "b", "r"}, {}, 0, fuse);
    checkOp(p("x", "f32[1,3,4,4]") + p("w", "f32[2,3,3,3]") + p("b", "f32[2]") + p("r", "f32[1,2,2,2]"),
            "%y = conv2d(%x, %w, %b, %r) : f32[1,2,2,2]", "f32[1,2,2,2]", {"r", "w"}, {}, 0, fuse);
  }
  SECTION("groups 2 and depthwise") {
    checkOp(p("x", "f32[2,4,4,4]") + p("w", "f32[6,2,3,3]"),
            "%y = conv2d(%x, %w) {groups=2, pads=[1,1,1,1]} : f32[2,6,4,4]", "f32[2,6,4,4]", {"x", "w"}, {}, 0, fuse);
    checkOp(p("x", "f32[1,3,4,4]") + p("w", "f32[3,1,2,2]"),
            "%y = conv2d(%x, %w) {groups=3, stride=[2,2]} : f32[1,3,2,2]", "f32[1,3,2,2]", {"x", "w"}, {}, 0, fuse);
    // MobileNet v2's stride-2 depthwise layer (3x3, pads 1, with a bias), and a channel
    // multiplier of 2 (two filters per input channel)
    checkOp(p("x", "f32[2,4,5,5]") + p("w", "f32[4,1,3,3]") + p("b", "f32[4]"),
            "%y = conv2d(%x, %w, %b) {groups=4, stride=[2,2], pads=[1,1,1,1]} : f32[2,4,3,3]", "f32[2,4,3,3]",
            {"x", "w", "b"}, {}, 0, fuse);
    checkOp(p("x", "f32[1,2,4,4]") + p("w", "f32[4,1,3,3]"),
            "%y = conv2d(%x, %w) {groups=2, pads=[1,1,1,1]} : f32[1,4,4,4]", "f32[1,4,4,4]", {"x", "w"}, {}, 0, fuse);
  }
}

TEST_CASE("pooling gradients (seed eqs. 53-56), overlapping windows, padding, ceil mode", "[autodiff][pool]") {
  checkOp(p("x", "f32[1,2,4,4]"), "%y = maxpool(%x) {kernel=[2,2], stride=[2,2]} : f32[1,2,2,2]", "f32[1,2,2,2]", {"x"});
  checkOp(p("x", "f32[2,1,3,4]"), "%y = maxpool(%x) {kernel=[2,2]} : f32[2,1,2,3]", "f32[2,1,2,3]", {"x"});
  checkOp(p("x", "f32[1,2,5,5]"), "%y = maxpool(%x) {kernel=[3,3], stride=[2,2], pads=[1,1,1,1]} : f32[1,2,3,3]",
          "f32[1,2,3,3]", {"x"});
  checkOp(p("x", "f32[1,1,6,6]"), "%y = maxpool(%x) {kernel=[3,3], stride=[2,2], ceil_mode=1} : f32[1,1,3,3]",
          "f32[1,1,3,3]", {"x"});
  checkOp(p("x", "f32[1,1,6,6]"), "%y = maxpool(%x) {kernel=[2,2], dilation=[2,2]} : f32[1,1,4,4]", "f32[1,1,4,4]", {"x"});
  checkOp(p("x", "f32[1,2,5,5]"), "%y = avgpool(%x) {kernel=[3,3], stride=[2,2], pads=[1,1,1,1]} : f32[1,2,3,3]",
          "f32[1,2,3,3]", {"x"});
  checkOp(p("x", "f32[1,2,5,5]"),
          "%y = avgpool(%x) {kernel=[3,3], stride=[2,2], pads=[1,1,1,1], count_include_pad=1} : f32[1,2,3,3]",
          "f32[1,2,3,3]", {"x"});
  checkOp(p("x", "f32[1,1,6,6]"), "%y = avgpool(%x) {kernel=[3,3], stride=[2,2], ceil_mode=1} : f32[1,1,3,3]",
          "f32[1,1,3,3]", {"x"});
  checkOp(p("x", "f32[2,3,3,4]"), "%y = global_avgpool(%x) : f32[2,3,1,1]", "f32[2,3,1,1]", {"x"});
}

TEST_CASE("elementwise activations", "[autodiff]") {
  checkOp(p("x", "f32[3,7]"), "%y = relu(%x) : f32[3,7]", "f32[3,7]", {"x"});
  checkOp(p("x", "f32[3,7]"), "%y = sigmoid(%x) : f32[3,7]", "f32[3,7]", {"x"});
  checkOp(p("x", "f32[3,7]"), "%y = tanh(%x) : f32[3,7]", "f32[3,7]", {"x"});
  checkOp(p("x", "f32[3,7]"), "%y = identity(%x) : f32[3,7]", "f32[3,7]", {"x"});
}

TEST_CASE("softplus: dy * sigmoid(x) against finite differences", "[autodiff]") {
  checkOp(p("x", "f32[3,7]"), "%y = softplus(%x) : f32[3,7]", "f32[3,7]", {"x"});
  checkOp(p("x", "f32[2,3,4]"), "%s = softplus(%x) : f32[2,3,4]\n  %y = mul(%s, %x) : f32[2,3,4]",
          "f32[2,3,4]", {"x"});
}

// Issue 14's activations. Inputs lie in [-1, 1) (spacedFeeds); a constant factor of 5 spreads
// them over both sides of hard sigmoid's and hard swish's bends at +-3, and the clip bounds
// are chosen away from every input value.
TEST_CASE("clip (ReLU6), hard sigmoid, hard swish and leaky relu against finite differences",
          "[autodiff]") {
  const std::string spread = "%k = constant {value=[5.0]} : f32[]\n  %x5 = mul(%x, %k) : f32[3,7]\n  ";
  checkOp(p("x", "f32[3,7]"), "%y = clip(%x) {min=-0.45, max=0.55} : f32[3,7]", "f32[3,7]", {"x"});
  checkOp(p("x", "f32[3,7]"), "%y = clip(%x) {min=0.1} : f32[3,7]", "f32[3,7]", {"x"});
  checkOp(p("x", "f32[3,7]"), spread + "%y = clip(%x5) {min=0.0, max=3.1} : f32[3,7]", "f32[3,7]", {"x"});
  checkOp(p("x", "f32[3,7]"), spread + "%y = hard_sigmoid(%x5) {alpha=0.16666666666666666} : f32[3,7]",
          "f32[3,7]", {"x"});
  checkOp(p("x", "f32[3,7]"), spread + "%y = hard_sigmoid(%x5) {alpha=-0.3, beta=0.4} : f32[3,7]",
          "f32[3,7]", {"x"});
  checkOp(p("x", "f32[3,7]"), spread + "%y = hard_swish(%x5) : f32[3,7]", "f32[3,7]", {"x"});
  checkOp(p("x", "f32[3,7]"), "%y = leaky_relu(%x) {alpha=0.1} : f32[3,7]", "f32[3,7]", {"x"});
  checkOp(p("x", "f32[3,7]"), "%y = leaky_relu(%x) : f32[3,7]", "f32[3,7]", {"x"});
}

// Issue 14's smooth activations and elementwise math: inputs in [-1, 1) (log, sqrt and pow's
// base made positive), spread by 3 for elu/selu; max/min on distinct values, broadcast, and
// max(x, x), where the tie splits dy evenly (PyTorch): the central difference sees slope 1.
TEST_CASE("elu, selu, prelu, erf, exp, log, sqrt, reciprocal, neg, abs, pow, max, min", "[autodiff]") {
  const std::string spread = "%k = constant {value=[3.0]} : f32[]\n  %x3 = mul(%x, %k) : f32[3,7]\n  ";
  const std::string x = p("x", "f32[3,7]");
  checkOp(x, spread + "%y = elu(%x3) {alpha=0.7} : f32[3,7]", "f32[3,7]", {"x"});
  checkOp(x, spread + "%y = selu(%x3) : f32[3,7]", "f32[3,7]", {"x"});
  checkOp(x + p("s", "f32[7]"), "%y = prelu(%x, %s) : f32[3,7]", "f32[3,7]", {"x", "s"});
  checkOp(p("x", "f32[2,3,2,2]") + p("s", "f32[3,1,1]"), "%y = prelu(%x, %s) : f32[2,3,2,2]", "f32[2,3,2,2]",
          {"x", "s"});
  for (const char *op : {"erf", "exp", "neg", "abs"})
    checkOp(x, fmt::format("%y = {}(%x) : f32[3,7]", op), "f32[3,7]", {"x"});
  for (const char *op : {"log", "sqrt", "reciprocal"})
    checkOp(x, fmt::format("%y = {}(%x) : f32[3,7]", op), "f32[3,7]", {"x"}, {"x"});
  checkOp(p("a", "f32[2,3,4]") + p("b", "f32[3,1]"), "%y = pow(%a, %b) : f32[2,3,4]", "f32[2,3,4]", {"a", "b"},
          {"a"});
  for (const char *op : {"max", "min"}) {
    checkOp(p("a", "f32[2,3,4]") + p("b", "f32[3,1]"), fmt::format("%y = {}(%a, %b) : f32[2,3,4]", op),
            "f32[2,3,4]", {"a", "b"});
    checkOp(x, fmt::format("%y = {}(%x, %x) : f32[3,7]", op), "f32[3,7]", {"x"});
  }
}

// conv2d_grad_input as a forward op (ONNX ConvTranspose, the .cnn deconv layer): stride 2 with
// an output padding row/column (7 = 2*(3-1) + 3 - 1 + 1), asymmetric pads, and groups.
TEST_CASE("transposed convolution (conv2d_grad_input): dx = conv2d(dy, w), dw = conv2d_grad_filter(dy, x)",
          "[autodiff][conv]") {
  checkOp(p("x", "f32[2,4,3,3]") + p("w", "f32[4,3,3,3]"),
          "%y = conv2d_grad_input(%x, %w) {input_shape=[2,3,7,7], stride=[2,2], pads=[1,1,0,0]} : f32[2,3,7,7]",
          "f32[2,3,7,7]", {"x", "w"});
  checkOp(p("x", "f32[1,4,3,2]") + p("w", "f32[4,1,2,3]"),
          "%y = conv2d_grad_input(%x, %w) {input_shape=[1,2,6,4], stride=[2,1], groups=2} : f32[1,2,6,4]",
          "f32[1,2,6,4]", {"x", "w"});
}

TEST_CASE("pad in every mode and slice: their adjoints against finite differences", "[autodiff]") {
  for (const char *mode : {"constant", "reflect", "edge"}) {
    INFO(mode);
    checkOp(p("x", "f32[1,2,3,4]"),
            fmt::format("%y = pad(%x) {{pads=[0,0,1,2,0,1,2,1], mode=\"{}\", value=0.5}} : f32[1,3,6,7]",
                        mode),
            "f32[1,3,6,7]", {"x"});
    checkOp(p("x", "f32[5]"), fmt::format("%y = pad(%x) {{pads=[3,4], mode=\"{}\"}} : f32[12]", mode),
            "f32[12]", {"x"});
  }
  checkOp(p("x", "f32[1,2,4,4]"), "%y = slice(%x) {axis=2, start=1, end=3} : f32[1,2,2,4]",
          "f32[1,2,2,4]", {"x"});
  checkOp(p("x", "f32[3,5]"), "%y = slice(%x) {axis=-1, start=0, end=2} : f32[3,2]", "f32[3,2]", {"x"});
}

TEST_CASE("fully connected and matmul with every transpose", "[autodiff]") {
  checkOp(p("x", "f32[3,5]") + p("w", "f32[4,5]") + p("b", "f32[4]"), "%y = fc(%x, %w, %b) : f32[3,4]", "f32[3,4]",
          {"x", "w", "b"});
  checkOp(p("x", "f32[3,5]") + p("w", "f32[4,5]") + p("b", "f32[4]"), "%y = fc(%x, %w, %b) {relu=1} : f32[3,4]",
          "f32[3,4]", {"x", "w", "b"});
  checkOp(p("x", "f32[3,5]") + p("w", "f32[4,5]") + p("b", "f32[4]"),
          "%y = fc(%x, %w, %b) {relu=1, relu_max=0.4} : f32[3,4]", "f32[3,4]", {"x", "w", "b"});
  for (int ta : {0, 1})
    for (int tb : {0, 1}) {
      std::string a = ta ? "f32[5,3]" : "f32[3,5]", b = tb ? "f32[4,5]" : "f32[5,4]";
      checkOp(p("a", a) + p("b", b), fmt::format("%y = matmul(%a, %b) {{trans_a={}, trans_b={}}} : f32[3,4]", ta, tb),
              "f32[3,4]", {"a", "b"});
      std::string a3 = ta ? "f32[2,5,3]" : "f32[2,3,5]", b3 = tb ? "f32[2,4,5]" : "f32[2,5,4]";
      checkOp(p("a", a3) + p("b", b3),
              fmt::format("%y = matmul(%a, %b) {{trans_a={}, trans_b={}}} : f32[2,3,4]", ta, tb), "f32[2,3,4]",
              {"a", "b"});
    }
}

TEST_CASE("broadcasting arithmetic sums gradients over broadcast dimensions", "[autodiff]") {
  for (const char *op : {"add", "sub", "mul", "div"}) {
    INFO(op);
    checkOp(p("a", "f32[2,3,4]") + p("b", "f32[3,1]"), fmt::format("%y = {}(%a, %b) : f32[2,3,4]", op), "f32[2,3,4]",
            {"a", "b"}, {"b"});
    checkOp(p("a", "f32[1,4]") + p("b", "f32[3,1]"), fmt::format("%y = {}(%a, %b) : f32[3,4]", op), "f32[3,4]",
            {"a", "b"}, {"b"});
  }
}

TEST_CASE("shape ops: concat, flatten, reshape, transpose, expand, reduce_sum", "[autodiff]") {
  checkOp(p("a", "f32[1,2,2,2]") + p("b", "f32[1,3,2,2]"), "%y = concat(%a, %b) : f32[1,5,2,2]", "f32[1,5,2,2]",
          {"a", "b"});
  checkOp(p("a", "f32[2,3]") + p("b", "f32[2,2]"), "%y = concat(%a, %b) {axis=-1} : f32[2,5]", "f32[2,5]", {"a", "b"});
  checkOp(p("x", "f32[2,3,2,2]"), "%y = flatten(%x) : f32[2,12]", "f32[2,12]", {"x"});
  checkOp(p("x", "f32[2,12]"), "%y = reshape(%x) {shape=[4,-1]} : f32[4,6]", "f32[4,6]", {"x"});
  checkOp(p("x", "f32[2,3,4]"), "%y = transpose(%x) {perm=[2,0,1]} : f32[4,2,3]", "f32[4,2,3]", {"x"});
  checkOp(p("x", "f32[3,1]"), "%y = expand(%x) {shape=[2,3,4]} : f32[2,3,4]", "f32[2,3,4]", {"x"});
  checkOp(p("x", "f32[2,3,4]"), "%y = reduce_sum(%x) {axes=[0,2]} : f32[3]", "f32[3]", {"x"});
  checkOp(p("x", "f32[2,3,4]"), "%y = reduce_sum(%x) {axes=[1], keepdims=1} : f32[2,1,4]", "f32[2,1,4]", {"x"});
}

// reduce_max/reduce_min follow torch.amax: dy goes to the extremum, split evenly among ties.
// Distinct inputs have no ties; concat(x, x) makes every extremum a pair of copies of one x,
// each getting dy/2, which the central difference sees as slope 1 on that x.
TEST_CASE("reduce_max and reduce_min: dy to the extremum, ties share it (torch.amax)", "[autodiff]") {
  for (const char *op : {"reduce_max", "reduce_min"}) {
    checkOp(p("x", "f32[3,4,5]"), fmt::format("%y = {}(%x) {{axes=[0,2]}} : f32[4]", op), "f32[4]", {"x"});
    checkOp(p("x", "f32[2,3,4]"), fmt::format("%y = {}(%x) {{axes=[-1], keepdims=1}} : f32[2,3,1]", op),
            "f32[2,3,1]", {"x"});
    checkOp(p("x", "f32[2,3,2,2]"),
            fmt::format("%c = concat(%x, %x) : f32[2,6,2,2]\n  %y = {}(%c) {{axes=[1,2,3], keepdims=1}} : f32[2,1,1,1]", op),
            "f32[2,1,1,1]", {"x"});
  }
  // three tied copies: each gets a third, the same element of x collects all
  const std::string text = "func @t {\n  %x = param : f32[2,3]\n  %c = concat(%x, %x, %x) {axis=0} : f32[6,3]\n"
                           "  %y = reduce_max(%c) {axes=[0]} : f32[3]\n  %t = input : f32[3]\n"
                           "  %loss = l2_loss(%y, %t) : f32[]\n  return %loss\n}\n";
  auto m = parseModule(text, "t.ir");
  Feeds feeds = spacedFeeds(m->main(), 3);
  checkGradients(text, {"x"}, feeds);
}

// argmax is an index (piecewise constant): nothing differentiable consumes it (no op takes an
// i64 as a float), and its rule, if autodiff ever asked, names the node.
TEST_CASE("argmax: labels from argmax train as constants, its rule is an error naming the node",
          "[autodiff]") {
  checkOp(p("x", "f32[4,5]"),
          "%l = argmax(%x) {axis=1, keepdims=0} : i64[4]\n  %z = softmax_xent(%x, %l) : f32[]\n"
          "  %y = reshape(%z) {shape=[1]} : f32[1]",
          "f32[1]", {"x"});
  auto m = parseModule("func @f {\n  %x = param : f32[4,5]\n  %cls = argmax(%x) {axis=1} : i64[4,1]\n"
                       "  return %cls\n}\n",
                       "am.ir");
  Function &f = m->main();
  grad::Context c{f, *f.find("cls"), f.find("x"), {true}};
  CHECK_THROWS_WITH(grad::vjp(c), Catch::Contains("%cls (argmax): an index is not differentiable"));
}

TEST_CASE("im2row and row2im are each other's adjoints (seed eqs. 37, 46)", "[autodiff][conv]") {
  checkOp(p("x", "f32[1,2,4,5]"), "%y = im2row(%x) {kernel=[3,2], stride=[1,2], pads=[1,0,1,1]} : f32[1,12,12]",
          "f32[1,12,12]", {"x"});
  checkOp(p("r", "f32[2,16,8]"), "%y = row2im(%r) {input_shape=[1,4,4,4], kernel=[2,2], pads=[1,1,0,0], groups=2} : f32[1,4,4,4]",
          "f32[1,4,4,4]", {"r"});
}

TEST_CASE("softmax and log_softmax along either axis", "[autodiff]") {
  checkOp(p("x", "f32[3,5]"), "%y = softmax(%x) : f32[3,5]", "f32[3,5]", {"x"});
  checkOp(p("x", "f32[3,5]"), "%y = log_softmax(%x) : f32[3,5]", "f32[3,5]", {"x"});
  checkOp(p("x", "f32[2,3,4]"), "%y = softmax(%x) {axis=-1} : f32[2,3,4]", "f32[2,3,4]", {"x"});
  checkOp(p("x", "f32[2,3,4]"), "%y = log_softmax(%x) {axis=0} : f32[2,3,4]", "f32[2,3,4]", {"x"});
}

TEST_CASE("batch normalization: inference operands and training through batch statistics", "[autodiff][bn]") {
  checkOp(p("x", "f32[2,3,2,2]") + p("s", "f32[3]") + p("b", "f32[3]") + p("m", "f32[3]") + p("v", "f32[3]"),
          "%y = batchnorm(%x, %s, %b, %m, %v) {epsilon=0.001} : f32[2,3,2,2]", "f32[2,3,2,2]", {"x", "s", "b", "m", "v"},
          {"v"});
  checkOp(p("x", "f32[3,2,2,3]") + p("s", "f32[2]") + p("b", "f32[2]"),
          "%m = bn_mean(%x) : f32[2]\n  %v = bn_var(%x, %m) : f32[2]\n"
          "  %y = batchnorm(%x, %s, %b, %m, %v) : f32[3,2,2,3]",
          "f32[3,2,2,3]", {"x", "s", "b"});
  checkOp(p("x", "f32[4,3]") + p("m", "f32[3]"), "%y = bn_var(%x, %m) : f32[3]", "f32[3]", {"x", "m"});
  checkOp(p("x", "f32[4,3]"), "%y = bn_mean(%x) : f32[3]", "f32[3]", {"x"});
}

// fuse-bn-grad's bn_train_grad in place of the three terms autodiff sums for x: with the
// scale's gradient asked for or made by the pass, over an fc layer's [N,C], and beside
// another term of x's gradient (a residual add)
TEST_CASE("batch normalization over batch statistics, fused into bn_train_grad", "[autodiff][bn]") {
  const std::string stats = "%m = bn_mean(%x) : f32[2]\n  %v = bn_var(%x, %m) : f32[2]\n  ";
  checkOp(p("x", "f32[3,2,2,3]") + p("s", "f32[2]") + p("b", "f32[2]"),
          stats + "%y = batchnorm(%x, %s, %b, %m, %v) : f32[3,2,2,3]", "f32[3,2,2,3]", {"x", "s", "b"},
          {}, 0, true);
  checkOp(p("x", "f32[3,2,2,3]") + p("s", "f32[2]") + p("b", "f32[2]"),
          stats + "%y = batchnorm(%x, %s, %b, %m, %v) {epsilon=0.01} : f32[3,2,2,3]", "f32[3,2,2,3]",
          {"x"}, {}, 0, true);
  checkOp(p("x", "f32[5,2]") + p("s", "f32[2]") + p("b", "f32[2]"),
          stats + "%y = batchnorm(%x, %s, %b, %m, %v) : f32[5,2]", "f32[5,2]", {"x", "s"}, {}, 0, true);
  checkOp(p("x", "f32[3,2,2,3]") + p("s", "f32[2]") + p("b", "f32[2]"),
          stats + "%z = batchnorm(%x, %s, %b, %m, %v) : f32[3,2,2,3]\n  %y = add(%z, %x) : f32[3,2,2,3]",
          "f32[3,2,2,3]", {"x", "s", "b"}, {}, 0, true);
}

TEST_CASE("dropout in training: the gradient uses the forward mask", "[autodiff]") {
  checkOp(p("x", "f32[4,16]"), "%y = dropout(%x) {rate=0.3, training=1, seed=11} : f32[4,16]", "f32[4,16]", {"x"});
  checkOp(p("x", "f32[4,16]") + "  %step = input : i64[]\n",
          "%y = dropout(%x, %step) {rate=0.5, training=1, seed=3} : f32[4,16]", "f32[4,16]", {"x"});
}

TEST_CASE("losses: fused softmax cross-entropy and the squared l2 loss (eq. 6)", "[autodiff][loss]") {
  std::string xent = "func @t {\n  %x = param : f32[4,5]\n  %l = input : i32[4]\n"
                     "  %loss = softmax_xent(%x, %l) : f32[]\n  return %loss\n}\n";
  auto m = parseModule(xent, "t.ir");
  checkGradients(xent, {"x"}, spacedFeeds(m->main(), 7, {}, 5));
  std::string l2 = "func @t {\n  %x = param : f32[3,4]\n  %t = param : f32[3,4]\n"
                   "  %loss = l2_loss(%x, %t) : f32[]\n  return %loss\n}\n";
  auto m2 = parseModule(l2, "t.ir");
  checkGradients(l2, {"x", "t"}, spacedFeeds(m2->main(), 8));
}

TEST_CASE("a value used several times sums its gradients, unused branches get none", "[autodiff]") {
  std::string text = "func @t {\n  %x = param : f32[2,3]\n  %w = param : f32[2,3]\n  %u = param : f32[2,3]\n"
                     "  %a = mul(%x, %x) : f32[2,3]\n  %b = add(%a, %x) : f32[2,3]\n  %c = tanh(%x) : f32[2,3]\n"
                     "  %d = mul(%b, %c) : f32[2,3]\n  %dead = relu(%u) : f32[2,3]\n  %t = input : f32[2,3]\n"
                     "  %loss = l2_loss(%d, %t) : f32[]\n  return %loss, %dead\n}\n";
  auto m = parseModule(text, "t.ir");
  Feeds feeds = spacedFeeds(m->main(), 5);
  checkGradients(text, {"x"}, feeds);
  Feeds g = gradients(text, {"u"}, feeds);
  CHECK(xt::amax(xt::abs(g.at("u")))() == 0.0);
}
