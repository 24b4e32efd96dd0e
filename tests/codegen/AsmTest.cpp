// --emit=asm: explicit SIMD code sized to the target: an AVX-512 target (znver4, or an
// AVX-512 host) uses zmm FMAs; an x86-64-v3 build (AVX2) must use ymm and no zmm. (The brief
// assumed an AVX-512 host; this machine reports znver3/AVX2, so the zmm check cross-compiles.)
#include "CodegenTestUtil.h"

#include <catch2/catch.hpp>

#include <regex>

using namespace cnnc;
using namespace cnnc::cgtest;

namespace {
std::string convAsm(const codegen::TargetOptions &t) {
  Builder b;
  Node *x = b.input("x", {1, 16, 10, 10});
  b.out(b.op(OpKind::Conv2d, {x, b.param("w", {32, 16, 3, 3}), b.param("b", {32})},
             {{"pads", std::vector<int64_t>{1, 1, 1, 1}}}));
  return codegen::emit(b.f, codegen::EmitKind::Asm, t);
}
} // namespace

TEST_CASE("conv2d assembly uses the target's widest FMA", "[codegen][asm]") {
  SECTION("znver4 (AVX-512): zmm FMAs") {
    CHECK(codegen::layoutFor(Builder().f, {"znver4", "", 3}).vectorWidth == 16);
    CHECK(std::regex_search(convAsm({"znver4", "", 3}), std::regex(R"(vfmadd\d+ps\s[^\n]*zmm)")));
  }
  SECTION("host: the widest registers it has") {
    const unsigned vl = codegen::layoutFor(Builder().f).vectorWidth;
    const std::string s = convAsm({});
    CHECK(std::regex_search(
        s, std::regex(vl == 16 ? R"(vfmadd\d+ps\s[^\n]*zmm)" : R"(vfmadd\d+ps\s[^\n]*ymm)")));
  }
  SECTION("x86-64-v3 (AVX2): ymm FMAs, no zmm") {
    const std::string s = convAsm({"x86-64-v3", "", 3});
    CHECK(std::regex_search(s, std::regex(R"(vfmadd\d+ps\s[^\n]*ymm)")));
    CHECK(s.find("zmm") == std::string::npos);
  }
  SECTION("LLVM IR and object emission") {
    Builder b;
    b.out(b.op(OpKind::Relu, {b.input("x", {2, 3})}));
    CHECK_THAT(codegen::emit(b.f, codegen::EmitKind::LLVM),
               Catch::Contains("define") && Catch::Contains("cnnc_net_run"));
    CHECK(codegen::emit(b.f, codegen::EmitKind::Obj).substr(0, 4) == "\x7f"
                                                                     "ELF");
  }
  SECTION("an unknown CPU is a user error") {
    Builder b;
    b.out(b.op(OpKind::Relu, {b.input("x", {2, 3})}));
    CHECK_THROWS_WITH(codegen::emit(b.f, codegen::EmitKind::Asm, {"pentium9000", "", 3}),
                      Catch::Contains("pentium9000"));
  }
}
