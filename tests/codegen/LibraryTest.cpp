// Libraries people ship (issue 17): two models compiled with their own prefixes link into
// one C program that runs both, each checked against the f64 interpreter; each library
// exports its prefixed API and nothing else; the generated headers carry the API's contracts
// and named constants, and compile together (C and C++); the library reports what compiled it.
#include "CodegenTestUtil.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

using namespace cnnc;
using namespace cnnc::cgtest;

namespace {

std::unique_ptr<Module> load(const std::string &name, int64_t batch) {
  tools::LoadOptions o;
  o.cnn.batch = batch;
  return tools::loadModel(std::string(CNNC_SOURCE_DIR) + "/examples/" + name, o);
}

std::string slurp(const std::string &path) {
  std::ifstream is(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(is)), {});
}

struct Model {
  std::string file, prefix;
  std::unique_ptr<Module> m;
  Feeds feeds;
};

// Both programs' run of one model: read `<p>.in` (batch examples), infer with the function
// `infer` (linked, or looked up by dlopen), write `<p>.out`; `on_error` runs before exit code 3.
const std::string kInferFiles = R"(#define INFER_FILES(p, P, infer, on_error)                  \
  do {                                                                                         \
    static float x[P##_MAX_BATCH * P##_INPUT_0_PER_EXAMPLE];                                   \
    static float y[P##_MAX_BATCH * P##_OUTPUT_0_PER_EXAMPLE];                                  \
    const size_t nx = (size_t)batch * P##_INPUT_0_PER_EXAMPLE;                                 \
    const size_t ny = (size_t)batch * P##_OUTPUT_0_PER_EXAMPLE;                                \
    FILE *f = fopen(#p ".in", "rb");                                                           \
    if (!f || fread(x, 4, nx, f) != nx)                                                        \
      return 2;                                                                                \
    fclose(f);                                                                                 \
    const void *in[] = {x};                                                                    \
    float *out[] = {y};                                                                        \
    if (infer(inst, batch, in, out) != CNNC_OK) {                                              \
      on_error;                                                                                \
      return 3;                                                                                \
    }                                                                                          \
    f = fopen(#p ".out", "wb");                                                                \
    if (!f || fwrite(y, 4, ny, f) != ny)                                                       \
      return 5;                                                                                \
    fclose(f);                                                                                 \
  } while (0)
)";

// Each program block: INFER_FILES, then print what the library says it is; the kinds'
// constants must agree with the header's counts.
const std::string kProgram = kInferFiles + R"(#include "base.h"
#include "bn.h"
#include <stdio.h>
#include <stdlib.h>
#define RUN(p, P)                                                                              \
  do {                                                                                         \
    p##_instance *inst;                                                                        \
    if (p##_create(&inst) != CNNC_OK) {                                                        \
      fprintf(stderr, "%s\n", p##_last_error(NULL));                                           \
      return 1;                                                                                \
    }                                                                                          \
    if (p##_num_buffers(CNNC_KIND_PARAM) != P##_NUM_PARAMS ||                                  \
        p##_num_buffers(CNNC_KIND_INPUT) != 1 || !P##_WEIGHTS_EMBEDDED)                        \
      return 4;                                                                                \
    INFER_FILES(p, P, p##_infer, fprintf(stderr, "%s\n", p##_last_error(inst)));               \
    printf("%s|%s|%s|%s|%s\n", P##_PREFIX, p##_model_name(), p##_version(), p##_target_cpu(), \
           p##_target_isa());                                                                  \
    p##_destroy(inst);                                                                         \
  } while (0)
int main(int argc, char **argv) {
  const int64_t batch = argc > 1 ? atoi(argv[1]) : 1;
  RUN(base, BASE);
  RUN(bn, BN);
  return 0;
}
)";

// The same through dlopen, linking neither library: each function is looked up by the name
// the header records (P_PREFIX "_infer"), typed by the header's own declaration.
const std::string kDlopenProgram = kInferFiles + R"(#include "base.h"
#include "bn.h"
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#define SYM(h, p, P, f)                                                                        \
  __typeof__(&p##_##f) f = (__typeof__(&p##_##f))dlsym(h, P##_PREFIX "_" #f);                  \
  if (!f)                                                                                      \
    return 6
#define RUN(p, P)                                                                              \
  do {                                                                                         \
    void *h = dlopen("./lib" #p ".so", RTLD_NOW | RTLD_LOCAL);                                 \
    if (!h)                                                                                    \
      return 7;                                                                                \
    SYM(h, p, P, create);                                                                      \
    SYM(h, p, P, infer);                                                                       \
    SYM(h, p, P, destroy);                                                                     \
    SYM(h, p, P, model_name);                                                                  \
    p##_instance *inst;                                                                        \
    if (create(&inst) != CNNC_OK)                                                              \
      return 1;                                                                                \
    INFER_FILES(p, P, infer, (void)0);                                                         \
    printf("dlopen %s|%s\n", P##_PREFIX, model_name());                                        \
    destroy(inst);                                                                             \
    dlclose(h);                                                                                \
  } while (0)
int main(int argc, char **argv) {
  const int64_t batch = argc > 1 ? atoi(argv[1]) : 1;
  RUN(base, BASE);
  RUN(bn, BN);
  return 0;
}
)";

// Each model's `<prefix>.out` (batch examples) against the f64 interpreter.
void checkOutputs(const Model (&models)[2], const std::filesystem::path &dir) {
  for (const Model &md : models) {
    const Function &f = md.m->main();
    const Results want = oracle(f, md.feeds);
    Results got = want;
    auto &t = got.at(f.outputs().front()->name);
    const std::string bytes = slurp((dir / (md.prefix + ".out")).string());
    REQUIRE(bytes.size() == t.size() * 4);
    for (size_t i = 0; i < t.size(); ++i) {
      float v;
      std::memcpy(&v, bytes.data() + 4 * i, 4);
      t.data()[i] = v;
    }
    compareAll(want, got, md.file);
  }
}

} // namespace

TEST_CASE("two models' libraries, each with its prefix, link into one C program",
          "[codegen][aot][library]") {
  const int64_t batch = 4;
  Model models[] = {{"mnist_base.cnn", "base", nullptr, {}}, {"mnist_bn.cnn", "bn", nullptr, {}}};
  const std::filesystem::path dir = std::filesystem::path(tempPath("library")).parent_path() / "library";
  std::filesystem::create_directories(dir);
  for (Model &md : models) {
    md.m = load(md.file, batch);
    const Function &f = md.m->main();
    md.feeds = randomFeeds(f, md.prefix.size());
    codegen::AotOptions o;
    for (const auto &n : f.nodes())
      if (n->op == OpKind::Param)
        o.embeddedWeights[n->name] =
            std::vector<float>(md.feeds[n->name].begin(), md.feeds[n->name].end());
    o.prefix = md.prefix;
    o.headerPath = (dir / (md.prefix + ".h")).string();
    codegen::compileSharedLibrary(f, (dir / ("lib" + md.prefix + ".so")).string(), o);
    const Node *input = nullptr;
    for (const auto &n : f.nodes())
      if (n->op == OpKind::Input && !input)
        input = n.get();
    const auto &x = md.feeds.at(input->name);
    const std::vector<float> xf(x.begin(), x.end());
    std::ofstream((dir / (md.prefix + ".in")).string(), std::ios::binary)
        .write((const char *)xf.data(), (std::streamsize)(xf.size() * 4));
  }

  SECTION("each exports its prefixed API and nothing else") {
    for (const Model &md : models) {
      std::istringstream is(runCommand(fmt::format("nm -D --defined-only {}", (dir / ("lib" + md.prefix + ".so")).string())));
      std::set<std::string> names;
      for (std::string line; std::getline(is, line);) {
        const std::string name = line.substr(line.find_last_of(' ') + 1);
        INFO(md.prefix << ": exports " << name);
        CHECK(name.rfind(md.prefix + "_", 0) == 0);
        names.insert(name);
      }
      CHECK(names.size() == codegen::apiFunctionNames().size());
      CHECK(names.count(md.prefix + "_infer"));
      CHECK(names.count(md.prefix + "_train_step"));
      CHECK(names.count(md.prefix + "_target_isa"));
    }
  }

  SECTION("the headers document the API under the prefix") {
    const std::string h = slurp((dir / "bn.h").string());
    CHECK_THAT(h, Catch::Contains("int bn_infer(bn_instance *inst, int64_t batch") &&
                      Catch::Contains("typedef struct bn_instance bn_instance;") &&
                      Catch::Contains("Lifetime: an instance lives from a successful bn_create") &&
                      Catch::Contains("CNNC_KIND_STATE = 4") && Catch::Contains("CNNC_ERR_LABEL = 7") &&
                      Catch::Contains("#define BN_PREFIX \"bn\"") &&
                      Catch::Contains("#define BN_INPUT_0_SHAPE {4, 1, 28, 28}") &&
                      Catch::Contains("if (bn_infer(inst, batch, inputs, outputs) != CNNC_OK)") &&
                      Catch::Contains("Weights: embedded") && !Catch::Contains("cnnc_infer") &&
                      !Catch::Contains("cnnc_instance"));
    // every function the library exports is declared
    for (const std::string &n : codegen::apiFunctionNames())
      CHECK_THAT(h, Catch::Contains(" bn_" + n + "("));
  }

  SECTION("one program runs both; each matches the interpreter") {
    std::ofstream((dir / "two.c").string()) << kProgram;
    const std::string cmd = fmt::format(
        "cd {} && {} {} -std=c11 -Wall -Wextra -Werror two.c -I. -L. -lbase -lbn -Wl,-rpath,{} -o two "
        "2>&1 && ./two {} 2>&1; echo rc=$?",
        dir.string(), CNNC_TEST_CC, CNNC_TEST_CC_FLAGS, dir.string(), batch);
    const std::string out = runCommand(cmd);
    INFO(cmd << "\n" << out);
    REQUIRE(out.find("rc=0") != std::string::npos);
    // the same two headers in a C++ program
    const std::string cxx = fmt::format(
        "cd {} && c++ -x c++ -std=c++17 -Wall -Wextra -Werror -fsyntax-only two.c 2>&1; echo rc=$?",
        dir.string());
    const std::string cxxOut = runCommand(cxx);
    INFO(cxx << "\n" << cxxOut);
    CHECK(cxxOut.find("rc=0") != std::string::npos);
    const codegen::TargetInfo host = codegen::describeTarget({});
    for (const Model &md : models) {
      const Function &f = md.m->main();
      CHECK_THAT(out, Catch::Contains(fmt::format("{}|{}|{}|{}|{}\n", md.prefix, f.name(),
                                                  codegen::cnncVersion(), host.cpu, host.isa)));
    }
    checkOutputs(models, dir);
  }

  SECTION("dlopen users find each function by the prefix the header records") {
    std::ofstream((dir / "dl.c").string()) << kDlopenProgram;
    for (const Model &md : models) // no output of another section counts
      std::filesystem::remove(dir / (md.prefix + ".out"));
    const std::string cmd = fmt::format(
        "cd {} && {} {} -std=gnu11 -Wall -Wextra -Werror dl.c -ldl -o dl 2>&1 && ./dl {} 2>&1; echo rc=$?",
        dir.string(), CNNC_TEST_CC, CNNC_TEST_CC_FLAGS, batch);
    const std::string out = runCommand(cmd);
    INFO(cmd << "\n" << out);
    REQUIRE(out.find("rc=0") != std::string::npos);
    for (const Model &md : models)
      CHECK_THAT(out, Catch::Contains(fmt::format("dlopen {}|{}\n", md.prefix, md.m->main().name())));
    checkOutputs(models, dir);
  }

  SECTION("a prefix must be a C identifier") {
    codegen::AotOptions o;
    o.prefix = "9lives";
    CHECK_THROWS_WITH(codegen::compileSharedLibrary(models[0].m->main(), (dir / "bad.so").string(), o),
                      Catch::Contains("not a C identifier"));
  }
}
