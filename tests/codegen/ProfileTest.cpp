// Profiling (codegen TargetOptions::profile, tools/Profile.h, `cnnc run --profile`): the
// timers change nothing the code computes, and leave no trace in a build without them; the
// profile names every node the entry computes, with times that add up to at most the call.
#include "CodegenTestUtil.h"
#include "passes/Passes.h"
#include "tools/Profile.h"

#include <catch2/catch.hpp>

#include <set>

using namespace cnnc;
using namespace cnnc::cgtest;

namespace {

std::unique_ptr<Module> loadInfer(const std::string &name, int64_t batch) {
  tools::LoadOptions o;
  o.cnn.batch = batch;
  auto m = tools::loadModel(std::string(CNNC_SOURCE_DIR) + "/examples/" + name, o);
  runPipeline(*m, PipelineOptions{});
  return m;
}

size_t count(const std::string &s, const std::string &what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1))
    ++n;
  return n;
}

// Every node of the fused IR that the entry computes must be a row: the compute ops (those
// with an emitter and not folded into the prepare entry) are at least every conv2d, fc,
// pooling and softmax of these models; and every row names a node of f (or the update).
void checkProfile(const Function &f, const tools::Profile &p, bool training) {
  std::set<std::string> rows;
  double sum = 0;
  for (const tools::ProfileRow &r : p.rows) {
    CHECK(r.ms >= 0);
    sum += r.ms;
    CHECK(rows.insert(r.node).second);
    if (r.node != codegen::kProfileUpdateSite) {
      const Node *n = f.find(r.node);
      REQUIRE(n);
      CHECK(r.ops.rfind(n->info().mnemonic, 0) == 0);
      CHECK((r.ops.find("+relu") != std::string::npos) == (n->attrs.count("relu") && n->getInt("relu")));
    }
  }
  CHECK(rows.count(codegen::kProfileUpdateSite) == (training ? 1u : 0u));
  size_t convs = 0;
  for (const Node *n : f.nodeList())
    if (n->op == OpKind::Conv2d || n->op == OpKind::MaxPool || n->op == OpKind::Softmax) {
      CHECK(rows.count(n->name) == 1);
      convs += n->op == OpKind::Conv2d;
    }
  CHECK(convs > 0);
  for (const tools::ProfileRow &r : p.rows)
    if (f.find(r.node) && f.find(r.node)->op == OpKind::Conv2d)
      CHECK(r.flops > 0); // a conv's GFLOP/s
  CHECK(sum <= p.callMs);
  CHECK(p.callMs > 0);
}

} // namespace

TEST_CASE("a profiled build computes the same bits, without profiling no timer is emitted", "[codegen][profile]") {
  auto m = loadInfer("mnist_bn.cnn", 2);
  const Function &f = m->main();
  Feeds feeds = randomFeeds(f, 7);
  codegen::TargetOptions on;
  on.profile = true;
  auto plain = tools::runJit(f, feeds), timed = tools::runJit(f, feeds, on);
  for (auto &[name, t] : plain) {
    const bool same = t == timed.at(name); // bitwise: the timers sit between nodes, never inside one
    CHECK(same);
  }

  // Off, the module names neither the hook nor the counters; on, each site calls the clock
  // twice and nothing else differs in kind.
  const std::string off = codegen::emit(f, codegen::EmitKind::LLVM, {}, false);
  CHECK(off == codegen::emit(f, codegen::EmitKind::LLVM, codegen::TargetOptions{}, false));
  CHECK(off.find("cnnc_rt_clock_ns") == std::string::npos);
  CHECK(off.find("profile_ns") == std::string::npos);
  const std::string prof = codegen::emit(f, codegen::EmitKind::LLVM, on, false);
  const size_t sites = codegen::JitModel::compile(f, on)->layout().profileSites.size();
  CHECK(codegen::JitModel::compile(f)->layout().profileSites.empty());
  CHECK(sites > 0);
  CHECK(count(prof, "call i64 @cnnc_rt_clock_ns()") == 2 * sites);
}

TEST_CASE("the profile of an inference and a training step names every node, times add up", "[codegen][profile]") {
  auto inf = loadInfer("mnist_bn.cnn", 4);
  const Function &f = inf->main();
  tools::Profile p = tools::profileFunction(f, randomFeeds(f, 1), 1, 3);
  checkProfile(f, p, false);
  const std::string table = tools::formatProfile(p);
  CHECK(table.find("%conv1") != std::string::npos);
  CHECK(table.find("conv2d+relu") != std::string::npos); // conv3's fused epilogue

  auto tr = loadTrain("mnist_base.cnn", 4);
  const Function &ts = *tr->find(FunctionRole::TrainStep);
  tools::Profile q = tools::profileFunction(ts, trainFeeds(ts, 2), 2, 2);
  checkProfile(ts, q, true);
  CHECK(tools::profileJson(q).find("\"node\": \"(update)\"") != std::string::npos);
}
