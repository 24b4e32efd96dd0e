// Whole training steps compiled: @train_step of the example networks under the JIT
// (tools::JitTrainer) and as a shared library (cnnc_train_step), against the f64
// interpreter: the loss, the number correct and every updated param after one step.
// Then the .so's checkpoints (k steps straight == k/2 + save + load + k/2, byte for byte)
// and its API on misuse.
#include "CodegenTestUtil.h"

#include "passes/Passes.h"
#include "runtime/CnncApi.h"
#include "io/Npz.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>

using namespace cnnc;
using namespace cnnc::cgtest;

namespace {





std::vector<std::string> dataInputs(const Function &f) {
  std::vector<std::string> v;
  for (const auto &n : f.nodes())
    if (n->op == OpKind::Input && n->name != "lr" && n->name != "momentum" &&
        n->name != "weight_decay" && n->name != "step")
      v.push_back(n->name);
  return v;
}

} // namespace

TEST_CASE("train steps of the example networks: JIT matches the f64 interpreter",
          "[codegen][train][nets]") {
  struct Net {
    const char *file;
    int64_t batch;
  };
  // BASE, BN, BN+dropout and SK: test_codegen_batch checks them at batch N and below
  for (Net n : {Net{"resnet_mnist.cnn", 2}}) {
    SECTION(n.file) {
      auto m = loadTrain(n.file, n.batch);
      const Function &f = *m->find("train_step");
      Feeds feeds = trainFeeds(f, 5);
      auto t0 = std::chrono::steady_clock::now();
      Results want = expectedStep(f, feeds);
      auto t1 = std::chrono::steady_clock::now();
      auto tr = tools::JitTrainer::compile(f);
      CHECK(tr->batchSize() == n.batch);
      CHECK(tr->dataInputs() == dataInputs(f));
      auto t2 = std::chrono::steady_clock::now();
      const Results got = jitStep(*tr, feeds, feeds); // the step, with setting its params
      auto t3 = std::chrono::steady_clock::now();
      WARN(n.file << " train step (batch " << n.batch << "): JIT compile " << tr->compileSeconds()
                  << " s, step " << std::chrono::duration<double>(t3 - t2).count() * 1e3
                  << " ms; interp f64 " << std::chrono::duration<double>(t1 - t0).count() * 1e3
                  << " ms");
      CHECK(tr->stepCount() == kStep + 1);
      compareAll(want, got, std::string(n.file) + " train step (JIT)");
    }
  }
}

namespace {

// The C API of a --train library, resolved once.


} // namespace

TEST_CASE("a --train shared library: train step, checkpoints, misuse", "[codegen][train][aot]") {
  auto m = loadTrain("mnist_bn_dropout.cnn", 4);
  const Function &inf = *m->find("infer"), &ts = *m->find("train_step");
  const std::string so = tempPath("bn_dropout_train.so");
  codegen::AotOptions o;
  o.trainStep = &ts;
  o.headerPath = tempPath("bn_dropout_train.h");
  // Catch2 runs this setup again for each SECTION; the sections share one library (the same
  // model, so the same code): compiling it six times cost most of the test (340 s under ASan)
  static bool compiled = false;
  if (!compiled)
    codegen::compileSharedLibrary(inf, so, o), compiled = true;
  TrainLib api(so);
  Feeds feeds = trainFeeds(ts, 5);
  auto fresh = [&] { return api.fresh(ts, feeds); };
  CHECK(api.numBuffers(3) == 2);
  CHECK(api.numBuffers(4) == (int)std::count_if(ts.nodes().begin(), ts.nodes().end(),
                                                [](auto &n) { return n->op == OpKind::Param; }));

  SECTION("one step matches the f64 interpreter") {
    cnnc_instance *inst = fresh();
    REQUIRE(api.setStepCount(inst, kStep) == CNNC_OK);
    std::vector<float> x(feeds.at("data").begin(), feeds.at("data").end());
    std::vector<int32_t> y(feeds.at("label").begin(), feeds.at("label").end());
    const void *in[] = {x.data(), y.data()};
    float loss = NAN;
    int64_t correct = -7;
    REQUIRE(api.trainStep(inst, 4, in, (float)kHyper.lr, (float)kHyper.momentum,
                          (float)kHyper.weightDecay, &loss, &correct) == CNNC_OK);
    CHECK(api.stepCount(inst) == (int64_t)kStep + 1);
    Results got;
    got["loss"] = interp::Tensor<double>(xt::xarray<double>(loss));
    got["correct"] = interp::Tensor<double>(xt::xarray<double>((double)correct));
    for (auto &[name, v] : api.state(inst)) {
      interp::Tensor<double> t = feeds.at(name); // for the shape
      std::copy(v.begin(), v.end(), t.begin());
      got[name] = t;
    }
    compareAll(expectedStep(ts, feeds), got, "mnist_bn_dropout train step (.so)");
    api.destroy(inst);
  }

  SECTION("k steps == k/2 steps + checkpoint + load + k/2 steps, byte for byte") {
    const int k = 4;
    auto run = [&](cnnc_instance *inst, int from, int to) {
      for (int s = from; s < to; ++s) {
        BatchData b = batchFor(ts, s);
        float loss;
        int64_t correct;
        INFO(api.err(inst));
        REQUIRE(api.trainStep(inst, 4, b.ptrs.data(), 0.05f, 0.9f, 5e-4f, &loss, &correct) ==
                CNNC_OK);
        CHECK(std::isfinite(loss));
      }
    };
    cnnc_instance *a = fresh();
    run(a, 0, k);
    cnnc_instance *b1 = fresh();
    run(b1, 0, k / 2);
    const std::string ck = tempPath("bn_dropout.ckpt.npz");
    REQUIRE(api.save(b1, ck.c_str()) == CNNC_OK);
    api.destroy(b1);
    cnnc_instance *b2 = nullptr;
    REQUIRE(api.create(&b2) == CNNC_OK);
    REQUIRE(api.load(b2, ck.c_str()) == CNNC_OK);
    CHECK(api.stepCount(b2) == k / 2);
    run(b2, k / 2, k);
    CHECK(api.stepCount(b2) == k);
    auto sa = api.state(a), sb = api.state(b2);
    REQUIRE(sa.size() == sb.size());
    for (auto &[name, v] : sa) {
      INFO("state " << name);
      CHECK(std::memcmp(v.data(), sb.at(name).data(), v.size() * 4) == 0);
    }
    // the JIT trainer reads the same checkpoint and continues to the same bytes
    auto tr = tools::JitTrainer::compile(ts);
    tr->loadCheckpoint(ck);
    CHECK(tr->stepCount() == k / 2);
    for (int s = k / 2; s < k; ++s) {
      BatchData bd = batchFor(ts, s);
      tr->step(bd.ptrs.data(), {0.05, 0.9, 5e-4});
    }
    for (auto &[name, v] : tr->params()) {
      INFO("JIT state " << name);
      CHECK(std::memcmp(v.data(), sb.at(name).data(), v.size() * 4) == 0);
    }
    // and the JIT's own checkpoint loads into the library
    const std::string ck2 = tempPath("jit.ckpt.npz");
    tr->saveCheckpoint(ck2);
    cnnc_instance *c = nullptr;
    REQUIRE(api.create(&c) == CNNC_OK);
    REQUIRE(api.load(c, ck2.c_str()) == CNNC_OK);
    CHECK(api.stepCount(c) == k);
    api.destroy(a), api.destroy(b2), api.destroy(c);
    // a bad label: the JIT step throws and changes nothing either
    BatchData bad = batchFor(ts, 0);
    bad.labels[1] = -1;
    auto before = tr->params();
    CHECK_THROWS_WITH(tr->step(bad.ptrs.data(), {0.05, 0.9, 5e-4}), Catch::Contains("not applied"));
    CHECK(tr->stepCount() == k);
    for (auto &[name, v] : tr->params())
      CHECK(std::memcmp(v.data(), before.at(name).data(), v.size() * 4) == 0);
  }

  SECTION("misuse returns error codes, and a failed step changes nothing") {
    cnnc_instance *inst = fresh();
    BatchData b = batchFor(ts, 0);
    float loss;
    int64_t correct;
    CHECK(api.trainStep(nullptr, 4, b.ptrs.data(), 0.1f, 0.9f, 0, &loss, &correct) ==
          CNNC_ERR_NULL);
    CHECK(api.trainStep(inst, 4, nullptr, 0.1f, 0.9f, 0, &loss, &correct) == CNNC_ERR_NULL);
    CHECK(api.trainStep(inst, 5, b.ptrs.data(), 0.1f, 0.9f, 0, &loss, &correct) == CNNC_ERR_BATCH);
    CHECK_THAT(api.err(inst), Catch::Contains("batch 5 outside 1..4"));
    const void *half[] = {b.data.data(), nullptr};
    CHECK(api.trainStep(inst, 4, half, 0.1f, 0.9f, 0, &loss, &correct) == CNNC_ERR_NULL);
    CHECK_THAT(api.err(inst), Catch::Contains("'label'"));
    auto before = api.state(inst);
    b.labels[2] = 10;
    CHECK(api.trainStep(inst, 4, b.ptrs.data(), 0.1f, 0.9f, 0, &loss, &correct) == CNNC_ERR_LABEL);
    CHECK_THAT(api.err(inst), Catch::Contains("not applied"));
    CHECK(api.stepCount(inst) == 0);
    CHECK(api.state(inst) == before);
    CHECK(api.setStepCount(inst, -1) == CNNC_ERR_SIZE);
    CHECK(api.load(inst, "/nonexistent/x.npz") == CNNC_ERR_IO);
    CHECK(api.save(inst, "/nonexistent/x.npz") == CNNC_ERR_IO);
    CHECK(api.load(inst, nullptr) == CNNC_ERR_NULL);
    // a weights file is not a checkpoint, and a checkpoint's 'step' is not a weight
    const std::string w = tempPath("w.npz"), ck = tempPath("c.npz");
    std::map<std::string, io::Array> arrays;
    for (const auto &n : inf.nodes())
      if (n->op == OpKind::Param) {
        std::vector<float> v(feeds.at(n->name).begin(), feeds.at(n->name).end());
        arrays[n->name] = io::Array::fromFloats(
            v, std::vector<int64_t>(n->type.shape.begin(), n->type.shape.end()));
      }
    io::writeNpz(w, arrays);
    CHECK(api.loadWeights(inst, w.c_str()) == CNNC_OK);
    CHECK(api.load(inst, w.c_str()) == CNNC_ERR_SIZE); // no momentum arrays
    REQUIRE(api.save(inst, ck.c_str()) == CNNC_OK);
    CHECK(api.loadWeights(inst, ck.c_str()) == CNNC_ERR_NAME);
    CHECK_THAT(api.err(inst), Catch::Contains("'step'"));
    CHECK(api.state(inst) == before); // failed loads change nothing
    api.destroy(inst);
  }

  SECTION("the generated header documents the step and compiles with the API header") {
    std::ifstream hs(o.headerPath);
    std::string h((std::istreambuf_iterator<char>(hs)), std::istreambuf_iterator<char>());
    CHECK_THAT(h, Catch::Contains("#define INFER_TRAIN_BATCH 4") &&
                      Catch::Contains("#define INFER_TRAIN_MIN_BATCH 1") &&
                      Catch::Contains("#define INFER_TRAIN_INPUT_0_PER_EXAMPLE 784") &&
                      Catch::Contains("#define INFER_TRAIN_INPUT_1_NAME \"label\"") &&
                      Catch::Contains("cnnc_train_step(cnnc_instance *inst"));
    const std::string c = tempPath("use_train.c");
    std::ofstream(c) << "#include \"" << o.headerPath
                     << "\"\n#include \"runtime/CnncApi.h\"\n"
                        "int main(void) { float l; int64_t k; return cnnc_train_step(0, "
                        "INFER_TRAIN_BATCH, 0, 0.1f, 0.9f, 0.f, &l, &k); }\n";
    const std::string cmd = fmt::format(
        "cc -std=c11 -Wall -Werror -fsyntax-only -I{} {} 2>&1; echo rc=$?", CNNC_SOURCE_DIR, c);
    const std::string out = runCommand(cmd);
    INFO(out);
    CHECK(out.find("rc=0") != std::string::npos);
  }

  SECTION("the same library infers with @infer on the shared state") {
    Feeds fi = randomFeeds(inf, 9);
    compareAll(oracle(inf, fi), api.lib.infer(codegen::layoutFor(inf), fi, 4),
               "@infer of a --train .so");
  }

  SECTION("an inference-only library has no training step") {
    const std::string so2 = tempPath("bn_infer_only.so");
    codegen::compileSharedLibrary(inf, so2, {});
    TrainLib api2(so2);
    cnnc_instance *inst = nullptr;
    REQUIRE(api2.create(&inst) == CNNC_OK);
    CHECK(api2.trainStep(inst, 4, nullptr, 0, 0, 0, nullptr, nullptr) == CNNC_ERR_NOTRAIN);
    CHECK(api2.numBuffers(3) == 0);
    api2.destroy(inst);
  }
}

TEST_CASE("timing: MNIST BASE train step at batch 100, compiled vs interpreter",
          "[.bench][codegen][train]") {
  auto m = loadTrain("mnist_base.cnn", 100);
  const Function &f = *m->find("train_step");
  Feeds feeds = trainFeeds(f, 5);
  auto tr = tools::JitTrainer::compile(f);
  Feeds params;
  for (const auto &p : tr->paramNames())
    params[p] = feeds.at(p);
  tr->setParams(params);
  std::map<std::string, interp::Tensor<double>> batch;
  for (const auto &d : tr->dataInputs())
    batch[d] = feeds.at(d);
  tr->step(batch, kHyper); // warm up
  const int reps = 10;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i)
    tr->step(batch, kHyper);
  const double jit =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
  std::map<std::string, interp::Tensor<float>> state, fb;
  for (auto &[k, v] : params)
    state[k] = v;
  for (auto &[k, v] : batch)
    fb[k] = v;
  t0 = std::chrono::steady_clock::now();
  interp::trainStep<float>(f, state, fb, kHyper, 0);
  const double in = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  WARN("MNIST BASE train step, batch 100: JIT " << jit * 1e3 << " ms (compile "
                                                << tr->compileSeconds() << " s), interpreter f32 "
                                                << in * 1e3 << " ms, speed-up " << in / jit);
}

TEST_CASE("the SGD update is one fused in-place pass with the six nodes' bits",
          "[codegen][train][sgd]") {
  // passes/TrainStep.cpp's update of one param (seed eq. 8), the gradient an input; with
  // `extra`, the velocity is also an output, so the pattern must stay unfused
  auto text = [](bool extra) {
    return fmt::format(R"(func @train_step {{
  %lr = input : f32[]
  %momentum = input : f32[]
  %weight_decay = input : f32[]
  %g = input : f32[3,37]
  %w = param : f32[3,37]
  %w.momentum = param {{trainable=0}} : f32[3,37]
  %w.decay = mul(%w, %weight_decay) : f32[3,37]
  %w.dir = add(%g, %w.decay) : f32[3,37]
  %w.inertia = mul(%w.momentum, %momentum) : f32[3,37]
  %w.lrdir = mul(%w.dir, %lr) : f32[3,37]
  %w.vel = sub(%w.inertia, %w.lrdir) : f32[3,37]
  %w.momentum.next = update(%w.momentum, %w.vel) : f32[3,37]
  %w.new = add(%w, %w.vel) : f32[3,37]
  %w.next = update(%w, %w.new) : f32[3,37]
  return {}%w.momentum.next, %w.next
}}
)",
                       extra ? "%w.vel, " : "");
  };
  // params after one JIT run, by name
  auto run = [](const Function &f, const Feeds &feeds, int threads) {
    auto jit = codegen::JitModel::compile(f, parallelTarget());
    const codegen::Layout &l = jit->layout();
    std::vector<std::vector<float>> data(l.buffers.size());
    std::vector<void *> ptrs;
    for (size_t i = 0; i < l.buffers.size(); ++i) {
      const codegen::BufferSlot &s = l.buffers[i];
      if (s.kind == codegen::BufferKind::Output)
        data[i].assign(s.type.numel(), 0.f);
      else
        data[i].assign(feeds.at(s.name).begin(), feeds.at(s.name).end());
      ptrs.push_back(data[i].data());
    }
    std::vector<char> ws(l.workspaceBytes + 64);
    void *aligned = ws.data() + (64 - (uintptr_t)ws.data() % 64) % 64;
    tools::ThreadPool pool(threads);
    REQUIRE(jit->run(ptrs.data(), aligned, l.maxBatch, pool.get()) == 0);
    std::map<std::string, std::vector<float>> params;
    for (size_t i = 0; i < l.buffers.size(); ++i)
      if (l.buffers[i].kind == codegen::BufferKind::Param)
        params[l.buffers[i].name] = data[i];
    return params;
  };
  auto fusedM = parseModule(text(false), "sgd.ir"), plainM = parseModule(text(true), "sgd_plain.ir");
  const Function &fused = fusedM->main(), &plain = plainM->main();
  Feeds feeds = randomFeeds(fused, 11);
  auto scalar = [](double v) { return interp::Tensor<double>(xt::xarray<double>(v)); };
  feeds["lr"] = scalar(0.05), feeds["momentum"] = scalar(0.9), feeds["weight_decay"] = scalar(5e-4);
  // fused: nothing in the workspace (the gradient is an input); unfused: the six values
  CHECK(codegen::layoutFor(fused).workspaceBytes == 0);
  CHECK(codegen::layoutFor(plain).workspaceBytes > 0);
  // the interpreter in f32 rounds after every node: the fused loop must give the same bits
  std::map<std::string, interp::Tensor<float>> f32feeds;
  for (const auto &[k, v] : feeds)
    f32feeds[k] = v;
  auto want = interp::run<float>(fused, f32feeds);
  for (int threads : kThreadCounts) {
    auto a = run(fused, feeds, threads), b = run(plain, feeds, threads);
    for (const char *p : {"w", "w.momentum"}) {
      INFO(p << " at " << threads << " thread(s)");
      const auto &ref = want.at(std::string(p) + ".next");
      REQUIRE(a.at(p).size() == ref.size());
      CHECK(std::memcmp(a.at(p).data(), ref.data(), ref.size() * 4) == 0);
      CHECK(a.at(p) == b.at(p));
      CHECK(a.at(p) != std::vector<float>(feeds.at(p).begin(), feeds.at(p).end())); // it moved
    }
  }
}

// Before/after for docs/codegen.md: the training steps with the SGD update fused (default)
// and as the six elementwise nodes + two copies (TargetOptions::fuseSgd = false), the
// workspace each needs and the step time, interleaved runs, medians of process CPU time.
TEST_CASE("timing: train steps with the SGD update fused vs unfused", "[.bench][codegen][sgd]") {
  auto cpuMs = [] {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
  };
  const interp::Hyper hyper{0.01, 0.9, 5e-4};
  for (const char *file : {"mnist_base.cnn", "mnist_bn.cnn", "mnist_sk.cnn"}) {
    auto m = loadTrain(file, 100);
    const Function &f = *m->find("train_step");
    const Feeds feeds = randomFeeds(f, 5);
    struct Run {
      std::unique_ptr<tools::JitTrainer> tr;
      std::vector<double> ms;
      int64_t ws = 0;
    };
    Run runs[2];
    std::map<std::string, interp::Tensor<double>> batch;
    for (int fuse = 0; fuse < 2; ++fuse) {
      codegen::TargetOptions t;
      t.fuseSgd = fuse;
      runs[fuse].ws = codegen::layoutFor(f, t).workspaceBytes;
      runs[fuse].tr = tools::JitTrainer::compile(f, t);
      Feeds params;
      for (const auto &p : runs[fuse].tr->paramNames())
        params[p] = feeds.at(p);
      runs[fuse].tr->setParams(params);
      for (const auto &d : runs[fuse].tr->dataInputs())
        batch[d] = feeds.at(d);
      runs[fuse].tr->step(batch, hyper); // warm up
    }
    for (int round = 0; round < 31; ++round)
      for (Run &r : runs) {
        const double t0 = cpuMs();
        r.tr->step(batch, hyper);
        r.ms.push_back(cpuMs() - t0);
      }
    for (int fuse = 0; fuse < 2; ++fuse) {
      auto v = runs[fuse].ms;
      std::sort(v.begin(), v.end());
      WARN(file << (fuse ? " SGD fused  " : " SGD unfused") << ": workspace " << runs[fuse].ws
                << " B, step median CPU " << v[v.size() / 2] << " ms (min " << v.front() << ", max "
                << v.back() << ")");
    }
  }
}
