// The buffer ABI, the batch analysis and the workspace plan (see Plan.h, docs/codegen.md).
#include "codegen/Plan.h"
#include "codegen/BatchRules.h"
#include "ir/OpTraits.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace cnnc::codegen {

static int64_t align64(int64_t b) {
  return (b + 63) / 64 * 64;
}

bool isView(const Node &n) { // Ops.def's `view` trait; dropout is one only at inference
  return n.info().view && !(n.info().attr("training") && n.getInt("training"));
}

const Node *storageRoot(const Plan &p, const Node *n) {
  auto it = p.storage.find(n);
  return it != p.storage.end() && it->second.kind == StorageKind::View ? it->second.root : n;
}

int Plan::inputIndex(const Node *n) const {
  const Storage &s = storage.at(n);
  return s.kind == StorageKind::Buffer ? s.buffer : -1;
}

// The register tile: `tile` output pixels along a row × mb vectors of channels, held in
// registers while the whole reduction runs. AVX-512 has 32 vector registers (ymm too, for
// the 8-lane convs of Target::narrowConvs): 14 × 2 (28 accumulators, 2 weight vectors, the
// broadcasts folded into the FMAs); AVX2 has 16: 6 × 2 (12 + 2 + 1 broadcast).
// Column blocks of 3..7 vectors (8-lane convs whose channels fit one block): as many
// pixels as leave a register for the weights and one spare.
static int64_t maxTile(unsigned mb, bool regs32) {
  if (mb > 2)
    return std::max<int64_t>(1, ((regs32 ? 32 : 16) - mb - 1) / mb);
  return regs32 ? (mb == 2 ? 14 : 16) : (mb == 2 ? 6 : 12);
}

// Images per tile when the output is 1×1: fewer tiles win (a short tail tile costs nearly
// a full one: it is latency-bound); for the same count, a size that divides n.
static int64_t pickTile(int64_t n, unsigned mb, bool regs32) {
  const int64_t maxT = maxTile(mb, regs32);
  if (n <= maxT)
    return std::max<int64_t>(n, 1);
  int64_t best = maxT, bestTiles = (n + maxT - 1) / maxT;
  for (int64_t t = maxT - 1; t > maxT / 2; --t) {
    const int64_t tiles = (n + t - 1) / t;
    if (tiles < bestTiles || (tiles == bestTiles && n % t == 0 && n % best != 0))
      best = t, bestTiles = tiles;
  }
  return best;
}

ConvGeom ConvGeom::of(const Node &n, unsigned vl, bool prepacked, bool narrow) {
  ConvGeom g{};
  const Shape &x = n.operands[0]->type.shape, &w = n.operands[1]->type.shape, &y = n.type.shape;
  // Lanes wasted on padding channels cost as much as used ones: with 512-bit FMAs at the
  // 256-bit rate (Target::narrowConvs), 8 lanes (and column blocks of one vector when that
  // pads less) when that pads at least 10% fewer lanes: MNIST BASE's 20 and 50 channels in
  // 24 and 56 lanes instead of 32 and 64.
  const bool regs32 = vl >= 16;
  int64_t narrowMb = 0; // 8 lanes, column blocks of narrowMb vectors
  if (narrow && vl == 16) {
    const int64_t mg = w[0] / n.getInt("groups"), one = (mg + 7) / 8;
    auto padded = [&](int64_t lanes) { return (mg + lanes - 1) / lanes * lanes; };
    const int64_t wide = padded(mg > 16 ? 32 : 16);
    // two vectors per block (the usual tile), else all channels in one block of 3..7
    // vectors (few pixels per tile, but as many FMAs per load), else one vector
    for (int64_t mb : {int64_t(2), one <= 7 ? one : int64_t(1), int64_t(1)})
      if (!narrowMb && 10 * padded(8 * mb) <= 9 * wide)
        narrowMb = mb;
    if (narrowMb)
      vl = 8;
  } else if (vl == 8) {
    // AVX2 (16 registers): column blocks of one vector when two pad at least 10% more
    // lanes (MNIST SK's 20 channels: 24 lanes instead of 32); its 12-pixel tile still has
    // more FMAs than loads for the two FMA pipes
    const int64_t mg = w[0] / n.getInt("groups");
    if (mg > 8 && 10 * ((mg + 7) / 8 * 8) <= 9 * ((mg + 15) / 16 * 16))
      narrowMb = 1;
  }
  auto st = n.getInts("stride"), pads = n.getInts("pads"), dil = n.getInts("dilation");
  g.C = x[1], g.H = x[2], g.W = x[3], g.M = w[0], g.kh = w[2], g.kw = w[3];
  g.sh = st[0], g.sw = st[1], g.pt = pads[0], g.pl = pads[1], g.pb = pads[2], g.pr = pads[3];
  g.dh = dil[0], g.dw = dil[1], g.G = n.getInt("groups"), g.Ho = y[2], g.Wo = y[3];
  g.Cg = g.C / g.G, g.Mg = g.M / g.G, g.R = g.Cg * g.kh * g.kw;
  g.padded = g.pt || g.pl || g.pb || g.pr;
  // A 1×1 stride-1 conv without padding is a matrix product over the plane's pixels: one
  // row of Ho·Wo pixels, so that the row tiles span the image (ResNet's 1×1 convs on 7×7 at
  // AVX2: 49 pixels in 9 tiles of 5-6, where rows of 7 made tiles of 4 and 3)
  // (a strided one, ResNet's downsampling, first gathers the pixels it reads: ConvGeom::sub;
  // at AVX2 a stride-1 one with whole blocks of channels too, into the channel-blocked
  // layout below: ResNet-50 b1, 1 thread, 89.4 -> 86.9 ms, the downsampling 61-73 -> 90-100
  // GFLOP/s)
  g.subsampled = g.kh == 1 && g.kw == 1 && !g.padded && g.Ho * g.Wo != 1 &&
                 (g.sh > 1 || g.sw > 1 || (vl == 8 && g.Cg % 8 == 0 && g.Cg > 16));
  if (g.subsampled) {
    const int64_t s[6] = {g.H, g.W, g.sh, g.sw, g.Ho, g.Wo};
    std::copy(s, s + 6, g.sub);
    g.H = g.Ho, g.W = g.Wo, g.sh = g.sw = 1;
  }
  if (g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && !g.padded && g.Ho * g.Wo != 1) {
    // Rows of d pixels, d a divisor of the plane's Ho·Wo, no shorter than the real rows, at
    // most 8 register tiles (or 64 pixels) long, and leaving at least 32 work items (rows × column
    // blocks): a 56×56 plane in one row would leave one item per column block, and 2 threads idle.
    const int64_t P = g.Ho * g.Wo, mbEst = narrowMb ? narrowMb : g.Mg > (int64_t)vl ? 2 : 1;
    const int64_t ncbEst = (g.Mg + mbEst * vl - 1) / (mbEst * vl);
    const int64_t longest = std::max<int64_t>(64, 8 * maxTile(mbEst, regs32));
    int64_t d = g.Wo;
    for (int64_t c = g.Wo + 1; c <= std::min(P, longest); ++c)
      if (P % c == 0 && std::max<int64_t>(x[0], 1) * (P / c) * ncbEst >= 32)
        d = c;
    g.H = g.Ho = P / d, g.W = g.Wo = d;
  }
  g.Hp = g.H + g.pt + g.pb, g.Wp = g.W + g.pl + g.pr;
  g.vl = vl;
  g.mb = narrowMb ? (unsigned)narrowMb : g.Mg > (int64_t)vl ? 2 : 1;
  // A short reduction (the first layer: 3·3·3) makes the conv bound by writing its output.
  // Then tiles of one vector of channels × vl pixels (aligned rows when Wo is a multiple of
  // vl) store whole cache lines, where 14-pixel runs leave partial lines to be read first.
  const bool storeBound = g.R <= 64 && g.Wo % vl == 0;
  if (storeBound)
    g.mb = 1;
  g.cols = g.mb * vl;
  g.ncb = (g.Mg + g.cols - 1) / g.cols;
  g.mgPad = g.ncb * g.cols;
  // a 1×1 output tiles images instead (EmitConv.cpp), as many as the batch allows
  if (g.Ho * g.Wo == 1) {
    g.tile = pickTile(std::max<int64_t>(x[0], 1), g.mb, regs32);
  } else if (storeBound) {
    g.tile = vl, g.nfull = g.Wo / vl;
  } else {
    // A row in the fewest tiles, of two sizes one pixel apart (VGG's 56 at AVX2: 6×6 + 4×5):
    // a short tail tile (56 = 9×6 + 2) is latency-bound, 2·mb chains of FMAs for 2 FMA pipes.
    const int64_t mt = maxTile(g.mb, regs32);
    auto cut = [&](int64_t len) {
      const int64_t n = (len + mt - 1) / mt, q = len / n, r = len % n;
      g.tile = r ? q + 1 : q, g.nfull = r ? r : n;
      g.tail = r ? q : 0, g.ntail = r ? n - r : 0;
    };
    cut(g.Wo);
    // Rows that fill their tiles poorly (8 pixels in a 12-pixel tile, 14 as 5 + 5 + 4 of 6)
    // are tiled as a whole plane instead, when that fills at least 10 points more of the
    // tiles' pixels and leaves at most kMaxPhases starting columns (each a copy of the kernel).
    constexpr size_t kMaxPhases = 10;
    const int64_t P = g.Ho * g.Wo, rowTiles = (g.Wo + mt - 1) / mt, planeTiles = (P + mt - 1) / mt;
    if (g.Ho > 1 && double(P) / double(planeTiles * mt) >= double(g.Wo) / double(rowTiles * mt) + 0.1) {
      cut(P);
      std::vector<std::pair<int64_t, int64_t>> ph;
      for (int64_t t = 0, k0 = 0; t < g.nfull + g.ntail; k0 += t < g.nfull ? g.tile : g.tail, ++t) {
        const std::pair<int64_t, int64_t> p{t < g.nfull ? g.tile : g.tail, k0 % g.Wo};
        if (std::find(ph.begin(), ph.end(), p) == ph.end())
          ph.push_back(p);
      }
      if (ph.size() <= kMaxPhases)
        g.planeTiles = true, g.phases = ph;
      else
        cut(g.Wo); // back to row tiles
    }
  }
  // The padded copy in blocks of vl channels, [N][C/vl][Hp][Wp][vl], read block by block with
  // the taps inside (EmitConv.cpp): a block's input lines stay in L1 for all kh·kw taps.
  // Row tiles over whole blocks only; the few-channel path (the first layer) keeps planes.
  // AVX2 only: its 6×2 tile gains 3-7% (VGG's 3×3 layers, 1 thread); AVX-512's 14×2 tile
  // holds 28 of 32 registers, gains nothing, and spills in the deeper loop nest (conv5_x 1.85×
  // slower), so it keeps planes.
  g.blocked = vl == 8 && (g.padded || g.subsampled) && g.Cg % vl == 0 && g.Cg * g.kh > 16 &&
              g.Ho * g.Wo != 1 && !storeBound;
  g.plane = g.Hp * g.Wp;
  if ((g.padded || g.subsampled) && !g.blocked && g.plane * 4 % 512 == 0)
    g.plane += 16; // (one line: consecutive planes start 17 lines apart, all 64 sets in turn)
  g.wpackBytes = align64(g.G * g.ncb * g.R * g.cols * 4);
  g.packBytes = g.wpackBytes + align64(g.G * g.mgPad * 4);
  // The padded copy is sized by x's own dim 0, the most images the op ever sees: maxBatch
  // when x carries the batch, its real size when it does not (a conv on an input whose dim
  // 0 is not the first input's, e.g. beside an empty batch [0,...], which makes maxBatch 1).
  const int64_t N = x[0];
  int64_t off = 0;
  g.xpadOff = off, off += g.padded || g.subsampled ? align64(N * g.C * g.plane * 4) : 0;
  g.packOff = off, off += prepacked ? 0 : g.packBytes;
  g.bytes = off;
  return g;
}

bool isDepthwise(const Node &n) {
  if (n.op != OpKind::Conv2d)
    return false;
  const Shape &x = n.operands[0]->type.shape, &w = n.operands[1]->type.shape;
  const int64_t G = n.getInt("groups"), sw = n.getInts("stride")[1];
  return G > 1 && x[1] == G && w[0] == G && (sw == 1 || sw == 2) && w[2] <= 7 && w[3] <= 7;
}

int64_t depthwiseScratchBytes(const Node &n) {
  const Shape &x = n.operands[0]->type.shape;
  auto pads = n.getInts("pads");
  if (!(pads[0] || pads[1] || pads[2] || pads[3]))
    return 0;
  return align64(x[0] * x[1] * (x[2] + pads[0] + pads[2]) * (x[3] + pads[1] + pads[3]) * 4);
}

int64_t scratchBytes(const Node &n, unsigned vl, bool narrow, bool prepacked) {
  if (isDepthwise(n))
    return depthwiseScratchBytes(n);
  if (n.op == OpKind::Conv2d)
    return ConvGeom::of(n, vl, prepacked, narrow).bytes;
  if (int64_t s = convGradScratchBytes(n, vl, narrow))
    return s;
  if (int64_t s = lossScratchBytes(n))
    return s;
  return trainScratchBytes(n, vl);
}

namespace {

// Marks which values carry the mini-batch, and in which dim, and decides whether the function
// runs at any batch 1..maxBatch. A value is batched in dim d when every dim before d has
// extent 1 and dim d is maxBatch·k, k values per example (dim 0 of the inputs; dim 1 of
// im2row's [1, N·Ho·Wo, R]): row-major, the batch then changes dim d's extent and no stride,
// so a runtime batch changes trip counts only. Every op must keep examples independent in
// that dim, or reduce over it with a runtime count (bn_mean, the losses, eq. 35's K); what
// would need a runtime stride (im2row with groups > 1) or mixes examples makes the function
// fixed-batch, with batchNote naming the node.
void analyseBatch(const Function &f, Plan &p) {
  Layout &l = p.layout;
  l.maxBatch = 0;
  for (const auto &n : f.nodes())
    if (n->op == OpKind::Input && n->type.rank() >= 1) {
      l.maxBatch = n->type.shape[0];
      break;
    }
  // No batched input, or an empty batch (dim 0 is 0): one fixed run, and no value is marked
  // batched (dim 0 must equal maxBatch >= 1 for that), so nothing divides by the batch.
  l.batchPolymorphic = l.maxBatch > 0;
  if (!l.maxBatch)
    l.maxBatch = 1;
  const int64_t NB = l.maxBatch;
  auto fail = [&](const Node &n, const std::string &why) {
    if (l.batchPolymorphic)
      l.batchNote = fmt::format("{}: {}", n.describe(), why);
    l.batchPolymorphic = false;
  };
  for (const auto &np : f.nodes()) {
    const Node &n = *np;
    auto bd = [&](int i) { return p.batchDim.at(n.operands[i]); };
    auto B = [&](int i) { return bd(i) >= 0; };
    bool anyB = false;
    for (size_t i = 0; i < n.operands.size(); ++i)
      anyB |= B((int)i);
    const int r = n.type.rank();
    int out = -1; // the result's batch dim
    // ops on N×C×... tensors: the batch must be dim 0 of every batched operand
    auto leading = [&](std::initializer_list<int> ops) {
      for (int i : ops)
        if (i < (int)n.operands.size() && B(i) && bd(i) != 0)
          fail(n, "an operand carries the batch in another dim than 0");
    };
    switch (n.info().batch) { // Ops.def's `batch:` trait
    case BatchRule::Elementwise:
      for (size_t i = 0; i < n.operands.size(); ++i) // a batched operand's batch dim, aligned
        if (B((int)i)) {
          const int d = r - n.operands[i]->type.rank() + bd((int)i);
          if (out >= 0 && out != d)
            fail(n, "the operands carry the batch in different dims");
          out = d;
        }
      for (size_t i = 0; i < n.operands.size() && anyB && out >= 0; ++i) {
        const TensorType &t = n.operands[i]->type;
        const int d = out - (r - t.rank()); // the operand's dim under the result's batch dim
        if (B((int)i) ? t.shape[d] != n.type.shape[out] : (d >= 0 && t.shape[d] != 1))
          fail(n, "an operand broadcasts along the batch dimension");
      }
      break;
    case BatchRule::Leading:
      leading({0});
      out = B(0) ? 0 : -1;
      for (size_t i = 1; i < n.operands.size(); ++i)
        if (B((int)i))
          fail(n, "a weight operand carries the batch");
      break;
    case BatchRule::Axis: {
      const int last = (int)n.operands.size() - 1;
      out = bd(last);
      for (int i = 0; i < last; ++i)
        if (bd(i) != out)
          fail(n, "its operands carry the batch in different dims");
      if (out >= 0 && normAxis(n.getInt("axis"), r) <= out)
        fail(n, "normalises across the batch");
      break;
    }
    case BatchRule::Fixed: // e.g. batch_matmul, softmax_xent_nd
      if (anyB)
        fail(n, "runs at the compiled batch only");
      break;
    case BatchRule::Custom: { // a rule of its own (BatchRules.cpp)
      BatchCtx c{n, p.batchDim, NB, [&](const std::string &why) { fail(n, why); }};
      c.anyB = anyB;
      customBatchRule(n.op)(c);
      out = c.out;
      break;
    }
    }
    // the batch dim can only follow the runtime batch if every dim before it is 1 and it is
    // maxBatch·k
    if (out >= 0) {
      bool ok = out < r && n.type.shape[out] % NB == 0 && n.type.shape[out] > 0;
      for (int d = 0; ok && d < out; ++d)
        ok = n.type.shape[d] == 1;
      if (!ok) {
        fail(n, fmt::format("dim {} is not the batch", out));
        out = -1;
      }
    }
    p.batchDim[&n] = out;
    p.batched[&n] = out >= 0;
  }
  // the caller's buffers are batch-major, one example per row of dim 0: an output that
  // carries the batch otherwise (k != 1, or in another dim) is the whole buffer at batch N
  for (const Node *o : f.outputs()) {
    const int d = p.batchDim.at(o);
    if (d > 0 || (d == 0 && o->type.shape[0] != NB)) {
      fail(*o, "an output carries the batch in another dim than 0");
      p.batchDim[o] = -1;
      p.batched[o] = false;
    }
  }
}

// First-fit allocator over [0, peak): blocks sorted by offset.
class Arena {
public:
  int64_t alloc(int64_t bytes) {
    bytes = align64(std::max<int64_t>(bytes, 1));
    int64_t at = 0;
    for (auto &[off, sz] : blocks_) {
      if (off - at >= bytes)
        break;
      at = std::max(at, off + sz);
    }
    blocks_.insert({at, bytes});
    peak_ = std::max(peak_, at + bytes);
    return at;
  }
  void release(int64_t off) {
    auto it = std::find_if(blocks_.begin(), blocks_.end(), [&](auto &b) { return b.first == off; });
    CNNC_ASSERT(it != blocks_.end(), "double free in the workspace plan");
    blocks_.erase(it);
  }
  int64_t peak() const { return peak_; }

private:
  std::set<std::pair<int64_t, int64_t>> blocks_;
  int64_t peak_ = 0;
};

// The prepared state (Plan::prepared, Plan::packed). A value is *fixed* when it depends on
// params and constants alone: it changes only when the params do, so the prepare entry
// computes it once (cnnc_load_weights, cnnc_set_param, ...) instead of every call. That
// covers packing each conv's weights into its register tile's panels (and fc's into the
// GEMM's, from 2 rows on) and folded batch norm
// (passes/FoldBatchNorm.cpp). Not prepared, though still computed: outputs (the caller's
// buffer differs per call) and ops that need scratch. Prepared blocks are allocated first
// and never released, so they sit at [0, preparedBytes) of the workspace.
void planPrepared(const Function &f, Plan &p, Arena &arena) {
  if (!p.updates.empty() || !p.sgd.empty())
    return; // a training step: its params change with every call
  std::set<const Node *> fixed;
  for (const Node *n : f.nodeList()) {
    if (n->op == OpKind::Param || n->op == OpKind::Constant) {
      fixed.insert(n);
      continue;
    }
    if (n->info().source || n->operands.empty())
      continue;
    bool all = true;
    for (const Node *o : n->operands)
      all = all && fixed.count(o);
    if (!all)
      continue;
    auto st = p.storage.find(n);
    if (st != p.storage.end()) { // a view of a fixed value stays fixed; an output is not;
      // a flip folded into a conv's pack is fixed and computed by the pack
      if (st->second.kind == StorageKind::View || p.flipInPack.count(n))
        fixed.insert(n);
      continue;
    }
    if (scratchBytes(*n, p.layout.vectorWidth, p.layout.narrowConvs) != 0 || n->type.numel() == 0)
      continue;
    fixed.insert(n);
    p.prepared.insert(n);
    p.storage[n] = {StorageKind::Workspace, -1, arena.alloc(n->type.bytes())};
  }
  for (const Node *n : f.nodeList())
    if (n->op == OpKind::Conv2d && !isDepthwise(*n) && fixed.count(n->operands[1]) &&
        (n->operands.size() < 3 || fixed.count(n->operands[2])) && n->type.numel() > 0)
      p.packed[n] =
          arena.alloc(ConvGeom::of(*n, p.layout.vectorWidth, true, p.layout.narrowConvs).packBytes);
  for (const Node *n : f.nodeList()) // fc's GEMM panels (EmitMatMul.cpp)
    if (n->op == OpKind::FullyConnected && fixed.count(n->operands[1]))
      if (int64_t bytes = fcPackBytes(*n, p.layout.vectorWidth))
        p.packed[n] = arena.alloc(bytes);
  p.layout.preparedBytes = arena.peak();
}

// The operand whose workspace block node i (n, not yet placed) may take, or nullptr. n and,
// when it roots a fused group, every member are InPlace::SameIndex (ir/OpTraits.h), so the
// loop reads element i of each outside operand of n's type before it stores n's element i.
// The operand must own a block of its own (not a view, a caller buffer or the prepared
// state), have n's type and batch dim, die at n (lastUse covers its views and, for a
// group's outside operands, the root), and not be read by n through a view as well (a view
// could index it otherwise).
const Node *inPlaceOperand(const Plan &p, const Node *n, size_t i,
                           const std::map<const Node *, size_t> &lastUse) {
  auto g = p.groups.find(n);
  const std::vector<const Node *> members = g == p.groups.end() ? std::vector{n} : g->second;
  std::vector<const Node *> outside;
  for (const Node *m : members) {
    if (opInPlace(m->op) != InPlace::SameIndex)
      return nullptr;
    for (const Node *o : m->operands)
      if (std::find(members.begin(), members.end(), o) == members.end())
        outside.push_back(o);
  }
  for (const Node *x : outside) {
    auto st = p.storage.find(x);
    if (st == p.storage.end() || st->second.kind != StorageKind::Workspace || p.prepared.count(x) ||
        lastUse.at(x) != i || x->type != n->type || p.batchDim.at(x) != p.batchDim.at(n))
      continue;
    if (std::none_of(outside.begin(), outside.end(),
                     [&](const Node *o) { return o != x && storageRoot(p, o) == x; }))
      return x;
  }
  return nullptr;
}

// The workspace of the entry (Plan::storage's Workspace values, Plan::scratch, born, dead,
// Layout::workspaceBytes) on top of the prepared state already in `arena`, node by node: a
// result gets a first-fit block (or, with inPlace, the block of an operand that dies at it),
// an op's scratch is allocated after it, and blocks are released after their last use.
// Returns the peak.
int64_t placeWorkspace(const std::vector<Node *> &nodes, Plan &p, Arena arena,
                       const std::map<const Node *, size_t> &lastUse, bool inPlace) {
  // node index after which a block (offset, bytes) is released
  std::multimap<size_t, std::pair<int64_t, int64_t>> frees;
  p.born.assign(nodes.size(), {}), p.dead.assign(nodes.size(), {});
  for (size_t i = 0; i < nodes.size(); ++i) {
    const Node *n = nodes[i];
    const Node *x = !inPlace || p.storage.count(n) ? nullptr : inPlaceOperand(p, n, i, lastUse);
    if (x) { // n takes x's block, released after n's last use instead of after this node
      const int64_t off = p.storage.at(x).offset;
      p.storage[n] = {StorageKind::Workspace, -1, off};
      auto [lo, hi] = frees.equal_range(i);
      auto it = std::find_if(lo, hi, [&](auto &f) { return f.second.first == off; });
      CNNC_ASSERT(it != hi, "an in-place operand's block is not released at its last use");
      frees.erase(it);
      frees.insert({lastUse.at(n), {off, n->type.bytes()}});
    } else if (!p.storage.count(n)) {
      p.storage[n] = {StorageKind::Workspace, -1, arena.alloc(n->type.bytes())};
      frees.insert({lastUse.at(n), {p.storage[n].offset, n->type.bytes()}});
      p.born[i].push_back({p.storage[n].offset, n->type.bytes()});
    }
    if (int64_t s =
            scratchBytes(*n, p.layout.vectorWidth, p.layout.narrowConvs, p.packed.count(n) != 0)) {
      p.scratch[n] = arena.alloc(s);
      frees.insert({i, {p.scratch[n], s}});
      p.born[i].push_back({p.scratch[n], s});
    }
    auto [lo, hi] = frees.equal_range(i);
    for (auto it = lo; it != hi; ++it) {
      arena.release(it->second.first);
      p.dead[i].push_back(it->second);
    }
    frees.erase(lo, hi);
  }
  return p.layout.workspaceBytes = arena.peak();
}

} // namespace

Plan planFunction(const Function &f, unsigned vl, bool fuseSgd, bool narrowConvs,
                  bool fuseElementwise, bool inPlace) {
  Plan p;
  p.layout.vectorWidth = vl;
  p.layout.narrowConvs = narrowConvs;
  analyseBatch(f, p);
  Layout &l = p.layout;
  auto nodes = f.nodeList();
  auto slot = [&](const Node *n, BufferKind k) {
    l.buffers.push_back({n->name, k, n->type, p.batched.at(n)});
    return (int)l.buffers.size() - 1;
  };
  for (const Node *n : nodes)
    if (n->op == OpKind::Input)
      p.storage[n] = {StorageKind::Buffer, slot(n, BufferKind::Input)};
  for (const Node *n : nodes)
    if (n->op == OpKind::Param)
      p.storage[n] = {StorageKind::Buffer, slot(n, BufferKind::Param)};
  for (const Node *n : nodes) {
    if (n->op == OpKind::Constant)
      p.storage[n] = {StorageKind::Constant};
    else if (isView(*n))
      p.storage[n] = {StorageKind::View, -1, 0, storageRoot(p, n->operands[0])};
    else if (n->op == OpKind::Update) // the new value, where it is computed; copied at the end
      p.storage[n] = {StorageKind::View, -1, 0, storageRoot(p, n->operands[1])};
  }
  std::set<const Node *> updated, fusedUpdates;
  for (const Node *o : f.outputs())
    if (o->op == OpKind::Update)
      updated.insert(o->operands[0]);
  if (fuseSgd)
    p.sgd = findSgdUpdates(f);
  for (const SgdUpdate &u : p.sgd) {
    for (const Node *n : u.fused)
      p.storage[n] = {StorageKind::Fused};
    for (const Node *n : {u.wUpdate, u.vUpdate}) {
      p.storage[n] = {StorageKind::Fused};
      fusedUpdates.insert(n);
    }
  }
  // A filter_flip whose one use is a conv2d's weights (and not an output) folds into the
  // conv's pack: one pass over the filter per call instead of two (Plan::flipInPack).
  {
    std::map<const Node *, int> uses;
    for (const Node *n : nodes)
      for (const Node *o : n->operands)
        ++uses[o];
    for (const Node *o : f.outputs())
      ++uses[o];
    for (const Node *n : nodes)
      if (n->op == OpKind::Conv2d && n->operands[1]->op == OpKind::FilterFlip &&
          uses[n->operands[1]] == 1 && n->operands[0] != n->operands[1]) {
        p.flipInPack.insert(n->operands[1]);
        p.storage[n->operands[1]] = {StorageKind::Fused};
      }
  }
  for (const Node *o : f.outputs()) {
    if (fusedUpdates.count(o))
      continue;
    if (o->op == OpKind::Update) {
      const Node *param = o->operands[0], *root = storageRoot(p, o->operands[1]);
      if (root != param && updated.count(root))
        throw Error(fmt::format("{}: codegen cannot set a param to another param that is itself "
                                "updated (the copies would need an order)",
                                o->describe()));
      p.updates.push_back({p.storage.at(param).buffer, o});
      continue;
    }
    const int b = slot(o, BufferKind::Output);
    if (!p.storage.count(o))
      p.storage[o] = {StorageKind::Buffer, b};
    else
      p.outputCopies.push_back({b, o});
  }

  // Live ranges of workspace roots: definition .. last use of the node or of a view of it.
  std::map<const Node *, size_t> index, lastUse;
  for (size_t i = 0; i < nodes.size(); ++i) {
    index[nodes[i]] = i;
    lastUse[nodes[i]] = i;
  }
  for (size_t i = 0; i < nodes.size(); ++i)
    for (const Node *o : nodes[i]->operands) {
      const Node *r =
          p.storage.count(o) && p.storage[o].kind == StorageKind::View ? p.storage[o].root : o;
      lastUse[r] = std::max(lastUse[r], i);
      lastUse[o] = std::max(lastUse[o], i);
    }
  for (const auto &[b, o] : p.outputCopies) { // copied at the very end
    (void)b;
    lastUse[storageRoot(p, o)] = nodes.size();
  }
  for (const auto &[b, o] : p.updates) { // likewise
    (void)b;
    lastUse[storageRoot(p, o)] = nodes.size();
  }
  for (const SgdUpdate &u : p.sgd) // the fused SGD reads the gradient at the very end
    lastUse[storageRoot(p, u.grad)] = nodes.size();
  for (size_t i = 0; i < nodes.size(); ++i) // a conv's pack reads a folded flip's operand
    if (nodes[i]->op == OpKind::Conv2d && p.flipInPack.count(nodes[i]->operands[1])) {
      const Node *w = nodes[i]->operands[1]->operands[0];
      lastUse[storageRoot(p, w)] = std::max(lastUse[storageRoot(p, w)], i);
    }
  Arena arena;
  planPrepared(f, p, arena);
  if (fuseElementwise) // members get no storage; what they read is read at the root
    p.groups = findElementwiseGroups(f, p);
  for (const auto &[root, g] : p.groups)
    for (const Node *m : g) {
      if (m != root)
        p.storage[m] = {StorageKind::Fused};
      for (const Node *o : m->operands)
        lastUse[storageRoot(p, o)] = std::max(lastUse[storageRoot(p, o)], index[root]);
    }
  // In place or not, whichever peaks lower (ties: in place, fewer bytes touched). Taking a
  // dying operand's block is not always the smaller plan: first-fit then leaves other holes,
  // and mobile_mnist's @infer grew by 45% when every chance was taken (docs/codegen.md).
  Plan alt;
  if (inPlace)
    alt = p;
  const int64_t peak = placeWorkspace(nodes, p, Arena(arena), lastUse, inPlace);
  if (inPlace && placeWorkspace(nodes, alt, Arena(arena), lastUse, false) < peak)
    p = std::move(alt);
  return p;
}

} // namespace cnnc::codegen
