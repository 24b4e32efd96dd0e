// The training step as a reader sees it (issue 18): sectioned forward / backward / update,
// every backward node citing where it comes from, long lines wrapped, fused nodes named for
// what they compute, and all of it parsing back to the same IR, for every example network.
#include "frontend/CnnFrontend.h"
#include "ir/Print.h"
#include "passes/Passes.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <sstream>

using namespace cnnc;

namespace {

constexpr int kWrap = 100;
const PrintOptions kReadable{false, true, kWrap};

std::vector<std::string> exampleFiles() {
  std::vector<std::string> v;
  for (const auto &e : std::filesystem::directory_iterator(std::string(CNNC_SOURCE_DIR) + "/examples"))
    if (e.path().extension() == ".cnn")
      v.push_back(e.path().string());
  std::sort(v.begin(), v.end());
  return v;
}

std::unique_ptr<Module> trainStep(const std::string &file, const std::string &stopAfter) {
  CnnOptions o;
  o.training = true;
  o.batch = 2;
  auto m = parseCnnFile(file, o);
  PipelineOptions po;
  po.training = true;
  po.stopAfter = stopAfter;
  runPipeline(*m, po);
  return m;
}

// The section headers of a dump, in order.
std::vector<std::string> headers(const std::string &text) {
  std::vector<std::string> h;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.rfind("  // ----- ", 0) == 0)
      h.push_back(line.substr(11, line.find(':') - 11) + (line.find("(continued)") != std::string::npos ? "+" : ""));
  return h;
}

void checkReadable(const Module &m) {
  const std::string text = print(m, kReadable);
  // parses back to the same IR: nodes, order, operands, attributes, types, comments
  auto back = parseModule(text, "sections.ir");
  CHECK(print(*back) == print(m));
  CHECK(print(*back, kReadable) == text);
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    const size_t comment = line.find("  // ");
    INFO(line);
    CHECK((comment == std::string::npos ? line.size() : comment) <= (size_t)kWrap);
  }
}

bool hasLoss(const std::string &file) {
  CnnOptions o;
  o.training = true;
  auto m = parseCnnFile(file, o);
  for (const Node *out : m->main().outputs())
    if (out->info().loss)
      return true;
  return false; // VGG-16 ends in a softmax: it has no training step
}

} // namespace

TEST_CASE("every example's training step prints in sections that parse back", "[autodiff][ir][dump]") {
  int trainable = 0;
  for (const std::string &file : exampleFiles()) {
    INFO(file);
    if (!hasLoss(file))
      continue;
    ++trainable;
    for (const char *stage : {"grad", ""}) { // as autodiff wrote it, after the whole pipeline
      INFO("after " << (*stage ? stage : "the pipeline"));
      auto m = trainStep(file, stage);
      const Function *ts = m->find(FunctionRole::TrainStep);
      REQUIRE(ts);
      checkReadable(*m);
      // forward, backward, update: each once, in that order
      CHECK(headers(print(*ts, kReadable)) == std::vector<std::string>{"forward", "backward", "update"});
      const auto sec = sectionsOf(*ts);
      int backward = 0;
      for (const auto &n : ts->nodes()) {
        auto it = sec.find(n.get());
        if (n->info().source || it == sec.end() || it->second != Section::Backward)
          continue;
        INFO("%" << n->name);
        ++backward;
        CHECK_FALSE(n->comment.empty()); // every backward node says where it comes from
      }
      CHECK(backward > 0);
      // the dy.split -> transpose -> dy.rows chain and the bias reduction explain themselves
      if (*stage)
        for (const auto &n : ts->nodes()) {
          INFO("%" << n->name);
          if (n->name.size() > 9 && n->name.substr(n->name.size() - 9) == ".dy.split")
            CHECK_THAT(n->comment, Catch::Contains("1 of 3"));
          if (n->name.size() > 8 && n->name.substr(n->name.size() - 8) == ".dy.rows")
            CHECK_THAT(n->comment, Catch::Contains("eq. 22"));
        }
      // fused nodes carry their producer's name: no conv2d/fc called %relu...
      for (const auto &f : m->functions())
        for (const auto &n : f->nodes()) {
          INFO("@" << f->name() << " %" << n->name);
          if (n->info().attr("relu") && n->getInt("relu") &&
              std::find(f->outputs().begin(), f->outputs().end(), n.get()) == f->outputs().end())
            CHECK(n->name.rfind("relu", 0) != 0);
        }
    }
  }
  CHECK(trainable >= 6);
}

TEST_CASE("sections follow the graph, not the names", "[autodiff][ir][dump]") {
  // a hand-written step: w's gradient path, a statistic only the update reads, an update
  auto m = parseModule("func @train_step {\n"
                       "  %lr = input : f32[]\n"
                       "  %x = input : f32[2,3]\n"
                       "  %t = input : f32[2,3]\n"
                       "  %w = param : f32[2,3]\n"
                       "  %y = mul(%x, %w) : f32[2,3]\n"
                       "  %z = l2_loss(%y, %t) : f32[]\n"
                       "  %one = constant {value=[1.0]} : f32[]\n"
                       "  %dy = l2_loss_grad(%one, %y, %t) : f32[2,3]\n"
                       "  %dw = mul(%dy, %x) : f32[2,3]\n"
                       "  %step = mul(%dw, %lr) : f32[2,3]\n"
                       "  %s = param : f32[2,3]\n"
                       "  %sq = mul(%x, %x) : f32[2,3]\n"
                       "  %s.new = add(%s, %sq) : f32[2,3]\n"
                       "  %w.new = sub(%w, %step) : f32[2,3]\n"
                       "  %w.next = update(%w, %w.new) : f32[2,3]\n"
                       "  %s.next = update(%s, %s.new) : f32[2,3]\n"
                       "  return %z, %w.next, %s.next\n"
                       "}\n");
  const Function &f = m->main();
  auto sec = sectionsOf(f);
  auto of = [&](const char *n) { return sec.at(f.find(n)); };
  CHECK(of("y") == Section::Forward);
  CHECK(of("z") == Section::Forward);
  CHECK(of("dy") == Section::Backward); // takes the loss's adjoint (operand `dz`)
  CHECK(of("dw") == Section::Backward);
  CHECK(of("step") == Section::Update); // reads %lr, an input the forward part does not
  CHECK(of("sq") == Section::Update);   // forward values, read only by the update
  CHECK(of("s.new") == Section::Update);
  CHECK(of("w.next") == Section::Update);
  // %sq sits between update nodes but after %step: the update section runs on; a header
  // per change of section
  const std::string text = print(f, kReadable);
  CHECK(headers(text) == std::vector<std::string>{"forward", "backward", "update"});
  CHECK(print(*parseModule(text, "hand.ir"), kReadable) == text);
}
