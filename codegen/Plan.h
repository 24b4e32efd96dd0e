// Where every value of a function lives when it runs compiled: the buffer ABI, the batch
// analysis and the workspace memory plan. No LLVM here; Lower.cpp reads the plan.
//
// Invariants after planFunction:
//  - every node has a Storage: a caller buffer (input, param, output), a workspace offset
//    (64-byte aligned), a module constant, or a view of another node's storage
//    (flatten/reshape/identity/inference dropout alias their operand: same bytes, new shape);
//  - two workspace values overlap only if their live ranges (definition .. last use of the
//    value or of any view of it) are disjoint; an op's scratch lives for that op only.
#pragma once

#include "codegen/Codegen.h"

#include <map>
#include <vector>

namespace cnnc::codegen {

enum class StorageKind : uint8_t { Buffer, Workspace, Constant, View };
struct Storage {
  StorageKind kind = StorageKind::Workspace;
  int buffer = -1;            // Buffer: index into Layout::buffers
  int64_t offset = 0;         // Workspace: byte offset
  const Node *root = nullptr; // View: the node whose storage this aliases (itself not a view)
};

/// Geometry of a conv2d lowered as the seed's eq. 22 matrix product: rows are the output
/// pixels of the whole mini-batch, columns the output channels of one group, the reduction
/// runs over Cg*kh*kw. Shared by the planner (scratch sizes) and the emitter.
struct ConvGeom {
  int64_t C, H, W, M, kh, kw, sh, sw, pt, pl, pb, pr, dh, dw, G, Ho, Wo;
  int64_t Cg, Mg, Hp, Wp, R; // per-group channels, padded input, reduction length
  unsigned vl, mb, pt_;      // SIMD lanes, vectors per tile column block, pixels per tile
  int64_t mgPad;             // Mg rounded up to mb*vl
  bool padded;               // input copied into a zero-padded buffer
  int64_t rowsMax;           // x's dim 0 * Ho * Wo: the most rows a call computes
  // scratch byte offsets, relative to the op's scratch base
  int64_t xpadOff, wpackOff, bpackOff, zOff, bytes;
  static ConvGeom of(const Node &n, unsigned vl, int64_t maxBatch);
};

struct Plan {
  Layout layout;
  std::map<const Node *, Storage> storage;
  std::map<const Node *, bool> batched;  // carries the mini-batch (in batchDim)
  /// The dim that follows the runtime batch (-1: none): every dim before it is 1 and its
  /// extent is maxBatch·k, so at batch b it is b·k (Plan.cpp, analyseBatch).
  std::map<const Node *, int> batchDim;
  std::map<const Node *, int64_t> scratch; // byte offset of an op's scratch in the workspace
  /// Outputs whose node is not computed into its buffer (a source, a view, or the same node
  /// output twice): copied at the end, (buffer index, node).
  std::vector<std::pair<int, const Node *>> outputCopies;
  /// `update` outputs: (the param's buffer index, the update node); the new value is copied
  /// into the param's buffer after every node ran (so after every read of the old value),
  /// and only when the entry succeeded (status 0). Updates have no output buffer.
  std::vector<std::pair<int, const Node *>> updates;
  /// Workspace blocks as (offset, bytes in use), per node index: `born[i]` are allocated for
  /// node i (its result, its scratch), `dead[i]` are released after it. The ASan build
  /// poisons every block outside its life (docs/hardening.md).
  std::vector<std::vector<std::pair<int64_t, int64_t>>> born, dead;
  int inputIndex(const Node *n) const;
};

Plan planFunction(const Function &f, unsigned vectorWidth);
/// Bytes of scratch an op needs besides its result (0 for most ops).
int64_t scratchBytes(const Node &n, unsigned vectorWidth, int64_t maxBatch);
bool isView(const Node &n);
/// Scratch of the ops lowered in EmitTrain.cpp (matmul's packed B).
int64_t trainScratchBytes(const Node &n, unsigned vectorWidth);
/// Scratch of the fused conv2d gradients (EmitConvGrad.cpp).
int64_t convGradScratchBytes(const Node &n, unsigned vectorWidth);
/// Follows views to the node that owns the bytes.
const Node *storageRoot(const Plan &p, const Node *n);

} // namespace cnnc::codegen
