// Model statistics against the seed's Table 2 (VGG-16's receptive-field column and its
// published 138,357,544 parameters), hand-computed MAC formulas and hand-derived receptive
// fields of the example models.
#include "NetBuilder.h"
#include "frontend/CnnFrontend.h"
#include "passes/Autodiff.h"
#include "passes/ModelStats.h"

#include <catch2/catch.hpp>

#include <filesystem>
#include <set>

using namespace cnnc;
using cnnc::test::NetBuilder;

namespace {

// Seed Table 2, "r. size" of layers 1..31 (the extent in each layer's input).
const std::vector<int64_t> kTable2 = {212, 210, 210, 208, 208, 104, 102, 102, 100, 100, 50,
                                      48,  48,  46,  46,  44,  44,  22,  20,  20,  18,  18,
                                      16,  16,  8,   6,   6,   4,   4,   2,   2};

// VGG-16's convolution blocks: (channels, convolutions) before each 2x2/2 pool.
const std::vector<std::pair<int64_t, int>> kVggBlocks = {
    {64, 2}, {128, 2}, {256, 3}, {512, 3}, {512, 3}};

void buildVgg16(NetBuilder &b) {
  Node *x = b.input("data", {1, 3, 224, 224});
  for (auto [ch, convs] : kVggBlocks) {
    for (int i = 0; i < convs; ++i)
      x = b.relu(b.conv(x, ch, 3, 3, {1, 1}, {1, 1, 1, 1}));
    x = b.maxpool(x, 2, 2);
  }
  x = b.flatten(x);
  x = b.node(OpKind::Dropout, "drop6", {b.relu(b.fc(x, 4096))});
  x = b.node(OpKind::Dropout, "drop7", {b.relu(b.fc(x, 4096))});
  x = b.node(OpKind::Softmax, "prob", {b.fc(x, 1000)});
  b.output(x);
}

// The receptive fields of the nodes that have one, in order, checking they are square.
std::vector<int64_t> rfColumn(const ModelStats &st) {
  std::vector<int64_t> col;
  for (auto &ns : st.nodes)
    if (ns.receptiveField) {
      CHECK(ns.receptiveField->first == ns.receptiveField->second);
      col.push_back(ns.receptiveField->first);
    }
  return col;
}

const NodeStats &statsOf(const ModelStats &st, const std::string &name) {
  for (auto &ns : st.nodes)
    if (ns.node->name == name)
      return ns;
  FAIL("no stats for %" << name);
  throw;
}

// MACs of VGG-16 by the textbook formula, layer by layer, without the IR.
int64_t vggMacsByHand() {
  int64_t macs = 0, c = 3, hw = 224;
  for (auto [ch, convs] : kVggBlocks) {
    for (int i = 0; i < convs; ++i, c = ch)
      macs += hw * hw * ch * c * 9;
    hw /= 2;
  }
  return macs + 25088 * 4096 + 4096 * 4096 + 4096 * 1000;
}

} // namespace

TEST_CASE("VGG-16 built with the IR API matches Table 2", "[stats][vgg]") {
  NetBuilder b;
  buildVgg16(b);
  verify(b.f);
  ModelStats st = computeModelStats(b.f);
  REQUIRE(st.rfTarget != nullptr);
  CHECK(st.rfTarget->op == OpKind::MaxPool);
  CHECK(st.rfTarget->type.shape == Shape{1, 512, 7, 7});

  std::vector<int64_t> col = rfColumn(st);
  CHECK(col == kTable2);
  // The first 31 non-source nodes are Table 2's layers 1..31, in order; nothing after pool5
  // is upstream of it.
  for (size_t i = 0; i < st.nodes.size(); ++i)
    CHECK(st.nodes[i].receptiveField.has_value() == (i < 31));

  CHECK(st.totalParams == 138357544);
  CHECK(st.totalMacs == vggMacsByHand());
  const NodeStats &c1 = st.nodes[0];
  CHECK(c1.params == 64 * 3 * 9 + 64);
  CHECK(c1.macs == int64_t(1) * 64 * 224 * 224 * 3 * 3 * 3);
  CHECK(c1.activationBytes == int64_t(64) * 224 * 224 * 4);
  CHECK(st.nodes[1].macs == 0); // relu
  CHECK(st.nodes[4].macs == 0); // pool
}

TEST_CASE("MACs and params of dense ops, by hand formulas", "[stats]") {
  NetBuilder b;
  Node *x = b.input("x", {2, 6, 10, 12});
  // groups=3, stride 2, pads [1,0,2,1], dilation 2: Ho = (10+3-5)/2+1 = 5, Wo = (12+1-3)/2+1 = 6
  Node *c = b.conv(x, 9, 3, 2, {2, 2}, {1, 0, 2, 1}, {2, 2}, 3);
  REQUIRE(c->type.shape == Shape{2, 9, 5, 6});
  Node *f = b.fc(b.flatten(c), 7);
  Node *a = b.input("a", {4, 3});
  Node *m = b.node(OpKind::MatMul, "mm", {a, b.input("bm", {4, 5})}, {{"trans_a", int64_t(1)}});
  Node *bm = b.node(OpKind::BatchMatMul, "bmm", {b.input("ba", {2, 3, 4}), b.input("bb", {4, 5})});
  // A parameter used twice is counted once in the total, but by each node that uses it.
  Node *shared = b.param("shared", {2, 9, 5, 6});
  Node *s1 = b.add(c, shared), *s2 = b.node(OpKind::Mul, "mul", {s1, shared});
  b.output(f);
  b.output(m);
  b.output(bm);
  b.output(s2);
  verify(b.f);
  ModelStats st = computeModelStats(b.f);

  CHECK(statsOf(st, c->name).macs == 2 * 9 * 5 * 6 * (6 / 3) * 3 * 2);
  CHECK(statsOf(st, c->name).params == 9 * 2 * 3 * 2 + 9);
  CHECK(statsOf(st, f->name).macs == 2 * 7 * 270);
  CHECK(statsOf(st, f->name).params == 7 * 270 + 7);
  CHECK(statsOf(st, "mm").macs == 3 * 5 * 4);
  CHECK(statsOf(st, "mm").activationBytes == 3 * 5 * 4);
  CHECK(statsOf(st, "bmm").macs == 2 * 3 * 5 * 4); // [2,3,4] x [4,5], batch broadcast
  CHECK(statsOf(st, s1->name).params == 540);
  CHECK(statsOf(st, "mul").params == 540);
  CHECK(st.totalParams == (9 * 2 * 3 * 2 + 9) + (7 * 270 + 7) + 540);
  CHECK(st.totalMacs == 2 * 9 * 5 * 6 * 2 * 3 * 2 + 2 * 7 * 270 + 3 * 5 * 4 + 2 * 3 * 5 * 4);

  // The fused conv gradients (fuse-conv-grad) cost the forward conv's MACs each.
  NetBuilder g;
  Node *gx = g.input("x", {2, 6, 10, 12}), *gdy = g.input("dy", {2, 9, 5, 6});
  Node *gw = g.param("w", {9, 2, 3, 2});
  std::map<std::string, Attr> conv{{"stride", std::vector<int64_t>{2, 2}},
                                   {"pads", std::vector<int64_t>{1, 0, 2, 1}},
                                   {"dilation", std::vector<int64_t>{2, 2}},
                                   {"groups", int64_t(3)}};
  auto filterAttrs = conv;
  filterAttrs["kernel"] = std::vector<int64_t>{3, 2};
  auto inputAttrs = conv;
  inputAttrs["input_shape"] = std::vector<int64_t>{2, 6, 10, 12};
  g.output(g.node(OpKind::Conv2dGradFilter, "gf", {gx, gdy}, filterAttrs));
  g.output(g.node(OpKind::Conv2dGradInput, "gi", {gdy, gw}, inputAttrs));
  verify(g.f);
  ModelStats gs = computeModelStats(g.f);
  CHECK(statsOf(gs, "gf").macs == 2 * 9 * 5 * 6 * (6 / 3) * 3 * 2);
  CHECK(statsOf(gs, "gi").macs == 2 * 9 * 5 * 6 * (6 / 3) * 3 * 2);
  int64_t bytes = 0;
  for (auto &ns : st.nodes)
    bytes += ns.node->type.bytes();
  CHECK(st.totalActivationBytes == bytes);
  // No pooling: the target is the last 4-D node (the mul).
  CHECK(st.rfTarget == s2);
}

TEST_CASE("receptive field: hand-derived small cases", "[stats][rf]") {
  NetBuilder b;
  Node *x = b.input("x", {1, 1, 40, 40});
  // dilation 2, 3x3: extent 5; asymmetric pads shift but do not widen the field.
  Node *c1 = b.conv(x, 1, 3, 3, {1, 1}, {2, 0, 0, 1}, {2, 2});
  // stride 2, 2x4 kernel: output [a,a] -> input [2a, 2a+1] x [2a, 2a+3].
  Node *c2 = b.conv(c1, 1, 2, 4, {2, 2});
  Node *p = b.maxpool(c2, 3, 1); // overlapping 3x3/1
  b.output(p);
  verify(b.f);
  ModelStats st = computeModelStats(b.f);
  CHECK(st.rfTarget == p);
  CHECK(statsOf(st, p->name).receptiveField == std::pair<int64_t, int64_t>{3, 3});
  // rows: 3 -> (3-1)*2 + 2 = 6 -> 6 + 4 = 10; cols: 3 -> (3-1)*2 + 4 = 8 -> 8 + 4 = 12
  CHECK(statsOf(st, c2->name).receptiveField == std::pair<int64_t, int64_t>{6, 8});
  CHECK(statsOf(st, c1->name).receptiveField == std::pair<int64_t, int64_t>{10, 12});

  // A named target; nodes downstream of it have no field; an unknown name is an error.
  ModelStats st2 = computeModelStats(b.f, c2->name);
  CHECK(statsOf(st2, c2->name).receptiveField == std::pair<int64_t, int64_t>{2, 4});
  CHECK(statsOf(st2, c1->name).receptiveField == std::pair<int64_t, int64_t>{6, 8});
  CHECK_FALSE(statsOf(st2, p->name).receptiveField.has_value());
  CHECK_THROWS_AS(computeModelStats(b.f, "nope"), Error);
}

TEST_CASE("receptive field: global pooling and concat", "[stats][rf]") {
  NetBuilder b;
  Node *x = b.input("x", {1, 2, 9, 9});
  // a: 7x7; c (1x3 kernel, pads [1,0,1,0]): 11x7. Concatenated along H: 18x7.
  Node *a = b.conv(x, 2, 3, 3), *c = b.conv(x, 2, 1, 3, {1, 1}, {1, 0, 1, 0});
  Node *cat = b.node(OpKind::Concat, "cat", {a, c}, {{"axis", int64_t(2)}});
  Node *ch = b.node(OpKind::Concat, "ch", {a, a}, {{"axis", int64_t(1)}});
  Node *g = b.node(OpKind::GlobalAvgPool, "gap", {cat});
  b.output(g);
  b.output(ch);
  verify(b.f);
  ModelStats st = computeModelStats(b.f);
  CHECK(st.rfTarget == g);
  CHECK(statsOf(st, "gap").receptiveField == std::pair<int64_t, int64_t>{18, 7});
  CHECK(statsOf(st, "cat").receptiveField == std::pair<int64_t, int64_t>{7, 7}); // a: all of it
  // x is needed through both convolutions: a needs rows [0,8], c rows [-1,9]; the field of
  // each node is over its input value, so both report the hull.
  CHECK(statsOf(st, a->name).receptiveField == std::pair<int64_t, int64_t>{11, 9});
  CHECK(statsOf(st, c->name).receptiveField == std::pair<int64_t, int64_t>{11, 9});
  CHECK_FALSE(statsOf(st, "ch").receptiveField.has_value());

  // The centre of the concat, (8,3), is row 1 of c: c needs x rows [0,0], cols [3,5]; a
  // contributes nothing, so it (and the concat, whose first input is a) has no field.
  ModelStats sc = computeModelStats(b.f, "cat");
  CHECK(statsOf(sc, c->name).receptiveField == std::pair<int64_t, int64_t>{1, 3});
  CHECK_FALSE(statsOf(sc, a->name).receptiveField.has_value());
  CHECK_FALSE(statsOf(sc, "cat").receptiveField.has_value());
}

TEST_CASE("receptive field: slices shift, they do not mix", "[stats][rf]") {
  // 20 -conv3-> 18 -slice rows 4..13-> 10x18 -pool 2/2-> 5x9; centre (2,4): pool input rows
  // [4,5] cols [8,9], slice input rows [8,9], conv input rows [8,11] cols [8,11].
  NetBuilder b;
  Node *c = b.conv(b.input("x", {1, 1, 20, 20}), 1, 3, 3);
  Node *s = b.node(OpKind::Slice, "sl", {c},
                   {{"axis", int64_t(2)}, {"start", int64_t(4)}, {"end", int64_t(14)}});
  Node *p = b.maxpool(s, 2, 2);
  b.output(p);
  verify(b.f);
  ModelStats st = computeModelStats(b.f);
  CHECK(statsOf(st, "sl").receptiveField == std::pair<int64_t, int64_t>{2, 2});
  CHECK(statsOf(st, c->name).receptiveField == std::pair<int64_t, int64_t>{4, 4});
}

// ---------------------------------------------------------------------------- .cnn files --

namespace {
std::unique_ptr<Module> example(const std::string &name) {
  return parseCnnFile(std::string(CNNC_SOURCE_DIR) + "/examples/" + name);
}
} // namespace

TEST_CASE("examples/vgg16.cnn matches Table 2", "[stats][vgg][cnn]") {
  auto m = example("vgg16.cnn");
  ModelStats st = computeModelStats(m->main());
  CHECK(st.totalParams == 138357544);
  CHECK(st.totalMacs == vggMacsByHand());
  std::vector<int64_t> col;
  for (auto &ns : st.nodes)
    if (ns.receptiveField)
      col.push_back(ns.receptiveField->first);
  CHECK(col == kTable2);
}

TEST_CASE("examples/mnist_base.cnn: hand-derived fields and parameters", "[stats][cnn]") {
  // 28 -conv5-> 24 -pool2-> 12 -conv5-> 8 -pool2-> 4: pool2's centre (1,1) needs pool2 input
  // [2,3] (2), conv2 input [2,7] (6), pool1 input [4,15] (12), conv1 input [4,19] (16).
  auto m = example("mnist_base.cnn");
  ModelStats st = computeModelStats(m->main());
  REQUIRE(st.rfTarget != nullptr);
  CHECK(st.rfTarget->type.shape[2] == 4);
  CHECK(rfColumn(st) == std::vector<int64_t>{16, 12, 6, 2});
  CHECK(st.totalParams ==
        (25 * 20 + 20) + (25 * 20 * 50 + 50) + (16 * 50 * 500 + 500) + (500 * 10 + 10));
  CHECK(st.totalMacs == 24 * 24 * 20 * 25 + 8 * 8 * 50 * 500 + 500 * 800 + 10 * 500);
}

TEST_CASE("examples/resnet_mnist.cnn: receptive field through a residual DAG", "[stats][cnn]") {
  // Target: the global average pool, which needs its whole 14x14 input. Backwards: block 2's
  // second conv (3x3/1, pad 1) needs [-1,14]; its first (3x3/2, pad 1) [-3,29]; the 1x1/2
  // projection [0,26]; out1 is their hull [-3,29]. Block 1: [-4,30], [-5,31]; the stem,
  // hull with the identity shortcut [-3,29], is [-5,31]; the stem conv's input [-6,32]: 39.
  auto m = example("resnet_mnist.cnn");
  ModelStats st = computeModelStats(m->main());
  REQUIRE(st.rfTarget != nullptr);
  CHECK(st.rfTarget->op == OpKind::GlobalAvgPool);
  REQUIRE(st.nodes[0].node->op == OpKind::Conv2d);
  CHECK(st.nodes[0].receptiveField == std::pair<int64_t, int64_t>{39, 39});
  CHECK(statsOf(st, st.rfTarget->name).receptiveField == std::pair<int64_t, int64_t>{14, 14});
}

TEST_CASE("every example model has consistent stats", "[stats][cnn]") {
  for (auto &e : std::filesystem::directory_iterator(std::string(CNNC_SOURCE_DIR) + "/examples")) {
    if (e.path().extension() != ".cnn")
      continue;
    INFO(e.path());
    auto m = parseCnnFile(e.path().string());
    ModelStats st = computeModelStats(m->main());
    int64_t params = 0, macs = 0;
    for (auto &n : m->main().nodes())
      if (n->op == OpKind::Param)
        params += n->type.numel();
    for (auto &ns : st.nodes)
      macs += ns.macs;
    CHECK(st.totalParams == params);
    CHECK(st.totalMacs == macs);
    CHECK(st.rfTarget != nullptr);
  }
}

TEST_CASE("naiveTrainBytes: the step's tensors, params, gradients and updates excepted",
          "[stats][train]") {
  for (const char *name : {"mnist_base.cnn", "mnist_bn.cnn", "resnet_mnist.cnn"}) {
    INFO(name);
    CnnOptions o;
    o.batch = 4;
    o.training = true;
    auto m = parseCnnFile(std::string(CNNC_SOURCE_DIR) + "/examples/" + name, o);
    Function &f = m->main();
    buildTrainStep(f); // the grad pass alone: what the naive sum is defined on
    // independently, by the names passes/TrainStep.cpp gives the update's nodes
    const char *updateSuffixes[] = {".decay", ".dir",     ".inertia",   ".lrdir",        ".vel",
                                    ".w.new", ".b.new",   ".scale.new", ".bias.new",     ".mean.new",
                                    ".var.new", ".mean.old", ".var.old", ".mean.batch", ".var.batch",
                                    ".rate_unbiased"};
    auto endsWith = [](const std::string &s, const std::string &x) {
      return s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0;
    };
    std::set<const Node *> grads;
    for (const auto &n : f.nodes())
      if (endsWith(n->name, ".dir"))
        grads.insert(n->operands[0]); // dz/dw: the first operand of dz/dw + decay * w
    int64_t want = 0, all = 0;
    for (const auto &n : f.nodes()) {
      if (n->info().source)
        continue;
      all += n->type.bytes();
      bool update = n->op == OpKind::Update || grads.count(n.get());
      for (const char *x : updateSuffixes)
        update = update || endsWith(n->name, x);
      if (!update)
        want += n->type.bytes();
    }
    CHECK(!grads.empty());
    CHECK(naiveTrainBytes(f) == want);
    CHECK(want < all);
  }
}
