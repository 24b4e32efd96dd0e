// Ahead-of-time: the optimised module as an object file, linked in process by lld with the
// runtime's C API (runtime/CnncApi.c) into a shared library that exports that API under the
// library's prefix and nothing else, plus the generated C header (Header.cpp).
#include "codegen/Lower.h"

#include <fmt/format.h>
#include <lld/Common/Driver.h>
#include <llvm/IR/Constants.h>
#include <llvm/IR/GlobalVariable.h>
#include <llvm/Support/raw_ostream.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <unistd.h>

LLD_HAS_DRIVER(elf)

namespace cnnc::codegen {

using namespace llvm;

namespace {

// The installed layout (cmake/Install.cmake): <prefix>/bin/cnnc finds the runtime
// archive at <prefix>/lib/cnnc/libcnnc_rtapi.a.
std::string installedRuntimeArchive() {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec)
    return "";
  const auto p = exe.parent_path().parent_path() / "lib" / "cnnc" / "libcnnc_rtapi.a";
  return std::filesystem::exists(p, ec) ? p.string() : "";
}

std::string runtimeArchive(const AotOptions &o) {
  if (!o.runtimeLib.empty())
    return o.runtimeLib;
  if (const char *env = std::getenv("CNNC_RUNTIME_LIB"))
    return env;
  if (std::string inst = installedRuntimeArchive(); !inst.empty())
    return inst;
#ifdef CNNC_RUNTIME_API_LIB
  return CNNC_RUNTIME_API_LIB;
#else
  throw Error("cnnc compile: no runtime library (set CNNC_RUNTIME_LIB)");
#endif
}

bool isCIdentifier(const std::string &s) {
  if (s.empty() || std::isdigit((unsigned char)s[0]))
    return false;
  for (char c : s)
    if (!std::isalnum((unsigned char)c) && c != '_')
      return false;
  return true;
}

void link(const std::vector<std::string> &args) {
  static std::mutex mu; // lld keeps global state: one link at a time
  std::lock_guard<std::mutex> lock(mu);
  std::vector<const char *> argv;
  for (const auto &a : args)
    argv.push_back(a.c_str());
  std::string out, err;
  raw_string_ostream os(out), es(err);
  lld::Result r = lld::lldMain(argv, os, es, {{lld::Gnu, &lld::elf::link}});
  if (r.retCode != 0)
    throw Error(fmt::format("cnnc compile: linking {} failed:\n{}{}", args[2], os.str(), es.str()));
}

} // namespace

const char *cnncVersion() {
  return CNNC_VERSION_STRING;
}


// What the runtime reports about the library (cnnc_version, cnnc_model_name, ...): hidden
// strings beside the generated code, read by runtime/CnncApi.c.
static void addBuildInfo(llvm::Module &m, const Target &t, const std::string &model) {
  auto add = [&](const char *name, const std::string &value) {
    Constant *c = ConstantDataArray::getString(m.getContext(), value);
    auto *g = new GlobalVariable(m, c->getType(), true, GlobalValue::ExternalLinkage, c, name);
    g->setVisibility(GlobalValue::HiddenVisibility);
  };
  add("cnnc_build_version", cnncVersion());
  add("cnnc_build_cpu", t.cpu);
  add("cnnc_build_isa", isaName(t));
  add("cnnc_build_model", model);
}

void compileSharedLibrary(const Function &f, const std::string &soPath, const AotOptions &o) {
  if (!o.prefix.empty() && !isCIdentifier(o.prefix))
    throw Error(fmt::format("cnnc compile: --prefix '{}' is not a C identifier", o.prefix));
  Target t = makeTarget(o.target);
  LLVMContext ctx;
  Lowered l = lowerFunction(f, ctx, t, o.embeddedWeights.empty() ? nullptr : &o.embeddedWeights);
  optimizeModule(*l.mod, t);
  addBuildInfo(*l.mod, t, o.modelName.empty() ? f.name() : o.modelName);
  const std::string obj = emitMachineCode(*l.mod, t, false);
  namespace fs = std::filesystem;
  const std::string stem = fmt::format("cnnc-{}-{}", getpid(), (const void *)&l);
  const fs::path objPath = fs::temp_directory_path() / (stem + ".o");
  const fs::path trainObjPath = fs::temp_directory_path() / (stem + "-train.o");
  const fs::path versionScript = fs::temp_directory_path() / (stem + ".ver");
  auto cleanup = [&] {
    std::error_code ec;
    fs::remove(objPath, ec);
    fs::remove(trainObjPath, ec);
    fs::remove(versionScript, ec);
  };
  auto writeFile = [&](const fs::path &p, const std::string &bytes) {
    std::ofstream os(p, std::ios::binary);
    os.write(bytes.data(), (std::streamsize)bytes.size());
    if (!os) {
      cleanup();
      throw Error(fmt::format("cnnc compile: cannot write {}", p.string()));
    }
  };
  writeFile(objPath, obj);
  std::optional<Lowered> tl;
  if (o.trainStep) { // @train_step in its own object: entry cnnc_train_run, cnnc_train_desc
    LLVMContext &tctx = ctx;
    tl = lowerFunction(*o.trainStep, tctx, t, nullptr, kTrainEntryName, kTrainDescName);
    optimizeModule(*tl->mod, t);
    writeFile(trainObjPath, emitMachineCode(*tl->mod, t, false));
  }
  std::string rt = runtimeArchive(o);
  if (!fs::exists(rt)) {
    cleanup();
    throw Error(
        fmt::format("cnnc compile: runtime library {} not found (set CNNC_RUNTIME_LIB)", rt));
  }
  // The exports: the API's functions under the prefix (aliases of the runtime's cnnc_*
  // definitions), nothing else: the runtime and the generated code are local to the library,
  // so that libraries of several models link into one program.
  const std::string p = o.prefix.empty() ? "cnnc" : o.prefix;
  std::vector<std::string> defsyms;
  std::string ver = "{\n  global:\n";
  for (const std::string &n : apiFunctionNames()) {
    ver += fmt::format("    {}_{};\n", p, n);
    if (p != "cnnc")
      defsyms.push_back(fmt::format("--defsym={}_{}=cnnc_{}", p, n, n));
  }
  ver += "  local: *;\n};\n";
  writeFile(versionScript, ver);
  // A sanitizer build's runtime archive (and, with TargetOptions::sanitizeAddress, the
  // generated code) refers to the sanitizer runtime's __asan_*/__ubsan_*/__tsan_* symbols,
  // which only the (sanitized) process that dlopens the .so defines: such a library cannot
  // be linked --no-undefined (docs/hardening.md). Every other build keeps the check.
#ifdef CNNC_SANITIZE_BUILD
  const bool sanitized = true;
#else
  const bool sanitized = o.target.sanitizeAddress;
#endif
  std::vector<std::string> args = {"ld.lld",
                                   "-o",
                                   soPath,
                                   "-shared",
                                   sanitized ? "-zundefs" : "--no-undefined",
                                   "-z",
                                   "noexecstack",
                                   "-z",
                                   "now",
                                   "-z",
                                   "relro",
                                   "--hash-style=gnu",
                                   "--as-needed",
                                   "-Bsymbolic",
                                   "--soname",
                                   fs::path(soPath).filename().string(),
                                   "--version-script=" + versionScript.string()};
  args.insert(args.end(), defsyms.begin(), defsyms.end());
  for (const std::string &a :
       {objPath.string(), o.trainStep ? trainObjPath.string() : std::string("--no-whole-archive"),
        std::string("--whole-archive"), rt, std::string("--no-whole-archive"),
        std::string("-L/usr/lib/x86_64-linux-gnu"), std::string("-L/lib/x86_64-linux-gnu"),
        std::string("-lm"), std::string("-lc")})
    args.push_back(a);
  try {
    link(args);
  } catch (...) {
    cleanup();
    throw;
  }
  cleanup();
  if (!o.headerPath.empty()) {
    std::ofstream hs(o.headerPath);
    hs << generateHeader(f, l.plan.layout, "", o, tl ? &tl->plan.layout : nullptr,
                         {t.cpu, isaName(t)});
    if (!hs)
      throw Error(fmt::format("cnnc compile: cannot write {}", o.headerPath));
  }
}

} // namespace cnnc::codegen
