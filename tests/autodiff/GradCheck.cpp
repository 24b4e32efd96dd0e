#include "GradCheck.h"

#include "passes/Autodiff.h"
#include "passes/Passes.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace cnnc::test {

Feeds spacedFeeds(const Function &f, uint64_t seed, const std::vector<std::string> &positive, int64_t classes) {
  std::mt19937_64 rng(seed);
  Feeds feeds;
  for (const auto &n : f.nodes()) {
    if (n->op != OpKind::Input && n->op != OpKind::Param)
      continue;
    std::vector<size_t> shape(n->type.shape.begin(), n->type.shape.end());
    interp::Tensor<double> t = xt::zeros<double>(shape);
    size_t count = t.size();
    if (n->type.dtype == DType::I32 || n->type.dtype == DType::I64) { // labels, step counters
      std::uniform_int_distribution<int64_t> u(0, std::max<int64_t>(classes, 2) - 1);
      for (double &v : t)
        v = (double)u(rng);
    } else {
      std::vector<double> vals(count);
      for (size_t i = 0; i < count; ++i)
        vals[i] = (2.0 * (double)i + 0.5) / (double)count - 1.0; // never exactly 0
      std::shuffle(vals.begin(), vals.end(), rng);
      bool pos = std::find(positive.begin(), positive.end(), n->name) != positive.end();
      for (size_t i = 0; i < count; ++i)
        t.data()[i] = pos ? std::abs(vals[i]) + 0.5 : vals[i];
    }
    feeds[n->name] = t;
  }
  return feeds;
}

double lossAt(const Function &f, const Feeds &feeds) {
  auto vals = interp::evaluate<double>(f, feeds);
  const Node *loss = f.outputs()[0];
  for (size_t i = 0; i < f.nodes().size(); ++i)
    if (f.nodes()[i].get() == loss)
      return vals[i]();
  FAIL("no loss");
  return 0;
}

Feeds gradients(const std::string &text, const std::vector<std::string> &wrt, const Feeds &feeds,
                bool fuse) {
  auto m = parseModule(text, "gradcheck.ir");
  Function &f = m->main();
  std::vector<Node *> nodes;
  for (const std::string &w : wrt) {
    Node *n = f.find(w);
    REQUIRE(n);
    nodes.push_back(n);
  }
  auto grads = appendGradients(f, f.outputs()[0], nodes);
  // the gradients as outputs, so that a pass that replaces a gradient's node (fuse-bn-grad
  // bypasses the sum's adds) hands the outputs over too
  std::map<const Node *, size_t> outIndex;
  for (Node *n : nodes)
    if (auto g = grads.find(n); g != grads.end()) {
      outIndex[n] = f.outputs().size();
      f.outputs().push_back(g->second);
    }
  if (fuse) { // in place: the gradient nodes keep their identity
    const bool conv = fuseConvGrad(f);
    const bool bn = fuseBatchNormGrad(f);
    REQUIRE((conv || bn));
  }
  verify(f);
  auto vals = interp::evaluate<double>(f, feeds);
  std::map<const Node *, size_t> index;
  for (size_t i = 0; i < f.nodes().size(); ++i)
    index[f.nodes()[i].get()] = i;
  Feeds out;
  for (Node *n : nodes) {
    if (!outIndex.count(n)) {
      std::vector<size_t> shape(n->type.shape.begin(), n->type.shape.end());
      out[n->name] = xt::zeros<double>(shape);
    } else {
      out[n->name] = vals[index.at(f.outputs()[outIndex.at(n)])];
    }
  }
  return out;
}

void checkGradients(const std::string &text, const std::vector<std::string> &wrt, const Feeds &feeds, double h,
                    bool fuse) {
  Feeds g = gradients(text, wrt, feeds, fuse);
  auto plain = parseModule(text, "gradcheck.ir");
  const Function &f = plain->main();
  for (const std::string &w : wrt) {
    Feeds probe = feeds;
    interp::Tensor<double> &x = probe.at(w);
    const interp::Tensor<double> &ad = g.at(w);
    REQUIRE(ad.shape() == x.shape());
    double worst = 0;
    std::string worstMsg;
    for (size_t i = 0; i < x.size(); ++i) {
      double x0 = x.data()[i];
      x.data()[i] = x0 + h;
      double lp = lossAt(f, probe);
      x.data()[i] = x0 - h;
      double lm = lossAt(f, probe);
      x.data()[i] = x0;
      double fd = (lp - lm) / (2 * h), a = ad.data()[i];
      double excess = std::abs(a - fd) - (1e-7 + 1e-5 * std::abs(fd));
      if (excess > worst) {
        worst = excess;
        worstMsg = fmt::format("d/d%{}[{}]: autodiff {:.12g}, finite difference {:.12g}", w, i, a, fd);
      }
    }
    INFO(worstMsg);
    CHECK(worst == 0.0);
  }
}

} // namespace cnnc::test
