// Model statistics (ModelStats.h): parameters, multiply-adds, activation bytes and the
// receptive field of every node. Read-only; assumes a verified function (types inferred).
//
// MACs count the multiply-adds of the dense ops only: conv2d N*M*Ho*Wo*(C/groups)*kh*kw,
// fc N*M*K, matmul and batch_matmul (batch*)m*n*k. Bias additions, pooling comparisons and
// additions, and elementwise ops count 0: they are lower-order terms, and the usual "MACs"
// figures of frameworks leave them out too.
//
// Receptive field (seed section 8.2 and Table 2): start from one element of the target
// node's output -- its spatial centre, element ((H-1)/2, (W-1)/2) -- and walk the DAG
// backwards, carrying for every 4-D value the bounding box (rows [r0,r1], cols [c0,c1]) of
// the elements that element depends on. A window op (conv, pooling) with kernel k, stride s,
// dilation d and leading pad p maps output rows [a,b] to input rows
//   [a*s - p, b*s - p + (k-1)*d]
// (coordinates of the unpadded input, so padded pixels are negative or >= H and count in
// the extent, as the seed's 212 for VGG-16 does). Elementwise ops and expand pass the box
// through (a broadcast dimension of size 1 maps to [0,0]); a slice along H or W shifts it by
// its start; a value used by several nodes gets the hull of their boxes; concatenation along
// H or W shifts the box into each operand's coordinates; ops that mix all positions (global
// pooling, fc, flatten, reshape, losses, gradient ops) need their whole input.
// A node's receptive field is the extent of the box of its first 4-D operand: the box of
// that value over every path to the target (what perturbing that value would reveal; in a
// chain, the box through this node alone). The box is not clipped to the tensor: it is the
// field of the architecture, which near a border reaches beyond even the padded input.
#include "passes/ModelStats.h"
#include "ir/OpTraits.h"

#include <functional>
#include <set>

#include <algorithm>
#include <map>

namespace cnnc {

namespace {

struct Box {
  int64_t r0, r1, c0, c1;
  Box hull(const Box &o) const {
    return {std::min(r0, o.r0), std::max(r1, o.r1), std::min(c0, o.c0), std::max(c1, o.c1)};
  }
};

bool spatial(const Node *n) {
  return n->type.rank() == 4;
}
Box whole(const Node *n) {
  return {0, n->type.shape[2] - 1, 0, n->type.shape[3] - 1};
}

bool isPool(OpKind k) {
  return k == OpKind::MaxPool || k == OpKind::AvgPool || k == OpKind::GlobalAvgPool;
}

// The dense products' multiply-adds: one formula per op with the `macs` trait in Ops.def.
// kMacsFormula instantiates macsFormula<K> for exactly those ops, so an op given the trait
// without a formula here fails the build ("use of deleted function macsFormula<OpKind::X>").
template <OpKind K> int64_t macsFormula(const Node &n) = delete;

template <> int64_t macsFormula<OpKind::Conv2d>(const Node &n) {
  // out numel = N*M*Ho*Wo; w = [M, C/groups, kh, kw]
  const Shape &w = n.operands[1]->type.shape;
  return n.type.numel() * w[1] * w[2] * w[3];
}
template <> int64_t macsFormula<OpKind::FullyConnected>(const Node &n) { // out [N,M], x [N,K]
  return n.type.numel() * n.operands[0]->type.shape[1];
}
template <> int64_t macsFormula<OpKind::MatMul>(const Node &n) {
  // out [(b,) m, n]; k is a's inner dimension
  const Shape &a = n.operands[0]->type.shape;
  return n.type.numel() * (n.getInt("trans_a") ? a[a.size() - 2] : a.back());
}
template <>
int64_t macsFormula<OpKind::BatchMatMul>(const Node &n) { // out [..., m, n], a [..., m, k]
  return n.type.numel() * n.operands[0]->type.shape.back();
}
// the fused conv gradients cost what the forward conv does (seed eqs. 35 and 45: products of
// the same three extents)
template <> int64_t macsFormula<OpKind::Conv2dGradFilter>(const Node &n) {
  // dW [M, Cg, kh, kw] summed over dy's N·Ho·Wo pixels
  const Shape &dy = n.operands[1]->type.shape;
  return n.type.numel() * dy[0] * dy[2] * dy[3];
}
template <> int64_t macsFormula<OpKind::Conv2dGradInput>(const Node &n) {
  // dY Fᵀ: every dy element times a Cg·kh·kw row of w
  const Shape &w = n.operands[1]->type.shape;
  return n.operands[0]->type.numel() * w[1] * w[2] * w[3];
}

using MacsFn = int64_t (*)(const Node &);
constexpr auto kMacsFormula = opTable([]<OpKind K>() -> MacsFn {
  if constexpr (opHasTrait(K, "macs"))
    return &macsFormula<K>;
  else
    return nullptr; // not a dense product: no multiply-adds counted
});

int64_t macsOf(const Node &n) {
  const MacsFn f = kMacsFormula[(size_t)n.op];
  return f ? f(n) : 0;
}

// Backward propagation of dependence boxes. `need` holds, for every value the target
// depends on, its box (whole-value dependence for non-4-D values carries a dummy box).
class FieldWalker {
public:
  std::map<const Node *, Box> need;

  void require(const Node *o, const Box &b) {
    auto [it, fresh] = need.try_emplace(o, b);
    if (!fresh && spatial(o))
      it->second = it->second.hull(b);
  }
  void requireWhole(const Node *o) { require(o, spatial(o) ? whole(o) : Box{0, 0, 0, 0}); }

  // Pushes the dependence of n's box (already final: all users come later in the list) to
  // its operands.
  void visit(const Node &n) {
    const Box out = need.at(&n);
    // Window ops, batch norm, softmax, concat, expand and slice have rules of their own;
    // otherwise the op's traits decide: elementwise ops pass the box through, anything else
    // needs its whole input (always sound: it can only overestimate the field).
    if (n.op == OpKind::Conv2d) {
      const Shape &w = n.operands[1]->type.shape;
      window(n, out, w[2], w[3], n.getInts("dilation"));
      for (size_t i = 1; i < n.operands.size(); ++i)
        requireWhole(n.operands[i]);
    } else if (n.op == OpKind::MaxPool) {
      auto k = n.getInts("kernel");
      window(n, out, k[0], k[1], n.getInts("dilation"));
    } else if (n.op == OpKind::AvgPool) {
      auto k = n.getInts("kernel");
      window(n, out, k[0], k[1], {1, 1});
    } else if (n.op == OpKind::BatchNorm) {
      passThrough(n, n.operands[0], out);
      for (size_t i = 1; i < n.operands.size(); ++i)
        requireWhole(n.operands[i]);
    } else if (n.op == OpKind::Softmax || n.op == OpKind::LogSoftmax) {
      // Normalising along N or C keeps positions apart; along H or W it mixes that axis.
      int64_t axis = n.getInt("axis");
      if (axis < 0)
        axis += n.type.rank();
      if (!spatial(&n) || axis >= 2)
        return requireAxisWhole(n, out, axis);
      passThrough(n, n.operands[0], out);
    } else if (n.op == OpKind::Concat) {
      concat(n, out);
    } else if (n.op == OpKind::Expand) {
      passThrough(n, n.operands[0], out);
    } else if (n.op == OpKind::Slice) { // along H or W, output index i is input index i + start
      int64_t axis = n.getInt("axis"), start = n.getInt("start");
      if (axis < 0)
        axis += n.type.rank();
      if (!spatial(&n))
        return requireWhole(n.operands[0]);
      Box b = out;
      if (axis == 2)
        b.r0 += start, b.r1 += start;
      if (axis == 3)
        b.c0 += start, b.c1 += start;
      require(n.operands[0], b);
    } else if (n.op == OpKind::Pad && spatial(&n)) {
      // output row i is input row i - top (the padding, as conv2d's, counts in the field)
      const auto p = n.getInts("pads");
      Box b = out;
      b.r0 -= p[2], b.r1 -= p[2], b.c0 -= p[3], b.c1 -= p[3];
      require(n.operands[0], b);
    } else if (n.info().elementwise) {
      for (const Node *o : n.operands)
        passThrough(n, o, out);
    } else {
      for (const Node *o : n.operands) // mixes everything: fc, flatten, global pool, losses...
        requireWhole(o);
    }
  }

private:
  void window(const Node &n, const Box &out, int64_t kh, int64_t kw,
              const std::vector<int64_t> &dil) {
    auto s = n.getInts("stride"), p = n.getInts("pads"); // pads = [top, left, bottom, right]
    require(n.operands[0], {out.r0 * s[0] - p[0], out.r1 * s[0] - p[0] + (kh - 1) * dil[0],
                            out.c0 * s[1] - p[1], out.c1 * s[1] - p[1] + (kw - 1) * dil[1]});
  }

  // Elementwise with numpy broadcasting: a size-1 dimension of a 4-D operand is element 0.
  void passThrough(const Node &n, const Node *o, const Box &out) {
    if (!spatial(o) || !spatial(&n))
      return requireWhole(o);
    Box b = out;
    if (o->type.shape[2] == 1 && n.type.shape[2] != 1)
      b.r0 = b.r1 = 0;
    if (o->type.shape[3] == 1 && n.type.shape[3] != 1)
      b.c0 = b.c1 = 0;
    require(o, b);
  }

  void requireAxisWhole(const Node &n, Box out, int64_t axis) {
    const Node *o = n.operands[0];
    if (!spatial(o) || !spatial(&n))
      return requireWhole(o);
    Box w = whole(o);
    if (axis == 2)
      out.r0 = w.r0, out.r1 = w.r1;
    else
      out.c0 = w.c0, out.c1 = w.c1;
    require(o, out);
  }

  void concat(const Node &n, const Box &out) {
    int64_t axis = n.getInt("axis");
    if (axis < 0)
      axis += n.type.rank();
    if (!spatial(&n) || axis < 2) {
      for (const Node *o : n.operands)
        spatial(&n) ? require(o, out) : requireWhole(o);
      return;
    }
    // Along H or W: operand i holds output positions [off, off + size); the box, shifted by
    // -off and clipped to the operand, is what it must supply (nothing if they miss).
    int64_t off = 0;
    for (const Node *o : n.operands) {
      int64_t size = o->type.shape[axis];
      Box b = out;
      int64_t &lo = axis == 2 ? b.r0 : b.c0, &hi = axis == 2 ? b.r1 : b.c1;
      lo = std::max(lo - off, int64_t(0));
      hi = std::min(hi - off, size - 1);
      if (lo <= hi)
        require(o, b);
      off += size;
    }
  }
};

} // namespace

ModelStats computeModelStats(const Function &f, const std::string &rfTarget) {
  ModelStats st;
  std::vector<Node *> nodes = f.nodeList();

  // The target: named, else the last pooling node, else the last 4-D node.
  const Node *target = nullptr;
  if (!rfTarget.empty()) {
    target = f.find(rfTarget);
    if (!target)
      throw Error("receptive field target %" + rfTarget + " is not a value of function @" +
                  f.name());
  } else {
    for (const Node *n : nodes)
      if (isPool(n->op))
        target = n;
    if (!target)
      for (const Node *n : nodes)
        if (spatial(n) && !n->info().source)
          target = n;
  }
  st.rfTarget = target;

  FieldWalker walk;
  if (target) {
    if (spatial(target)) {
      int64_t r = (target->type.shape[2] - 1) / 2, c = (target->type.shape[3] - 1) / 2;
      walk.need[target] = {r, r, c, c};
    } else {
      walk.need[target] = {0, 0, 0, 0};
    }
    for (auto it = nodes.rbegin(); it != nodes.rend(); ++it)
      if (walk.need.count(*it) && !(*it)->info().source)
        walk.visit(**it);
  }

  for (const Node *n : nodes) {
    if (n->op == OpKind::Param)
      st.totalParams += n->type.numel();
    if (n->info().source)
      continue;
    NodeStats ns;
    ns.node = n;
    for (const Node *o : n->operands)
      if (o->op == OpKind::Param)
        ns.params += o->type.numel();
    ns.macs = macsOf(*n);
    ns.activationBytes = n->type.bytes();
    if (walk.need.count(n)) {
      auto first = std::find_if(n->operands.begin(), n->operands.end(), spatial);
      auto it = first == n->operands.end() ? walk.need.end() : walk.need.find(*first);
      if (it != walk.need.end()) { // absent: a concat whose other operands hold the box
        const Box &b = it->second;
        ns.receptiveField = std::pair{b.r1 - b.r0 + 1, b.c1 - b.c0 + 1};
      }
    }
    st.totalMacs += ns.macs;
    st.totalActivationBytes += ns.activationBytes;
    st.nodes.push_back(ns);
  }
  return st;
}

int64_t naiveTrainBytes(const Function &f) {
  std::set<const Node *> excluded;
  // The update arithmetic of one new value: add/sub/mul nodes with a source or another such
  // node among their operands; `grads` collects the other operands (the backward pass's).
  std::function<bool(const Node *, std::vector<const Node *> &)> chain =
      [&](const Node *n, std::vector<const Node *> &grads) {
        if (n->info().source)
          return true;
        if (n->op != OpKind::Add && n->op != OpKind::Sub && n->op != OpKind::Mul &&
            n->op != OpKind::BnUnbias)
          return false;
        bool any = false;
        std::vector<const Node *> other;
        for (const Node *o : n->operands) {
          if (chain(o, grads))
            any = true;
          else
            other.push_back(o);
        }
        if (!any)
          return false;
        excluded.insert(n);
        grads.insert(grads.end(), other.begin(), other.end());
        return true;
      };
  for (const Node *o : f.outputs()) {
    if (o->op != OpKind::Update)
      continue;
    excluded.insert(o);
    std::vector<const Node *> grads;
    chain(o->operands[1], grads);
    const Node *param = o->operands[0];
    if (param->getInt("trainable"))
      for (const Node *g : grads)
        if (g->type == param->type)
          excluded.insert(g);
  }
  int64_t bytes = 0;
  for (const auto &n : f.nodes())
    if (!n->info().source && !excluded.count(n.get()))
      bytes += n->type.bytes();
  return bytes;
}

} // namespace cnnc
