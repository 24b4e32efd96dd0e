// LLVM code generation for inference functions and whole training steps (@train_step):
// the public face of codegen/.
// Nothing here names an LLVM type, so tools/ and tests include it without LLVM headers.
//
// The generated entry (docs/codegen.md):
//   int32_t cnnc_net_run(void **buffers, void *workspace, int64_t batch, void *pool)
// buffers: one pointer per input (in node order), then per param (node order), then per
// output (in the function's output order); workspace: layout().workspaceBytes bytes, 64-byte
// aligned; batch: the mini-batch size, 1..maxBatch when the function is batch-polymorphic,
// exactly maxBatch otherwise; pool: a cnnc_rt_pool (runtime/Parallel.h) whose threads run
// the parallel loops, NULL for one thread (results are the same bits). Returns 0, or kStatusBadLabel when a softmax_xent label is not
// a class index (the loss is then NaN).
#pragma once

#include "ir/IR.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

struct cnnc_rt_pool; // runtime/Parallel.h

namespace cnnc::codegen {

constexpr int32_t kStatusOk = 0, kStatusBadLabel = 1;
inline constexpr const char *kEntryName = "cnnc_net_run";
inline constexpr const char *kDescName = "cnnc_net_desc";
/// @train_step's entry and descriptor in a `--train` shared library (same ABI).
inline constexpr const char *kTrainEntryName = "cnnc_train_run";
inline constexpr const char *kTrainDescName = "cnnc_train_desc";

struct TargetOptions {
  std::string cpu;      // empty: the host CPU (sys::getHostCPUName)
  std::string features; // "+avx2,-avx512f"; empty: the host's features when cpu is empty
  int optLevel = 3;     // 0..3: the new PassBuilder's O-level, and the backend's
  /// Loops with less estimated work than this stay on one thread (docs/codegen.md,
  /// "Threads"); < 0: the default (Emitter::kParallelMinWork). Tests set 0 to run even tiny
  /// ops through the thread pool.
  int64_t parallelMinWork = -1;
  /// The SGD update as one fused in-place pass per param (docs/codegen.md, "update"); off
  /// only to measure or test the six elementwise nodes it replaces.
  bool fuseSgd = true;
  /// Chains (and trees) of elementwise ops whose intermediate values nothing else reads as
  /// one loop that keeps them in registers (docs/codegen.md, "Fused elementwise groups");
  /// off only to measure or test the unfused nodes.
  bool fuseElementwise = true;
  /// A result may take the workspace block of an operand that dies at it (ir/OpTraits.h's
  /// opInPlace), when that plan's workspace is no larger (docs/codegen.md, "Memory plan");
  /// off only to compare plans and results in tests.
  bool inPlace = true;
  /// f32 lanes of the emitted vectors; 0: the target's registers (16 with AVX-512F, 8 with
  /// AVX, else 4). Tests set 16 on an AVX2 machine to execute the AVX-512 build's 16-lane
  /// code paths (tiles, tails, packing), which LLVM legalises onto pairs of ymm registers.
  unsigned vectorWidth = 0;
  /// Convolutions 8 lanes wide when their channels fill 8-lane vectors better than 16-lane
  /// ones (Mg = 50: 56 lanes instead of 64), on a CPU whose 512-bit FMAs run at its 256-bit
  /// rate (Target::narrowConvs); -1: when the CPU is one of those (AMD Zen 4), 0: never,
  /// 1: always with 16 lanes (tests run the 8-lane convs inside a 16-lane build with it).
  int narrowConvs = -1;
  /// Time every computed node (`cnnc run --profile`, docs/cli.md): the entry then calls the
  /// runtime's clock hook (cnnc_rt_clock_ns, runtime/Parallel.h) before and after each node
  /// and adds the difference to that node's counter (Layout::profileSites,
  /// JitModel::profileCounters). Off, the lowering emits nothing of it: the same module.
  bool profile = false;
  /// Instrument the generated code with LLVM's AddressSanitizer pass (docs/hardening.md):
  /// on by default in an ASan build of cnnc (-DCNNC_SANITIZE=address,...), whose ASan
  /// runtime then checks the kernels' loads and stores. Such code (JIT or .so) runs only in a
  /// process that has the ASan runtime.
#ifdef CNNC_SANITIZE_ADDRESS
  bool sanitizeAddress = true;
#else
  bool sanitizeAddress = false;
#endif
  /// The same with LLVM's ThreadSanitizer pass, on in a TSan build (-DCNNC_SANITIZE=thread):
  /// the kernels' loads and stores from the pool's threads are checked for data races.
#ifdef CNNC_SANITIZE_THREAD
  bool sanitizeThread = true;
#else
  bool sanitizeThread = false;
#endif
};

/// The descriptor as generated code lays it out for a target: the byte offset of every field
/// of runtime/CnncModel.h's cnnc_buffer_desc and cnnc_model_desc, in order, and their sizes.
/// (The ABI is declared once, in that header; AbiTest compares this with the C compiler's.)
struct DescriptorLayout {
  std::vector<uint64_t> buffer, model;
  uint64_t bufferSize = 0, modelSize = 0;
};
DescriptorLayout descriptorLayout(const TargetOptions &o);

enum class BufferKind : uint8_t { Input, Param, Output };
struct BufferSlot {
  std::string name; // SSA name of the input/param/output node
  BufferKind kind;
  TensorType type;      // at maxBatch
  bool batched = false; // dim 0 is the mini-batch (scales with the `batch` argument)
  int64_t perExample() const { return batched ? type.numel() / type.shape[0] : type.numel(); }
};

/// What a caller needs to call the entry: the buffer order, the workspace size, the batch.
struct Layout {
  std::vector<BufferSlot> buffers;
  int64_t workspaceBytes = 0;
  /// The first bytes of the workspace hold what the prepare entry computes from the params
  /// (packed conv weights, folded batch norm); 0: no prepare entry.
  int64_t preparedBytes = 0;
  int64_t maxBatch = 1;
  bool batchPolymorphic = false; // any batch 1..maxBatch; else exactly maxBatch
  std::string batchNote;         // why not polymorphic (which node)
  unsigned vectorWidth = 16;     // f32 lanes of the target's SIMD registers
  bool narrowConvs = false;      // TargetOptions::narrowConvs in effect (ConvGeom::of)
  /// With TargetOptions::profile: the timed sites in counter order, each a computed node's
  /// SSA name, or kProfileUpdateSite for the step's parameter update (the fused SGD passes
  /// and copies after every node). Empty without profiling.
  std::vector<std::string> profileSites;
};
inline constexpr const char *kProfileUpdateSite = "(update)";

enum class EmitKind { LLVM, Asm, Obj };

/// Lowers a verified function to an optimised module for the target and prints it as LLVM
/// IR or assembly, or returns the object file's bytes. Throws cnnc::Error for what codegen
/// does not support (f64 storage) naming the node.
std::string emit(const Function &f, EmitKind kind, const TargetOptions &t = {},
                 bool optimize = true);

/// The optimised module of `f` printed both as LLVM IR and as assembly, from one lowering
/// and one optimisation (what emit() does twice): `cnnc explain` shows both for every layer.
struct EmittedCode {
  std::string llvm, assembly;
};
EmittedCode emitLlvmAndAsm(const Function &f, const TargetOptions &t = {});

/// The layout the lowering for target `t` uses (buffers, workspace, batch).
Layout layoutFor(const Function &f, const TargetOptions &t = {});
/// What the lowering for target `t` makes of each node, one line each (`cnnc dump
/// --lowering`, docs/layout.md "Physical layouts"): where its value lives (caller buffer,
/// workspace offset, view, in place, in a fused loop's registers), the physical layouts its
/// kernel copies or packs operands into (a conv's zero-bordered or channel-blocked input
/// copy, its weight panels and whether the prepare entry packs them), its register tile and
/// scratch. Empty for nodes with nothing to say.
std::map<const Node *, std::string> describeLowering(const Function &f, const TargetOptions &t = {});

/// A function compiled in-process by ORC LLJIT.
class JitModel {
public:
  static std::unique_ptr<JitModel> compile(const Function &f, const TargetOptions &t = {});
  ~JitModel();
  const Layout &layout() const;
  /// Calls the entry; `workspace` must hold layout().workspaceBytes (64-byte aligned);
  /// `pool` runs the parallel loops (NULL: the calling thread alone; same results).
  /// The prepare entry then the entry: correct whatever the buffers hold.
  int32_t run(void **buffers, void *workspace, int64_t batch, cnnc_rt_pool *pool = nullptr) const;
  /// Computes what depends on the params alone (Layout::preparedBytes: packed conv weights,
  /// folded batch norm) into the workspace's first bytes; nothing if there is none.
  void prepare(void **buffers, void *workspace, cnnc_rt_pool *pool = nullptr) const;
  /// The entry alone: the workspace must hold what prepare() computed for these params.
  int32_t runPrepared(void **buffers, void *workspace, int64_t batch,
                      cnnc_rt_pool *pool = nullptr) const;
  /// Compile time of the module (lowering + O3 + machine code), seconds.
  double compileSeconds() const;
  /// With TargetOptions::profile: the nanoseconds each of layout().profileSites has taken,
  /// summed over every call since compile (the caller may zero them); else nullptr.
  int64_t *profileCounters() const;

private:
  JitModel();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct AotOptions {
  TargetOptions target;
  std::string headerPath; // also write the C header there, if not empty
  /// Parameter values to embed (by param name, numel floats each); empty: not embedded (an
  /// instance starts with zero parameters until weights are loaded or set).
  std::map<std::string, std::vector<float>> embeddedWeights;
  /// The runtime archive linked into the .so; empty: the one built with this cnnc
  /// (CNNC_RUNTIME_API_LIB), or $CNNC_RUNTIME_LIB.
  std::string runtimeLib;
  /// Also compile this @train_step into the library (cnnc_train_step, checkpoints): `f` is
  /// then the model's @infer, and the two share the instance's params by name.
  const Function *trainStep = nullptr;
  /// The naive memory of the training step (passes/ModelStats.h naiveTrainBytes), for the
  /// header to report beside the arena; 0: not reported.
  int64_t trainNaiveBytes = 0;
  /// The library's symbol prefix (a C identifier): it exports `<prefix>_create`, ... only,
  /// and its header names the macros <PREFIX>_*. Empty: the unprefixed cnnc_* API of
  /// runtime/CnncApi.h and macros named after the function (what the tests dlopen).
  std::string prefix;
  /// The model's name, as cnnc_model_name() answers it; empty: the function's name.
  std::string modelName;
};

/// The C API's functions, without their `cnnc_` (runtime/CnncApi.h): what a library
/// exports, each under its prefix.
const std::vector<std::string> &apiFunctionNames();
/// The vector ISA of a target as the library reports it: "AVX-512", "AVX2+FMA", "AVX", "SSE".
struct TargetInfo {
  std::string cpu, isa;
};
TargetInfo describeTarget(const TargetOptions &o);
/// The cnnc version compiled into libraries and printed by `cnnc --version`.
const char *cnncVersion();
/// The version of the LLVM cnnc links (`cnnc --version`).
const char *llvmVersion();

/// Compiles `f` to a shared library exposing the C API of runtime/CnncApi.h, linked in
/// process by lld. Throws cnnc::Error on link failures.
void compileSharedLibrary(const Function &f, const std::string &soPath, const AotOptions &o);
/// The generated C header for `f` (constants + the C API's declarations).
/// With `train`/`tl`, the header also documents the training step (its data inputs, batch,
/// state).
/// `trainNaiveBytes` > 0 adds the training step's naive memory beside its arena.
/// `guard`: the include guard (empty: from the header's file name); `o` gives the prefix, the model's name, the header's path and whether weights are
/// embedded; `ti` what the library was compiled for.
std::string generateHeader(const Function &f, const Layout &l, const std::string &guard,
                           const AotOptions &o = {}, const Layout *tl = nullptr,
                           const TargetInfo &ti = {});

} // namespace cnnc::codegen
