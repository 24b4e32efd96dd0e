// The elementwise ops (the `elementwise` trait of ir/Ops.def, views aside): each is an
// element function (elementFn: the op's value at one vector of elements from its operands'
// values there), and one lowering, emitElementwise, runs it:
//  - a fused group (Plan::groups, codegen/PlanFuse.cpp): one loop over the root's elements
//    that loads the group's outside operands, computes every member in registers, in node
//    order, and stores the root; the members have no storage and no loop of their own;
//  - an op whose operands all have its shape, alone: the same loop over a group of one;
//  - an op that broadcasts (numpy rules): a loop nest with per-operand strides.
// Every path computes an element with the same instructions, so a value is the same bits
// fused or not, at every thread count (a group changes where values live, not how they
// are computed). For that, these instructions carry no fast-math flags (the emitter's
// default is `reassoc contract`): with them, LLVM would rewrite across the ops of a group,
// e.g. sqrt(relu(exp x)) into exp(x/2), or a mul and the next op's add into one FMA, and a
// fused value would round differently from the unfused one.
#include "codegen/EmitOps.h"

#include <algorithm>

namespace cnnc::codegen {

using namespace llvm;

namespace {

/// One element (w lanes) of an op from its operands' values there (EmitElementwise.cpp).
using ElemFn = Value *(*)(Emitter &, const Node &, const std::vector<Value *> &x, unsigned w);

// min(max(x, lo), hi) as selects: NaN compares false and stays NaN (PyTorch's clamp), where
// minnum/maxnum would replace it.
Value *clampSelect(Emitter &e, Value *x, double lo, double hi, unsigned w) {
  Value *l = e.cfv(lo, w), *h = e.cfv(hi, w);
  Value *up = e.b.CreateSelect(e.b.CreateFCmpOGT(x, h), h, x);
  return e.b.CreateSelect(e.b.CreateFCmpOLT(x, l), l, up);
}

// s x above 0, s alpha (exp(x) - 1) at or below: elu (s = 1) and selu (s = gamma). exp(x) - 1
// loses the low bits near 0, where expm1's series x + x^2/2 + x^3/6 + x^4/24 (relative error
// < 1e-6 for |x| < 0.1) takes over; both sides stay in vectors (no scalar expm1f).
Value *expLinear(Emitter &e, Value *x, double s, double alpha, unsigned w) {
  auto &b = e.b;
  Value *em1 = b.CreateFSub(e.unary(Intrinsic::exp, x), e.cfv(1, w));
  Value *series = e.cfv(1.0 / 24, w);
  for (double k : {1.0 / 6, 0.5, 1.0})
    series = b.CreateFAdd(b.CreateFMul(series, x), e.cfv(k, w));
  series = b.CreateFMul(series, x);
  Value *small = b.CreateFCmpOLT(e.unary(Intrinsic::fabs, x), e.cfv(0.1, w));
  Value *below = b.CreateFMul(b.CreateSelect(small, series, em1), e.cfv(s * alpha, w));
  Value *above = s == 1 ? x : b.CreateFMul(x, e.cfv(s, w));
  return b.CreateSelect(b.CreateFCmpOGT(x, e.cfv(0, w)), above, below);
}

// A scalar libm function (tanhf, erff, log1pf: no vector forms without a vector libm) on
// each lane: the same call per element as a scalar loop, inside a vector loop so that a
// group around it keeps its other members in vectors.
Value *libmLanes(Emitter &e, const char *name, Value *x, unsigned w) {
  if (w == 1)
    return e.libm(name, x);
  Value *y = UndefValue::get(x->getType());
  for (unsigned l = 0; l < w; ++l)
    y = e.b.CreateInsertElement(y, e.libm(name, e.b.CreateExtractElement(x, (uint64_t)l)),
                                (uint64_t)l);
  return y;
}

// add, sub, mul, div: one instruction
template <Instruction::BinaryOps Op>
Value *binary(Emitter &e, const Node &, const std::vector<Value *> &x, unsigned) {
  return e.b.CreateBinOp(Op, x[0], x[1]);
}

// [op-table] The element functions: one per op with the `elementwise` trait (views aside, see
// lowersByElementFn), `element<OpKind::X>`. kElementFns instantiates it for exactly those
// ops, so a missing one fails the build naming the op ("use of deleted function ...
// element<OpKind::X>"); every other op has its lowering in EmitOps.cpp's table and no entry
// here (nullptr).
template <OpKind K> constexpr ElemFn element() = delete;
// seed eq. 12
template <> constexpr ElemFn element<OpKind::Relu>() {
  return [](Emitter &e, const Node &, const std::vector<Value *> &x, unsigned) {
    return e.relu(x[0]);
  };
}
// 1 / (1 + exp(-x)), seed section 5
template <> constexpr ElemFn element<OpKind::Sigmoid>() {
  return [](Emitter &e, const Node &, const std::vector<Value *> &x, unsigned w) {
    return e.b.CreateFDiv(e.cfv(1, w),
                          e.b.CreateFAdd(e.cfv(1, w), e.unary(Intrinsic::exp, e.b.CreateFNeg(x[0]))));
  };
}
template <> constexpr ElemFn element<OpKind::Tanh>() {
  return [](Emitter &e, const Node &, const std::vector<Value *> &x, unsigned w) {
    return libmLanes(e, "tanhf", x[0], w);
  };
}
// max(x, 0) + log1pf(exp(-|x|)), as the interpreter: no overflow
template <> constexpr ElemFn element<OpKind::Softplus>() {
  return [](Emitter &e, const Node &, const std::vector<Value *> &x, unsigned w) {
    Value *t = e.unary(Intrinsic::exp, e.b.CreateFNeg(e.unary(Intrinsic::fabs, x[0])));
    return e.b.CreateFAdd(e.maxnum(x[0], e.cfv(0, w)), libmLanes(e, "log1pf", t, w));
  };
}
template <> constexpr ElemFn element<OpKind::Clip>() {
  return [](Emitter &e, const Node &n, const std::vector<Value *> &x, unsigned w) {
    return clampSelect(e, x[0], n.getFloat("min"), n.getFloat("max"), w);
  };
}
// clamp(alpha x + beta, 0, 1)
template <> constexpr ElemFn element<OpKind::HardSigmoid>() {
  return [](Emitter &e, const Node &n, const std::vector<Value *> &x, unsigned w) {
    Value *lin = e.b.CreateFAdd(e.b.CreateFMul(x[0], e.cfv(n.getFloat("alpha"), w)),
                                e.cfv(n.getFloat("beta"), w));
    return clampSelect(e, lin, 0, 1, w);
  };
}
// x clamp(x + 3, 0, 6) / 6, as PyTorch and the interpreter
template <> constexpr ElemFn element<OpKind::HardSwish>() {
  return [](Emitter &e, const Node &, const std::vector<Value *> &x, unsigned w) {
    Value *r6 = clampSelect(e, e.b.CreateFAdd(x[0], e.cfv(3, w)), 0, 6, w);
    return e.b.CreateFDiv(e.b.CreateFMul(x[0], r6), e.cfv(6, w));
  };
}
// x > 0 ? x : alpha x (NaN: alpha NaN = NaN)
template <> constexpr ElemFn element<OpKind::LeakyRelu>() {
  return [](Emitter &e, const Node &n, const std::vector<Value *> &x, unsigned w) {
    return e.b.CreateSelect(e.b.CreateFCmpOGT(x[0], e.cfv(0, w)), x[0],
                            e.b.CreateFMul(x[0], e.cfv(n.getFloat("alpha"), w)));
  };
}
template <> constexpr ElemFn element<OpKind::Elu>() {
  return [](Emitter &e, const Node &n, const std::vector<Value *> &x, unsigned w) {
    const double s = n.op == OpKind::Selu ? n.getFloat("gamma") : 1.0;
    return expLinear(e, x[0], s, n.getFloat("alpha"), w);
  };
}
template <> constexpr ElemFn element<OpKind::Selu>() {
  return element<OpKind::Elu>();
}
template <> constexpr ElemFn element<OpKind::Erf>() {
  return [](Emitter &e, const Node &, const std::vector<Value *> &x, unsigned w) {
    return libmLanes(e, "erff", x[0], w);
  };
}
template <> constexpr ElemFn element<OpKind::Exp>() {
  return [](Emitter &e, const Node &, const std::vector<Value *> &x, unsigned) {
    return e.unary(Intrinsic::exp, x[0]);
  };
}
template <> constexpr ElemFn element<OpKind::Log>() {
  return [](Emitter &e, const Node &, const std::vector<Value *> &x, unsigned) {
    return e.unary(Intrinsic::log, x[0]);
  };
}
template <> constexpr ElemFn element<OpKind::Sqrt>() {
  return [](Emitter &e, const Node &, const std::vector<Value *> &x, unsigned) {
    return e.unary(Intrinsic::sqrt, x[0]);
  };
}
template <> constexpr ElemFn element<OpKind::Reciprocal>() {
  return [](Emitter &e, const Node &, const std::vector<Value *> &x, unsigned w) {
    return e.b.CreateFDiv(e.cfv(1, w), x[0]);
  };
}
template <> constexpr ElemFn element<OpKind::Neg>() {
  return [](Emitter &e, const Node &, const std::vector<Value *> &x, unsigned) {
    return e.b.CreateFNeg(x[0]);
  };
}
template <> constexpr ElemFn element<OpKind::Abs>() {
  return [](Emitter &e, const Node &, const std::vector<Value *> &x, unsigned) {
    return e.unary(Intrinsic::fabs, x[0]);
  };
}
// x > 0 ? x : slope x
template <> constexpr ElemFn element<OpKind::PRelu>() {
  return [](Emitter &e, const Node &, const std::vector<Value *> &x, unsigned w) {
    return e.b.CreateSelect(e.b.CreateFCmpOGT(x[0], e.cfv(0, w)), x[0],
                            e.b.CreateFMul(x[0], x[1]));
  };
}
// powf per lane (LLVM scalarises llvm.pow without a vector libm)
template <> constexpr ElemFn element<OpKind::Pow>() {
  return [](Emitter &e, const Node &, const std::vector<Value *> &x, unsigned) {
    return e.b.CreateBinaryIntrinsic(Intrinsic::pow, x[0], x[1]);
  };
}
template <> constexpr ElemFn element<OpKind::Max>() {
  return [](Emitter &e, const Node &n, const std::vector<Value *> &x, unsigned) {
    return pickNaN(e, x[0], x[1], n.op == OpKind::Max);
  };
}
template <> constexpr ElemFn element<OpKind::Min>() {
  return element<OpKind::Max>();
}
// reduce_max's tie mask
template <> constexpr ElemFn element<OpKind::EqualMask>() {
  return [](Emitter &e, const Node &, const std::vector<Value *> &x, unsigned w) {
    return e.b.CreateSelect(e.b.CreateFCmpOEQ(x[0], x[1]), e.cfv(1, w), e.cfv(0, w));
  };
}
template <> constexpr ElemFn element<OpKind::Add>() {
  return binary<Instruction::FAdd>;
}
template <> constexpr ElemFn element<OpKind::Sub>() {
  return binary<Instruction::FSub>;
}
template <> constexpr ElemFn element<OpKind::Mul>() {
  return binary<Instruction::FMul>;
}
template <> constexpr ElemFn element<OpKind::Div>() {
  return binary<Instruction::FDiv>;
}
// seed eq. 14: dy where x > 0
template <> constexpr ElemFn element<OpKind::ReluGrad>() {
  return [](Emitter &e, const Node &, const std::vector<Value *> &x, unsigned w) {
    return e.b.CreateSelect(e.b.CreateFCmpOGT(x[1], e.cfv(0, w)), x[0], e.cfv(0, w));
  };
}
// dy * y * (1 - y)
template <> constexpr ElemFn element<OpKind::SigmoidGrad>() {
  return [](Emitter &e, const Node &, const std::vector<Value *> &x, unsigned w) {
    return e.b.CreateFMul(e.b.CreateFMul(x[0], x[1]), e.b.CreateFSub(e.cfv(1, w), x[1]));
  };
}
// dy * (1 - y^2)
template <> constexpr ElemFn element<OpKind::TanhGrad>() {
  return [](Emitter &e, const Node &, const std::vector<Value *> &x, unsigned w) {
    return e.b.CreateFMul(x[0], e.b.CreateFSub(e.cfv(1, w), e.b.CreateFMul(x[1], x[1])));
  };
}
// eq. 14 with two bounds: dy where min < x < max
template <> constexpr ElemFn element<OpKind::ClipGrad>() {
  return [](Emitter &e, const Node &n, const std::vector<Value *> &x, unsigned w) {
    Value *in = e.b.CreateAnd(e.b.CreateFCmpOGT(x[1], e.cfv(n.getFloat("min"), w)),
                              e.b.CreateFCmpOLT(x[1], e.cfv(n.getFloat("max"), w)));
    return e.b.CreateSelect(in, x[0], e.cfv(0, w));
  };
}

constexpr auto kElementFns = opTable([]<OpKind K>() -> ElemFn {
  if constexpr (lowersByElementFn(K)) {
    return element<K>();
  } else {
    static_assert(!requires { element<K>(); },
                  "not lowered by emitElementwise: its lowering goes in EmitOps.cpp's table");
    return nullptr;
  }
});

ElemFn elementFn(OpKind k) {
  return kElementFns[(size_t)k];
}

ElemFn elementFnOf(const Node &n) {
  ElemFn f = elementFn(n.op);
  CNNC_ASSERT(f, "elementwise lowering of an op without an element function");
  return f;
}

// The nodes of `g` (node order, root last) as one loop over the root's elements: outside
// operands loaded where first used, members kept in registers, the root stored.
void emitFlat(Emitter &e, const std::vector<const Node *> &g) {
  const Node *root = g.back();
  std::vector<std::pair<const Node *, Value *>> outside; // (operand, its pointer)
  for (const Node *m : g)
    for (const Node *o : m->operands)
      if (std::find(g.begin(), g.end(), o) == g.end() &&
          std::none_of(outside.begin(), outside.end(), [&](auto &p) { return p.first == o; }))
        outside.push_back({o, e.ptr(o)});
  Value *y = e.ptr(root);
  e.parallelVecLoop(e.numel(root), root->type.numel(), [&](Value *i, unsigned w) {
    std::vector<std::pair<const Node *, Value *>> val; // this iteration's values by node
    auto valueOf = [&](const Node *o) {
      for (auto &[n, v] : val)
        if (n == o)
          return v;
      for (auto &[n, p] : outside)
        if (n == o) {
          val.push_back({o, e.load(p, i, w)});
          return val.back().second;
        }
      CNNC_INTERNAL("a fused group reads a value it neither loads nor computes");
    };
    for (const Node *m : g) {
      std::vector<Value *> x;
      for (const Node *o : m->operands)
        x.push_back(valueOf(o));
      val.push_back({m, elementFnOf(*m)(e, *m, x, w)});
    }
    e.store(val.back().second, y, i);
  });
}

// a (op) b with numpy broadcasting: a loop nest over the output's dims with per-operand
// strides (0 along broadcast dims), adjacent dims merged where both operands allow it.
void emitBroadcast(Emitter &e, const Node &n) {
  CNNC_ASSERT(n.operands.size() == 2, "a broadcasting elementwise op with other than 2 operands");
  const ElemFn fn = elementFnOf(n);
  auto combine = [&](Value *a, Value *b) {
    auto *vt = dyn_cast<FixedVectorType>(a->getType());
    return fn(e, n, {a, b}, vt ? vt->getNumElements() : 1);
  };
  const Shape &S = n.type.shape;
  const int r = (int)S.size();
  Value *y = e.ptr(&n), *src[2] = {e.ptr(n.operands[0]), e.ptr(n.operands[1])};
  if (r == 0) {
    e.store(combine(e.load(src[0], e.c(0)), e.load(src[1], e.c(0))), y, e.c(0));
    return;
  }
  // strides[k][d]: operand k's stride along output dim d (0 = broadcast)
  std::vector<std::vector<int64_t>> strides(2, std::vector<int64_t>(r, 0));
  for (int k = 0; k < 2; ++k) {
    const Shape &s = n.operands[k]->type.shape;
    int64_t st = 1;
    for (int j = (int)s.size() - 1; j >= 0; --j) {
      strides[k][r - (int)s.size() + j] = s[j] == 1 && S[r - (int)s.size() + j] != 1 ? 0 : st;
      st *= s[j];
    }
  }
  // merge dim d into d+1 when, for both operands, stride[d] == stride[d+1] * S[d+1]
  std::vector<int64_t> ext(S.begin(), S.end());
  std::vector<bool> runtimeDim(r, false);
  if (e.batched(&n))
    runtimeDim[e.batchDim(&n)] = true;
  for (int d = r - 2; d >= 0; --d) {
    bool ok = !runtimeDim[d] && !runtimeDim[d + 1];
    for (int k = 0; k < 2; ++k)
      ok &= strides[k][d] == strides[k][d + 1] * ext[d + 1];
    if (!ok)
      continue;
    ext[d + 1] *= ext[d];
    ext.erase(ext.begin() + d);
    runtimeDim.erase(runtimeDim.begin() + d);
    for (int k = 0; k < 2; ++k)
      strides[k].erase(strides[k].begin() + d);
  }
  const int m = (int)ext.size();
  std::vector<int64_t> ystride(m, 1);
  for (int d = m - 2; d >= 0; --d)
    ystride[d] = ystride[d + 1] * ext[d + 1];
  std::function<void(int, Value *, Value *, Value *)> nest = [&](int d, Value *oy, Value *oa,
                                                                 Value *ob) {
    Value *extent = runtimeDim[d] ? e.batchExtent(ext[d]) : e.c(ext[d]);
    if (d == m - 1) {
      // threads: a flat range in chunks, or the outermost dim below
      auto flat = [&](Value *cnt, const std::function<void(Value *, unsigned)> &f) {
        d == 0 ? e.parallelVecLoop(cnt, n.type.numel(), f) : e.vecLoop(cnt, f);
      };
      flat(extent, [&](Value *i, unsigned w) {
        Value *v[2];
        Value *off[2] = {oa, ob};
        for (int k = 0; k < 2; ++k)
          v[k] = strides[k][d] ? e.load(src[k], e.b.CreateAdd(off[k], i), w)
                               : e.splat(e.load(src[k], off[k]), w);
        e.store(combine(v[0], v[1]), y, e.b.CreateAdd(oy, i));
      });
      return;
    }
    auto outer = [&](Value *i) {
      nest(d + 1, e.b.CreateAdd(oy, e.b.CreateMul(i, e.c(ystride[d]))),
           e.b.CreateAdd(oa, e.b.CreateMul(i, e.c(strides[0][d]))),
           e.b.CreateAdd(ob, e.b.CreateMul(i, e.c(strides[1][d]))));
    };
    d == 0 ? e.parallelFor(extent, outer, n.type.numel()) : e.loop(extent, outer);
  };
  nest(0, e.c(0), e.c(0), e.c(0));
}

} // namespace

void emitElementwise(Emitter &e, const Node &n) {
  IRBuilderBase::FastMathFlagGuard exact(e.b); // no rewriting across a group's ops (above)
  e.b.clearFastMathFlags();
  if (auto it = e.plan.groups.find(&n); it != e.plan.groups.end())
    return emitFlat(e, it->second);
  const bool flat = std::all_of(n.operands.begin(), n.operands.end(),
                                [&](const Node *o) { return o->type.shape == n.type.shape; });
  if (flat)
    emitFlat(e, {&n});
  else
    emitBroadcast(e, n);
}

} // namespace cnnc::codegen
