// simplify + dce: the pipeline removes no-ops and dead nodes and keeps the outputs' values.
#include "passes/Passes.h"

#include <catch2/catch.hpp>

using namespace cnnc;

TEST_CASE("simplify folds inference dropout and identity, dce removes the rest", "[passes]") {
  auto m = parseModule("func @f {\n"
                       "  %x = input : f32[2,8]\n"
                       "  %unused = input : f32[3]\n"
                       "  %r = relu(%x) : f32[2,8]\n"
                       "  %d = dropout(%r) : f32[2,8]\n"
                       "  %t = dropout(%r) {training=1} : f32[2,8]\n"
                       "  %i = identity(%d) : f32[2,8]\n"
                       "  %s = add(%i, %t) : f32[2,8]\n"
                       "  return %s\n"
                       "}\n");
  std::vector<std::string> stages;
  PipelineOptions po;
  po.afterPass = [&](const std::string &p, const Module &) { stages.push_back(p); };
  runPipeline(*m, po);
  CHECK(stages == std::vector<std::string>{"input", "simplify", "dce"});
  CHECK(print(*m) == "func @f {\n"
                     "  %x = input : f32[2,8]\n"
                     "  %r = relu(%x) : f32[2,8]\n"
                     "  %t = dropout(%r) {training=1} : f32[2,8]\n"
                     "  %s = add(%r, %t) : f32[2,8]\n"
                     "  return %s\n"
                     "}\n");
}

TEST_CASE("stopping after an unknown pass is an error", "[passes][errors]") {
  auto m = parseModule("func @f {\n  %x = input : f32[2]\n  return %x\n}\n");
  PipelineOptions po;
  po.stopAfter = "fusion";
  CHECK_THROWS_WITH(runPipeline(*m, po), Catch::Contains("unknown pass 'fusion' (passes: input, grad, simplify, fuse-conv-grad, grad-input-as-conv, fuse-bn-grad, fold-bn, fuse-residual, fuse-relu, dce)"));
}

TEST_CASE("fuse-relu folds relu(conv2d|fc) into the producer, named as the producer", "[passes]") {
  auto m = parseModule("func @f {\n"
                       "  %x = input : f32[2,3,6,6]\n"
                       "  %w = param : f32[4,3,3,3]\n"
                       "  %b = param : f32[4]\n"
                       "  %c1 = conv2d(%x, %w, %b) {pads=[1,1,1,1]} : f32[2,4,6,6]\n"
                       "  %r1 = relu(%c1) : f32[2,4,6,6]\n"
                       "  %w2 = param : f32[4,4,3,3]\n"
                       "  %c2 = conv2d(%r1, %w2) : f32[2,4,4,4]\n"
                       "  %r2 = relu(%c2) : f32[2,4,4,4]\n"
                       "  %p = maxpool(%r2) {kernel=[2,2], stride=[2,2]} : f32[2,4,2,2]\n"
                       "  %r3 = relu(%p) : f32[2,4,2,2]\n"
                       "  %fl = flatten(%r3) : f32[2,16]\n"
                       "  %fw = param : f32[5,16]\n"
                       "  %fc = fc(%fl, %fw) : f32[2,5]\n"
                       "  %r4 = relu(%fc) : f32[2,5]\n"
                       "  return %r4, %c2\n"
                       "}\n");
  PipelineOptions po;
  std::vector<std::string> stages;
  po.afterPass = [&](const std::string &p, const Module &) { stages.push_back(p); };
  runPipeline(*m, po);
  CHECK(stages == std::vector<std::string>{"input", "fuse-relu", "dce"}); // %fc, left dead
  // %c1 had only the relu as a user: fused, under the conv's name. %c2 is also an output:
  // kept. A relu of a pool has nothing to fuse into. %r4 is an output: the fused fc takes
  // the output's name (the function's interface), %fc is left for dce.
  CHECK(print(*m) == "func @f {\n"
                     "  %x = input : f32[2,3,6,6]\n"
                     "  %w = param : f32[4,3,3,3]\n"
                     "  %b = param : f32[4]\n"
                     "  %c1 = conv2d(%x, %w, %b) {pads=[1,1,1,1], relu=1} : f32[2,4,6,6]  // fused ReLU epilogue (was %r1)\n"
                     "  %w2 = param : f32[4,4,3,3]\n"
                     "  %c2 = conv2d(%c1, %w2) : f32[2,4,4,4]\n"
                     "  %r2 = relu(%c2) : f32[2,4,4,4]\n"
                     "  %p = maxpool(%r2) {kernel=[2,2], stride=[2,2]} : f32[2,4,2,2]\n"
                     "  %r3 = relu(%p) : f32[2,4,2,2]\n"
                     "  %fl = flatten(%r3) : f32[2,16]\n"
                     "  %fw = param : f32[5,16]\n"
                     "  %r4 = fc(%fl, %fw) {relu=1} : f32[2,5]  // fused ReLU epilogue\n"
                     "  return %r4, %c2\n"
                     "}\n");
}

TEST_CASE("fuse-relu folds clip(p, 0, max) (ReLU6) as a capped ReLU, and nothing else", "[passes]") {
  auto m = parseModule("func @f {\n"
                       "  %x = input : f32[1,4,6,6]\n"
                       "  %w = param : f32[4,1,3,3]\n"
                       "  %c1 = conv2d(%x, %w) {pads=[1,1,1,1], groups=4} : f32[1,4,6,6]\n"
                       "  %r6 = clip(%c1) {min=0.0, max=6.0} : f32[1,4,6,6]\n"
                       "  %c2 = conv2d(%r6, %w) {pads=[1,1,1,1], groups=4} : f32[1,4,6,6]\n"
                       "  %k = clip(%c2) {min=-1.0, max=1.0} : f32[1,4,6,6]\n"
                       "  %fw = param : f32[3,144]\n"
                       "  %fl = flatten(%k) : f32[1,144]\n"
                       "  %fc = fc(%fl, %fw) : f32[1,3]\n"
                       "  %y = clip(%fc) {min=0.0} : f32[1,3]\n"
                       "  return %y\n"
                       "}\n");
  runPipeline(*m);
  // ReLU6 fuses with its cap; a clip whose lower bound is not 0 is not a ReLU and stays; a
  // clip with no upper bound is a plain ReLU (relu_max keeps its default), here an output
  CHECK(print(*m) == "func @f {\n"
                     "  %x = input : f32[1,4,6,6]\n"
                     "  %w = param : f32[4,1,3,3]\n"
                     "  %c1 = conv2d(%x, %w) {pads=[1,1,1,1], groups=4, relu=1, relu_max=6.0} : f32[1,4,6,6]  // fused clip epilogue (was %r6)\n"
                     "  %c2 = conv2d(%c1, %w) {pads=[1,1,1,1], groups=4} : f32[1,4,6,6]\n"
                     "  %k = clip(%c2) {min=-1.0, max=1.0} : f32[1,4,6,6]\n"
                     "  %fw = param : f32[3,144]\n"
                     "  %fl = flatten(%k) : f32[1,144]\n"
                     "  %y = fc(%fl, %fw) {relu=1} : f32[1,3]  // fused ReLU epilogue\n"
                     "  return %y\n"
                     "}\n");
}

TEST_CASE("fuse-residual folds add(conv2d, r) into the conv, moved after r, then fuse-relu", "[passes]") {
  auto m = parseModule("func @f {\n"
                       "  %x = input : f32[2,4,6,6]\n"
                       "  %w = param : f32[4,4,3,3]\n"
                       "  %b = param : f32[4]\n"
                       "  %c = conv2d(%x, %w, %b) {pads=[1,1,1,1]} : f32[2,4,6,6]\n"
                       "  %w1 = param : f32[4,4,1,1]\n"
                       "  %s = conv2d(%x, %w1) : f32[2,4,6,6]\n"
                       "  %a = add(%s, %c) : f32[2,4,6,6]\n"
                       "  %r = relu(%a) : f32[2,4,6,6]\n"
                       // not fused: a conv without a bias, a conv with another user, a broadcast
                       "  %c2 = conv2d(%r, %w) {pads=[1,1,1,1]} : f32[2,4,6,6]\n"
                       "  %a2 = add(%c2, %r) : f32[2,4,6,6]\n"
                       "  %c3 = conv2d(%a2, %w, %b) {pads=[1,1,1,1]} : f32[2,4,6,6]\n"
                       "  %a3 = add(%c3, %a2) : f32[2,4,6,6]\n"
                       "  %c4 = conv2d(%a3, %w, %b) {pads=[1,1,1,1]} : f32[2,4,6,6]\n"
                       "  %one = constant {value=[1.0]} : f32[]\n"
                       "  %a4 = add(%c4, %one) : f32[2,4,6,6]\n"
                       "  return %a4, %c3\n"
                       "}\n");
  PipelineOptions po;
  std::vector<std::string> stages;
  po.afterPass = [&](const std::string &p, const Module &) { stages.push_back(p); };
  runPipeline(*m, po);
  CHECK(stages == std::vector<std::string>{"input", "fuse-residual", "fuse-relu"});
  // %c moves to where %a was (after %s, its residual, which has no bias: not fusable), keeps
  // its name, takes %a's users; the ReLU then fuses too
  CHECK(print(*m) == "func @f {\n"
                     "  %x = input : f32[2,4,6,6]\n"
                     "  %w = param : f32[4,4,3,3]\n"
                     "  %b = param : f32[4]\n"
                     "  %w1 = param : f32[4,4,1,1]\n"
                     "  %s = conv2d(%x, %w1) : f32[2,4,6,6]\n"
                     "  %c = conv2d(%x, %w, %b, %s) {pads=[1,1,1,1], relu=1} : f32[2,4,6,6]  // fused residual add (was %a); fused ReLU epilogue (was %r)\n"
                     "  %c2 = conv2d(%c, %w) {pads=[1,1,1,1]} : f32[2,4,6,6]\n"
                     "  %a2 = add(%c2, %c) : f32[2,4,6,6]\n"
                     "  %c3 = conv2d(%a2, %w, %b) {pads=[1,1,1,1]} : f32[2,4,6,6]\n"
                     "  %a3 = add(%c3, %a2) : f32[2,4,6,6]\n"
                     "  %c4 = conv2d(%a3, %w, %b) {pads=[1,1,1,1]} : f32[2,4,6,6]\n"
                     "  %one = constant {value=[1.0]} : f32[]\n"
                     "  %a4 = add(%c4, %one) : f32[2,4,6,6]\n"
                     "  return %a4, %c3\n"
                     "}\n");
  // the fused IR parses back, and a residual of another shape is an error naming the node
  CHECK(print(*parseModule(print(*m))) == print(*m));
  CHECK_THROWS_WITH(parseModule("func @f {\n"
                                "  %x = input : f32[1,4,6,6]\n"
                                "  %w = param : f32[4,4,3,3]\n"
                                "  %b = param : f32[4]\n"
                                "  %r = input : f32[1,4,6,6]\n"
                                "  %c = conv2d(%x, %w, %b, %r) : f32[1,4,4,4]\n"
                                "  return %c\n"
                                "}\n"),
                    Catch::Contains("%c") && Catch::Contains("residual r must have the result's shape [1,4,4,4], got [1,4,6,6]"));
}

TEST_CASE("fuse-relu folds relu(batchnorm) of a training BN, and fold-bn keeps a fused ReLU", "[passes]") {
  auto m = parseModule("func @f {\n"
                       "  %x = input : f32[2,3,4,4]\n"
                       "  %s = param : f32[3]\n"
                       "  %b = param : f32[3]\n"
                       "  %bm = bn_mean(%x) : f32[3]\n"
                       "  %bv = bn_var(%x, %bm) : f32[3]\n"
                       "  %bn = batchnorm(%x, %s, %b, %bm, %bv) : f32[2,3,4,4]\n"
                       "  %r = relu(%bn) : f32[2,3,4,4]\n"
                       "  %w = param : f32[5,3,3,3]\n"
                       "  %c = conv2d(%r, %w) : f32[2,5,2,2]\n"
                       "  %m = param : f32[5]\n"
                       "  %v = param : f32[5]\n"
                       "  %bn2 = batchnorm(%c, %m, %m, %m, %v) {relu=1} : f32[2,5,2,2]\n"
                       "  return %bn2\n"
                       "}\n");
  runPipeline(*m);
  const Function &f = m->main();
  CHECK(f.find("r") == nullptr);
  CHECK(f.find("bn")->getInt("relu") == 1);
  CHECK(f.find("bn")->comment == "fused ReLU epilogue (was %r)");
  // %bn2 (running statistics, an output) becomes the conv with folded weights, ReLU kept
  CHECK(f.find("bn2")->op == OpKind::Conv2d);
  CHECK(f.find("bn2")->getInt("relu") == 1);
}

TEST_CASE("fold-bn folds inference batchnorm into the conv before it, fuse-relu follows", "[passes]") {
  auto m = parseModule("func @f {\n"
                       "  %x = input : f32[2,3,6,6]\n"
                       "  %w = param : f32[4,3,3,3]\n"
                       "  %c = conv2d(%x, %w) : f32[2,4,4,4]\n"
                       "  %s = param : f32[4]\n"
                       "  %b = param : f32[4]\n"
                       "  %m = param : f32[4]\n"
                       "  %v = param : f32[4]\n"
                       "  %bn = batchnorm(%c, %s, %b, %m, %v) {epsilon=0.001} : f32[2,4,4,4]\n"
                       "  %r = relu(%bn) : f32[2,4,4,4]\n"
                       "  %bm = bn_mean(%r) : f32[4]\n"
                       "  %bv = bn_var(%r, %bm) : f32[4]\n"
                       "  %bn2 = batchnorm(%r, %s, %b, %bm, %bv) : f32[2,4,4,4]\n"
                       "  return %bn2\n"
                       "}\n");
  runPipeline(*m);
  // The second BN uses batch statistics and follows a relu: nothing to fold.
  CHECK(print(*m) ==
        "func @f {\n"
        "  %x = input : f32[2,3,6,6]\n"
        "  %w = param : f32[4,3,3,3]\n"
        "  %s = param : f32[4]\n"
        "  %b = param : f32[4]\n"
        "  %m = param : f32[4]\n"
        "  %v = param : f32[4]\n"
        "  %bn.fold.zeros = constant {value=[0.0]} : f32[4]\n"
        "  %bn.fold.ones = constant {value=[1.0]} : f32[1,4]\n"
        "  %bn.fold.a = batchnorm(%bn.fold.ones, %s, %bn.fold.zeros, %bn.fold.zeros, %v) {epsilon=0.001} : f32[1,4]\n"
        "  %bn.fold.a.w = reshape(%bn.fold.a) {shape=[4,1,1,1]} : f32[4,1,1,1]\n"
        "  %bn.fold.w = mul(%w, %bn.fold.a.w) : f32[4,3,3,3]\n"
        "  %bn.fold.b0 = constant {value=[0.0]} : f32[1,4]\n"
        "  %bn.fold.b1 = batchnorm(%bn.fold.b0, %s, %b, %m, %v) {epsilon=0.001} : f32[1,4]\n"
        "  %bn.fold.b = reshape(%bn.fold.b1) {shape=[4]} : f32[4]\n"
        "  %c = conv2d(%x, %bn.fold.w, %bn.fold.b) {relu=1} : f32[2,4,4,4]  // batch norm %bn folded into the weights; fused ReLU epilogue (was %r)\n"
        "  %bm = bn_mean(%c) : f32[4]\n"
        "  %bv = bn_var(%c, %bm) : f32[4]\n"
        "  %bn2 = batchnorm(%c, %s, %b, %bm, %bv) : f32[2,4,4,4]\n"
        "  return %bn2\n"
        "}\n");
}
