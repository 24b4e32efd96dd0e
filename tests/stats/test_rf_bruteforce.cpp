// Receptive fields checked by brute force with the reference interpreter: bump one input
// pixel at a time by +1e3 and record which bumps change the target's centre output element.
// The bounding box of those pixels must have the extent ModelStats reports.
//
// Why this is a valid oracle: inputs are all 1 and weights all positive (1/fan_in, biases
// 0.1), so ReLU is the identity and every output is increasing in every input it depends
// on. Inside the field every value equals its layer's interior constant (its own field lies
// in the unpadded input; the test checks that by requiring border bumps to change nothing),
// so a bump always strictly raises the max of each pooling window it reaches.
// Each network is a list of stages; every suffix of it is built as its own function whose
// input is the stage's input, so the field of every cut point is checked, not only the first.
#include "NetBuilder.h"
#include "interp/Interpreter.h"
#include "passes/ModelStats.h"

#include <catch2/catch.hpp>

#include <functional>

using namespace cnnc;
using cnnc::test::NetBuilder;

namespace {

using Stage = std::function<Node *(NetBuilder &, Node *)>;
using Tensor = interp::Tensor<double>;

struct Net {
  Shape input;
  std::vector<Stage> stages;
};

// The stages from `from` on, applied to an input of the shape stage `from` receives.
void build(NetBuilder &b, const Net &net, size_t from, const Shape &in) {
  Node *x = b.input("x", in);
  for (size_t i = from; i < net.stages.size(); ++i)
    x = net.stages[i](b, x);
  b.output(x);
  verify(b.f);
}

std::map<std::string, Tensor> feedsFor(const Function &f) {
  std::map<std::string, Tensor> feeds;
  for (auto &n : f.nodes()) {
    std::vector<size_t> shape(n->type.shape.begin(), n->type.shape.end());
    Tensor t = Tensor::from_shape(shape);
    if (n->op == OpKind::Input) {
      t.fill(1.0);
    } else if (n->op == OpKind::Param) {
      bool bias = n->type.rank() == 1;
      double fanIn = 1;
      for (size_t i = 1; i < shape.size(); ++i)
        fanIn *= double(shape[i]);
      t.fill(bias ? 0.1 : 1.0 / fanIn);
    } else {
      continue;
    }
    feeds[n->name] = std::move(t);
  }
  return feeds;
}

// The extent (rows, cols) of the input pixels of channel 0 whose bump changes channel 0 of
// the target's centre element.
std::pair<int64_t, int64_t> bruteForceField(const Function &f, const Node *target) {
  auto nodes = f.nodeList();
  size_t t = std::find(nodes.begin(), nodes.end(), target) - nodes.begin();
  const Shape &ts = target->type.shape;
  std::vector<size_t> centre = {0, 0, size_t((ts[2] - 1) / 2), size_t((ts[3] - 1) / 2)};
  auto feeds = feedsFor(f);
  double base = interp::evaluate<double>(f, feeds)[t][centre];

  const Shape &xs = f.find("x")->type.shape;
  int64_t r0 = INT64_MAX, r1 = -1, c0 = INT64_MAX, c1 = -1;
  for (int64_t r = 0; r < xs[2]; ++r)
    for (int64_t c = 0; c < xs[3]; ++c) {
      Tensor &x = feeds["x"];
      x(0, 0, r, c) += 1e3;
      double v = interp::evaluate<double>(f, feeds)[t][centre];
      x(0, 0, r, c) -= 1e3;
      if (std::abs(v - base) > 1e-9 * std::max(1.0, std::abs(base))) {
        r0 = std::min(r0, r), r1 = std::max(r1, r);
        c0 = std::min(c0, c), c1 = std::max(c1, c);
      }
    }
  REQUIRE(r1 >= 0);
  // A field touching the border could hide padded pixels: the sizes must keep it inside.
  REQUIRE(r0 > 0);
  REQUIRE(c0 > 0);
  REQUIRE(r1 < xs[2] - 1);
  REQUIRE(c1 < xs[3] - 1);
  return {r1 - r0 + 1, c1 - c0 + 1};
}

void checkNet(const Net &net) {
  NetBuilder full;
  build(full, net, 0, net.input);
  ModelStats fs = computeModelStats(full.f);
  REQUIRE(fs.rfTarget != nullptr);

  // The input shape of each stage, from the full network: the first operand of the first
  // node each stage adds.
  for (size_t k = 0; k < net.stages.size(); ++k) {
    NetBuilder probe;
    Shape in = net.input;
    if (k > 0) {
      NetBuilder prefix;
      Node *x = prefix.input("x", net.input);
      for (size_t i = 0; i < k; ++i)
        x = net.stages[i](prefix, x);
      in = x->type.shape;
    }
    NetBuilder suffix;
    build(suffix, net, k, in);
    ModelStats ss = computeModelStats(suffix.f);
    // The target (the last pool) must be in the suffix, else the field is the full network's.
    if (!ss.rfTarget || ss.rfTarget->op != fs.rfTarget->op ||
        ss.rfTarget->type != fs.rfTarget->type)
      break;
    INFO("suffix from stage " << k << ", input " << shapeStr(in));
    // The suffix's nodes are the full network's last ones, with the same fields.
    REQUIRE(ss.nodes.size() <= fs.nodes.size());
    size_t off = fs.nodes.size() - ss.nodes.size();
    for (size_t i = 0; i < ss.nodes.size(); ++i) {
      CHECK(ss.nodes[i].node->op == fs.nodes[off + i].node->op);
      CHECK(ss.nodes[i].receptiveField == fs.nodes[off + i].receptiveField);
    }
    REQUIRE(ss.nodes[0].receptiveField.has_value());
    CHECK(bruteForceField(suffix.f, ss.rfTarget) == *ss.nodes[0].receptiveField);
  }
}

Stage conv(int64_t m, int64_t kh, int64_t kw, std::vector<int64_t> stride,
           std::vector<int64_t> pads, std::vector<int64_t> dil = {1, 1}) {
  return [=](NetBuilder &b, Node *x) { return b.conv(x, m, kh, kw, stride, pads, dil); };
}
Stage relu() {
  return [](NetBuilder &b, Node *x) { return b.relu(x); };
}

} // namespace

TEST_CASE("receptive field by brute force: chain with dilation, stride, overlap, pads",
          "[rf][bruteforce]") {
  Net net{{1, 2, 52, 56},
          {conv(2, 3, 3, {1, 1}, {1, 2, 0, 1}, {2, 2}), relu(), conv(2, 3, 2, {2, 2}, {0, 1, 1, 0}),
           [](NetBuilder &b, Node *x) { return b.maxpool(x, 3, 1); }, // overlapping
           conv(3, 2, 3, {1, 1}, {1, 1, 0, 0}, {1, 2}),
           [](NetBuilder &b, Node *x) {
             return b.maxpool(x, 2, 2, {0, 0, 1, 1}, {2, 1});
           },
           conv(2, 3, 3, {1, 1}, {1, 1, 1, 1}),
           [](NetBuilder &b, Node *x) {
             return b.avgpool(x, 3, 2, {1, 0, 1, 0});
           }}};
  checkNet(net);
}

TEST_CASE("receptive field by brute force: residual DAG", "[rf][bruteforce]") {
  // The block's branches have fields of 5x1 (main) and 1x5 (shortcut) through the first
  // convolutions: their hull, not either branch, is the field.
  Stage block = [](NetBuilder &b, Node *x) {
    Node *m = b.conv(x, 2, 5, 1, {1, 1}, {2, 0, 2, 0});
    m = b.conv(b.relu(m), 2, 3, 3, {1, 1}, {2, 2, 2, 2}, {2, 2});
    Node *s = b.conv(x, 2, 1, 5, {1, 1}, {0, 2, 0, 2});
    return b.relu(b.add(m, s));
  };
  Net net{{1, 2, 36, 36},
          {conv(2, 3, 3, {1, 1}, {1, 1, 1, 1}), relu(), block,
           [](NetBuilder &b, Node *x) {
             return b.maxpool(x, 3, 2, {1, 1, 0, 0});
           },
           block, [](NetBuilder &b, Node *x) { return b.maxpool(x, 2, 2); },
           conv(2, 3, 3, {1, 1}, {1, 1, 1, 1})}}; // downstream of the target: no field
  checkNet(net);
  NetBuilder b;
  build(b, net, 0, net.input);
  ModelStats st = computeModelStats(b.f);
  CHECK_FALSE(st.nodes.back().receptiveField.has_value());
}
