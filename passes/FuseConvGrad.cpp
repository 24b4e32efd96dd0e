// fuse-conv-grad: replaces autodiff's explicit conv2d gradient chains (passes/GradRules.cpp,
// gradConv2d; seed eqs. 35, 45, 46) by one fused op each, whose kernels (interp/, and
// codegen/EmitConvGrad.cpp) work tile by tile and never materialise φ(x) or dY·Fᵀ whole.
//
// What it matches, per group G (Mg = M/G output channels, P = N·Ho·Wo rows, q = Cg·kh·kw),
// where DYROWS(dy) is dy [N,M,Ho,Wo] as the seed's matrix Y, one row per output pixel:
//   dy.split = reshape(dy) [N,G,Mg,Ho·Wo]; dy.t = transpose(dy.split) {perm=[1,0,3,2]};
//   dy.rows = reshape(dy.t) [G,P,Mg]
// (any chain of reshapes/flattens may stand where one reshape is written: the same bytes)
//  - filter: dw = reshape(matmul(DYROWS(dy), im2row(x) {conv}) {trans_a=1}) [M,Cg,kh,kw]
//            -> dw = conv2d_grad_filter(x, dy) {conv}                               (eq. 35)
//  - input:  dx = row2im(matmul(DYROWS(dy), reshape(w) [G,Mg,q])) {input_shape, conv}
//            -> dx = conv2d_grad_input(dy, w) {input_shape, conv minus kernel}  (eqs. 45-46)
// and only when the im2row and matmul results have no other user (nor are outputs): a
// shared φ(x) or product must still be materialised, so the chain is left alone.
// Guarantees: the rewritten node keeps its name, position and type, so its users and the
// function's outputs are untouched; the values are the chain's (the interpreter's fused
// kernels sum in the chain's order, bit-equal in f64; the compiled ones differ only by f32
// rounding); anything not matched exactly is left as it was. The
// bypassed intermediate nodes are left for DCE. The fused ops have no VJP rule: this pass
// runs after `grad`, and GradRules reports them as not differentiable.
#include "passes/Passes.h"

namespace cnnc {

namespace {

// The first value along v's chain of reshapes/flattens (v included) that has `shape`: the
// same bytes in row-major order, so it may stand for v. nullptr if there is none.
Node *viewWithShape(const Node *v, const Shape &shape) {
  for (;; v = v->operands[0]) {
    if (v->type.shape == shape)
      return const_cast<Node *>(v);
    if (v->op != OpKind::Reshape && v->op != OpKind::Flatten)
      return nullptr;
  }
}

// dy if `rows` is DYROWS(dy) for a conv with g groups whose output gradient dy is shaped
// [N, M, Ho, Wo] (as `want`), else nullptr.
Node *matchDyRows(const Node *rows, int64_t g, const Shape &want) {
  const int64_t N = want[0], M = want[1], hw = want[2] * want[3];
  if (rows->type.shape != Shape{g, N * hw, M / g})
    return nullptr;
  const Node *t = rows;
  while (t->op == OpKind::Reshape || t->op == OpKind::Flatten)
    t = t->operands[0];
  if (t->op != OpKind::Transpose || t->getInts("perm") != std::vector<int64_t>{1, 0, 3, 2} ||
      t->operands[0]->type.shape != Shape{N, g, M / g, hw})
    return nullptr;
  return viewWithShape(t->operands[0], want);
}

bool singleUse(const Function &f, const Node *n) {
  return f.useCount(n) == 1;
}

std::map<std::string, Attr> copyAttrs(const Node &from, std::initializer_list<const char *> names) {
  std::map<std::string, Attr> a;
  for (const char *k : names)
    if (from.has(k))
      a[k] = from.get(k);
  return a;
}

Shape convOut(const Node &win, const Shape &x, int64_t m, int64_t kh, int64_t kw) {
  auto s = win.getInts("stride"), p = win.getInts("pads"), d = win.getInts("dilation");
  return {x[0], m, (x[2] + p[0] + p[2] - d[0] * (kh - 1) - 1) / s[0] + 1,
          (x[3] + p[1] + p[3] - d[1] * (kw - 1) - 1) / s[1] + 1};
}

// dw = reshape(matmul(DYROWS(dy), im2row(x)) {trans_a=1}) in weight layout.
bool fuseFilter(Function &f, Node &dw) {
  if (dw.op != OpKind::Reshape && dw.op != OpKind::Flatten)
    return false;
  Node *mm = dw.operands[0];
  if (mm->op != OpKind::MatMul || !mm->getInt("trans_a") || mm->getInt("trans_b") ||
      mm->type.rank() != 3 || !singleUse(f, mm))
    return false;
  Node *phi = mm->operands[1];
  if (phi->op != OpKind::Im2Row || !singleUse(f, phi))
    return false;
  const Node *x = phi->operands[0];
  const int64_t g = phi->getInt("groups"), mg = mm->type.shape[1];
  auto k = phi->getInts("kernel");
  const Shape &xs = x->type.shape;
  if (dw.type.shape != Shape{g * mg, xs[1] / g, k[0], k[1]})
    return false;
  Node *dy = matchDyRows(mm->operands[0], g, convOut(*phi, xs, g * mg, k[0], k[1]));
  if (!dy)
    return false;
  dw.op = OpKind::Conv2dGradFilter;
  dw.operands = {const_cast<Node *>(x), dy};
  dw.attrs = copyAttrs(*phi, {"kernel", "stride", "pads", "dilation", "groups"});
  dw.comment = "eq. 35, fused: φ(x) never materialised";
  return true;
}

// dx = row2im(matmul(DYROWS(dy), reshape(w) [G,Mg,q])).
bool fuseInput(Function &f, Node &dx) {
  if (dx.op != OpKind::Row2Im)
    return false;
  Node *mm = dx.operands[0];
  if (mm->op != OpKind::MatMul || mm->getInt("trans_a") || mm->getInt("trans_b") ||
      mm->type.rank() != 3 || !singleUse(f, mm))
    return false;
  const int64_t g = dx.getInt("groups"), mg = mm->operands[1]->type.shape[1];
  auto k = dx.getInts("kernel");
  const Shape &xs = dx.type.shape;
  Node *w = viewWithShape(mm->operands[1], {g * mg, xs[1] / g, k[0], k[1]});
  if (!w || w->type.dtype != dx.type.dtype)
    return false;
  Node *dy = matchDyRows(mm->operands[0], g, convOut(dx, xs, g * mg, k[0], k[1]));
  if (!dy)
    return false;
  dx.op = OpKind::Conv2dGradInput;
  dx.operands = {dy, w};
  dx.attrs = copyAttrs(dx, {"input_shape", "stride", "pads", "dilation", "groups"});
  dx.comment = "eqs. 45-46, fused: dY·Fᵀ scattered tile by tile";
  return true;
}

} // namespace

bool fuseConvGrad(Function &f) {
  bool changed = false;
  for (Node *n : f.nodeList())
    changed |= fuseFilter(f, *n) || fuseInput(f, *n);
  return changed;
}

} // namespace cnnc
