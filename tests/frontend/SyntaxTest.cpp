// The `.cnn` syntax and its lowering on small inline models: padding (the seed's asymmetric
// same padding, section 6.1), defaults, names, DAG inputs, training vs inference graphs.
// Expected sizes come from the seed's formulas, e.g. H' = H + pt + pb - K + 1 at stride 1.
#include "FrontendTestUtil.h"

#include <catch2/catch.hpp>

#include <set>

using namespace cnnc;
using namespace cnnc::test;

TEST_CASE("pad same keeps the size for even and odd kernels", "[frontend][syntax]") {
  for (int k = 1; k <= 7; ++k) {
    for (int dil : {1, 2}) {
      INFO("kernel " << k << ", dilation " << dil);
      std::string src = "input x 3x9x10\nconv 4 " + std::to_string(k) + "x" + std::to_string(k) +
                        " pad same dilation " + std::to_string(dil) + "\n";
      auto m = cnn(src);
      const Node &c = node(*m, "conv1");
      // Seed section 6.1: floor((K-1)/2) above/left, floor(K/2) below/right (K dilated).
      int64_t e = (k - 1) * dil + 1;
      std::vector<int64_t> pads =
          e == 1 ? std::vector<int64_t>{0, 0, 0, 0}
                 : std::vector<int64_t>{(e - 1) / 2, (e - 1) / 2, e / 2, e / 2};
      CHECK(c.getInts("pads") == pads);
      CHECK(c.type.shape == Shape{1, 4, 9, 10});
    }
  }
  auto m = cnn("input x 3x9x10\npool avg 4x4 stride 1 pad same\n");
  CHECK(node(*m, "pool1").getInts("pads") == std::vector<int64_t>{1, 1, 2, 2});
  CHECK(node(*m, "pool1").type.shape == Shape{1, 3, 9, 10});
}

TEST_CASE("pad forms: P, V,H and T,L,B,R", "[frontend][syntax]") {
  auto pads = [](const std::string &p) {
    return node(*cnn("input x 1x8x8\nconv 2 3x3 pad " + p), "conv1").getInts("pads");
  };
  CHECK(pads("1") == std::vector<int64_t>{1, 1, 1, 1});
  CHECK(pads("1,2") == std::vector<int64_t>{1, 2, 1, 2});
  CHECK(pads("0,1,1,2") == std::vector<int64_t>{0, 1, 1, 2});
  // 8 + 0 + 1 - 3 + 1 = 7 rows, 8 + 1 + 2 - 3 + 1 = 9 columns.
  CHECK(node(*cnn("input x 1x8x8\nconv 2 3x3 pad 0,1,1,2"), "conv1").type.shape ==
        Shape{1, 2, 7, 9});
}

TEST_CASE("conv and pool defaults and options", "[frontend][syntax]") {
  auto m = cnn("input x 4x16x16\n"
               "conv 8 3x3 stride 2 groups 2 nobias init he\n"
               "pool max 3x3 stride 2 ceil\n"
               "pool avg 2x2 pad 1 countpad\n");
  const Node &c = node(*m, "conv1");
  CHECK(c.operands.size() == 2); // nobias
  CHECK(c.getInts("stride") == std::vector<int64_t>{2, 2});
  CHECK(c.getInt("groups") == 2);
  CHECK(node(*m, "conv1.w").type.shape == Shape{8, 2, 3, 3});
  CHECK(node(*m, "conv1.w").getStr("init") == "he");
  CHECK(c.type.shape == Shape{1, 8, 7, 7}); // (16 - 3) / 2 + 1
  const Node &p1 = node(*m, "pool1");
  CHECK(p1.getInt("ceil_mode") == 1);
  CHECK(p1.type.shape == Shape{1, 8, 3, 3}); // ceil((7 - 3) / 2) + 1
  const Node &p2 = node(*m, "pool2");
  CHECK(p2.getInts("stride") == std::vector<int64_t>{2, 2}); // stride defaults to the window
  CHECK(p2.getInt("count_include_pad") == 1);
  CHECK(p2.type.shape == Shape{1, 8, 2, 2}); // (3 + 2 - 2) / 2 + 1

  auto d = cnn("input x 1x8x8\nconv 2 3x3\nfc 5\n");
  CHECK(node(*d, "conv1.w").getStr("init") == "gauss(0.01)");
  CHECK(node(*d, "conv1.b").getStr("init") == "zeros");
  CHECK(node(*d, "conv1").getInts("pads") == std::vector<int64_t>{0, 0, 0, 0});
  CHECK(node(*d, "fc1.flat").type.shape == Shape{1, 2 * 6 * 6});
  CHECK(node(*d, "fc1.w").type.shape == Shape{5, 72});
}

TEST_CASE("names: user names, automatic names that avoid them, locations", "[frontend][syntax]") {
  auto m = cnn("network tiny   # comment\n"
               "input img 1x8x8\n"
               "conv2: conv 2 3x3\n"
               "  conv 2 3x3 # the second conv gets conv1, the third conv3\n"
               "conv 2 1x1\n"
               "relu\n");
  const Function &f = m->main();
  CHECK(f.name() == "tiny");
  CHECK(node(*m, "conv2").operands[0]->name == "img");
  CHECK(node(*m, "conv1").operands[0]->name == "conv2");
  CHECK(node(*m, "conv3").operands[0]->name == "conv1");
  CHECK(f.outputs()[0]->name == "relu1");
  CHECK(node(*m, "conv1").loc.str() == "t.cnn:4:3");
  CHECK(node(*m, "conv1.w").loc.str() == "t.cnn:4:3");
  CHECK(node(*m, "conv2").loc.str() == "t.cnn:3:8"); // the layer keyword
  // Without a `network` line the function is named after the file.
  CHECK(parseCnn("input x 1x2x2\nrelu\n", "dir/my-net.v2.cnn")->main().name() == "my_net_v2");
}

TEST_CASE("DAG inputs: '<' names inputs, the default is the line above", "[frontend][syntax]") {
  auto m = cnn("input x 4x8x8\n"
               "a: conv 4 3x3 pad same\n"
               "b: conv 6 1x1 < x\n"
               "c: relu < a\n"
               "cat: concat < c b x\n"
               "s: add < cat cat\n"
               "flatten\n");
  CHECK(node(*m, "cat").type.shape == Shape{1, 14, 8, 8});
  CHECK(node(*m, "cat").operands.size() == 3);
  CHECK(node(*m, "s").operands[0] == node(*m, "s").operands[1]);
  CHECK(node(*m, "flatten1").type.shape == Shape{1, 14 * 64});
  CHECK(m->main().outputs()[0]->name == "flatten1");
}

TEST_CASE("simple layers map one to one", "[frontend][syntax]") {
  auto m = cnn("input x 3x4x4\nsigmoid\ntanh\nbn eps 0.001\ngap\nlogsoftmax\nsoftmax\n");
  CHECK(node(*m, "sigmoid1").op == OpKind::Sigmoid);
  CHECK(node(*m, "tanh1").op == OpKind::Tanh);
  CHECK(node(*m, "bn1").getFloat("epsilon") == 0.001);
  CHECK(node(*m, "gap1").type.shape == Shape{1, 3, 1, 1});
  CHECK(node(*m, "logsoftmax1").op == OpKind::LogSoftmax);
  CHECK(node(*m, "softmax1").operands[0]->name == "logsoftmax1");
}

TEST_CASE("softplus is a layer, named like the others", "[frontend][syntax]") {
  auto m = cnn("input x 3x4x4\nsoftplus\nsp: softplus\n");
  CHECK(node(*m, "softplus1").op == OpKind::Softplus);
  CHECK(node(*m, "sp").operands[0]->name == "softplus1");
  CHECK(node(*m, "sp").type.shape == Shape{1, 3, 4, 4});
}

TEST_CASE("pad, relu6, leakyrelu, hardswish and hardsigmoid layers", "[frontend][syntax]") {
  auto m = cnn("input x 3x4x5\npad 1\npad 0,1,2,3 mode reflect\npad 2,1 mode edge\n"
               "pad 1 value -1.5\nrelu6\nleakyrelu\nleakyrelu 0.2\nhardswish\nhardsigmoid\n");
  CHECK(node(*m, "pad1").getInts("pads") == std::vector<int64_t>{0, 0, 1, 1, 0, 0, 1, 1});
  CHECK(node(*m, "pad1").type.shape == Shape{1, 3, 6, 7});
  CHECK(node(*m, "pad2").getStr("mode") == "reflect");
  CHECK(node(*m, "pad2").getInts("pads") == std::vector<int64_t>{0, 0, 0, 1, 0, 0, 2, 3});
  CHECK(node(*m, "pad3").getStr("mode") == "edge");
  CHECK(node(*m, "pad3").type.shape == Shape{1, 3, 12, 13});
  CHECK(node(*m, "pad4").getFloat("value") == -1.5);
  CHECK(node(*m, "clip1").op == OpKind::Clip);
  CHECK(node(*m, "clip1").getFloat("min") == 0.0);
  CHECK(node(*m, "clip1").getFloat("max") == 6.0);
  CHECK(node(*m, "leaky1").getFloat("alpha") == 0.01);
  CHECK(node(*m, "leaky2").getFloat("alpha") == 0.2);
  CHECK(node(*m, "hardswish1").op == OpKind::HardSwish);
  CHECK(node(*m, "hardsigmoid1").op == OpKind::HardSigmoid);
}

TEST_CASE("elu and selu layers", "[frontend][syntax]") {
  auto m = cnn("input x 3x4x4\nelu\nselu\n");
  CHECK(node(*m, "elu1").op == OpKind::Elu);
  CHECK(node(*m, "elu1").getFloat("alpha") == 1.0);
  CHECK(node(*m, "selu1").op == OpKind::Selu);
  CHECK(node(*m, "selu1").operands[0]->name == "elu1");
}

TEST_CASE("deconv: a transposed convolution, the input gradient of a conv", "[frontend][syntax]") {
  auto m = cnn("input x 4x5x6\ndeconv 3 2x2 stride 2\nup: deconv 8 3x3 stride 2 pad 1 outpad 1 groups 1 nobias\n");
  const Node &d = node(*m, "deconv1.t");
  CHECK(d.op == OpKind::Conv2dGradInput);
  CHECK(node(*m, "deconv1.w").type.shape == Shape{4, 3, 2, 2});
  CHECK(node(*m, "deconv1").op == OpKind::Add);
  CHECK(node(*m, "deconv1").type.shape == Shape{1, 3, 10, 12});
  CHECK(node(*m, "up").op == OpKind::Conv2dGradInput);
  CHECK(node(*m, "up").type.shape == Shape{1, 8, 20, 24}); // 2*9 + 1 + 3 - 2
  CHECK_THROWS_WITH(cnn("input x 4x5x6\ndeconv 3 2x2 stride 2 outpad 2\n"),
                    Catch::Contains("outpad must be smaller than the stride"));
  CHECK_THROWS_WITH(cnn("input x 4x5x6\ndeconv 3 2x2 pad same\n"), Catch::Contains("'pad same'"));
}

TEST_CASE("upsample repeats pixels by integer factors", "[frontend][syntax]") {
  auto m = cnn("input x 2x3x4\nupsample 2\nupsample 1x3\n");
  CHECK(node(*m, "up1").type.shape == Shape{1, 2, 6, 8});
  CHECK(node(*m, "up1.rep").op == OpKind::Expand);
  CHECK(node(*m, "up2").type.shape == Shape{1, 2, 6, 24});
  CHECK_THROWS_WITH(cnn("input x 2x3x4\nupsample 0\n"), Catch::Contains("factor"));
}

TEST_CASE("training and inference graphs", "[frontend][syntax]") {
  const std::string path = examplePath("mnist_bn_dropout");
  CnnOptions inf, tr;
  inf.batch = tr.batch = 8;
  tr.training = true;
  auto mi = parseCnnFile(path, inf), mt = parseCnnFile(path, tr);

  // Inference: running statistics, identity dropout, softmax output.
  CHECK(node(*mi, "bn1").operands[3]->name == "bn1.mean");
  CHECK(node(*mi, "drop1").getInt("training") == 0);
  CHECK(mi->main().outputs()[0]->op == OpKind::Softmax);
  CHECK(mi->main().outputs()[0]->type.shape == Shape{8, 10});
  CHECK(mi->main().find("label") == nullptr);

  // Training: batch statistics, dropout masks, a label input and the loss as the output.
  CHECK(node(*mt, "bn1.bmean").op == OpKind::BnMean);
  CHECK(node(*mt, "bn1").operands[3]->name == "bn1.bmean");
  CHECK(node(*mt, "bn1").operands[4]->name == "bn1.bvar");
  CHECK(node(*mt, "drop1").getInt("training") == 1);
  CHECK(node(*mt, "label").type == TensorType{DType::I32, {8}});
  const Node *loss = mt->main().outputs()[0];
  CHECK(loss->op == OpKind::SoftmaxXent);
  CHECK(loss->type.shape.empty());

  // Both graphs hold the same parameters, so a trained checkpoint fits the inference graph.
  auto params = [](const Module &m) {
    std::set<std::pair<std::string, Shape>> ps;
    for (const auto &n : m.main().nodes())
      if (n->op == OpKind::Param)
        ps.insert({n->name, n->type.shape});
    return ps;
  };
  CHECK(params(*mi) == params(*mt));
}

TEST_CASE("dropout seeds are stable and distinct per layer", "[frontend][syntax]") {
  CnnOptions tr;
  tr.training = true;
  const std::string src = "input x 10\nd1: dropout 0.25\nd2: dropout\n";
  auto a = cnn(src, tr), b = cnn("input x 10\nrelu\n" + src.substr(11), tr);
  CHECK(node(*a, "d1").getFloat("rate") == 0.25);
  CHECK(node(*a, "d2").getFloat("rate") == 0.5);
  CHECK(node(*a, "d1").getInt("seed") != node(*a, "d2").getInt("seed"));
  CHECK(node(*a, "d1").getInt("seed") == node(*b, "d1").getInt("seed"));
  // The model seed moves every mask seed; the same model seed reproduces them.
  CnnOptions seeded = tr;
  seeded.seed = 7;
  auto c = cnn(src, seeded), d = cnn(src, seeded);
  CHECK(node(*c, "d1").getInt("seed") != node(*a, "d1").getInt("seed"));
  CHECK(node(*c, "d2").getInt("seed") != node(*a, "d2").getInt("seed"));
  CHECK(node(*c, "d1").getInt("seed") == node(*d, "d1").getInt("seed"));
  CHECK(node(*c, "d1").getInt("seed") != node(*c, "d2").getInt("seed"));
}

TEST_CASE("loss l2 adds a target input in training only", "[frontend][syntax]") {
  const std::string src = "input x 5\nfc 3\nloss l2\n";
  CnnOptions tr;
  tr.training = true;
  tr.batch = 4;
  auto mt = cnn(src, tr);
  CHECK(node(*mt, "target").type == TensorType{DType::F32, {4, 3}});
  CHECK(mt->main().outputs()[0]->op == OpKind::L2Loss);
  auto mi = cnn(src);
  CHECK(mi->main().outputs()[0]->name == "fc1");
  CHECK(mi->main().find("target") == nullptr);
  // A user name `label` pushes the automatic label input aside.
  auto ml = cnn("input label 5\nfc 3\nloss softmax\n", tr);
  CHECK(node(*ml, "label1").type.dtype == DType::I32);
}
