// fuse-conv-grad on golden IR text: autodiff's conv2d gradient chains (passes/GradRules.cpp,
// written out here as it emits them for a grouped, strided, padded, dilated conv) before,
// the fused ops after (with dce); and the chains it must leave alone.
#include "passes/Passes.h"

#include <catch2/catch.hpp>

using namespace cnnc;

namespace {

// x [2,4,5,6], w [6,2,3,3], groups 2, stride [2,1], pads [1,0,1,1], dilation [1,2]:
// dy [2,6,3,3]; per group Mg = 3, P = 2*3*3 = 18 rows, q = 2*3*3 = 18 columns.
const char *kHead = "func @g {\n"
                    "  %x = input : f32[2,4,5,6]\n"
                    "  %w = param : f32[6,2,3,3]\n"
                    "  %dy = input : f32[2,6,3,3]\n"
                    "  %dy.split = reshape(%dy) {shape=[2,2,3,9]} : f32[2,2,3,9]\n"
                    "  %dy.t = transpose(%dy.split) {perm=[1,0,3,2]} : f32[2,2,9,3]\n"
                    "  %dy.rows = reshape(%dy.t) {shape=[2,18,3]} : f32[2,18,3]\n";
const char *kFilter =
    "  %phi = im2row(%x) {kernel=[3,3], stride=[2,1], pads=[1,0,1,1], dilation=[1,2], groups=2} "
    ": f32[2,18,18]  // eqs. 18-21\n"
    "  %dF = matmul(%dy.rows, %phi) {trans_a=1} : f32[2,3,18]  // eq. 35\n"
    "  %dw = reshape(%dF) {shape=[6,2,3,3]} : f32[6,2,3,3]\n";
const char *kInput =
    "  %F = reshape(%w) {shape=[2,3,18]} : f32[2,3,18]\n"
    "  %dphi = matmul(%dy.rows, %F) : f32[2,18,18]  // eq. 45\n"
    "  %dx = row2im(%dphi) {input_shape=[2,4,5,6], kernel=[3,3], stride=[2,1], pads=[1,0,1,1], "
    "dilation=[1,2], groups=2} : f32[2,4,5,6]  // eq. 46\n";

std::string fuseAndClean(const std::string &text) {
  auto m = parseModule(text, "golden.ir");
  Function &f = m->main();
  fuseConvGrad(f);
  eliminateDeadCode(f);
  verify(f);
  return print(f);
}

} // namespace

TEST_CASE("fuse-conv-grad: autodiff's conv2d gradient chains become two fused ops",
          "[passes][fuse]") {
  const std::string before =
      std::string(kHead) + kFilter + kInput + "  return %dw, %dx\n}\n";
  CHECK(fuseAndClean(before) ==
        "func @g {\n"
        "  %x = input : f32[2,4,5,6]\n"
        "  %w = param : f32[6,2,3,3]\n"
        "  %dy = input : f32[2,6,3,3]\n"
        "  %dw = conv2d_grad_filter(%x, %dy) {kernel=[3,3], stride=[2,1], pads=[1,0,1,1], "
        "dilation=[1,2], groups=2} : f32[6,2,3,3]  // eq. 35, fused: φ(x) never materialised\n"
        "  %dx = conv2d_grad_input(%dy, %w) {input_shape=[2,4,5,6], stride=[2,1], pads=[1,0,1,1], "
        "dilation=[1,2], groups=2} : f32[2,4,5,6]  // eqs. 45-46, fused: dY·Fᵀ scattered tile by "
        "tile\n"
        "  return %dw, %dx\n"
        "}\n");
}

TEST_CASE("fuse-conv-grad leaves shared or foreign chains alone", "[passes][fuse]") {
  SECTION("phi(x) has another user") {
    const std::string text =
        std::string(kHead) + kFilter + "  return %dw, %phi\n}\n";
    auto m = parseModule(text, "golden.ir");
    CHECK_FALSE(fuseConvGrad(m->main()));
  }
  SECTION("the product dY F^T has another user") {
    const std::string text = std::string(kHead) + kInput + "  return %dx, %dphi\n}\n";
    auto m = parseModule(text, "golden.ir");
    CHECK_FALSE(fuseConvGrad(m->main()));
  }
  SECTION("rows that are not dY's pixels (another transpose)") {
    std::string text = std::string(kHead) + kFilter + kInput + "  return %dw, %dx\n}\n";
    text.replace(text.find("perm=[1,0,3,2]"), 14, "perm=[0,1,3,2]");
    auto m = parseModule(text, "golden.ir");
    CHECK_FALSE(fuseConvGrad(m->main()));
  }
  SECTION("an im2row whose matrix is not multiplied as eq. 35 (no trans_a)") {
    const std::string text = "func @g {\n"
                             "  %x = input : f32[1,1,4,4]\n"
                             "  %f = param : f32[1,9,2]\n"
                             "  %phi = im2row(%x) {kernel=[3,3]} : f32[1,4,9]\n"
                             "  %y = matmul(%phi, %f) : f32[1,4,2]\n"
                             "  %r = reshape(%y) {shape=[8]} : f32[8]\n"
                             "  return %r\n"
                             "}\n";
    auto m = parseModule(text, "golden.ir");
    CHECK_FALSE(fuseConvGrad(m->main()));
  }
}

TEST_CASE("the pipeline runs fuse-conv-grad after simplify and before dce", "[passes][fuse]") {
  std::vector<std::string> names;
  for (const PassInfo &p : defaultPipeline())
    names.push_back(p.name);
  CHECK(names == std::vector<std::string>{"grad", "simplify", "fuse-conv-grad", "grad-input-as-conv",
                                          "fuse-bn-grad", "fold-bn", "fuse-residual", "fuse-relu", "dce"});
}
