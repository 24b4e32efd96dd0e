// Batch polymorphism (docs/codegen.md, "Batch"): a function compiled at batch N runs any batch
// b in 1..N. @infer of every example network at every b, JIT and .so, against the first b
// rows of the batch-N result and, at b = 1, against the f64 interpreter on the model built at
// batch 1. @train_step at b in {1, 7, N-1, N}, JIT and .so, against the f64 interpreter's step
// of the same model built at batch b (loss, correct and every updated param): this is also
// the full-batch check of BASE, BN, BN+dropout and SK (test_codegen_train keeps resnet's).
// Checkpoints across partial batches stay bitwise; misuse of the batch is an error with a
// message.
#include "CodegenTestUtil.h"

#include "passes/Passes.h"
#include "runtime/CnncApi.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <xtensor/xview.hpp>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>

using namespace cnnc;
using namespace cnnc::cgtest;

namespace {

std::unique_ptr<Module> load(const std::string &name, int64_t batch, bool training,
                             bool small = false) {
  tools::LoadOptions o;
  o.cnn.batch = batch;
  o.cnn.training = training;
  if (small)
    o.cnn.inputHW = std::make_pair(int64_t(32), int64_t(32));
  auto m = tools::loadModel(std::string(CNNC_SOURCE_DIR) + "/examples/" + name, o);
  if (training) {
    PipelineOptions po;
    po.training = true;
    runPipeline(*m, po);
  }
  return m;
}

// The feeds with every batched input cut to its first b examples.
Feeds firstExamples(const Function &f, const Feeds &feeds, int64_t b) {
  Feeds out = feeds;
  for (const auto &n : f.nodes())
    if (n->op == OpKind::Input && n->type.rank() >= 1) {
      interp::Tensor<double> t = xt::view(feeds.at(n->name), xt::range(0, b));
      out[n->name] = t;
    }
  return out;
}

// The batched outputs of `r` cut to their first b rows.
Results firstRows(const codegen::Layout &l, const Results &r, int64_t b) {
  Results out = r;
  for (const auto &s : l.buffers)
    if (s.kind == codegen::BufferKind::Output && s.batched) {
      interp::Tensor<double> t = xt::view(r.at(s.name), xt::range(0, b));
      out[s.name] = t;
    }
  return out;
}






std::string compileTrainSo(const Module &m, const std::string &name) {
  const std::string so = tempPath(name + ".so");
  codegen::AotOptions o;
  o.trainStep = m.find("train_step");
  codegen::compileSharedLibrary(*m.find("infer"), so, o);
  return so;
}

// An epoch's steps with short batches: k steps == k/2 + save + load + k/2, byte for byte (and
// the JIT continues from the .so's checkpoint to the same bytes); batch 0, -1 and N+1 are
// CNNC_ERR_BATCH with a message and change nothing.
void partialBatches(const TrainLib &api, tools::JitTrainer &tr, const Function &ts,
                    const Feeds &feeds, int64_t N) {
  const int64_t sizes[] = {N, 3, N, 1};
  struct Data {
    std::vector<float> x;
    std::vector<int32_t> y;
  };
  auto data = [&](int s) {
    Feeds f = randomFeeds(ts, 100 + s);
    return Data{std::vector<float>(f.at("data").begin(), f.at("data").end()),
                std::vector<int32_t>(f.at("label").begin(), f.at("label").end())};
  };
  auto run = [&](cnnc_instance *inst, int from, int to) {
    for (int s = from; s < to; ++s) {
      Data d = data(s);
      const void *in[] = {d.x.data(), d.y.data()};
      float loss;
      int64_t correct;
      INFO(api.err(inst));
      REQUIRE(api.trainStep(inst, sizes[s], in, 0.05f, 0.9f, 5e-4f, &loss, &correct) == CNNC_OK);
      CHECK(std::isfinite(loss));
      CHECK(correct >= 0);
      CHECK(correct <= sizes[s]);
    }
  };
  cnnc_instance *a = api.fresh(ts, feeds);
  run(a, 0, 4);
  cnnc_instance *b1 = api.fresh(ts, feeds);
  run(b1, 0, 2);
  const std::string ck = tempPath("batch_partial.ckpt.npz");
  REQUIRE(api.save(b1, ck.c_str()) == CNNC_OK);
  api.destroy(b1);
  cnnc_instance *b2 = nullptr;
  REQUIRE(api.create(&b2) == CNNC_OK);
  REQUIRE(api.load(b2, ck.c_str()) == CNNC_OK);
  run(b2, 2, 4);
  auto sa = api.state(a), sb = api.state(b2);
  REQUIRE(sa.size() == sb.size());
  for (auto &[name, v] : sa) {
    INFO("state " << name);
    CHECK(std::memcmp(v.data(), sb.at(name).data(), v.size() * 4) == 0);
  }
  tr.loadCheckpoint(ck);
  for (int s = 2; s < 4; ++s) {
    Data d = data(s);
    const void *in[] = {d.x.data(), d.y.data()};
    tr.step(in, {0.05, 0.9, 5e-4}, sizes[s]);
  }
  for (auto &[name, v] : tr.params()) {
    INFO("JIT state " << name);
    CHECK(std::memcmp(v.data(), sb.at(name).data(), v.size() * 4) == 0);
  }

  auto before = api.state(b2);
  Data d = data(0);
  const void *in[] = {d.x.data(), d.y.data()};
  float loss = 0;
  int64_t correct = 0;
  for (int64_t b : {int64_t(0), int64_t(-1), N + 1}) {
    CHECK(api.trainStep(b2, b, in, 0.1f, 0.9f, 0, &loss, &correct) == CNNC_ERR_BATCH);
    CHECK_THAT(api.err(b2), Catch::Contains(fmt::format("batch {} outside 1..{}", b, N)));
  }
  CHECK(api.state(b2) == before);
  api.destroy(a), api.destroy(b2);
  CHECK_THROWS_WITH(tr.step(in, {0.1, 0.9, 0}, N + 1),
                    Catch::Contains(fmt::format("outside 1..{}", N)));
  std::map<std::string, interp::Tensor<double>> odd; // 3 images, 2 labels
  odd["data"] = xt::view(feeds.at("data"), xt::range(0, 3));
  odd["label"] = xt::view(feeds.at("label"), xt::range(0, 2));
  CHECK_THROWS_WITH(tr.step(odd, {0.1, 0.9, 0}), Catch::Contains("the other inputs hold 3"));
}

} // namespace

TEST_CASE("@infer of the example networks at every batch 1..N",
          "[codegen][batch][nets]") {
  struct Net {
    const char *file;
    int64_t batch;
    bool small, so; // VGG-16 at 32x32; also as a .so
  };
  for (Net n : {Net{"mnist_base.cnn", 4, false, true}, Net{"mnist_base_dropout.cnn", 3, false, false},
                Net{"mnist_bn.cnn", 3, false, false}, Net{"mnist_bn_dropout.cnn", 3, false, true},
                Net{"mnist_sk.cnn", 3, false, false}, Net{"resnet_mnist.cnn", 3, false, true},
                Net{"mobile_mnist.cnn", 3, false, true},
                Net{"vgg16.cnn", 2, true, false}}) {
    SECTION(n.file) {
      auto m = load(n.file, n.batch, false, n.small);
      const Function &f = m->main();
      const codegen::Layout l = codegen::layoutFor(f);
      INFO(l.batchNote);
      REQUIRE(l.batchPolymorphic);
      Feeds feeds = randomFeeds(f, 3);
      auto jit = codegen::JitModel::compile(f);
      const Results full = jitRun(*jit, feeds, n.batch);
      for (int64_t b = 1; b <= n.batch; ++b)
        compareAll(firstRows(l, full, b), jitRun(*jit, feeds, b),
                   fmt::format("{} JIT at batch {}", n.file, b));
      // the interpreter on the model built at batch 1 (VGG-16's is test_codegen_nets')
      Results one;
      if (!n.small) {
        auto m1 = load(n.file, 1, false, n.small);
        one = oracle(m1->main(), firstExamples(f, feeds, 1));
        compareAll(one, jitRun(*jit, feeds, 1), fmt::format("{} JIT at batch 1", n.file));
      }
      if (!n.so)
        continue;
      const std::string so = tempPath(fmt::format("batch_{}.so", n.file));
      codegen::compileSharedLibrary(f, so, {});
      SharedLib lib(so);
      CHECK(lib.fn<int64_t (*)()>("cnnc_min_batch")() == 1);
      for (int64_t b = 1; b <= n.batch; ++b)
        compareAll(firstRows(l, full, b), lib.infer(l, feeds, b),
                   fmt::format("{} .so at batch {}", n.file, b));
      compareAll(one, lib.infer(l, feeds, 1), fmt::format("{} .so at batch 1", n.file));
    }
  }
}

// @train_step compiled at N, run at b in {1, 7, N-1, N} (JIT and .so), is the interpreter's
// step built at b; partial batches checkpoint bitwise; bad batches are errors.
TEST_CASE("train steps at batch b <= N match the interpreter built at b", "[codegen][batch][train]") {
  constexpr int64_t N = 8; // b in {1, 7 = N-1, 8}
#ifdef CNNC_SANITIZE_BUILD
  // Under the sanitizers (424 s of the ASan run for all five) three networks carry every op
  // the other two add (conv with bias; BN + dropout + the partial batches; grouped convs,
  // padding, the mobile activations): the cost of the rest is scale, not coverage.
  const char *files[] = {"mnist_base.cnn", "mnist_bn_dropout.cnn", "mobile_mnist.cnn"};
#else
  const char *files[] = {"mnist_base.cnn", "mnist_bn.cnn", "mnist_bn_dropout.cnn", "mnist_sk.cnn",
                         "mobile_mnist.cnn"};
#endif
  for (const char *file : files) {
    SECTION(file) {
      auto m = load(file, N, true);
      const Function &ts = *m->find("train_step");
      const codegen::Layout l = codegen::layoutFor(ts);
      INFO(l.batchNote);
      REQUIRE(l.batchPolymorphic);
      Feeds feeds = trainFeeds(ts, 5);
      auto tr = tools::JitTrainer::compile(ts);
      CHECK(tr->batchSize() == N);
      CHECK(tr->minBatchSize() == 1);
      TrainLib api(compileTrainSo(*m, std::string("batch_train_") + file));
      CHECK(api.trainBatch() == N);
      CHECK(api.trainMinBatch() == 1);
      for (int64_t b : {int64_t(1), int64_t(7), N}) { // N - 1 == 7
        INFO("batch " << b);
        auto mb = load(file, b, true);
        const Function &tsb = *mb->find("train_step");
        const Feeds fb = firstExamples(ts, feeds, b);
        const Results want = expectedStep(tsb, fb);

        compareAll(want, jitStep(*tr, feeds, fb),
                   fmt::format("{} JIT step at batch {} of {}", file, b, N));

        cnnc_instance *inst = api.fresh(ts, feeds);
        REQUIRE(api.setStepCount(inst, kStep) == CNNC_OK);
        std::vector<float> x(fb.at("data").begin(), fb.at("data").end());
        std::vector<int32_t> y(fb.at("label").begin(), fb.at("label").end());
        const void *in[] = {x.data(), y.data()};
        float loss = NAN;
        int64_t correct = -7;
        INFO(api.err(inst));
        REQUIRE(api.trainStep(inst, b, in, (float)kHyper.lr, (float)kHyper.momentum,
                              (float)kHyper.weightDecay, &loss, &correct) == CNNC_OK);
        Results gs;
        gs["loss"] = interp::Tensor<double>(xt::xarray<double>(loss));
        gs["correct"] = interp::Tensor<double>(xt::xarray<double>((double)correct));
        for (auto &[name, v] : api.state(inst)) {
          interp::Tensor<double> t = feeds.at(name); // for the shape
          std::copy(v.begin(), v.end(), t.begin());
          gs[name] = t;
        }
        compareAll(want, gs, fmt::format("{} .so step at batch {} of {}", file, b, N));
        api.destroy(inst);
      }
      if (std::string(file) == "mnist_bn_dropout.cnn")
        partialBatches(api, *tr, ts, feeds, N);
    }
  }
}

TEST_CASE("what needs a runtime stride stays fixed-batch and says which node",
          "[codegen][batch]") {
  Builder b;
  Node *x = b.input("x", {2, 4, 5, 5});
  b.out(b.op(OpKind::Im2Row, {x},
             {{"kernel", std::vector<int64_t>{3, 3}}, {"groups", int64_t(2)}}));
  const codegen::Layout l = codegen::layoutFor(b.f);
  CHECK_FALSE(l.batchPolymorphic);
  CHECK_THAT(l.batchNote, Catch::Contains("im2row") && Catch::Contains("groups"));
}

TEST_CASE("bn_unbias counts the batch the function runs at", "[codegen][batch]") {
  Builder b;
  b.out(b.op(OpKind::BnUnbias, {b.input("x", {4, 3, 2, 2})}));
  b.out(b.op(OpKind::BnUnbias, {b.input("y", {4, 3})}));
  REQUIRE(codegen::layoutFor(b.f).batchPolymorphic);
  Feeds feeds = randomFeeds(b.f, 1);
  auto jit = codegen::JitModel::compile(b.f);
  for (int64_t n = 1; n <= 4; ++n) {
    INFO("batch " << n);
    Results r = jitRun(*jit, feeds, n);
    const double cx = 4.0 * (double)n, cy = (double)n; // N·H·W per channel
    CHECK(r.begin()->second() == (double)(float)(cx / (cx - 1)));
    CHECK(std::next(r.begin())->second() == (double)(float)(cy > 1 ? cy / (cy - 1) : 1.0));
  }
}

TEST_CASE("timing: MNIST BASE's one compiled train step at batch 100, 50 and 1",
          "[.bench][codegen][batch]") {
  auto m = load("mnist_base.cnn", 100, true);
  const Function &f = *m->find("train_step");
  Feeds feeds = trainFeeds(f, 5);
  auto tr = tools::JitTrainer::compile(f);
  Feeds params;
  for (const auto &p : tr->paramNames())
    params[p] = feeds.at(p);
  tr->setParams(params);
  std::vector<float> x(feeds.at("data").begin(), feeds.at("data").end());
  std::vector<int32_t> y(feeds.at("label").begin(), feeds.at("label").end());
  const void *in[] = {x.data(), y.data()};
  for (int64_t b : {100, 50, 1}) {
    tr->step(in, {0.001, 0.9, 5e-4}, b); // warm up
    const int reps = 10;
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i)
      tr->step(in, {0.001, 0.9, 5e-4}, b);
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
    WARN("BASE train step compiled at 100, run at batch " << b << ": " << s * 1e3 << " ms");
  }
}
