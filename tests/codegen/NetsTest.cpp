// The example networks compiled by the JIT and as shared libraries, against the f64
// interpreter; batch polymorphism; weights embedded or from .npz; the .so's C API on misuse,
// its undefined symbols and its generated header.
#include "CodegenTestUtil.h"

#include "passes/Passes.h"
#include "runtime/CnncApi.h"
#include "io/Npz.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <xtensor/xmath.hpp>
#include <xtensor/xview.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <regex>
#include <set>

using namespace cnnc;
using namespace cnnc::cgtest;

namespace {

std::unique_ptr<Module> load(const std::string &name, int64_t batch, bool small = false) {
  tools::LoadOptions o;
  o.cnn.batch = batch;
  if (small)
    o.cnn.inputHW = std::make_pair(int64_t(32), int64_t(32));
  return tools::loadModel(std::string(CNNC_SOURCE_DIR) + "/examples/" + name, o);
}

} // namespace

TEST_CASE("example networks: JIT matches the f64 interpreter", "[codegen][nets]") {
  struct Net {
    const char *file;
    int64_t batch;
    bool small;
  };
  for (Net n : {Net{"mnist_base.cnn", 4, false}, Net{"mnist_base_dropout.cnn", 2, false},
                Net{"mnist_bn.cnn", 3, false}, Net{"mnist_bn_dropout.cnn", 2, false},
                Net{"mnist_sk.cnn", 2, false}, Net{"resnet_mnist.cnn", 2, false},
                Net{"vgg16.cnn", 1, true}}) {
    SECTION(n.file) {
      auto m = load(n.file, n.batch, n.small);
      const Function &f = m->main();
      Feeds feeds = randomFeeds(f, 3);
      tools::JitTimes t;
      auto got = tools::runJit(f, feeds, {}, &t);
      auto t0 = std::chrono::steady_clock::now();
      auto want = oracle(f, feeds);
      const double interpS =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      WARN(n.file << ": JIT compile " << t.compileSeconds << " s, run " << t.runSeconds * 1e3
                  << " ms; interp f64 " << interpS * 1e3 << " ms");
      compareAll(want, got, n.file);
    }
  }
}

TEST_CASE("mnist_base as a .so: embedded weights, any batch up to the max, header",
          "[codegen][aot]") {
  auto m = load("mnist_base.cnn", 8);
  const Function &f = m->main();
  Feeds feeds = randomFeeds(f, 5);
  codegen::AotOptions o;
  for (const auto &n : f.nodes())
    if (n->op == OpKind::Param)
      o.embeddedWeights[n->name] = std::vector<float>(feeds[n->name].begin(), feeds[n->name].end());
  const std::string so = tempPath("mnist_base.so"), hdr = tempPath("mnist_base_net.h");
  o.headerPath = hdr;
  codegen::compileSharedLibrary(f, so, o);
  const codegen::Layout l = codegen::layoutFor(f);
  REQUIRE(l.batchPolymorphic);
  SharedLib lib(so);
  CHECK(lib.fn<int64_t (*)()>("cnnc_max_batch")() == 8);
  CHECK(lib.fn<int64_t (*)()>("cnnc_min_batch")() == 1);

  SECTION("full batch, embedded weights") {
    compareAll(oracle(f, feeds), lib.infer(l, feeds, 8, false), "batch 8");
  }
  SECTION("batch 3 of 8 equals the interpreter at batch 3") {
    auto m3 = load("mnist_base.cnn", 3);
    Feeds f3 = feeds;
    auto &x = f3["data"];
    f3["data"] = xt::view(x, xt::range(0, 3));
    compareAll(oracle(m3->main(), f3), lib.infer(l, feeds, 3, false), "batch 3");
  }
  SECTION("the generated header") {
    std::ifstream is(hdr);
    std::string h((std::istreambuf_iterator<char>(is)), {});
    CHECK_THAT(h, Catch::Contains("do not edit") && Catch::Contains("#ifndef MNIST_BASE_NET_H") &&
                      Catch::Contains("extern \"C\"") &&
                      Catch::Contains("#define MNIST_BASE_MAX_BATCH 8") &&
                      Catch::Contains("#define MNIST_BASE_INPUT_0_SHAPE {8, 1, 28, 28}") &&
                      Catch::Contains("#define MNIST_BASE_OUTPUT_0_PER_EXAMPLE 10"));
    // it compiles as C and as C++, alone (the runtime's header then declares nothing more)
    const std::string c = tempPath("use_header.c");
    std::ofstream(c)
        << "#include \"" << hdr << "\"\n#include \"runtime/CnncApi.h\"\n"
        << "int main(void) { cnnc_instance *i; int64_t s[] = MNIST_BASE_INPUT_0_SHAPE;\n"
        << "  return cnnc_create(&i) + (int)s[0]; }\n";
    for (const char *cc : {"cc -std=c11", "c++ -x c++ -std=c++17"}) {
      const std::string cmd =
          fmt::format("{} -Wall -Werror -fsyntax-only -I{} {} 2>&1", cc, CNNC_SOURCE_DIR, c);
      INFO(cmd);
      CHECK(runCommand(cmd + "; echo rc=$?").find("rc=0") != std::string::npos);
    }
  }
  SECTION("undefined symbols stay within libc/libm") {
    const std::string out = runCommand("nm -D --undefined-only " + so);
    static const std::set<std::string> allowed = {"malloc",
                                                  "calloc",
                                                  "free",
                                                  "aligned_alloc",
                                                  "madvise", // the workspace in huge pages
                                                  "realloc",
                                                  "memcpy",
                                                  "memmove",
                                                  "memset",
                                                  "memcmp",
                                                  "bcmp", // clang's memcmp(...) == 0
                                                  "strcmp",
                                                  "strlen",
                                                  "strstr",
                                                  "strchr",
                                                  "strtoll",
                                                  "vsnprintf",
                                                  "snprintf",
                                                  "fopen",
                                                  "fclose",
                                                  "fwrite",
                                                  "strncmp",
                                                  "strcat",
                                                  "fread",
                                                  "fseek",
                                                  "ftell",
                                                  // atomic checkpoint saves
                                                  "fflush",
                                                  "fileno",
                                                  "fsync",
                                                  "rename",
                                                  "remove",
                                                  "getpid",
                                                  "expf",
                                                  "logf",
                                                  "tanhf",
                                                  "sqrtf",
                                                  "exp",
                                                  "log",
                                                  "__stack_chk_fail",
                                                  "__memcpy_chk",
                                                  "__memset_chk",
                                                  "__vsnprintf_chk",
                                                  "__snprintf_chk",
                                                  "__isoc23_strtoll",
                                                  "__cxa_finalize",
                                                  "__gmon_start__",
                                                  "_ITM_deregisterTMCloneTable",
                                                  "_ITM_registerTMCloneTable",
                                                  // the per-thread message of a failed create
                                                  "__tls_get_addr",
                                                  // runtime/Parallel.c's thread pool
                                                  "pthread_create",
                                                  "pthread_join",
                                                  "pthread_mutex_init",
                                                  "pthread_mutex_destroy",
                                                  "pthread_mutex_lock",
                                                  "pthread_mutex_unlock",
                                                  "pthread_cond_init",
                                                  "pthread_cond_destroy",
                                                  "pthread_cond_wait",
                                                  "pthread_cond_signal",
                                                  "pthread_cond_broadcast",
                                                  "sched_getaffinity"};
    std::istringstream is(out);
    std::string line;
    int count = 0;
    while (std::getline(is, line)) {
      std::smatch mt;
      if (!std::regex_search(line, mt, std::regex(R"(U ([A-Za-z0-9_]+))")))
        continue;
      ++count;
#ifdef CNNC_SANITIZE_BUILD // the sanitizer runtime's, defined by the process (docs/hardening.md)
      if (std::regex_match(mt[1].str(), std::regex("__(asan|ubsan|tsan|sanitizer|lsan)_.*")))
        continue;
#endif
      INFO("undefined symbol " << mt[1]);
      CHECK(allowed.count(mt[1]));
    }
    CHECK(count > 0);
    // and it exports the C API only
    const std::string defs = runCommand("nm -D --defined-only " + so);
    CHECK(defs.find("cnnc_infer") != std::string::npos);
    CHECK(defs.find("cnnc_net_run") == std::string::npos);
    CHECK(defs.find("cnnc_set_threads") != std::string::npos);
    CHECK(defs.find("cnnc_rt_") == std::string::npos); // the pool is internal
  }
  SECTION("API misuse returns error codes with messages") {
    auto create = lib.fn<int (*)(cnnc_instance **)>("cnnc_create");
    auto destroy = lib.fn<void (*)(cnnc_instance *)>("cnnc_destroy");
    auto infer = lib.fn<int (*)(cnnc_instance *, int64_t, const void *const *, float *const *)>(
        "cnnc_infer");
    auto setParam =
        lib.fn<int (*)(cnnc_instance *, const char *, const float *, int64_t)>("cnnc_set_param");
    auto getParam =
        lib.fn<int (*)(const cnnc_instance *, const char *, float *, int64_t)>("cnnc_get_param");
    auto loadW = lib.fn<int (*)(cnnc_instance *, const char *)>("cnnc_load_weights");
    auto err = lib.fn<const char *(*)(const cnnc_instance *)>("cnnc_last_error");
    auto info =
        lib.fn<int (*)(int, int, const char **, int *, int64_t *, int64_t *)>("cnnc_buffer_info");
    CHECK(create(nullptr) == CNNC_ERR_NULL);
    CHECK_THAT(err(nullptr), Catch::Contains("NULL"));
    CHECK(infer(nullptr, 1, nullptr, nullptr) == CNNC_ERR_NULL);
    cnnc_instance *inst = nullptr;
    REQUIRE(create(&inst) == CNNC_OK);
    std::vector<float> x(8 * 784, 0.5f), y(8 * 10);
    const void *ins[] = {x.data()};
    float *outs[] = {y.data()};
    CHECK(infer(inst, 0, ins, outs) == CNNC_ERR_BATCH);
    CHECK_THAT(err(inst), Catch::Contains("batch 0 outside 1..8"));
    CHECK(infer(inst, 9, ins, outs) == CNNC_ERR_BATCH);
    CHECK(infer(inst, 2, nullptr, outs) == CNNC_ERR_NULL);
    const void *nullIn[] = {nullptr};
    CHECK(infer(inst, 2, nullIn, outs) == CNNC_ERR_NULL);
    CHECK_THAT(err(inst), Catch::Contains("input 0 ('data')"));
    CHECK(infer(inst, 2, ins, outs) == CNNC_OK);
    std::vector<float> w(20 * 25);
    CHECK(setParam(inst, "nope", w.data(), 500) == CNNC_ERR_NAME);
    CHECK_THAT(err(inst), Catch::Contains("no parameter 'nope'"));
    CHECK(setParam(inst, "conv1.w", w.data(), 499) == CNNC_ERR_SIZE);
    CHECK(setParam(inst, "conv1.w", nullptr, 500) == CNNC_ERR_NULL);
    CHECK(getParam(inst, "conv1.w", w.data(), 500) == CNNC_OK);
    CHECK(w[3] == (float)feeds["conv1.w"].data()[3]);
    CHECK(loadW(inst, "/nonexistent.npz") == CNNC_ERR_IO);
    CHECK_THAT(err(inst), Catch::Contains("/nonexistent.npz"));
    CHECK(info(0, 1, nullptr, nullptr, nullptr, nullptr) == CNNC_ERR_INDEX);
    const char *name = nullptr;
    int64_t per = 0;
    CHECK(info(2, 0, &name, nullptr, nullptr, &per) == CNNC_OK);
    CHECK(per == 10);
    destroy(inst);
    destroy(nullptr); // a no-op (runtime/CnncApi.h: lifetime)
  }
}

TEST_CASE("resnet_mnist as a .so with weights from a .npz", "[codegen][aot]") {
  auto m = load("resnet_mnist.cnn", 2);
  const Function &f = m->main();
  Feeds feeds = randomFeeds(f, 9);
  const std::string npz = tempPath("resnet.npz"), so = tempPath("resnet.so");
  tools::saveParams(f, feeds, npz);
  codegen::compileSharedLibrary(f, so, {});
  SharedLib lib(so);
  compareAll(oracle(f, feeds), lib.infer(codegen::layoutFor(f), feeds, 2, false, npz),
             "resnet (npz)");
}

// The inference passes (fold-bn, fuse-relu, ...) change how values are computed, not what
// they are: the pipelined network, interpreted and compiled, matches the frontend's graph in
// the f64 interpreter. Random params make BN statistics arbitrary, so the fold is exercised
// with scales far from 1.
TEST_CASE("the default pipeline preserves every example network's outputs", "[codegen][nets][passes]") {
  for (const char *file : {"mnist_base.cnn", "mnist_bn.cnn", "mnist_bn_dropout.cnn", "resnet_mnist.cnn"}) {
    SECTION(file) {
      auto m = load(file, 3);
      auto p = load(file, 3);
      runPipeline(*p);
      std::set<std::string> passOps;
      int activationBNs = 0; // BNs left on activations: the fold's own are on [1, M] terms
      for (const auto &n : p->main().nodes()) {
        passOps.insert(n->info().mnemonic + (n->has("relu") ? "+relu" : ""));
        activationBNs += n->op == OpKind::BatchNorm && n->type.rank() == 4;
      }
      CHECK(activationBNs == 0); // every BN after a conv folded
      CHECK(passOps.count("conv2d+relu"));
      Feeds feeds = randomFeeds(m->main(), 11);
      // variances must stay positive: the BN params are random
      for (const auto &n : m->main().nodes())
        if (n->op == OpKind::Param && n->name.size() > 4 && n->name.ends_with(".var"))
          feeds[n->name] = xt::abs(feeds[n->name]) + 0.1;
      Results want = oracle(m->main(), feeds);
      Results interpPipelined = oracle(p->main(), feeds);
      for (const auto &[name, t] : want)
        CHECK(xt::amax(xt::abs(interpPipelined.at(name) - t))() <= 1e-9 * std::max(1.0, xt::amax(xt::abs(t))()));
      compareAll(want, tools::runJit(p->main(), feeds, {}, nullptr), file);
    }
  }
}

// What `cnnc compile` ships: the pipelined networks (conv+ReLU fused, BN folded, weights
// packed by the prepare entry) on every build this host runs — its own (AVX-512 here or on
// any Zen 4 / Xeon of the class), 16 lanes, AVX2 (x86-64-v3) — at 1 and 2 threads, against
// the f64 interpreter of the unpipelined graph; and the same bytes at 1 and 2 threads.
TEST_CASE("pipelined example networks on every build and thread count", "[codegen][nets][passes]") {
  struct Net {
    const char *file;
    int64_t batch;
    bool small;
  };
  for (Net n : {Net{"mnist_base.cnn", 3, false}, Net{"mnist_bn.cnn", 1, false},
                Net{"mnist_sk.cnn", 3, false}, Net{"resnet_mnist.cnn", 3, false},
                Net{"vgg16.cnn", 1, true}}) {
    SECTION(n.file) {
      auto m = load(n.file, n.batch, n.small);
      auto p = load(n.file, n.batch, n.small);
      runPipeline(*p);
      Feeds feeds = randomFeeds(m->main(), 13);
      for (const auto &node : m->main().nodes())
        if (node->op == OpKind::Param && node->name.ends_with(".var"))
          feeds[node->name] = xt::abs(feeds[node->name]) + 0.1;
      const Results want = oracle(m->main(), feeds);
      compareJitBuilds(p->main(), feeds, want, n.file);
      const Results one = tools::runJit(p->main(), feeds, parallelTarget(), nullptr, 1),
                    two = tools::runJit(p->main(), feeds, parallelTarget(), nullptr, 2);
      for (const auto &[name, t] : one)
        CHECK(std::equal(t.begin(), t.end(), two.at(name).begin()));
    }
  }
}
