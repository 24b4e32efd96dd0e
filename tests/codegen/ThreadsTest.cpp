// Threads (docs/codegen.md, "Threads"): generated code splits loops over independent
// outputs across a pool, so results must not depend on the thread count at all. These
// tests compare bytes, not tolerances: parameters after k training steps at 1 and 2 threads
// (BASE, BN, BN + dropout, SK and the residual net, at batch 4 and batch 1, JIT; BASE and
// BN + dropout as a .so), inference at 1/2/3 threads, and two instances of one .so driven
// from two threads at once against each run alone; the split losses (l2_loss,
// softmax_xent_nd); and each step against the f64 interpreter at both counts (same bytes,
// and right). Codegen is asked to parallelise even tiny ops
// (parallelTarget) so that small, quick batches still exercise every split; one .so keeps
// the default threshold at MNIST's real batch of 100.
#include "CodegenTestUtil.h"

#include "passes/Passes.h"
#include "runtime/CnncApi.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <cstring>
#include <thread>

using namespace cnnc;
using namespace cnnc::cgtest;

namespace {



using State = std::map<std::string, std::vector<float>>;
struct Run {
  std::vector<float> losses;
  State state;
};

void checkSameBytes(const Run &a, const Run &b, const std::string &what) {
  INFO(what);
  REQUIRE(a.losses.size() == b.losses.size());
  CHECK(std::memcmp(a.losses.data(), b.losses.data(), a.losses.size() * 4) == 0);
  REQUIRE(a.state.size() == b.state.size());
  for (const auto &[name, v] : a.state) {
    INFO("param " << name);
    REQUIRE(b.state.count(name));
    REQUIRE(v.size() == b.state.at(name).size());
    CHECK(std::memcmp(v.data(), b.state.at(name).data(), v.size() * 4) == 0);
  }
}

constexpr int kSteps = 4;
const interp::Hyper kThreadsHyper{0.05, 0.9, 5e-4};

} // namespace

TEST_CASE("training steps: every op split, same bytes at 1 and 2 threads (batch 1 too), and "
          "right (JIT)",
          "[codegen][threads]") {
  // BASE; BN (batch statistics and their gradients); BN + dropout; SK (BN + ReLU everywhere);
  // the residual net (adds, strided convs, global average pooling, fc)
  for (const char *file : {"mnist_base.cnn", "mnist_bn.cnn", "mnist_bn_dropout.cnn", "mnist_sk.cnn",
                           "resnet_mnist.cnn"}) {
    SECTION(file) {
      constexpr int64_t kBatch = 4;
      auto m = loadTrain(file, kBatch);
      const Function &f = *m->find("train_step");
      auto tr = tools::JitTrainer::compile(f, parallelTarget());
      CHECK(tr->threads() == 1);

      // one step at each thread count against the f64 interpreter
      const Feeds feeds = trainFeeds(f, 5);
      const Results want = expectedStep(f, feeds);
      Feeds start;
      for (const auto &p : tr->paramNames())
        start[p] = feeds.at(p);
      std::map<std::string, interp::Tensor<double>> data;
      for (const auto &d : tr->dataInputs())
        data[d] = feeds.at(d);
      for (int threads : kThreadCounts) {
        tr->setThreads(threads);
        tr->setParams(start);
        tr->setStepCount(kStep);
        const interp::StepResult r = tr->step(data, kHyper);
        Results got;
        got["loss"] = interp::Tensor<double>(xt::xarray<double>(r.loss));
        if (want.count("correct"))
          got["correct"] = interp::Tensor<double>(xt::xarray<double>((double)r.correct));
        for (auto &[name, t] : tr->params())
          got[name] = t;
        compareAll(want, got, fmt::format("{}: one step at {} thread(s) vs the f64 interpreter", file, threads));
      }

      // k steps at the full batch and at batch 1: the same bytes at 1 and 2 threads
      const Feeds init = randomFeeds(f, 5);
      for (int64_t batch : {kBatch, int64_t(1)}) {
        auto train = [&](int threads) {
          tr->setThreads(threads);
          CHECK(tr->threads() == threads);
          Feeds params;
          for (const auto &p : tr->paramNames())
            params[p] = init.at(p);
          tr->setParams(params);
          tr->setStepCount(0);
          Run r;
          for (int s = 0; s < kSteps; ++s) {
            BatchData b = batchFor(f, s);
            r.losses.push_back(tr->step(b.ptrs.data(), kThreadsHyper, batch).loss);
          }
          for (auto &[name, t] : tr->params())
            r.state[name] = std::vector<float>(t.begin(), t.end());
          return r;
        };
        const Run one = train(1), two = train(2);
        CHECK(std::isfinite(one.losses.back()));
        const std::vector<float> &w0 = one.state.begin()->second;
        CHECK(w0 != std::vector<float>(w0.size(), 0.f));
        checkSameBytes(one, two, fmt::format("{} at batch {}: 1 vs 2 threads", file, batch));
      }
    }
  }
}

TEST_CASE("inference gives the same bytes at 1, 2 and 3 threads (JIT)", "[codegen][threads]") {
  tools::LoadOptions o;
  o.cnn.batch = 10;
  for (const char *file : {"mnist_bn.cnn"}) { // conv, batchnorm, relu, pools, fc, softmax
    auto m = tools::loadModel(std::string(CNNC_SOURCE_DIR) + "/examples/" + file, o);
    runPipeline(*m, {});
    const Function &f = m->main();
    const Feeds feeds = randomFeeds(f, 9);
    const Results r1 = tools::runJit(f, feeds, parallelTarget(), nullptr, 1);
    compareAll(oracle(f, feeds), r1, file); // and right, not only stable
    for (int threads : {2, 3}) {
      const Results rn = tools::runJit(f, feeds, parallelTarget(), nullptr, threads);
      for (const auto &[name, t] : r1) {
        INFO(file << " output %" << name << " at " << threads << " threads");
        REQUIRE(rn.at(name).size() == t.size());
        CHECK(std::memcmp(rn.at(name).data(), t.data(), t.size() * sizeof(double)) == 0);
      }
    }
  }
}

// The losses whose single sum is split (codegen/EmitLoss.cpp): l2_loss over fixed chunks (3
// here), softmax_xent_nd over its labels; one thread adds the parts in order.
TEST_CASE("l2_loss and softmax_xent_nd: the same bytes at 1, 2 and 3 threads, and right (JIT)",
          "[codegen][threads]") {
  Builder b;
  b.out(b.op(OpKind::L2Loss, {b.input("x", {37, 301}), b.input("t", {37, 301})}));
  Node *z = b.input("z", {6, 10, 7}), *label = b.input("label", {6, 7}, DType::I32);
  for (const char *red : {"mean", "none"})
    b.out(b.op(OpKind::SoftmaxXentNd, {z, label}, {{"reduction", std::string(red)}}));
  verify(b.f);
  const Feeds feeds = randomFeeds(b.f, 4);
  const Results r1 = tools::runJit(b.f, feeds, parallelTarget(), nullptr, 1);
  compareAll(oracle(b.f, feeds), r1, "losses");
  for (int threads : {2, 3}) {
    const Results rn = tools::runJit(b.f, feeds, parallelTarget(), nullptr, threads);
    for (const auto &[name, t] : r1) {
      INFO("output %" << name << " at " << threads << " threads");
      REQUIRE(rn.at(name).size() == t.size());
      CHECK(std::memcmp(rn.at(name).data(), t.data(), t.size() * sizeof(double)) == 0);
    }
  }
}

namespace {
struct Api : TrainLib {
  using TrainLib::TrainLib;
  // A fresh instance at `threads` from `init`, k steps on the batches of seeds s0.., its
  // losses and final state. Uses Catch only on the calling thread (`ok` reports failures
  // from others: Catch's assertions are not thread-safe).
  Run train(const Function &f, const Feeds &init, int threads, uint64_t s0, int64_t batch,
            bool *ok) const {
    Run r;
    cnnc_instance *inst = nullptr;
    *ok = create(&inst) == CNNC_OK && setThreads(inst, threads) == CNNC_OK &&
          getThreads(inst) == threads;
    for (const auto &n : f.nodes())
      if (*ok && n->op == OpKind::Param) {
        std::vector<float> v(init.at(n->name).begin(), init.at(n->name).end());
        *ok = setParam(inst, n->name.c_str(), v.data(), (int64_t)v.size()) == CNNC_OK;
      }
    for (int s = 0; *ok && s < kSteps; ++s) {
      BatchData b = batchFor(f, s0 + s);
      float loss = NAN;
      *ok = trainStep(inst, batch, b.ptrs.data(), (float)kThreadsHyper.lr, (float)kThreadsHyper.momentum,
                      (float)kThreadsHyper.weightDecay, &loss, nullptr) == CNNC_OK;
      r.losses.push_back(loss);
    }
    for (int k = 0; *ok && k < numBuffers(4); ++k) {
      const char *name;
      int64_t per;
      *ok = bufferInfo(4, k, &name, nullptr, nullptr, &per) == CNNC_OK;
      std::vector<float> v(per);
      *ok = *ok && getParam(inst, name, v.data(), per) == CNNC_OK;
      r.state[name] = v;
    }
    destroy(inst);
    return r;
  }
};
} // namespace

TEST_CASE("a --train .so: same bytes at 1 and 2 threads, and two instances in two threads",
          "[codegen][threads][aot]") {
  // MNIST BASE at its real batch with the default threshold (what users get), and
  // BN + dropout at a small batch with every op split
  struct Net {
    const char *file;
    int64_t batch;
    bool everyOp;
  };
  for (Net n : {Net{"mnist_base.cnn", 100, false}, Net{"mnist_bn_dropout.cnn", 6, true}}) {
    SECTION(n.file) {
      auto m = loadTrain(n.file, n.batch);
      const Function &inf = *m->find("infer"), &ts = *m->find("train_step");
      const std::string so = tempPath(fmt::format("threads_{}.so", n.file));
      codegen::AotOptions o;
      o.trainStep = &ts;
      if (n.everyOp)
        o.target = parallelTarget();
      codegen::compileSharedLibrary(inf, so, o);
      Api api(so);
      const Feeds initA = randomFeeds(ts, 5), initB = randomFeeds(ts, 6);
      bool ok1 = false, ok2 = false, ok3 = false;
      const Run a1 = api.train(ts, initA, 1, 0, n.batch, &ok1);
      const Run a2 = api.train(ts, initA, 2, 0, n.batch, &ok2);
      const Run b1 = api.train(ts, initB, 1, 50, n.batch, &ok3);
      REQUIRE((ok1 && ok2 && ok3));
      CHECK(std::isfinite(a1.losses.back()));
      checkSameBytes(a1, a2, fmt::format("{} .so: 1 vs 2 threads", n.file));

      // two instances, different weights and data, each on its own std::thread (with 2
      // pool threads each): each must give exactly what it gives alone
      Run ca, cb;
      bool okA = false, okB = false;
      std::thread ta([&] { ca = api.train(ts, initA, 2, 0, n.batch, &okA); });
      std::thread tb([&] { cb = api.train(ts, initB, 2, 50, n.batch, &okB); });
      ta.join();
      tb.join();
      REQUIRE((okA && okB));
      checkSameBytes(a1, ca, fmt::format("{} .so: instance A concurrently vs alone", n.file));
      checkSameBytes(b1, cb, fmt::format("{} .so: instance B concurrently vs alone", n.file));
      CHECK(a1.losses != b1.losses); // the two runs really differ
    }
  }
}

TEST_CASE("cnnc_set_threads misuse", "[codegen][threads][aot]") {
  Builder b;
  b.out(b.op(OpKind::Relu, {b.input("x", {4, 3})}));
  const std::string so = tempPath("threads_relu.so");
  codegen::compileSharedLibrary(b.f, so, {});
  Api api(so);
  CHECK(api.setThreads(nullptr, 2) == CNNC_ERR_NULL);
  CHECK(std::string(api.err(nullptr)).find("cnnc_set_threads") != std::string::npos);
  CHECK(api.getThreads(nullptr) == 0);
  cnnc_instance *inst = nullptr;
  REQUIRE(api.create(&inst) == CNNC_OK);
  const int all = api.getThreads(inst); // the default: every CPU this process may use
  CHECK(all >= 1);
  CHECK(all <= (int)std::max(1u, std::thread::hardware_concurrency()));
  CHECK(api.setThreads(inst, -1) == CNNC_ERR_THREADS);
  CHECK(std::string(api.err(inst)).find("-1 threads") != std::string::npos);
  CHECK(api.getThreads(inst) == all); // unchanged
  CHECK(api.setThreads(inst, 3) == CNNC_OK);
  CHECK(api.getThreads(inst) == 3);
  CHECK(api.setThreads(inst, 0) == CNNC_OK);
  CHECK(api.getThreads(inst) == all);
  // a call after a change of count (the pool is replaced) still runs
  CHECK(api.setThreads(inst, 2) == CNNC_OK);
  Feeds feeds = randomFeeds(b.f, 1);
  std::vector<float> x(feeds.at("x").begin(), feeds.at("x").end()), y(12, NAN);
  auto infer = api.lib.fn<int (*)(cnnc_instance *, int64_t, const void *const *, float *const *)>(
      "cnnc_infer");
  const void *in[] = {x.data()};
  float *out[] = {y.data()};
  CHECK(infer(inst, 4, in, out) == CNNC_OK);
  CHECK(y[0] == std::max(x[0], 0.f));
  api.destroy(inst);
}
