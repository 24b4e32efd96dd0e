// The fused conv2d gradients (codegen/EmitConvGrad.cpp) compiled by the JIT, and all of them
// in one AOT shared library, against the f64 interpreter (max|a-b| <= 1e-4 max(1, max|b|)):
// a sweep of strides, pads, dilations, groups and non-square shapes, tiles with clamped tail
// rows, column blocks with padded tails, and MNIST BASE's own convolutions (small batch).
#include "CodegenTestUtil.h"

#include "passes/Passes.h"
#include "tools/Model.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <cstdlib>

using namespace cnnc;
using namespace cnnc::cgtest;
using K = OpKind;
using Ints = std::vector<int64_t>;

namespace {

// Process CPU time: the compiled code is single-threaded, and on a machine shared with other
// builds CPU time is steadier than wall time.
double cpuMs() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

struct Geo {
  Shape x, w; // [N,C,H,W], [M,C/G,kh,kw]
  Ints stride, pads, dilation;
  int64_t groups;
};

std::string str(const Geo &g) {
  return fmt::format("x {} w {} stride {} pads {} dilation {} groups {}", shapeStr(g.x),
                     shapeStr(g.w), attrStr(g.stride), attrStr(g.pads), attrStr(g.dilation),
                     g.groups);
}

std::map<std::string, Attr> window(const Geo &g) {
  return {{"stride", g.stride}, {"pads", g.pads}, {"dilation", g.dilation}, {"groups", g.groups}};
}

// dW = conv2d_grad_filter(x, dy) and dX = conv2d_grad_input(dy, w) of one conv, as outputs.
void build(Builder &b, const Geo &g, const std::string &prefix = "") {
  Node *x = b.input(prefix + "x", g.x);
  Node *w = b.param(prefix + "w", g.w);
  Node *y = b.op(K::Conv2d, {x, w}, window(g)); // only to type dy
  Node *dy = b.input(prefix + "dy", y->type.shape);
  auto fa = window(g);
  fa["kernel"] = Ints{g.w[2], g.w[3]};
  b.out(b.op(K::Conv2dGradFilter, {x, dy}, fa));
  auto ia = window(g);
  ia["input_shape"] = g.x;
  b.out(b.op(K::Conv2dGradInput, {dy, w}, ia));
  // drop the typing conv: it is not an output, and the plan should see only the fused ops
  b.f.removeIf([&](const Node *n) { return n == y; });
}

std::vector<Geo> geos() {
  const Ints one{1, 1}, nopad{0, 0, 0, 0};
  return {
      // MNIST BASE's convolutions at batch 3 (5x5 from 1 and 20 channels, 4x4, 1x1)
      {{3, 1, 28, 28}, {20, 1, 5, 5}, one, nopad, one, 1},
      {{3, 20, 12, 12}, {50, 20, 5, 5}, one, nopad, one, 1},
      {{3, 50, 4, 4}, {500, 50, 4, 4}, one, nopad, one, 1},
      {{3, 500, 1, 1}, {10, 500, 1, 1}, one, nopad, one, 1},
      // strides, asymmetric pads, non-square input and kernel
      {{2, 3, 7, 6}, {5, 3, 3, 2}, {2, 1}, {1, 0, 2, 1}, one, 1},
      {{1, 2, 9, 5}, {3, 2, 2, 3}, {3, 2}, {0, 2, 1, 0}, one, 1},
      {{2, 3, 11, 9}, {17, 3, 3, 3}, one, {1, 1, 1, 1}, one, 1}, // Mg = 17: two column blocks + tail
      // dilation
      {{2, 2, 9, 8}, {3, 2, 3, 3}, {1, 2}, {1, 1, 1, 1}, {2, 3}, 1},
      // groups, everything grouped, depthwise
      {{2, 4, 6, 5}, {6, 2, 3, 3}, one, {1, 1, 1, 1}, one, 2},
      {{2, 6, 9, 7}, {9, 2, 3, 2}, {2, 1}, {0, 1, 2, 1}, {2, 2}, 3},
      {{3, 4, 5, 5}, {4, 1, 3, 3}, {2, 2}, {1, 1, 1, 1}, one, 4},
      {{2, 8, 6, 6}, {40, 4, 3, 3}, one, {1, 1, 1, 1}, one, 2}, // Mg = 20 (three vectors)
      // pixels that no window reads
      {{1, 2, 8, 8}, {2, 2, 2, 2}, {3, 3}, nopad, one, 1},
      // the filter gradient's tiles: full channel tiles and a tail, one tap per task (few
      // tiles) or all taps per task (many), several reduction blocks of rows, 3 vectors of dY
      {{2, 24, 10, 30}, {40, 24, 3, 3}, one, {1, 1, 1, 1}, one, 1},
      {{1, 40, 20, 20}, {32, 40, 3, 3}, one, {1, 1, 1, 1}, one, 1},
      {{2, 100, 30, 7}, {64, 100, 3, 3}, one, {1, 1, 1, 1}, one, 1},
      // stride-1 cases grad-input-as-conv rewrites: dilated, asymmetric pads
      {{2, 6, 9, 8}, {4, 6, 3, 3}, one, {2, 2, 2, 2}, {2, 2}, 1},
      {{1, 5, 7, 9}, {6, 5, 3, 2}, one, {1, 0, 1, 1}, one, 1},
      // a pixel count that is not a multiple of the vector width (the transpose's tail)
      {{3, 19, 5, 3}, {21, 19, 3, 3}, one, {0, 1, 0, 1}, one, 1},
      // the input gradient's row kernel: rows of 19 pixels (whole vectors and a partial
      // one), R = 63 columns (not a multiple of the register tile's), a partial last block
      // of pixel vectors; rows of 5 under a vertical stride, padded
      {{2, 7, 13, 21}, {5, 7, 3, 3}, one, nopad, one, 1},
      {{2, 3, 9, 6}, {4, 3, 3, 3}, {2, 1}, {1, 0, 0, 1}, one, 1},
      // the filter gradient's row kernel (EmitConvGradRows.cpp: few input channels, or output
      // channels padding the tap kernel's blocks): rows of 19 (a masked last vector) under a
      // vertical stride, padded and dilated along rows; dilated along columns, groups, a last
      // channel tile computed past Mg; 8 images in chunks of 3, 3 and 2 with several row blocks
      {{2, 3, 10, 19}, {10, 3, 3, 3}, {2, 1}, {1, 1, 1, 1}, {2, 1}, 1},
      {{2, 4, 8, 14}, {14, 2, 3, 3}, one, {0, 1, 0, 1}, {1, 2}, 2},
      {{8, 1, 40, 40}, {4, 1, 5, 5}, one, nopad, one, 1},
      {{2, 20, 10, 10}, {50, 20, 3, 3}, one, nopad, one, 1},
      // the row kernel with several dY rows per vector (rows of exactly 8 or 4 pixels, under
      // the vector width): 5 rows of 8 (a last vector of one row at AVX-512), under a
      // vertical stride; 6 rows of 4 (4 per vector at AVX-512, 2 at AVX2: a partial last one)
      {{2, 6, 7, 10}, {5, 6, 3, 3}, one, nopad, one, 1},
      {{2, 3, 11, 10}, {4, 3, 3, 3}, {2, 1}, nopad, one, 1},
      {{2, 3, 7, 6}, {4, 3, 2, 3}, one, nopad, one, 1},
      // the filter gradient's row kernel with two dY rows of 8 per vector (AVX-512): under a
      // vertical stride (x rows 2·Wp apart), and dilated
      {{2, 3, 13, 10}, {10, 3, 3, 3}, {2, 1}, nopad, one, 1},
      {{2, 3, 12, 12}, {6, 3, 3, 3}, one, nopad, {2, 2}, 1},
      // windows that cover the whole input (MNIST BASE's conv3 and conv4 above): the GEMM of
      // EmitMatMul.cpp, here with K = 45 columns (not whole vectors) and a stride it ignores;
      // the same window padded, or grouped, slides and takes the other kernels
      {{3, 3, 3, 5}, {7, 3, 3, 5}, {2, 2}, nopad, one, 1},
      {{2, 3, 4, 4}, {5, 3, 4, 4}, one, {1, 1, 1, 1}, one, 1},
      {{2, 4, 3, 3}, {6, 2, 3, 3}, one, nopad, one, 2},
  };
}

int64_t dyPixels(const Geo &g) {
  auto out = [](int64_t in, int64_t lo, int64_t hi, int64_t k, int64_t s, int64_t d) {
    return (in + lo + hi - d * (k - 1) - 1) / s + 1;
  };
  return out(g.x[2], g.pads[0], g.pads[2], g.w[2], g.stride[0], g.dilation[0]) *
         out(g.x[3], g.pads[1], g.pads[3], g.w[3], g.stride[1], g.dilation[1]);
}

} // namespace

TEST_CASE("conv2d_grad_filter / conv2d_grad_input: JIT matches the f64 interpreter",
          "[codegen][train][jit][fuse]") {
  for (const Geo &g : geos()) {
    SECTION(str(g)) {
      Builder b;
      build(b, g);
      verify(b.f);
      Feeds feeds = randomFeeds(b.f, 5);
      // 1 and 2 threads, the host's and AVX2's widths
      compareJitBuilds(b.f, feeds, oracle(b.f, feeds), str(g));
    }
  }
}

TEST_CASE("grad-input-as-conv: stride-1 input gradients as a conv2d of dY with the flipped "
          "filter match the f64 interpreter of the original op",
          "[codegen][train][jit][fuse]") {
  for (const Geo &g : geos()) {
    SECTION(str(g)) {
      Builder ref, b;
      build(ref, g);
      build(b, g);
      const bool applies = g.stride == Ints{1, 1} &&
                           g.pads[0] <= (g.w[2] - 1) * g.dilation[0] &&
                           g.pads[2] <= (g.w[2] - 1) * g.dilation[0] &&
                           g.pads[1] <= (g.w[3] - 1) * g.dilation[1] &&
                           g.pads[3] <= (g.w[3] - 1) * g.dilation[1] &&
                           2 * g.x[2] * g.x[3] <= 3 * dyPixels(g);
      CHECK(gradInputAsConv(b.f) == applies);
      verify(b.f);
      if (!applies)
        continue;
      int convs = 0;
      for (const Node *n : b.f.nodeList())
        convs += n->op == K::Conv2d;
      CHECK(convs == 1);
      Feeds feeds = randomFeeds(ref.f, 5);
      const Results want = oracle(ref.f, feeds);
      compareAll(want, oracle(b.f, feeds), str(g) + " (interpreter, rewritten)");
      compareJitBuilds(b.f, feeds, want, str(g) + " (rewritten)");
    }
  }
}

TEST_CASE("the fused conv2d gradients in one shared library: AOT matches the interpreter",
          "[codegen][train][aot][fuse]") {
  Builder b;
  int k = 0;
  for (const Geo &g : geos())
    build(b, g, fmt::format("c{}.", k++));
  verify(b.f);
  Feeds feeds = randomFeeds(b.f, 9);
  const std::string so = tempPath("convgrad.so");
  codegen::compileSharedLibrary(b.f, so, {});
  SharedLib lib(so);
  const codegen::Layout l = codegen::layoutFor(b.f);
  compareAll(oracle(b.f, feeds), lib.infer(l, feeds, l.maxBatch), "fused conv gradients (AOT)");
}

TEST_CASE("the fused conv2d gradients are deterministic: two runs agree bit for bit",
          "[codegen][train][fuse]") {
  Builder b;
  build(b, {{4, 20, 12, 12}, {50, 20, 5, 5}, {1, 1}, {1, 1, 1, 1}, {1, 1}, 1});
  Feeds feeds = randomFeeds(b.f, 3);
  Results r1 = tools::runJit(b.f, feeds), r2 = tools::runJit(b.f, feeds);
  for (const auto &[name, t] : r1) {
    const auto &u = r2.at(name);
    REQUIRE(t.size() == u.size());
    size_t diffs = 0;
    for (size_t i = 0; i < t.size(); ++i)
      diffs += t.data()[i] != u.data()[i];
    CHECK(diffs == 0);
  }
}

TEST_CASE("timing: fused conv2d gradients of MNIST BASE at batch 100", "[.bench][codegen][fuse]") {
  const Ints one{1, 1}, nopad{0, 0, 0, 0};
  std::vector<std::pair<std::string, Geo>> cases = {
      {"conv1", {{100, 1, 28, 28}, {20, 1, 5, 5}, one, nopad, one, 1}},
      {"conv2", {{100, 20, 12, 12}, {50, 20, 5, 5}, one, nopad, one, 1}},
      {"conv3", {{100, 50, 4, 4}, {500, 50, 4, 4}, one, nopad, one, 1}},
  };
  for (auto &[name, g] : cases)
    for (int which = 0; which < 2; ++which) {
      Builder b;
      build(b, g);
      b.f.outputs().erase(b.f.outputs().begin() + (1 - which)); // one op at a time
      b.f.removeIf([&](const Node *n) {
        return n->op == (which ? K::Conv2dGradFilter : K::Conv2dGradInput);
      });
      auto jit = codegen::JitModel::compile(b.f);
      const auto &l = jit->layout();
      std::vector<std::vector<float>> bufs(l.buffers.size());
      std::vector<void *> ptrs;
      for (size_t i = 0; i < l.buffers.size(); ++i) {
        bufs[i].assign(std::max<int64_t>(l.buffers[i].type.numel(), 1), 0.5f);
        ptrs.push_back(bufs[i].data());
      }
      void *ws =
          std::aligned_alloc(64, (size_t)std::max<int64_t>(64, (l.workspaceBytes + 63) / 64 * 64));
      jit->run(ptrs.data(), ws, l.maxBatch);
      const double t0 = cpuMs();
      for (int r = 0; r < 5; ++r)
        jit->run(ptrs.data(), ws, l.maxBatch);
      const double ms = (cpuMs() - t0) / 5;
      std::free(ws);
      WARN(name << (which ? " grad_input" : " grad_filter") << ": " << ms << " ms CPU, workspace "
                << l.workspaceBytes << " B");
    }
}

// Before/after for docs/codegen.md: MNIST BASE's train step at batch 100 with the pipeline
// as it is (fused) and stopped before fuse-conv-grad (then dce: the explicit chains), the
// workspace each needs and the step time, interleaved runs, medians.
TEST_CASE("timing: MNIST BASE train step at batch 100, fused vs unfused conv gradients",
          "[.bench][codegen][fuse]") {
  auto load = [](bool fuse) {
    tools::LoadOptions o;
    o.cnn.batch = 100;
    o.cnn.training = true;
    auto m = tools::loadModel(std::string(CNNC_SOURCE_DIR) + "/examples/mnist_base.cnn", o);
    PipelineOptions po;
    po.training = true;
    if (!fuse)
      po.stopAfter = "simplify";
    runPipeline(*m, po);
    if (!fuse)
      for (const auto &f : m->functions())
        eliminateDeadCode(*f);
    return m;
  };
  const interp::Hyper hyper{0.01, 0.9, 5e-4};
  struct Run {
    std::unique_ptr<Module> m;
    std::unique_ptr<tools::JitTrainer> tr;
    std::map<std::string, interp::Tensor<double>> batch;
    std::vector<double> ms;
    int64_t ws = 0;
  };
  Run runs[2];
  for (int fuse = 0; fuse < 2; ++fuse) {
    Run &r = runs[fuse];
    r.m = load(fuse);
    const Function &f = *r.m->find("train_step");
    r.ws = codegen::layoutFor(f).workspaceBytes;
    Feeds feeds = randomFeeds(f, 5);
    r.tr = tools::JitTrainer::compile(f);
    Feeds params;
    for (const auto &p : r.tr->paramNames())
      params[p] = feeds.at(p);
    r.tr->setParams(params);
    for (const auto &d : r.tr->dataInputs())
      r.batch[d] = feeds.at(d);
    r.tr->step(r.batch, hyper); // warm up
  }
  for (int round = 0; round < 21; ++round)
    for (Run &r : runs) {
      const double t0 = cpuMs();
      r.tr->step(r.batch, hyper);
      r.ms.push_back(cpuMs() - t0);
    }
  for (int fuse = 0; fuse < 2; ++fuse) {
    auto v = runs[fuse].ms;
    std::sort(v.begin(), v.end());
    WARN((fuse ? "fused  " : "unfused") << ": workspace " << runs[fuse].ws << " B ("
                                        << runs[fuse].ws / 1048576.0 << " MiB), step median CPU "
                                        << v[v.size() / 2] << " ms (min " << v.front() << ", max "
                                        << v.back() << "), JIT compile "
                                        << runs[fuse].tr->compileSeconds() << " s");
  }
}
