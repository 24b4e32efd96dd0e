// The buffer ABI, the batch analysis and the workspace plan (see Plan.h, docs/codegen.md).
#include "codegen/Plan.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace cnnc::codegen {

static int64_t align64(int64_t b) {
  return (b + 63) / 64 * 64;
}

bool isView(const Node &n) {
  switch (n.op) {
  case OpKind::Flatten:
  case OpKind::Reshape:
  case OpKind::Identity:
    return true;
  case OpKind::Dropout:
    return n.getInt("training") == 0;
  default:
    return false;
  }
}

const Node *storageRoot(const Plan &p, const Node *n) {
  auto it = p.storage.find(n);
  return it != p.storage.end() && it->second.kind == StorageKind::View ? it->second.root : n;
}

int Plan::inputIndex(const Node *n) const {
  const Storage &s = storage.at(n);
  return s.kind == StorageKind::Buffer ? s.buffer : -1;
}

ConvGeom ConvGeom::of(const Node &n, unsigned vl, int64_t maxBatch) {
  ConvGeom g{};
  const Shape &x = n.operands[0]->type.shape, &w = n.operands[1]->type.shape, &y = n.type.shape;
  auto st = n.getInts("stride"), pads = n.getInts("pads"), dil = n.getInts("dilation");
  g.C = x[1], g.H = x[2], g.W = x[3], g.M = w[0], g.kh = w[2], g.kw = w[3];
  g.sh = st[0], g.sw = st[1], g.pt = pads[0], g.pl = pads[1], g.pb = pads[2], g.pr = pads[3];
  g.dh = dil[0], g.dw = dil[1], g.G = n.getInt("groups"), g.Ho = y[2], g.Wo = y[3];
  g.Cg = g.C / g.G, g.Mg = g.M / g.G, g.R = g.Cg * g.kh * g.kw;
  g.padded = g.pt || g.pl || g.pb || g.pr;
  g.Hp = g.H + g.pt + g.pb, g.Wp = g.W + g.pl + g.pr;
  g.vl = vl;
  g.mb = g.Mg > (int64_t)vl ? 2 : 1;
  g.pt_ = g.mb == 2 ? 6 : 8;
  const int64_t cols = g.mb * vl;
  g.mgPad = (g.Mg + cols - 1) / cols * cols;
  // Sized by x's own dim 0, the most rows the op ever sees: maxBatch when x carries the
  // batch, its real size when it does not (a conv on an input whose dim 0 is not the first
  // input's, e.g. beside an empty batch [0,...], which makes maxBatch 1).
  CNNC_ASSERT(maxBatch >= 1 && x[0] >= 0, "conv scratch for a bad batch");
  const int64_t N = x[0];
  g.rowsMax = N * g.Ho * g.Wo;
  const int64_t zRows = (g.rowsMax + g.pt_ - 1) / g.pt_ * g.pt_;
  int64_t off = 0;
  g.xpadOff = off, off += g.padded ? align64(N * g.C * g.Hp * g.Wp * 4) : 0;
  g.wpackOff = off, off += align64(g.G * g.R * g.mgPad * 4);
  g.bpackOff = off, off += align64(g.G * g.mgPad * 4);
  g.zOff = off, off += align64(zRows * g.mgPad * 4);
  g.bytes = off;
  return g;
}

int64_t scratchBytes(const Node &n, unsigned vl, int64_t maxBatch) {
  if (n.op == OpKind::Conv2d)
    return ConvGeom::of(n, vl, maxBatch).bytes;
  if (int64_t s = convGradScratchBytes(n, vl))
    return s;
  return trainScratchBytes(n, vl);
}

namespace {

int normAxis(int64_t axis, int rank) {
  return (int)(axis < 0 ? axis + rank : axis);
}

// Marks which values carry the mini-batch in dim 0 and decides whether the function runs at
// any batch 1..maxBatch: every op must treat dim 0 as independent examples (or reduce over
// it with a runtime count, as bn_mean and the losses do).
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
  auto fail = [&](const Node &n, const std::string &why) {
    if (l.batchPolymorphic)
      l.batchNote = fmt::format("{}: {}", n.describe(), why);
    l.batchPolymorphic = false;
  };
  for (const auto &np : f.nodes()) {
    const Node &n = *np;
    auto B = [&](int i) { return p.batched.at(n.operands[i]); };
    bool anyB = false, out = false;
    for (size_t i = 0; i < n.operands.size(); ++i)
      anyB |= B((int)i);
    switch (n.op) {
    case OpKind::Input:
      out = n.type.rank() >= 1;
      if (out && n.type.shape[0] != l.maxBatch)
        fail(n, "inputs disagree on the batch size");
      break;
    case OpKind::Param:
    case OpKind::Constant:
      break;
    case OpKind::FullyConnected:
    case OpKind::Conv2d:
    case OpKind::MaxPool:
    case OpKind::AvgPool:
    case OpKind::GlobalAvgPool:
    case OpKind::Relu:
    case OpKind::Sigmoid:
    case OpKind::Tanh:
    case OpKind::Identity:
    case OpKind::Dropout:
    case OpKind::BatchNorm:
      out = B(0);
      for (size_t i = 1; i < n.operands.size(); ++i)
        if (B((int)i))
          fail(n, "a weight operand carries the batch");
      break;
    case OpKind::Softmax:
    case OpKind::LogSoftmax:
      out = B(0);
      if (out && normAxis(n.getInt("axis"), n.type.rank()) == 0)
        fail(n, "normalises across the batch");
      break;
    case OpKind::MatMul:
      out = B(0);
      if (B(1) || (out && (n.getInt("trans_a") || n.type.rank() != 2)))
        fail(n, "the batch is not the rows of the first operand");
      break;
    case OpKind::Add:
    case OpKind::Sub:
    case OpKind::Mul:
    case OpKind::Div:
      out = anyB;
      for (int i = 0; i < 2 && anyB; ++i) {
        const TensorType &t = n.operands[i]->type;
        if (B(i) ? t.rank() != n.type.rank() : (t.rank() == n.type.rank() && t.shape[0] != 1))
          fail(n, "an operand broadcasts along the batch dimension");
      }
      break;
    case OpKind::Concat:
      out = anyB;
      for (size_t i = 0; i < n.operands.size(); ++i)
        if (B((int)i) != anyB)
          fail(n, "concatenates batched and unbatched tensors");
      if (anyB && normAxis(n.getInt("axis"), n.type.rank()) == 0)
        fail(n, "concatenates along the batch");
      break;
    case OpKind::Flatten:
    case OpKind::Reshape:
      out = B(0);
      if (out && (n.type.rank() == 0 || n.type.shape[0] != n.operands[0]->type.shape[0]))
        fail(n, "reshapes across the batch");
      break;
    case OpKind::BnMean:
    case OpKind::BnVar:
      if (n.operands.size() > 1 && B(1))
        fail(n, "the mean carries the batch");
      break;
    case OpKind::SoftmaxXent:
    case OpKind::L2Loss:
      if (B(0) != B(1))
        fail(n, "one operand carries the batch and the other does not");
      break;
    default: // training graphs and general tensor ops: im2row folds the batch into the rows
             // of dim 1, trans_a products and reduce_sum sum over it, the running variance's
             // unbiasing factor is compiled in: they run at the compiled batch only
      fail(n, "runs at the compiled batch only (training and general tensor ops)");
      break;
    }
    // dim 0 can only follow the runtime batch if it is the batch at maxBatch
    if (out && (n.type.rank() == 0 || n.type.shape[0] != l.maxBatch)) {
      fail(n, "dim 0 is not the batch");
      out = false;
    }
    p.batched[&n] = out;
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

} // namespace

Plan planFunction(const Function &f, unsigned vl) {
  Plan p;
  p.layout.vectorWidth = vl;
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
  std::set<const Node *> updated;
  for (const Node *o : f.outputs())
    if (o->op == OpKind::Update)
      updated.insert(o->operands[0]);
  for (const Node *o : f.outputs()) {
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
  Arena arena;
  std::multimap<size_t, int64_t> frees; // node index after which a block is released
  for (size_t i = 0; i < nodes.size(); ++i) {
    const Node *n = nodes[i];
    if (!p.storage.count(n)) {
      p.storage[n] = {StorageKind::Workspace, -1, arena.alloc(n->type.bytes())};
      frees.insert({lastUse[n], p.storage[n].offset});
    }
    if (int64_t s = scratchBytes(*n, vl, l.maxBatch)) {
      p.scratch[n] = arena.alloc(s);
      frees.insert({i, p.scratch[n]});
    }
    auto [lo, hi] = frees.equal_range(i);
    for (auto it = lo; it != hi; ++it)
      arena.release(it->second);
    frees.erase(lo, hi);
  }
  l.workspaceBytes = arena.peak();
  return p;
}

} // namespace cnnc::codegen
