// Where every value of a function lives when it runs compiled: the buffer ABI, the batch
// analysis and the workspace memory plan. No LLVM here; Lower.cpp reads the plan.
//
// Invariants after planFunction:
//  - every node has a Storage: a caller buffer (input, param, output), a workspace offset
//    (64-byte aligned), a module constant, or a view of another node's storage
//    (flatten/reshape/identity/inference dropout alias their operand: same bytes, new shape);
//  - two workspace values overlap only if their live ranges (definition .. last use of the
//    value or of any view of it) are disjoint, except that a result may take the block of
//    an operand that dies at it when its op (and, for a fused group's root, every member)
//    reads each element before writing the result's element at the same index
//    (ir/OpTraits.h's opInPlace), and only when that plan's workspace is no larger than the
//    plan without in-place results; an op's scratch lives for that op only.
#pragma once

#include "codegen/Codegen.h"

#include <map>
#include <set>
#include <vector>

namespace cnnc::codegen {

/// Fused: a node of an SGD update computed by the fused pass at the end of the step
/// (Plan::sgd), a filter_flip folded into its conv's pack (Plan::flipInPack), or a member of
/// an elementwise group computed in registers by its root's loop (Plan::groups): no storage
/// and no code of its own.
enum class StorageKind : uint8_t { Buffer, Workspace, Constant, View, Fused };
struct Storage {
  StorageKind kind = StorageKind::Workspace;
  int buffer = -1;            // Buffer: index into Layout::buffers
  int64_t offset = 0;         // Workspace: byte offset
  const Node *root = nullptr; // View: the node whose storage this aliases (itself not a view)
};

/// Geometry of a conv2d lowered as the seed's eq. 22 matrix product (EmitConv.cpp): rows are
/// output pixels, columns the output channels of one group in column blocks of mb·vl, the
/// reduction runs over r = (c, i, j) of length Cg·kh·kw. Shared by the planner (scratch and
/// packed-weight sizes) and the emitter.
struct ConvGeom {
  int64_t C, H, W, M, kh, kw, sh, sw, pt, pl, pb, pr, dh, dw, G, Ho, Wo;
  int64_t Cg, Mg, Hp, Wp, R; // per-group channels, padded input, reduction length
  unsigned vl, mb;           // SIMD lanes, vectors per column block
  int64_t cols;              // mb·vl: the channels of one column block
  int64_t ncb;               // column blocks per group
  int64_t mgPad;             // ncb·cols: Mg rounded up to whole column blocks
  int64_t tile;              // output pixels of a full register tile: along a row, or
                             // images when the output is 1×1 (EmitConv.cpp)
  int64_t nfull;             // tiles of `tile` pixels per row (rows only)
  int64_t tail, ntail;       // then ntail tiles of `tail` pixels (tail = 0: none)
  /// The tiles above cut each image's whole plane of Ho·Wo pixels in raster order instead of
  /// each row, a tile running on into the next rows (narrow rows: AVX2's 14-pixel rows in
  /// 6-pixel tiles, MNIST's 8 in 12). A tile's input offsets then depend on the column it
  /// starts at: `phases` lists the (tile size, starting column) pairs that occur, one copy
  /// of the kernel each (EmitConv.cpp).
  bool planeTiles = false;
  std::vector<std::pair<int64_t, int64_t>> phases;
  bool padded;               // input copied into a zero-padded buffer
  /// A strided 1×1 conv without padding (or at AVX2 a stride-1 one that can be channel-
  /// blocked): the input's pixels (oh·sub[2], ow·sub[3]) are copied into a compact
  /// [N][C][Ho·Wo] buffer, or [N][C/vl][Ho·Wo][vl] when blocked (where the padded copy would
  /// go), and the conv runs as a stride-1 1×1 conv on it; sub = the original
  /// {H, W, sh, sw, Ho, Wo}.
  bool subsampled;
  int64_t sub[6];
  bool blocked;              // ... channel-blocked: [N][C/vl][Hp][Wp][vl] (EmitConv.cpp)
  /// Floats from one channel's plane of the conv's input to the next: Hp·Wp, or for a copy
  /// (padded / subsampled, not blocked) Hp·Wp + 16 when Hp·Wp·4 is a multiple of 512 B.
  /// The tile's steps walk the channels a plane apart; at a power-of-two stride (VGG's 14×14
  /// layers padded to 16×16: 1 KB) every channel's line falls in the same few L1 sets, and
  /// 512 channels × 3 rows thrash them.
  int64_t plane;
  /// The packed weights, [G][ncb][kh·kw][Cg][cols] (a contiguous panel per column block, zero
  /// past Mg), then the packed bias [G][ncb][cols]; packBytes in all.
  int64_t wpackBytes, packBytes;
  // scratch byte offsets, relative to the op's scratch base; the packed weights are
  // scratch only when they are not prepacked (Plan::packed)
  int64_t xpadOff, packOff, bytes;
  /// vl: the target's lanes; narrow (Layout::narrowConvs): 8 lanes instead of 16 when the
  /// output channels pad to fewer lanes that way.
  static ConvGeom of(const Node &n, unsigned vl, bool prepacked, bool narrow);
};

/// A depthwise conv2d (groups = input channels = output channels, more than one; stride
/// along rows 1 or 2; at most 7×7 taps): lowered in its own form (EmitConvDw.cpp), vectorised
/// along output rows, instead of the matrix product above, whose column block would hold one
/// channel per vector. Its scratch: the zero-padded input [N·C][Hp][Wp] when it pads.
bool isDepthwise(const Node &n);
int64_t depthwiseScratchBytes(const Node &n);

/// One param's SGD update with momentum and weight decay, fused into one in-place pass after
/// the last node (PlanSgd.cpp): v <- v*momentum - (grad + w*decay)*lr, w <- w + v.
struct SgdUpdate {
  const Node *w, *v, *grad, *lr, *momentum, *decay;
  const Node *wUpdate, *vUpdate;
  std::vector<const Node *> fused; // the six elementwise nodes it replaces
};
/// The SGD updates of f that can be fused (PlanSgd.cpp).
std::vector<SgdUpdate> findSgdUpdates(const Function &f);

struct Plan {
  Layout layout;
  std::map<const Node *, Storage> storage;
  std::map<const Node *, bool> batched;  // carries the mini-batch (in batchDim)
  /// The dim that follows the runtime batch (-1: none): every dim before it is 1 and its
  /// extent is maxBatch·k, so at batch b it is b·k (Plan.cpp, analyseBatch).
  std::map<const Node *, int> batchDim;
  std::map<const Node *, int64_t> scratch; // byte offset of an op's scratch in the workspace
  /// The prepare entry (docs/codegen.md, "Prepared state"): values computed from params
  /// and constants alone, which the entry does not recompute, and the convs (and fcs of 2+
  /// rows, EmitMatMul.cpp) whose weights it packs, each with the byte offset of its packed
  /// weights. Both live in the first
  /// `Layout::preparedBytes` of the workspace, which the run's arena never reuses. Empty for
  /// a function that updates params (a training step: its params change every call).
  std::set<const Node *> prepared;
  std::map<const Node *, int64_t> packed;
  /// filter_flip nodes (passes/GradInputAsConv.cpp) whose one user is a conv2d's weight
  /// operand: the conv's pack reads the unflipped filter with flipped indices
  /// (EmitConv.cpp), so the flip costs no pass of its own (StorageKind::Fused, no code).
  std::set<const Node *> flipInPack;
  /// Outputs whose node is not computed into its buffer (a source, a view, or the same node
  /// output twice): copied at the end, (buffer index, node).
  std::vector<std::pair<int, const Node *>> outputCopies;
  /// `update` outputs: (the param's buffer index, the update node); the new value is copied
  /// into the param's buffer after every node ran (so after every read of the old value),
  /// and only when the entry succeeded (status 0). Updates have no output buffer.
  std::vector<std::pair<int, const Node *>> updates;
  /// Fused SGD updates (their two `update` outputs are not in `updates`): one pass each after
  /// every node ran, in place into the param's and the momentum's buffers, under the same
  /// condition as the copies (status 0).
  std::vector<SgdUpdate> sgd;
  /// Fused elementwise groups (PlanFuse.cpp), by root: the group's nodes in node order, the
  /// root last. The root's lowering computes them all in one loop (EmitElementwise.cpp); the
  /// others are StorageKind::Fused, and what they read lives until the root.
  std::map<const Node *, std::vector<const Node *>> groups;
  /// Workspace blocks as (offset, bytes in use), per node index: `born[i]` are allocated for
  /// node i (its result, its scratch), `dead[i]` are released after it. The ASan build
  /// poisons every block outside its life (docs/hardening.md).
  std::vector<std::vector<std::pair<int64_t, int64_t>>> born, dead;
  int inputIndex(const Node *n) const;
};

/// The elementwise groups of f (Plan::groups) given p's storage so far, its batch analysis
/// and its prepared values (PlanFuse.cpp).
std::map<const Node *, std::vector<const Node *>> findElementwiseGroups(const Function &f,
                                                                        const Plan &p);
/// fuseSgd: fuse SGD updates (Plan::sgd); fuseElementwise: fuse elementwise groups
/// (Plan::groups); either off only to measure or test the unfused nodes.
/// narrowConvs: Target::narrowConvs (ConvGeom::of). inPlace: a result may take the block
/// of an operand that dies at it (ir/OpTraits.h's opInPlace), where that does not raise
/// the peak; off only to compare plans in tests.
Plan planFunction(const Function &f, unsigned vectorWidth, bool fuseSgd = true,
                  bool narrowConvs = false, bool fuseElementwise = true, bool inPlace = true);
/// Bytes of scratch an op needs besides its result (0 for most ops).
int64_t scratchBytes(const Node &n, unsigned vectorWidth, bool narrowConvs, bool prepacked = false);
bool isView(const Node &n);
/// Scratch of the matrix products (EmitMatMul.cpp: matmul's packed B).
int64_t trainScratchBytes(const Node &n, unsigned vectorWidth);
/// Bytes of fc's packed weight panels when it lowers as a GEMM (EmitMatMul.cpp), else 0.
int64_t fcPackBytes(const Node &n, unsigned vectorWidth);
/// Scratch of the fused conv2d gradients (EmitConvGrad.cpp).
int64_t convGradScratchBytes(const Node &n, unsigned vectorWidth, bool narrowConvs);
/// Scratch of softmax_xent and count_correct: one partial result per example (EmitLoss.cpp).
int64_t lossScratchBytes(const Node &n);
/// Each node of f in words (Describe.cpp, `cnnc dump --lowering`): its storage, the layouts
/// its kernel copies or packs operands into, its register tile, its scratch.
std::map<const Node *, std::string> describePlan(const Function &f, const Plan &p);
/// Follows views to the node that owns the bytes.
const Node *storageRoot(const Plan &p, const Node *n);

} // namespace cnnc::codegen
