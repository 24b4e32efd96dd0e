// The sanitizers on generated code (docs/hardening.md): TargetOptions::sanitizeAddress /
// sanitizeThread put LLVM's ASan / TSan passes into the pipeline, and the ASan build
// poisons workspace blocks outside their life. In the ASan build, an out-of-bounds store by
// a JIT kernel must be reported (in a forked child, which the report ends).
#include "CodegenTestUtil.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>
#ifdef CNNC_SANITIZE_ADDRESS
#include <sanitizer/asan_interface.h>
#endif

using namespace cnnc;
using namespace cnnc::cgtest;

namespace {
// relu(r - (-r)) with r = relu(x) (2 relu(x)): r has two users, so it lives in the workspace
// (a value with one user would stay in registers, in a fused elementwise group).
void twoOps(Builder &b, Shape s) {
  Node *x = b.input("x", s);
  Node *r = b.op(OpKind::Relu, {x});
  b.out(b.op(OpKind::Relu, {b.op(OpKind::Sub, {r, b.op(OpKind::Neg, {r})})}));
}
} // namespace

TEST_CASE("sanitizer passes on generated code: only when asked", "[codegen][sanitize]") {
  Builder b;
  twoOps(b, {4, 30});
  codegen::TargetOptions o;
  o.sanitizeAddress = true, o.sanitizeThread = false;
  const std::string asan = codegen::emit(b.f, codegen::EmitKind::LLVM, o);
  CHECK_THAT(asan, Catch::Contains("sanitize_address") && Catch::Contains("__asan_report_store") &&
                       Catch::Contains("__asan_poison_memory_region") &&
                       Catch::Contains("__asan_unpoison_memory_region"));
  o.sanitizeAddress = false, o.sanitizeThread = true;
  const std::string tsan = codegen::emit(b.f, codegen::EmitKind::LLVM, o);
  CHECK_THAT(tsan, Catch::Contains("sanitize_thread") && Catch::Contains("__tsan_"));
  CHECK(tsan.find("__asan") == std::string::npos);
  o.sanitizeThread = false;
  const std::string plain = codegen::emit(b.f, codegen::EmitKind::LLVM, o);
  CHECK(plain.find("__asan") == std::string::npos);
  CHECK(plain.find("__tsan") == std::string::npos);
  o.sanitizeAddress = o.sanitizeThread = true;
  CHECK_THROWS_WITH(codegen::emit(b.f, codegen::EmitKind::LLVM, o),
                    Catch::Contains("exclude each other"));
}

#ifdef CNNC_SANITIZE_ADDRESS
TEST_CASE("ASan build: JIT kernels are checked, the workspace is the caller's again after a run",
          "[codegen][sanitize]") {
  Builder b;
  twoOps(b, {4, 30});
  auto jm = codegen::JitModel::compile(b.f); // sanitizeAddress: on in this build
  const codegen::Layout &l = jm->layout();
  REQUIRE(l.workspaceBytes > 0);
  std::vector<float> x(120, 1.f);
  void *ws = std::aligned_alloc(64, (l.workspaceBytes + 63) / 64 * 64);
  SECTION("a correct run leaves no poisoned workspace byte") {
    std::vector<float> y(120);
    void *bufs[] = {x.data(), y.data()};
    CHECK(jm->run(bufs, ws, 4) == 0);
    CHECK(y[7] == 2.f);
    CHECK(__asan_region_is_poisoned(ws, l.workspaceBytes) == nullptr);
  }
  SECTION("an output buffer one float short: heap-buffer-overflow in the kernel") {
    const std::string log = tempPath("asan_child.log");
    std::fflush(nullptr);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      FILE *f = std::fopen(log.c_str(), "w");
      if (f)
        dup2(fileno(f), 2);
      float *y = new float[119];
      void *bufs[] = {x.data(), y};
      jm->run(bufs, ws, 4);
      _exit(0); // not reached when ASan caught the store
    }
    int status = 0;
    waitpid(pid, &status, 0);
    std::ifstream in(log);
    std::stringstream ss;
    ss << in.rdbuf();
    INFO(ss.str());
    CHECK(!(WIFEXITED(status) && WEXITSTATUS(status) == 0));
    CHECK_THAT(ss.str(), Catch::Contains("heap-buffer-overflow") && Catch::Contains("WRITE"));
  }
  std::free(ws);
}
#endif
