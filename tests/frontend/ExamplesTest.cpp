// The example networks of examples/: they parse in both modes, their parameter totals and key
// shapes match the seed's numbers (computed here from the seed's layer sizes, not from our
// output), they print/parse round trip, and they match the reviewed goldens in golden/.
// Set CNNC_UPDATE_GOLDEN=1 to rewrite the goldens (then read the diff before committing).
#include "FrontendTestUtil.h"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>

using namespace cnnc;
using namespace cnnc::test;

TEST_CASE("every example parses in inference and training", "[frontend][examples]") {
  for (const std::string &name : exampleNames()) {
    for (bool training : {false, true}) {
      INFO(name << (training ? " (training)" : " (inference)"));
      CnnOptions o;
      o.training = training;
      auto m = parseCnnFile(examplePath(name), o);
      REQUIRE(m->functions().size() == 1);
      CHECK(m->main().name() == name);
      REQUIRE(m->main().outputs().size() == 1);
      for (const auto &n : m->main().nodes()) {
        INFO("node %" << n->name);
        CHECK(n->loc.known()); // every node comes from a line of the file
        CHECK(n->loc.file == examplePath(name));
      }
    }
  }
}

TEST_CASE("VGG-16 has the seed's 138,357,544 parameters and 7x7x512 pool5",
          "[frontend][examples]") {
  auto m = parseCnnFile(examplePath("vgg16"));
  CHECK(paramCount(m->main()) == 138357544);
  CHECK(node(*m, "pool5").type.shape == Shape{1, 512, 7, 7});
  CHECK(node(*m, "fc1.w").type.shape == Shape{4096, 7 * 7 * 512});
  CHECK(m->main().outputs()[0]->op == OpKind::Softmax);
  CHECK(m->main().outputs()[0]->type.shape == Shape{1, 1000});
  int convs = 0, relus = 0, pools = 0;
  for (const auto &n : m->main().nodes()) {
    convs += n->op == OpKind::Conv2d;
    relus += n->op == OpKind::Relu;
    pools += n->op == OpKind::MaxPool;
  }
  CHECK(convs == 13);
  CHECK(relus == 15);
  CHECK(pools == 5);
}

TEST_CASE("VGG-16 at a smaller input size keeps its channels", "[frontend][examples]") {
  CnnOptions o;
  o.inputHW = std::pair<int64_t, int64_t>{32, 32};
  o.batch = 2;
  auto m = parseCnnFile(examplePath("vgg16"), o);
  CHECK(node(*m, "data").type.shape == Shape{2, 3, 32, 32});
  CHECK(node(*m, "pool5").type.shape == Shape{2, 512, 1, 1});
  CHECK(node(*m, "fc1.w").type.shape == Shape{4096, 512});
}

// The seed's Exercise 6 sizes "x × y × nIn × nOut", each with nOut biases.
static int64_t convParams(int64_t x, int64_t y, int64_t in, int64_t out, bool bias = true) {
  return x * y * in * out + (bias ? out : 0);
}

TEST_CASE("BASE and BN parameter totals and shapes", "[frontend][examples]") {
  int64_t base = convParams(5, 5, 1, 20) + convParams(5, 5, 20, 50) + convParams(4, 4, 50, 500) +
                 convParams(1, 1, 500, 10);
  CnnOptions o;
  o.batch = 100;
  auto m = parseCnnFile(examplePath("mnist_base"), o);
  CHECK(paramCount(m->main()) == base);
  CHECK(node(*m, "conv3").type.shape == Shape{100, 500, 1, 1});
  CHECK(node(*m, "conv4").type.shape == Shape{100, 10, 1, 1});
  CHECK(paramCount(parseCnnFile(examplePath("mnist_base_dropout"))->main()) == base);

  // BN: the first three convolutions lose their biases; each BN has 4 per-channel vectors.
  int64_t bn = base - (20 + 50 + 500) + 4 * (20 + 50 + 500);
  CHECK(paramCount(parseCnnFile(examplePath("mnist_bn"))->main()) == bn);
  CHECK(paramCount(parseCnnFile(examplePath("mnist_bn_dropout"))->main()) == bn);
}

TEST_CASE("SK-s widens blocks 1-3 by round(s*c), never block 4", "[frontend][examples]") {
  for (double s : {1.0, 2.0, 1.5, 0.5, 0.2, 0.01}) {
    INFO("s = " << s);
    CnnOptions o;
    o.width = s;
    auto m = parseCnnFile(examplePath("mnist_sk"), o);
    auto w = [&](int64_t c) { return std::max<int64_t>(1, std::llround(s * (double)c)); };
    CHECK(node(*m, "conv1").type.shape[1] == w(20));
    CHECK(node(*m, "conv2.w").type.shape == Shape{w(20), w(20), 3, 3});
    CHECK(node(*m, "conv3.w").type.shape == Shape{w(50), w(20), 5, 5});
    CHECK(node(*m, "conv4.w").type.shape == Shape{w(500), w(50), 4, 4});
    CHECK(node(*m, "bn4.scale").type.shape == Shape{w(500)});
    CHECK(node(*m, "conv5.w").type.shape == Shape{10, w(500), 1, 1});
    int64_t total = convParams(3, 3, 1, w(20), false) + convParams(3, 3, w(20), w(20), false) +
                    convParams(5, 5, w(20), w(50), false) + convParams(4, 4, w(50), w(500), false) +
                    convParams(1, 1, w(500), 10) + 4 * (2 * w(20) + w(50) + w(500));
    CHECK(paramCount(m->main()) == total);
  }
  // Layers not marked `widen` ignore the multiplier.
  CnnOptions o;
  o.width = 2;
  CHECK(paramCount(parseCnnFile(examplePath("vgg16"), o)->main()) == 138357544);
}

TEST_CASE("Exercise 6(j): SK with sigmoid has no ReLU left and SK's parameters",
          "[frontend][examples]") {
  for (bool training : {false, true}) {
    INFO((training ? "training" : "inference"));
    CnnOptions o;
    o.training = training;
    o.width = 0.2;
    auto sig = parseCnnFile(examplePath("mnist_sk_sigmoid"), o);
    auto sk = parseCnnFile(examplePath("mnist_sk"), o);
    int64_t sigmoids = 0, relus = 0;
    for (const auto &n : sig->main().nodes()) {
      INFO("node %" << n->name);
      CHECK(n->op != OpKind::Relu);
      sigmoids += n->op == OpKind::Sigmoid;
    }
    for (const auto &n : sk->main().nodes())
      relus += n->op == OpKind::Relu;
    CHECK(relus == 4);
    CHECK(sigmoids == relus); // one sigmoid where SK has each ReLU
    CHECK(paramCount(sig->main()) == paramCount(sk->main()));
    CHECK(node(*sig, "conv4.w").type.shape == Shape{100, 10, 4, 4}); // SK-0.2's channels
  }
}

TEST_CASE("the residual example joins its branches", "[frontend][examples]") {
  auto m = parseCnnFile(examplePath("resnet_mnist"));
  const Node &add1 = node(*m, "add1"), &add2 = node(*m, "add2");
  CHECK(add1.operands[1]->name == "stem");
  CHECK(add2.operands[1]->name == "proj");
  CHECK(node(*m, "conv6").operands[0]->name == "out1"); // the projection shortcut
  CHECK(add2.type.shape == Shape{1, 32, 14, 14});
  CHECK(node(*m, "gap1").type.shape == Shape{1, 32, 1, 1});
}

static void checkRoundTrip(const Module &m, bool locs) {
  std::string once = print(m, locs);
  auto again = parseModule(once, "roundtrip.ir");
  verify(*again);
  CHECK(print(*again, locs) == once);
}

TEST_CASE("examples round trip through the textual IR", "[frontend][examples]") {
  for (const std::string &name : exampleNames())
    for (bool training : {false, true}) {
      INFO(name << (training ? " (training)" : ""));
      CnnOptions o;
      o.training = training;
      auto m = parseCnnFile(examplePath(name), o);
      checkRoundTrip(*m, false);
      checkRoundTrip(*m, true);
    }
}

TEST_CASE("examples match their golden IR", "[frontend][examples][golden]") {
  struct Golden {
    std::string example;
    bool training;
  };
  std::vector<Golden> goldens;
  for (const std::string &name : exampleNames())
    goldens.push_back({name, false});
  for (const char *name : {"mnist_base", "mnist_bn_dropout", "resnet_mnist"})
    goldens.push_back({name, true});
  bool update = std::getenv("CNNC_UPDATE_GOLDEN") != nullptr;
  for (const Golden &g : goldens) {
    std::string file = std::string(CNNC_SOURCE_DIR) + "/tests/frontend/golden/" + g.example +
                       (g.training ? ".train" : "") + ".ir";
    INFO(file);
    CnnOptions o;
    o.training = g.training;
    std::string text = print(*parseCnnFile(examplePath(g.example), o));
    if (update)
      std::ofstream(file, std::ios::binary) << text;
    CHECK(text == readFile(file));
  }
}
