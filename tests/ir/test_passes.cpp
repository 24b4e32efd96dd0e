// simplify + dce: the pipeline removes no-ops and dead nodes and keeps the outputs' values.
#include "passes/Passes.h"

#include <catch2/catch.hpp>

using namespace cnnc;

TEST_CASE("simplify folds inference dropout and identity; dce removes the rest", "[passes]") {
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
  CHECK_THROWS_WITH(runPipeline(*m, po), Catch::Contains("unknown pass 'fusion' (passes: input, grad, simplify, fuse-conv-grad, dce)"));
}
