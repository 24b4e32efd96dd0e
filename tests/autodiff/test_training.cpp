// Whole networks: directional gradient checks of the seed's example networks, the training
// step as IR (dump, parse back), overfitting real MNIST digits bit-reproducibly, and errors.
#include "GradCheck.h"

#include "frontend/CnnFrontend.h"
#include "interp/Train.h"
#include "ir/ParamInit.h"
#include "passes/Autodiff.h"
#include "passes/Passes.h"
#include "io/Idx.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <cmath>
#include <xtensor/xadapt.hpp>
#include <cstring>

using namespace cnnc;
using namespace cnnc::test;

namespace {

std::string example(const std::string &name) { return std::string(CNNC_SOURCE_DIR) + "/examples/" + name; }

// Unit-variance-preserving values (spaced, shuffled, scaled by sqrt(3/fan_in)) so that deep
// networks neither vanish nor saturate: the directional derivative is then well conditioned.
Feeds networkFeeds(const Function &f, uint64_t seed) {
  Feeds feeds = spacedFeeds(f, seed, {}, 10);
  for (const auto &n : f.nodes()) {
    if (n->op != OpKind::Param)
      continue;
    auto &t = feeds.at(n->name);
    const Shape &s = n->type.shape;
    if (n->name.ends_with(".var"))
      t = xt::abs(t) + 0.5;
    else if (s.size() >= 2) {
      int64_t fanIn = n->type.numel() / s[0];
      t *= std::sqrt(3.0 / (double)fanIn);
    }
  }
  return feeds;
}

void directionalCheck(const std::string &file, const CnnOptions &opts) {
  auto m = parseCnnFile(example(file), opts);
  Function &f = m->main();
  std::string text = print(f);
  std::vector<std::string> wrt;
  for (const auto &n : f.nodes())
    if (n->op == OpKind::Param && n->getInt("trainable"))
      wrt.push_back(n->name);
  Feeds feeds = networkFeeds(f, 1);
  Feeds g = gradients(text, wrt, feeds);
  std::mt19937_64 rng(99);
  for (int dir = 0; dir < 3; ++dir) {
    Feeds plus = feeds, minus = feeds;
    double h = 1e-7, dot = 0; // small: ReLU inputs and pooling gaps in deep nets get close
    for (const std::string &w : wrt) {
      interp::Tensor<double> v = xt::zeros_like(feeds.at(w));
      for (double &e : v)
        e = (rng() & 1) ? 1.0 : -1.0;
      dot += xt::sum(g.at(w) * v)();
      plus[w] += h * v;
      minus[w] -= h * v;
    }
    double fd = (lossAt(f, plus) - lossAt(f, minus)) / (2 * h);
    INFO(fmt::format("{} direction {}: <g, v> = {:.12g}, central difference {:.12g}", file, dir, dot, fd));
    CHECK(std::abs(dot - fd) <= 1e-6 * std::abs(fd));
  }
}

} // namespace

TEST_CASE("directional gradient checks of the example networks (f64)", "[autodiff][networks]") {
  CnnOptions o;
  o.training = true;
  o.batch = 2;
  for (const char *file : {"mnist_base.cnn", "mnist_bn.cnn", "mnist_base_dropout.cnn", "mnist_bn_dropout.cnn",
                           "mnist_sk.cnn", "resnet_mnist.cnn"}) {
    SECTION(file) { directionalCheck(file, o); }
  }
  SECTION("SK-0.5") {
    o.width = 0.5;
    directionalCheck("mnist_sk.cnn", o);
  }
}

TEST_CASE("the training step is IR: it cites the seed, prints and parses back", "[autodiff][ir]") {
  CnnOptions o;
  o.training = true;
  o.batch = 4;
  auto m = parseCnnFile(example("mnist_bn_dropout.cnn"), o);
  buildTrainStep(m->main());
  std::string text = print(*m);
  CHECK_THAT(text, Catch::StartsWith("func @train_step {"));
  for (const char *s : {"im2row(", "row2im(", "// eq. 35", "// eq. 46", "// eq. 56", "// eq. 14",
                        "maxpool_grad(", "bn_var_grad(", "= update(%conv1.w,", "%lr = input : f32[]",
                        "%step = input : i64[]", "count_correct("})
    CHECK_THAT(text, Catch::Contains(s));
  CHECK(print(*parseModule(text, "train.ir")) == text);
  // Outputs: loss, correct, then updates only.
  const auto &outs = m->main().outputs();
  REQUIRE(outs.size() > 2);
  CHECK(outs[0]->op == OpKind::SoftmaxXent);
  CHECK(outs[1]->op == OpKind::CountCorrect);
  for (size_t i = 2; i < outs.size(); ++i)
    CHECK(outs[i]->op == OpKind::Update);
}

TEST_CASE("errors: no loss, a loss on the wrong shape, labels out of range", "[autodiff][errors]") {
  auto m = parseCnnFile(example("vgg16.cnn"), CnnOptions{.batch = 1, .inputHW = std::make_pair(32, 32), .training = true});
  CHECK_THROWS_WITH(buildTrainStep(m->main()), Catch::Contains("has no loss to minimise"));

  CHECK_THROWS_WITH(parseModule("func @t {\n  %x = param : f32[2,3]\n  %t = input : f32[2,4]\n"
                                "  %loss = l2_loss(%x, %t) : f32[]\n  return %loss\n}\n", "bad.ir"),
                    Catch::Contains("bad.ir:4:3: error: %loss (l2_loss): prediction f32[2,3] and target f32[2,4] differ in shape"));
  auto nl = parseModule("func @t {\n  %x = param : f32[2,3]\n  %y = relu(%x) : f32[2,3]\n  return %y\n}\n", "t.ir");
  CHECK_THROWS_WITH(appendGradients(nl->main(), nl->main().find("y"), {nl->main().find("x")}),
                    Catch::Contains("%y (relu): a loss must be a float scalar, got f32[2,3]"));

  CnnOptions o;
  o.training = true;
  o.batch = 2;
  auto t = parseCnnFile(example("mnist_base.cnn"), o);
  buildTrainStep(t->main());
  std::map<std::string, interp::Tensor<double>> state;
  for (const auto &n : t->main().nodes())
    if (n->op == OpKind::Param) {
      std::vector<double> v = initParam(*n, 0);
      std::vector<size_t> shape(n->type.shape.begin(), n->type.shape.end());
      state[n->name] = xt::adapt(v, shape);
    }
  std::map<std::string, interp::Tensor<double>> batch{{"data", xt::zeros<double>({2, 1, 28, 28})},
                                                      {"label", interp::Tensor<double>({3.0, 10.0})}};
  CHECK_THROWS_WITH(interp::trainStep<double>(t->main(), state, batch, {}, 0), Catch::Contains("label"));
}

namespace {

// 32 real MNIST training digits (data/mnist, scripts/fetch-data.sh), pixels / 255 minus the
// batch mean, as [32,1,28,28], and their labels.
std::pair<interp::Tensor<float>, interp::Tensor<float>> mnistBatch() {
  std::string dir = std::string(CNNC_SOURCE_DIR) + "/data/mnist/";
  io::Array images = io::readIdx(dir + "train-images-idx3-ubyte");
  io::Array labels = io::readIdx(dir + "train-labels-idx1-ubyte");
  REQUIRE(images.shape.size() == 3);
  // Every 250th digit: the training file is sorted by class, so this takes all ten.
  interp::Tensor<float> x = xt::zeros<float>({32, 1, 28, 28}), y = xt::zeros<float>({32});
  for (size_t i = 0; i < 32; ++i) {
    size_t k = i * 250;
    for (size_t p = 0; p < 784; ++p)
      x.data()[i * 784 + p] = images.data[k * 784 + p] / 255.0f;
    y(i) = labels.data[k];
  }
  x -= xt::mean(x)();
  return {x, y};
}

std::map<std::string, interp::Tensor<float>> trainSmallNet(int steps, std::vector<double> &losses, int64_t &correct) {
  const char *net = "network tiny\ninput data 1x28x28\n"
                    "conv 8 5x5 init he\nrelu\npool max 2x2 stride 2\n"
                    "conv 16 5x5 init he\nrelu\npool max 2x2 stride 2\n"
                    "fc 10 init xavier\nloss softmax\n";
  CnnOptions o;
  o.training = true;
  o.batch = 32;
  auto m = parseCnn(net, "tiny.cnn", o);
  Function &f = m->main();
  buildTrainStep(f);
  runPipeline(*m);
  std::map<std::string, interp::Tensor<float>> state;
  for (const auto &n : f.nodes())
    if (n->op == OpKind::Param) {
      std::vector<double> v = initParam(*n, 2026);
      std::vector<size_t> shape(n->type.shape.begin(), n->type.shape.end());
      state[n->name] = xt::cast<float>(xt::adapt(v, shape));
    }
  auto [x, y] = mnistBatch();
  std::map<std::string, interp::Tensor<float>> batch{{"data", x}, {"label", y}};
  interp::Hyper h{.lr = 0.05, .momentum = 0.9, .weightDecay = 5e-4};
  for (int s = 0; s < steps; ++s) {
    interp::StepResult r = interp::trainStep<float>(f, state, batch, h, (uint64_t)s);
    losses.push_back(r.loss);
    correct = r.correct;
  }
  return state;
}

} // namespace

TEST_CASE("overfitting 32 real MNIST digits: loss < 1e-2 and 100% within 60 steps, bit-reproducible",
          "[autodiff][training]") {
  std::vector<double> losses, again;
  int64_t correct = 0, correctAgain = 0;
  auto a = trainSmallNet(60, losses, correct);
  INFO(fmt::format("losses: first {:.4f}, last {:.6f}", losses.front(), losses.back()));
  CHECK(losses.front() > 1.0);
  // The step's outputs describe the parameters it received: one more step reports the state
  // after the 60th update.
  CHECK(losses.back() < 1e-2);
  CHECK(correct == 32);
  auto b = trainSmallNet(60, again, correctAgain);
  CHECK(losses == again);
  REQUIRE(a.size() == b.size());
  for (auto &[name, t] : a) {
    INFO(name);
    const auto &u = b.at(name);
    REQUIRE(t.size() == u.size());
    CHECK(std::memcmp(t.data(), u.data(), t.size() * sizeof(float)) == 0);
  }
}
