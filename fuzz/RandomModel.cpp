// The random model generator (see RandomModel.h for its invariants). Elementwise ops come
// straight from the op table (every op with the `elementwise` trait, its float attributes
// drawn from a palette); the structured ops (convolution, pooling, dense, shape ops,
// reductions, normalisation) have one small generator each that draws attributes the shape
// rule will usually accept. Whatever the rule refuses is dropped.
#include "fuzz/RandomModel.h"

#include "passes/Autodiff.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <set>

namespace cnnc::fuzz {

namespace {

using Ints = std::vector<int64_t>;
using Attrs = std::map<std::string, Attr>;

// The bytes as a stream of choices; zeros once exhausted.
class Bytes {
public:
  explicit Bytes(std::string_view b) : b_(b) {}
  uint8_t next() { return pos_ < b_.size() ? (uint8_t)b_[pos_++] : 0; }
  int64_t pick(int64_t n) { return n <= 1 ? 0 : next() % n; } // [0, n)
  int64_t range(int64_t lo, int64_t hi) { return lo + pick(hi - lo + 1); }
  bool flag() { return next() & 1; }

private:
  std::string_view b_;
  size_t pos_ = 0;
};

struct Gen {
  Bytes &in;
  Function &f;
  bool training;
  std::vector<Node *> vals; // f32 values later ops may take as operands
  int counter = 0;

  std::string fresh(const std::string &base) { return base + std::to_string(counter++); }
  Node *input(const std::string &base, Shape s) {
    return f.add(OpKind::Input, fresh(base), {}, {}, TensorType{DType::F32, std::move(s)});
  }
  Node *param(const std::string &base, Shape s) {
    return f.add(OpKind::Param, fresh(base), {}, {}, TensorType{DType::F32, std::move(s)});
  }
  // Adds an op by its shape rule; a refused choice (cnnc::Error) or a result over the size
  // bound adds nothing.
  Node *op(OpKind k, std::vector<Node *> operands, Attrs attrs = {}) {
    if (training && !grad::hasGradient(k))
      return nullptr;
    Node *n = nullptr;
    try {
      n = f.add(k, opInfo(k).mnemonic, std::move(operands), std::move(attrs), {}, {}, true);
    } catch (const Error &) {
      return nullptr;
    }
    if (n->type.numel() > kMaxElements || n->type.numel() == 0 || n->type.dtype != DType::F32) {
      f.removeIf([n](const Node *m) { return m == n; });
      return nullptr;
    }
    vals.push_back(n);
    return n;
  }
  double palette() {
    static const double p[] = {0.0, 0.5, -0.5, 1.0, -1.0, 2.0, 0.2, 6.0, -3.0, 0.01, 1.7, -0.1};
    return p[in.pick(std::size(p))];
  }
  // A shape numpy-broadcastable to s: a suffix of it with some dims set to 1.
  Shape broadcastable(const Shape &s) {
    Shape b(s.begin() + in.pick((int64_t)s.size() + 1), s.end());
    for (int64_t &d : b)
      if (in.next() % 3 == 0)
        d = 1;
    return b;
  }
  Node *positive(const Shape &s) { return input("pos", s); }

  // ---- the op table's elementwise ops, attributes from the table
  void elementwise(Node *x) {
    static const std::vector<OpKind> ops = [] {
      std::vector<OpKind> v;
      for (const OpInfo &i : allOps())
        if (i.elementwise && !i.view && !i.source)
          v.push_back(i.kind);
      return v;
    }();
    const OpInfo &info = opInfo(ops[in.pick((int64_t)ops.size())]);
    const std::set<OpKind> domain{OpKind::Log, OpKind::Sqrt, OpKind::Reciprocal};
    Attrs a;
    for (const AttrSpec &s : info.attrs)
      if (s.kind == AttrKind::Float && in.flag())
        a[s.name] = palette();
    if (info.kind == OpKind::Clip && a.count("min") && a.count("max") &&
        std::get<double>(a["min"]) > std::get<double>(a["max"]))
      std::swap(a["min"], a["max"]);
    std::vector<Node *> operands;
    if (info.operands.size() == 1) {
      operands = {domain.count(info.kind) ? positive(x->type.shape) : x};
    } else {
      // the other operand: a value of the pool, or a new param or input broadcasting to x
      Node *y = vals[in.pick((int64_t)vals.size())];
      if (in.flag() || info.kind == OpKind::Div || info.kind == OpKind::Pow ||
          info.kind == OpKind::PRelu) {
        Shape s = broadcastable(x->type.shape);
        y = info.kind == OpKind::Div ? positive(s) : in.flag() ? param("w", s) : input("y", s);
      }
      if (in.flag() && info.kind != OpKind::PRelu && info.kind != OpKind::Div)
        std::swap(x, y);
      if (info.kind == OpKind::Pow)
        x = positive(x->type.shape);
      operands = {x, y};
    }
    op(info.kind, operands, a);
  }

  // ---- structured ops
  Ints window(int64_t rank = 2, int64_t lo = 1, int64_t hi = 3) {
    Ints v(rank);
    for (auto &d : v)
      d = in.range(lo, hi);
    return v;
  }
  // a fused ReLU epilogue: none, relu=1, or capped at 6 (a fused ReLU6); one byte, whose low
  // bit says relu as flag() did, so the seeds' models keep their shapes
  void act(Attrs &a) {
    const int64_t c = in.pick(4);
    a["relu"] = c & 1;
    if (c == 3)
      a["relu_max"] = 6.0;
  }
  Ints pads(const Ints &k) { // each pad smaller than its window
    return {in.pick(k[0]), in.pick(k[1]), in.pick(k[0]), in.pick(k[1])};
  }
  void conv(Node *x) {
    if (x->type.shape.size() != 4)
      return;
    const int64_t C = x->type.shape[1];
    int64_t g = in.flag() ? 1 : in.flag() ? C : std::gcd(C, in.range(1, 4));
    const int64_t M = g * in.range(1, std::max<int64_t>(1, 8 / g));
    Ints k = window(2, 1, 3);
    Attrs a{{"stride", window(2, 1, 2)}, {"pads", pads(k)}, {"dilation", window(2, 1, 2)},
            {"groups", g}};
    act(a);
    std::vector<Node *> ops{x, param("w", {M, C / g, k[0], k[1]})};
    if (in.flag())
      ops.push_back(param("b", {M}));
    op(OpKind::Conv2d, ops, a);
  }
  void pool(Node *x) {
    if (x->type.shape.size() != 4)
      return;
    Ints k = window();
    Attrs a{{"kernel", k}, {"stride", window(2, 1, 3)}, {"pads", pads(k)},
            {"ceil_mode", (int64_t)in.flag()}};
    if (in.flag()) {
      a["dilation"] = window(2, 1, 2);
      op(OpKind::MaxPool, {x}, a);
    } else {
      a["count_include_pad"] = (int64_t)in.flag();
      op(OpKind::AvgPool, {x}, a);
    }
  }
  Node *flat(Node *x) {
    return x->type.shape.size() == 2 ? x : op(OpKind::Flatten, {x}, {{"axis", int64_t(1)}});
  }
  void dense(Node *x) {
    if (x->type.shape.empty() || !(x = flat(x)))
      return;
    const int64_t K = x->type.shape[1], M = in.range(1, 12);
    if (in.flag()) {
      std::vector<Node *> ops{x, param("w", {M, K})};
      if (in.flag())
        ops.push_back(param("b", {M}));
      Attrs a;
      act(a);
      op(OpKind::FullyConnected, ops, a);
    } else {
      const int64_t tb = in.flag();
      op(OpKind::MatMul, {x, param("w", tb ? Shape{M, K} : Shape{K, M})}, {{"trans_b", tb}});
    }
  }
  void batchMatMul(Node *x) {
    const Shape &s = x->type.shape;
    if (s.size() < 3)
      return;
    Shape w(s.begin() + in.pick((int64_t)s.size() - 2), s.end());
    w.back() = in.range(1, 9);
    std::swap(w[w.size() - 2], w.back());
    w[w.size() - 2] = s.back();
    op(OpKind::BatchMatMul, {x, in.flag() ? param("w", w) : input("y", w)});
  }
  void concat(Node *x) {
    const int64_t r = (int64_t)x->type.shape.size();
    if (r == 0)
      return;
    const int64_t axis = in.pick(r);
    Shape s = x->type.shape;
    s[axis] = in.range(1, 3);
    Node *y = in.flag() ? x : input("y", s);
    op(OpKind::Concat, in.flag() ? std::vector<Node *>{x, y} : std::vector<Node *>{y, x},
       {{"axis", axis - (in.flag() ? r : 0)}});
  }
  void reshape(Node *x) {
    const Shape &s = x->type.shape;
    const int64_t r = (int64_t)s.size();
    switch (in.pick(4)) {
    case 0:
      op(OpKind::Flatten, {x}, {{"axis", in.pick(r + 1)}});
      break;
    case 1: { // keep a prefix, -1 for the rest, or split the last dim in two
      const int64_t keep = in.pick(r + 1);
      Ints shape(s.begin(), s.begin() + keep);
      shape.push_back(-1);
      if (in.flag() && keep < r && s.back() % 2 == 0 && keep == r - 1)
        shape = Ints(s.begin(), s.end() - 1), shape.push_back(2), shape.push_back(-1);
      op(OpKind::Reshape, {x}, {{"shape", shape}});
      break;
    }
    case 2: {
      Ints perm(r);
      std::iota(perm.begin(), perm.end(), 0);
      for (int64_t i = r - 1; i > 0; --i)
        std::swap(perm[i], perm[in.pick(i + 1)]);
      op(OpKind::Transpose, {x}, {{"perm", perm}});
      break;
    }
    default: {
      Ints shape(s.begin(), s.end());
      for (auto &d : shape)
        if (d == 1)
          d = in.range(1, 3);
      if (in.flag())
        shape.insert(shape.begin(), in.range(1, 2));
      op(OpKind::Expand, {x}, {{"shape", shape}});
    }
    }
  }
  void reduce(Node *x) {
    const int64_t r = (int64_t)x->type.shape.size();
    if (r == 0)
      return;
    Ints axes;
    for (int64_t d = 0; d < r; ++d)
      if (in.flag())
        axes.push_back(in.flag() ? d : d - r);
    if (axes.empty())
      axes.push_back(in.pick(r));
    static const OpKind ks[] = {OpKind::ReduceSum, OpKind::ReduceMax, OpKind::ReduceMin};
    op(ks[in.pick(3)], {x}, {{"axes", axes}, {"keepdims", (int64_t)in.flag()}});
  }
  void slicePad(Node *x) {
    const Shape &s = x->type.shape;
    const int64_t r = (int64_t)s.size();
    if (r == 0)
      return;
    const int64_t axis = in.pick(r);
    if (in.flag()) {
      const int64_t start = in.pick(s[axis]);
      op(OpKind::Slice, {x},
         {{"axis", axis}, {"start", start}, {"end", in.range(start + 1, s[axis])}});
      return;
    }
    Ints p(2 * r, 0);
    p[axis] = in.pick(3), p[axis + r] = in.pick(3);
    static const char *modes[] = {"constant", "reflect", "edge"};
    op(OpKind::Pad, {x}, {{"pads", p}, {"mode", std::string(modes[in.pick(3)])}, {"value", palette()}});
  }
  void normalise(Node *x) {
    const Shape &s = x->type.shape;
    const int64_t r = (int64_t)s.size();
    if (r == 0)
      return;
    switch (in.pick(3)) {
    case 0:
      op(in.flag() ? OpKind::Softmax : OpKind::LogSoftmax, {x}, {{"axis", in.pick(r)}});
      break;
    case 1:
      if (r == 4)
        op(OpKind::GlobalAvgPool, {x});
      break;
    default:
      if (r >= 2 && !training) { // training graphs take batch norm from the frontends' lowering
        const Shape c{s[1]};
        op(OpKind::BatchNorm,
           {x, param("scale", c), param("bias", c), param("mean", c), param("var", c)},
           {{"epsilon", in.flag() ? 1e-5 : 0.1}});
      }
    }
  }

  void step() {
    Node *x = vals[in.pick((int64_t)vals.size())];
    switch (in.pick(10)) {
    case 0: case 1: case 2: elementwise(x); break;
    case 3: conv(x); break;
    case 4: pool(x); break;
    case 5: dense(x); break;
    case 6: in.flag() ? concat(x) : batchMatMul(x); break;
    case 7: reshape(x); break;
    case 8: in.flag() ? reduce(x) : slicePad(x); break;
    default: normalise(x);
    }
  }
};

} // namespace

RandomModel randomModel(std::string_view bytes) {
  Bytes in(bytes);
  RandomModel r;
  const uint8_t mode = in.next();
  r.training = mode & 1;
  r.specials = (mode & 6) == 6;
  r.feedSeed = in.next();
  r.module = std::make_unique<Module>();
  Function &f = r.module->addFunction("diff");
  Gen g{in, f, r.training, {}};
  // %x: rank 4 (N, C, H, W) most often, else 2 or 3
  Shape s;
  switch (in.pick(4)) {
  case 0: s = {in.range(1, 4), in.range(1, 24)}; break;
  case 1: s = {in.range(1, 3), in.range(1, 6), in.range(1, 9)}; break;
  default: s = {in.range(1, 3), in.range(1, 6), in.range(1, 9), in.range(1, 9)};
  }
  g.vals.push_back(f.add(OpKind::Input, "x", {}, {}, TensorType{DType::F32, s}));
  const int64_t steps = in.range(1, 6);
  for (int64_t i = 0; i < steps; ++i)
    g.step();
  Node *last = g.vals.back();
  if (r.training) {
    // the loss takes the last value with a batch dim (%x has one)
    for (auto it = g.vals.rbegin(); last->type.shape.empty(); ++it)
      last = *it;
    Node *t = f.add(OpKind::Input, "target", {}, {}, last->type);
    f.outputs() = {f.add(OpKind::L2Loss, "loss", {last, t}, {}, {}, {}, true)};
  } else {
    f.outputs() = {last};
    Node *other = g.vals[in.pick((int64_t)g.vals.size())];
    if (other != last && other->op != OpKind::Input && in.flag())
      f.outputs().push_back(other);
  }
  // drop the sources no node uses (params of a refused choice)
  std::set<const Node *> unused;
  for (const Node *n : f.nodeList())
    if (n->info().source && n->name != "x" && f.useCount(n) == 0)
      unused.insert(n);
  f.removeIf([&](const Node *n) { return unused.count(n) != 0; });
  return r;
}

std::map<std::string, interp::Tensor<double>> randomFeeds(const Function &f, uint64_t seed,
                                                          bool specials) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  std::map<std::string, interp::Tensor<double>> feeds;
  auto startsWith = [](const std::string &s, const char *p) { return s.rfind(p, 0) == 0; };
  for (const auto &n : f.nodes()) {
    if (n->op != OpKind::Input && n->op != OpKind::Param)
      continue;
    std::vector<size_t> shape(n->type.shape.begin(), n->type.shape.end());
    interp::Tensor<double> t = interp::Tensor<double>::from_shape(shape);
    const double fanIn = n->type.shape.size() >= 2 ? (double)n->type.numel() / n->type.shape[0] : 1;
    const bool isVar = startsWith(n->name, "var");
    for (double &v : t) {
      const double r = u(rng);
      if (startsWith(n->name, "pos"))
        v = 1.25 + 0.75 * r;
      else if (isVar)
        v = 1.0 + 0.5 * r;
      else if (n->op == OpKind::Param)
        v = r * (n->type.shape.size() >= 2 ? std::sqrt(3.0 / fanIn) : 0.5);
      else
        v = r;
      v = (double)(float)v; // both backends see the same f32 values
    }
    if (specials && n->name == "x") {
      const double sp[] = {NAN, INFINITY, -INFINITY};
      for (int k = 0; k < 3 && t.size(); ++k)
        t.data()[rng() % t.size()] = sp[rng() % 3];
    }
    feeds[n->name] = t;
  }
  return feeds;
}

} // namespace cnnc::fuzz
