// The prepare entry (docs/codegen.md, "Prepared state"): what depends on the params alone
// (packed conv weights, folded batch norm) is computed once per change of the params. These
// tests change the params between inferences, through every way the C API has (set_param,
// load_weights, a training step) and through JitModel, and check each inference against
// the f64 interpreter with the params of that moment: a stale prepared state fails them.
#include "CodegenTestUtil.h"

#include "passes/Passes.h"
#include "runtime/CnncApi.h"

#include <catch2/catch.hpp>
#include <xtensor/xadapt.hpp>
#include <xtensor/xmath.hpp>

using namespace cnnc;
using namespace cnnc::cgtest;

namespace {

// Random params with positive BN variances (the folded BN takes their square root).
Feeds paramsFor(const Function &f, uint64_t seed) {
  Feeds feeds = randomFeeds(f, seed);
  for (const auto &n : f.nodes())
    if (n->op == OpKind::Param && n->name.ends_with(".var"))
      feeds[n->name] = xt::abs(feeds[n->name]) + 0.1;
  return feeds;
}

const Node *firstInput(const Function &f) {
  for (const auto &n : f.nodes())
    if (n->op == OpKind::Input)
      return n.get();
  FAIL("no input");
  return nullptr;
}

struct Api {
  SharedLib lib;
  int (*create)(cnnc_instance **);
  void (*destroy)(cnnc_instance *);
  int (*setParam)(cnnc_instance *, const char *, const float *, int64_t);
  int (*loadWeights)(cnnc_instance *, const char *);
  int (*infer)(cnnc_instance *, int64_t, const void *const *, float *const *);
  explicit Api(const std::string &so) : lib(so) {
    create = lib.fn<decltype(create)>("cnnc_create");
    destroy = lib.fn<decltype(destroy)>("cnnc_destroy");
    setParam = lib.fn<decltype(setParam)>("cnnc_set_param");
    loadWeights = lib.fn<decltype(loadWeights)>("cnnc_load_weights");
    infer = lib.fn<decltype(infer)>("cnnc_infer");
  }
  void setAll(cnnc_instance *inst, const Function &f, const Feeds &feeds) const {
    for (const auto &n : f.nodes())
      if (n->op == OpKind::Param) {
        std::vector<float> v(feeds.at(n->name).begin(), feeds.at(n->name).end());
        REQUIRE(setParam(inst, n->name.c_str(), v.data(), (int64_t)v.size()) == CNNC_OK);
      }
  }
  // one input (the images), one output (the class probabilities)
  Results run(cnnc_instance *inst, const Function &f, const Feeds &feeds, int64_t batch) const {
    const Node *in = firstInput(f), *out = f.outputs().at(0);
    std::vector<float> x(feeds.at(in->name).begin(), feeds.at(in->name).end());
    std::vector<float> y(out->type.numel(), NAN);
    const void *ins[] = {x.data()};
    float *outs[] = {y.data()};
    REQUIRE(infer(inst, batch, ins, outs) == CNNC_OK);
    Results r;
    r[out->name] = xt::adapt(std::vector<double>(y.begin(), y.end()), out->type.shape);
    return r;
  }
};

} // namespace

TEST_CASE("the prepared state follows every change of the params (.so)", "[codegen][prepare]") {
  for (const char *file : {"mnist_bn.cnn", "mnist_base.cnn"}) {
    SECTION(file) {
      auto m = loadPipelined(file, 4, false);
      const Function &f = m->main();
      const codegen::Layout l = codegen::layoutFor(f);
      REQUIRE(l.preparedBytes > 0); // packed conv weights at least
      const std::string so = tempPath(std::string("prepare_") + file + ".so");
      codegen::compileSharedLibrary(f, so, {});
      Api api(so);
      cnnc_instance *inst = nullptr;
      REQUIRE(api.create(&inst) == CNNC_OK);
      Feeds a = paramsFor(f, 1), b = paramsFor(f, 2), c = paramsFor(f, 3);
      b[firstInput(f)->name] = a[firstInput(f)->name];
      c[firstInput(f)->name] = a[firstInput(f)->name];
      api.setAll(inst, f, a);
      compareAll(oracle(f, a), api.run(inst, f, a, 4), "params a");
      compareAll(oracle(f, a), api.run(inst, f, a, 4), "params a, again");
      api.setAll(inst, f, b); // set_param after an inference
      compareAll(oracle(f, b), api.run(inst, f, b, 4), "params b by set_param");
      const std::string npz = tempPath(std::string("prepare_") + file + ".npz");
      tools::saveParams(f, c, npz);
      REQUIRE(api.loadWeights(inst, npz.c_str()) == CNNC_OK);
      compareAll(oracle(f, c), api.run(inst, f, c, 4), "params c by load_weights");
      api.destroy(inst);
    }
  }
}

TEST_CASE("a training step's new params reach the next inference (.so)", "[codegen][prepare]") {
  auto m = loadTrain("mnist_base.cnn", 4);
  const Function &ts = *m->find("train_step"), &inf = *m->find("infer");
  const std::string so = tempPath("prepare_train.so");
  codegen::AotOptions o;
  o.trainStep = &ts;
  codegen::compileSharedLibrary(inf, so, o);
  TrainLib t(so);
  Api api(so);
  Feeds feeds = trainFeeds(ts, 7);
  cnnc_instance *inst = t.fresh(ts, feeds);
  Feeds params = paramsFor(inf, 8);
  for (auto &[name, v] : params)
    if (feeds.count(name))
      params[name] = feeds.at(name);
  (void)api.run(inst, inf, params, 4); // prepares for the initial params
  BatchData d = batchFor(ts, 9);
  float loss = 0;
  int64_t correct = 0;
  REQUIRE(t.trainStep(inst, 4, d.ptrs.data(), 0.1f, 0.9f, 0.0f, &loss, &correct) == CNNC_OK);
  Feeds after = params;
  for (auto &[name, v] : t.state(inst))
    if (after.count(name))
      after[name] = xt::adapt(std::vector<double>(v.begin(), v.end()), after[name].shape());
  CHECK(xt::amax(xt::abs(after["conv1.w"] - params["conv1.w"]))() > 0); // the step moved it
  compareAll(oracle(inf, after), api.run(inst, inf, after, 4), "after a training step");
  t.destroy(inst);
}

TEST_CASE("JitModel: run prepares, runPrepared uses what prepare computed", "[codegen][prepare]") {
  auto m = loadPipelined("mnist_bn.cnn", 2, false);
  const Function &f = m->main();
  auto jit = codegen::JitModel::compile(f);
  const codegen::Layout &l = jit->layout();
  REQUIRE(l.preparedBytes > 0);
  Feeds a = paramsFor(f, 4), b = paramsFor(f, 5);
  b[firstInput(f)->name] = a[firstInput(f)->name];
  std::vector<std::vector<float>> store;
  std::vector<void *> ptrs;
  auto bind = [&](const Feeds &feeds) {
    store.clear(), ptrs.clear();
    store.reserve(l.buffers.size());
    for (const auto &s : l.buffers) {
      if (s.kind == codegen::BufferKind::Output)
        store.emplace_back(s.type.numel(), NAN);
      else
        store.emplace_back(feeds.at(s.name).begin(), feeds.at(s.name).end());
      ptrs.push_back(store.back().data());
    }
  };
  auto output = [&] {
    const Node *out = f.outputs().at(0);
    const auto &y = store.back();
    Results r;
    r[out->name] = xt::adapt(std::vector<double>(y.begin(), y.end()), out->type.shape);
    return r;
  };
  std::vector<char, std::allocator<char>> raw(l.workspaceBytes + 64);
  void *ws = reinterpret_cast<void *>((reinterpret_cast<uintptr_t>(raw.data()) + 63) / 64 * 64);
  bind(a);
  jit->prepare(ptrs.data(), ws);
  REQUIRE(jit->runPrepared(ptrs.data(), ws, 2) == 0);
  compareAll(oracle(f, a), output(), "prepared for a");
  bind(b);
  REQUIRE(jit->run(ptrs.data(), ws, 2) == 0);
  compareAll(oracle(f, b), output(), "run with b (prepares)");
  REQUIRE(jit->runPrepared(ptrs.data(), ws, 2) == 0);
  compareAll(oracle(f, b), output(), "runPrepared again");
}
