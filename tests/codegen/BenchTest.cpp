// Timings for the report (hidden: run `test_codegen_bench "[.bench]"`): MNIST BASE batch 100
// and VGG-16 batch 1 (224x224) compiled vs the interpreter, and one VGG conv layer's GFLOP/s.
#include "CodegenTestUtil.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <chrono>
#include <cstdlib>

using namespace cnnc;
using namespace cnnc::cgtest;

namespace {
double seconds(const std::function<void()> &f, int reps = 1) {
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i)
    f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
}

void bench(const Function &f, const Feeds &feeds, const std::string &what, bool interpToo,
           int reps) {
  auto jit = codegen::JitModel::compile(f);
  const codegen::Layout &l = jit->layout();
  std::vector<std::vector<float>> data(l.buffers.size());
  std::vector<void *> ptrs;
  for (size_t i = 0; i < l.buffers.size(); ++i) {
    const auto &s = l.buffers[i];
    if (s.kind == codegen::BufferKind::Output)
      data[i].assign(s.type.numel(), 0);
    else
      data[i].assign(feeds.at(s.name).begin(), feeds.at(s.name).end());
    ptrs.push_back(data[i].data());
  }
  void *ws = std::aligned_alloc(64, (l.workspaceBytes + 63) / 64 * 64 + 64);
  jit->run(ptrs.data(), ws, l.maxBatch); // warm up
  const double tj = seconds([&] { jit->run(ptrs.data(), ws, l.maxBatch); }, reps);
  std::free(ws);
  std::string line =
      fmt::format("{}: JIT compile {:.2f} s, run {:.2f} ms, workspace {:.1f} MiB", what,
                  jit->compileSeconds(), tj * 1e3, l.workspaceBytes / 1048576.0);
  if (interpToo) {
    std::map<std::string, interp::Tensor<float>> ff;
    for (auto &[k, v] : feeds)
      ff[k] = xt::cast<float>(v);
    const double ti = seconds([&] { interp::run<float>(f, ff); });
    line += fmt::format("; interp f32 {:.1f} ms ({:.0f}x)", ti * 1e3, ti / tj);
  }
  WARN(line);
}

std::unique_ptr<Module> load(const std::string &name, int64_t batch) {
  tools::LoadOptions o;
  o.cnn.batch = batch;
  return tools::loadModel(std::string(CNNC_SOURCE_DIR) + "/examples/" + name, o);
}
} // namespace

TEST_CASE("benchmarks", "[.bench]") {
  {
    auto m = load("mnist_base.cnn", 100);
    bench(m->main(), randomFeeds(m->main(), 1), "mnist_base batch 100", true, 20);
  }
  {
    auto m = load("vgg16.cnn", 1);
    bench(m->main(), randomFeeds(m->main(), 1), "vgg16 batch 1 224x224",
          std::getenv("CNNC_BENCH_INTERP"), 3);
  }
  for (int64_t hw : {56, 28}) { // VGG conv3_2 (256->256 @56) and conv4_2 (512->512 @28), 3x3 pad 1
    const int64_t C = hw == 56 ? 256 : 512;
    Builder b;
    Node *x = b.input("x", {1, C, hw, hw});
    b.out(b.op(OpKind::Conv2d, {x, b.param("w", {C, C, 3, 3}), b.param("b", {C})},
               {{"pads", std::vector<int64_t>{1, 1, 1, 1}}}));
    auto jit = codegen::JitModel::compile(b.f);
    const auto &l = jit->layout();
    std::vector<float> xv(C * hw * hw, 0.5f), wv(C * C * 9, 0.01f), bv(C, 0.f), yv(C * hw * hw);
    void *ptrs[] = {xv.data(), wv.data(), bv.data(), yv.data()};
    void *ws = std::aligned_alloc(64, (l.workspaceBytes + 63) / 64 * 64 + 64);
    jit->run(ptrs, ws, 1);
    const double t = seconds([&] { jit->run(ptrs, ws, 1); }, 5);
    std::free(ws);
    const double flops = 2.0 * C * C * 9 * hw * hw;
    WARN(fmt::format("conv {}->{} 3x3 @{}x{}: {:.2f} ms, {:.1f} GFLOP/s (1 core)", C, C, hw, hw,
                     t * 1e3, flops / t / 1e9));
  }
}
