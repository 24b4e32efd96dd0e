#include "tools/ExplainConv.h"

#include "interp/Interpreter.h"
#include "ir/Print.h"
#include "passes/Autodiff.h"
#include "tools/ExplainHtml.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

namespace cnnc::tools {

namespace {

using Ints = std::vector<int64_t>;
using T = interp::Tensor<double>;

// Small integers, so that every product and sum is exact and checkable by hand.
T pattern(const Shape &s, int mul, int add, int mod) {
  T t = T::from_shape(std::vector<size_t>(s.begin(), s.end()));
  for (size_t k = 0; k < t.size(); ++k)
    t.flat(k) = double(int((k * mul + add) % mod) - mod / 2);
  return t;
}

std::string num(double v) { return std::fabs(v - std::round(v)) < 1e-9 ? fmt::format("{}", std::lround(v)) : fmt::format("{:.3g}", v); }

// rows x cols of t's last two dimensions at offset `base` as a LaTeX bmatrix.
std::string bmatrix(const T &t, size_t base, size_t rows, size_t cols) {
  std::string s = "\\begin{bmatrix}";
  for (size_t r = 0; r < rows; ++r) {
    for (size_t c = 0; c < cols; ++c)
      s += (c ? " & " : "") + num(t.flat(base + r * cols + c));
    s += r + 1 < rows ? " \\\\ " : "";
  }
  return s + "\\end{bmatrix}";
}

// A tensor as matrices: its last two dimensions, one matrix per index of the others.
std::string matrices(const T &t) {
  const auto &sh = t.shape();
  const size_t rows = sh.size() >= 2 ? sh[sh.size() - 2] : 1, cols = sh.empty() ? 1 : sh.back();
  std::string s;
  for (size_t base = 0; base < t.size(); base += rows * cols)
    s += (base ? ",\\; " : "") + bmatrix(t, base, rows, cols);
  return s;
}

} // namespace

std::string convExampleHtml(const Function &network) {
  const Node *layer = nullptr;
  for (const auto &n : network.nodes())
    if (!layer && n->op == OpKind::Conv2d)
      layer = n.get();
  if (!layer)
    return "<p class=\"todo\">This model has no convolution.</p>\n";
  const Shape &ws = layer->operands[1]->type.shape;
  const Ints stride = layer->getInts("stride"), pads = layer->getInts("pads"), dil = layer->getInts("dilation");
  const int64_t c = std::min<int64_t>(ws[1], 2), m = std::min<int64_t>(ws[0], 2), kh = ws[2], kw = ws[3];
  // the smallest input giving a 2x2 output with this window
  const int64_t h = std::max<int64_t>(1, (kh - 1) * dil[0] + 1 + stride[0] - pads[0] - pads[2]);
  const int64_t w = std::max<int64_t>(1, (kw - 1) * dil[1] + 1 + stride[1] - pads[1] - pads[3]);

  Module mod;
  Function &f = mod.addFunction("tiny_conv");
  Node *x = f.add(OpKind::Input, "x", {}, {}, TensorType{DType::F64, {1, c, h, w}});
  Node *wt = f.add(OpKind::Input, "f", {}, {}, TensorType{DType::F64, {m, c, kh, kw}});
  Node *y = f.add(OpKind::Conv2d, "y", {x, wt}, {{"stride", stride}, {"pads", pads}, {"dilation", dil}});
  Node *g = f.add(OpKind::Input, "g", {}, {}, TensorType{DType::F64, y->type.shape});
  Node *z = f.add(OpKind::ReduceSum, "z", {f.add(OpKind::Mul, "yg", {y, g})}, {{"axes", Ints{0, 1, 2, 3}}});
  // eq. 22 checked: φ(x) times F (the kernels as rows, [1, M, CHW]) transposed
  const int64_t q = c * kh * kw;
  auto grads = appendGradients(f, z, {x, wt});
  Node *phi = nullptr, *fmat = nullptr;
  for (const auto &n : f.nodes()) {
    phi = !phi && n->op == OpKind::Im2Row ? n.get() : phi;
    fmat = !fmat && n->op == OpKind::Reshape && n->operands[0] == wt ? n.get() : fmat;
  }
  if (!phi) // the input gradient alone does not build φ(x): build it to show eq. 22
    phi = f.add(OpKind::Im2Row, "phi", {x}, {{"kernel", Ints{kh, kw}}, {"stride", stride}, {"pads", pads}, {"dilation", dil}});
  if (!fmat)
    fmat = f.add(OpKind::Reshape, "F", {wt}, {{"shape", Ints{1, m, q}}});
  Node *yMat = f.add(OpKind::MatMul, "phiF", {phi, fmat}, {{"trans_b", int64_t(1)}});
  f.outputs() = {z, grads.at(x), grads.at(wt), yMat};

  std::map<std::string, T> feeds{{"x", pattern(x->type.shape, 5, 1, 7)},
                                 {"f", pattern(wt->type.shape, 3, 2, 7)},
                                 {"g", pattern(g->type.shape, 2, 1, 5)}};
  const auto values = interp::evaluate<double>(f, feeds);
  auto value = [&](const Node *n) -> const T & {
    for (size_t i = 0; i < f.nodes().size(); ++i)
      if (f.nodes()[i].get() == n)
        return values[i];
    CNNC_INTERNAL("explain: node not evaluated");
  };
  // Y = φ(x)F against conv2d's own output: row (oh*Wo+ow), column d
  const T &yv = value(y), &pf = value(yMat);
  const size_t p = yv.size() / m;
  double worst = 0;
  for (size_t r = 0; r < p; ++r)
    for (size_t d = 0; d < size_t(m); ++d)
      worst = std::max(worst, std::fabs(pf.flat(r * m + d) - yv.flat(d * p + r)));

  std::map<std::string, std::string> lines;
  {
    std::istringstream in(print(f, PrintOptions{}));
    for (std::string line; std::getline(in, line);)
      if (auto at = line.find('%'), eq = line.find(" = "); at != std::string::npos && eq != std::string::npos)
        lines.emplace(line.substr(at + 1, eq - at - 1), line.substr(at));
  }
  std::string out = fmt::format(
      "<p>Layer <b>%{}</b>'s window ({}&times;{} kernel, stride {}, pads {}, dilation {}) on a tiny instance: one "
      "example of {} channel(s) of {}&times;{} pixels, {} filter(s), the values small integers. The nodes below are "
      "what autodiff writes for a conv2d (before <code>fuse-conv-grad</code> replaces them by tiled kernels), "
      "evaluated by the reference interpreter in f64; the loss is z = &Sigma; Y&#8857;G for a fixed G, so dz/dY = "
      "G.</p>\n",
      html(layer->name), kh, kw, attrStr(stride), attrStr(pads), attrStr(dil), c, h, w, m);
  auto show = [&](const Node *n, const std::string &tex, const std::string &why) {
    auto it = lines.find(n->name);
    out += fmt::format("<h4>{}</h4>\n<pre class=\"ir\">{}</pre>\n<div class=\"eqn\"><span class=\"tex\" "
                       "data-tex=\"{}\">{}</span></div>\n",
                       html(why), html(it != lines.end() ? it->second : n->name), html(tex + " = " + matrices(value(n))),
                       html(tex + " = " + matrices(value(n))));
  };
  show(x, "x", "The input x (channels as matrices)");
  show(wt, "f", "The kernels f (one row of matrices per filter)");
  show(phi, "\\phi(x)", "φ(x): im2row, one row per output pixel (seed eqs. 18-21)");
  show(fmat, "F", "F: the kernels as the seed's matrix, one row per filter here (eq. 22 uses its transpose)");
  show(y, "y", "The forward conv2d (seed eq. 15)");
  show(yMat, "\\phi(x)F", "φ(x)F: the same numbers, one row per pixel (seed eq. 22)");
  out += fmt::format("<p>Largest |φ(x)F &minus; conv2d| over the {} outputs: <b>{}</b>.</p>\n", yv.size(), num(worst));
  show(g, "\\frac{\\partial z}{\\partial Y} = G", "The output gradient dz/dY = G");
  for (const auto &n : f.nodes())
    if (n->op == OpKind::MatMul && n.get() != yMat)
      show(n.get(), n->comment.find("35") != std::string::npos ? "\\frac{\\partial z}{\\partial F}" : "\\frac{\\partial z}{\\partial Y}F^T",
           n->comment.find("35") != std::string::npos
               ? "dz/dF = φ(x)ᵀ dz/dY (seed eq. 35), stored as its transpose, one row per filter"
               : "dz/dY Fᵀ (seed eq. 45), one row per output pixel");
  show(grads.at(x), "\\frac{\\partial z}{\\partial X}", "dz/dX: row2im adds each row back onto its pixels (seed eqs. 45-46)");
  return out;
}

} // namespace cnnc::tools
