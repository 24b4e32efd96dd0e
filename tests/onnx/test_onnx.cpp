// The ONNX frontend: corrupt and truncated files, one message listing every unsupported
// operator/attribute, opset differences, training-mode import, export + checker + reimport
// of every example network (identical outputs), and the CLI's ONNX paths.
#include "frontend/CnnFrontend.h"
#include "frontend/OnnxImport.h"
#include "interp/Interpreter.h"
#include "interp/Train.h"
#include "ir/ParamInit.h"
#include "passes/Autodiff.h"
#include "passes/Passes.h"
#include "OnnxTestUtil.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <onnx/onnx_pb.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <sys/wait.h>
#include <xtensor/xadapt.hpp>

namespace fs = std::filesystem;
using namespace cnnc;

namespace {

const std::string kData = "/usr/share/libonnx-testdata/data";

std::string slurp(const fs::path &p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

fs::path tmpDir() {
  fs::path d = fs::temp_directory_path() / fmt::format("cnnc-onnx-test-{}", ::getpid());
  fs::create_directories(d);
  return d;
}

std::string errorOf(const std::function<void()> &f) {
  try {
    f();
  } catch (const Error &e) {
    return e.what();
  }
  return "<no error>";
}

} // namespace

using namespace cnnc::onnxtest;

TEST_CASE("corrupt, truncated and empty files give one clear error", "[onnx]") {
  const std::string good = slurp(kData + "/pytorch-converted/test_Conv2d/model.onnx");
  REQUIRE(good.size() > 100);
  CHECK_THAT(errorOf([&] { importOnnxBytes("", "empty.onnx"); }), Catch::Contains("empty file"));
  CHECK_THAT(
      errorOf([&] { importOnnxBytes("this is not protobuf at all \xff\xff\xff", "junk.onnx"); }),
      Catch::Contains("junk.onnx") && Catch::Contains("not a valid ONNX model"));
  // Truncation anywhere: never a crash, always a cnnc::Error naming the file.
  for (size_t cut : {good.size() / 4, good.size() / 2, good.size() - 7, good.size() - 1}) {
    std::string msg = errorOf([&] { importOnnxBytes(good.substr(0, cut), "cut.onnx"); });
    INFO(cut << ": " << msg);
    CHECK_THAT(msg, Catch::Contains("cut.onnx"));
  }
  CHECK_THAT(errorOf([&] { importOnnx("/nonexistent/model.onnx"); }),
             Catch::Contains("cannot open"));
  CHECK_THAT(errorOf([&] { readOnnxTensorFile("/nonexistent/x.pb"); }),
             Catch::Contains("cannot open"));
  fs::path bad = tmpDir() / "bad.pb";
  std::ofstream(bad, std::ios::binary)
      << std::string("\x08\x02\x08\x03\x10\x01\x4a\x04\x00\x00", 10);
  CHECK_THAT(errorOf([&] { readOnnxTensorFile(bad.string()); }), Catch::Contains("bad.pb"));
}

TEST_CASE("every unsupported operator, attribute and type is listed in one message", "[onnx]") {
  ModelBuilder b;
  b.input("x", {1, 3, 8, 8});
  b.input("flag", {}, onnx::TensorProto::BOOL);
  b.node("ThresholdedRelu", {"x"}, {"a"}, "leaky");
  b.node("Relu", {"a"}, {"b"}, "after_leaky"); // depends on an unsupported node: not repeated
  auto *p = b.node("MaxPool", {"x"}, {"c", "idx"}, "pool_with_indices");
  ModelBuilder::attr(p, "kernel_shape", 0);
  p->mutable_attribute(0)->set_type(onnx::AttributeProto::INTS);
  p->mutable_attribute(0)->add_ints(2), p->mutable_attribute(0)->add_ints(2);
  auto *q = b.node("AveragePool", {"x"}, {"d"}, "pool_bad_pad");
  auto *k = q->add_attribute();
  k->set_name("kernel_shape"), k->set_type(onnx::AttributeProto::INTS), k->add_ints(2),
      k->add_ints(2);
  ModelBuilder::attr(q, "auto_pad", std::string("SOMETIMES"));
  auto *r = b.node("Relu", {"x"}, {"e"}, "relu_odd_attr");
  ModelBuilder::attr(r, "frobnicate", 1);
  b.node("Einsum", {"x", "x"}, {"f"}, "einsum");
  b.output("b", {1, 3, 8, 8});
  b.output("c", {1, 3, 4, 4});
  std::string msg = errorOf([&] { importOnnxBytes(b.bytes(), "many.onnx"); });
  INFO(msg);
  CHECK_THAT(msg, Catch::Contains("6 problems"));
  CHECK_THAT(msg, Catch::Contains("graph input 'flag': bool tensors are not supported"));
  CHECK_THAT(msg, Catch::Contains(
                      "node 'leaky' (ThresholdedRelu): operator ThresholdedRelu is not supported"));
  CHECK_THAT(msg, Catch::Contains("node 'pool_with_indices' (MaxPool): output 1 (Indices, int64)"));
  CHECK_THAT(msg, Catch::Contains(
                      "node 'pool_bad_pad' (AveragePool): attribute 'auto_pad' = 'SOMETIMES'"));
  CHECK_THAT(
      msg, Catch::Contains("node 'relu_odd_attr' (Relu): attribute 'frobnicate' is not supported"));
  CHECK_THAT(msg, Catch::Contains("node 'einsum' (Einsum): operator Einsum"));
  CHECK_THAT(msg, !Catch::Contains("after_leaky"));
}

TEST_CASE("symbolic batch dimensions bind to the batch option", "[onnx]") {
  ModelBuilder b;
  b.input("x", {-1, 4});
  b.init("w", {3, 4}, std::vector<float>(12, 0.5f));
  b.init("bias", {3}, {1, 2, 3});
  auto *g = b.node("Gemm", {"x", "w", "bias"}, {"y"});
  ModelBuilder::attr(g, "transB", 1);
  b.node("Softmax", {"y"}, {"p"});
  b.output("p", {-1, 3});
  OnnxOptions o;
  o.batch = 5;
  OnnxModel m = importOnnxBytes(b.bytes(), "gemm.onnx", o);
  const Function &f = m.module->main();
  CHECK(f.find("x")->type.str() == "f32[5,4]");
  CHECK(f.find("y")->op == OpKind::FullyConnected); // the Linear pattern is cnnc's fc
  CHECK(m.weights.at("w").values.size() == 12);

  // Training: batch statistics and the loss named by the options; the trailing Softmax goes.
  o.training = true;
  OnnxModel t = importOnnxBytes(b.bytes(), "gemm.onnx", o);
  const Function &tf = t.module->main();
  REQUIRE(tf.outputs().size() == 1);
  CHECK(tf.outputs()[0]->op == OpKind::SoftmaxXent);
  CHECK(tf.outputs()[0]->operands[0]->name == "y");
  CHECK(tf.find("label")->type.str() == "i32[5]");
}

// PyTorch's training-mode export gives Dropout its training_mode as a bool Constant (raw
// bytes); other writers use int32_data. cnnc reads bool constants as 0/1.
TEST_CASE("a Dropout's training_mode as a bool constant pins training or inference", "[onnx]") {
  for (bool raw : {true, false})
    for (int mode : {0, 1}) {
      DYNAMIC_SECTION((raw ? "raw" : "int32_data") << " training_mode=" << mode) {
        ModelBuilder b;
        b.input("x", {1, 2, 4, 4});
        b.init("ratio", {}, {0.25f});
        auto *a = b.node("Constant", {}, {"tm"})->add_attribute();
        a->set_name("value"), a->set_type(onnx::AttributeProto::TENSOR);
        auto *t = a->mutable_t();
        t->set_data_type(onnx::TensorProto::BOOL);
        if (raw)
          t->set_raw_data(std::string(1, char(mode)));
        else
          t->add_int32_data(mode);
        b.node("Dropout", {"x", "ratio", "tm"}, {"y"});
        b.output("y", {1, 2, 4, 4});
        OnnxModel m = importOnnxBytes(b.bytes(), "dropout.onnx");
        const Node *d = nullptr;
        for (const Node *n : m.module->main().nodeList())
          if (n->op == OpKind::Dropout)
            d = n;
        REQUIRE(d);
        CHECK(d->getFloat("rate") == Approx(0.25));
        CHECK(d->getInt("training") == mode);
      }
    }
  // a bool tensor's bytes must match its dims
  ModelBuilder b;
  b.input("x", {1, 2});
  auto *a = b.node("Constant", {}, {"tm"})->add_attribute();
  a->set_name("value"), a->set_type(onnx::AttributeProto::TENSOR);
  a->mutable_t()->set_data_type(onnx::TensorProto::BOOL);
  a->mutable_t()->add_dims(2);
  a->mutable_t()->set_raw_data(std::string(3, '\1'));
  b.node("Dropout", {"x", "", "tm"}, {"y"});
  b.output("y", {1, 2});
  CHECK_THAT(errorOf([&] { importOnnxBytes(b.bytes(), "bad.onnx"); }),
             Catch::Contains("raw data holds 3 bytes, dims [2] of bool need 2"));
}

TEST_CASE("names are sanitized uniquely and mapped back", "[onnx]") {
  ModelBuilder b;
  b.input("input:0", {1, 4});
  b.node("Relu", {"input:0"}, {"out/relu"});
  b.node("Sigmoid", {"out/relu"}, {"out_relu"});
  b.output("out_relu", {1, 4});
  b.output("out/relu", {1, 4});
  OnnxModel m = importOnnxBytes(b.bytes(), "names.onnx");
  CHECK(m.irName.at("input:0") == "input_0");
  CHECK(m.irName.at("out/relu") != m.irName.at("out_relu"));
  CHECK(m.onnxName.at(m.irName.at("out/relu")) == "out/relu");
  const Function &f = m.module->main();
  REQUIRE(f.outputs().size() == 2);
  CHECK(f.outputs()[1]->name == m.irName.at("out/relu"));
}

TEST_CASE("opset 6 BatchNormalization and broadcasting Add follow the old rules", "[onnx]") {
  ModelBuilder b(6);
  b.input("x", {2, 3, 2, 2});
  for (const char *n : {"s", "bb", "m", "v"})
    b.init(n, {3}, {1, 2, 3});
  b.init("c", {3}, {10, 20, 30});
  auto *bn = b.node("BatchNormalization", {"x", "s", "bb", "m", "v"}, {"y"});
  ModelBuilder::attr(bn, "is_test", 1);
  auto *add = b.node("Add", {"y", "c"}, {"z"});
  ModelBuilder::attr(add, "broadcast", 1);
  ModelBuilder::attr(add, "axis", 1); // c aligned with the channel axis, not the last one
  b.output("z", {2, 3, 2, 2});
  OnnxModel m = importOnnxBytes(b.bytes(), "old.onnx");
  const Function &f = m.module->main();
  CHECK(f.find("y")->op == OpKind::BatchNorm);
  CHECK(f.find("z")->operands[1]->type.str() == "f32[3,1,1]");
}

TEST_CASE("training-mode BatchNormalization with all five outputs named imports in order",
          "[onnx]") {
  // torch.onnx.export(..., training=TRAINING) names outputs 1-4 (running and batch statistics)
  // though nothing reads them; output 3, the batch mean, is what the normalisation uses, so
  // naming it must not move it after its user.
  ModelBuilder b(13);
  b.input("x", {2, 3, 2, 2});
  for (const char *n : {"s", "bb", "m", "v"})
    b.init(n, {3}, {1, 2, 3});
  b.node("BatchNormalization", {"x", "s", "bb", "m", "v"}, {"y", "rm", "rv", "bm", "bv"});
  b.output("y", {2, 3, 2, 2});
  OnnxModel m = importOnnxBytes(b.bytes(), "bn_train.onnx");
  const Function &f = m.module->main();
  const Node *y = f.outputs()[0];
  REQUIRE(y->op == OpKind::BatchNorm);
  CHECK(y->operands[3]->name == "bm");
  CHECK(y->operands[3]->op == OpKind::BnMean);
  CHECK(y->operands[4]->name == "bv");
  verify(f); // every operand defined before its use
}

TEST_CASE("a training import updates BatchNormalization's running statistics with its momentum",
          "[onnx][training]") {
  // PyTorch's exported BN leaves outputs 1 and 2 unused; cnnc's training step keeps the
  // initializers m and v as state: r <- momentum r + (1 - momentum) batch_stat, the variance
  // unbiased (n/(n-1), n = N*H*W = 8), as torch.nn.BatchNorm2d (momentum 0.2 there).
  ModelBuilder b(13);
  b.input("x", {2, 3, 2, 2});
  b.init("s", {3}, {1, 2, 3});
  b.init("bb", {3}, {0, 0, 0});
  b.init("m", {3}, {0.5f, -1, 2});
  b.init("v", {3}, {1, 2, 0.5f});
  auto *bn = b.node("BatchNormalization", {"x", "s", "bb", "m", "v"}, {"y", "rm", "rv", "bm", "bv"});
  ModelBuilder::attrFloat(bn, "momentum", 0.8f);
  b.output("y", {2, 3, 2, 2});
  OnnxOptions o;
  o.batch = 2;
  o.training = true;
  o.loss = "softmax";
  OnnxModel m = importOnnxBytes(b.bytes(), "bn_running.onnx", o);
  Function &f = m.module->main();
  CHECK(f.find("m")->getInt("trainable") == 0);
  buildTrainStep(f);
  std::map<std::string, interp::Tensor<double>> state, batch;
  for (const auto &n : f.nodes())
    if (n->op == OpKind::Param) {
      std::vector<size_t> shape(n->type.shape.begin(), n->type.shape.end());
      auto w = m.weights.find(n->name);
      std::vector<double> v = w != m.weights.end() ? std::vector<double>(w->second.values.begin(), w->second.values.end())
                                                   : initParam(*n, 1);
      state[n->name] = xt::adapt(v, shape);
    }
  interp::Tensor<double> x = xt::zeros<double>({2, 3, 2, 2});
  for (size_t i = 0; i < x.size(); ++i)
    x.data()[i] = std::sin(0.7 * (double)i) * (1 + (double)(i % 3));
  batch["x"] = x;
  batch["label"] = interp::Tensor<double>({2}, 1.0);
  const auto m0 = state.at("m"), v0 = state.at("v");
  interp::trainStep<double>(f, state, batch, interp::Hyper{}, 0);
  for (size_t c = 0; c < 3; ++c) {
    double sum = 0, sq = 0;
    for (size_t n = 0; n < 2; ++n)
      for (size_t k = 0; k < 4; ++k)
        sum += x(n, c, k / 2, k % 2);
    const double mean = sum / 8;
    for (size_t n = 0; n < 2; ++n)
      for (size_t k = 0; k < 4; ++k)
        sq += (x(n, c, k / 2, k % 2) - mean) * (x(n, c, k / 2, k % 2) - mean);
    // the model's momentum is the f32 0.8 the file holds
    const double keep = (double)0.8f;
    CHECK(state.at("m")(c) == Approx(keep * m0(c) + (1 - keep) * mean).epsilon(1e-7));
    CHECK(state.at("v")(c) == Approx(keep * v0(c) + (1 - keep) * sq / 7).epsilon(1e-7));
  }
}

TEST_CASE("Reshape's allowzero: imported as written, exported at opset 14, zero-size values",
          "[onnx][zero]") {
  auto model = [](std::vector<int64_t> in, std::vector<int64_t> spec, int64_t allowZero) {
    ModelBuilder b(14);
    b.input("x", in);
    auto *s = b.g->add_initializer();
    s->set_name("shape"), s->set_data_type(onnx::TensorProto::INT64);
    s->add_dims((int64_t)spec.size());
    for (int64_t v : spec)
      s->add_int64_data(v);
    auto *r = b.node("Reshape", {"x", "shape"}, {"r"}, "reshape_it");
    if (allowZero >= 0)
      ModelBuilder::attr(r, "allowzero", allowZero);
    b.node("Relu", {"r"}, {"y"});
    b.output("y", {});
    return b.bytes();
  };
  // ONNX's test_reshape_allowzero_reordered plus a Relu: the spec and allowzero reach the IR.
  OnnxModel m = importOnnxBytes(model({0, 3, 4}, {3, 4, 0}, 1), "allowzero.onnx");
  const Function &f = m.module->main();
  const Node *r = f.outputs()[0]->operands[0];
  CHECK(r->op == OpKind::Reshape);
  CHECK(r->getInt("allowzero") == 1);
  CHECK(r->type.str() == "f32[3,4,0]");
  auto out = interp::run<float>(f, {{"x", interp::Tensor<float>::from_shape({0, 3, 4})}});
  CHECK(out.at(f.outputs()[0]->name).shape() == std::vector<size_t>{3, 4, 0});
  // Without allowzero, 0 copies the input's dim: the spec is kept, the rule resolves it.
  OnnxModel c = importOnnxBytes(model({2, 3, 4}, {0, -1}, -1), "copy.onnx");
  const Node *rc = c.module->main().outputs()[0]->operands[0];
  CHECK(rc->getInts("shape") == std::vector<int64_t>{0, -1});
  CHECK(rc->type.str() == "f32[2,12]");
  // 0 and -1 together under allowzero=1: the ONNX spec forbids it; named by node.
  CHECK_THAT(errorOf([&] { importOnnxBytes(model({0, 3, 4}, {0, -1}, 1), "bad.onnx"); }),
             Catch::Contains("node 'reshape_it' (Reshape): cannot reshape f32[0,3,4] into "
                             "[0,-1]: 'shape' [0,-1] holds both 0 and -1 with allowzero=1"));
  // A negative graph-input dimension is still a problem.
  onnx::ModelProto neg;
  REQUIRE(neg.ParseFromString(model({2, 3, 4}, {-1}, 0)));
  neg.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape()
      ->mutable_dim(1)->set_dim_value(-3);
  CHECK_THAT(errorOf([&] { importOnnxBytes(neg.SerializeAsString(), "neg.onnx"); }),
             Catch::Contains("graph input 'x': shape [2,-3,4] has a negative dimension"));

  // Export writes allowzero (new in opset 14, so the model says opset 14) and reimports to
  // the same IR types; a model without it stays at opset 13.
  const std::string bytes = exportOnnxBytes(f, {}); // runs onnx::checker::check_model
  onnx::ModelProto back;
  REQUIRE(back.ParseFromString(bytes));
  CHECK(back.opset_import(0).version() == 14);
  CHECK(exportOpset(c.module->main()) == 13);
  bool wrote = false;
  for (const auto &n : back.graph().node())
    for (const auto &a : n.attribute())
      wrote |= n.op_type() == "Reshape" && a.name() == "allowzero" && a.i() == 1;
  CHECK(wrote);
  OnnxOptions empty; // the batch is exported symbolic; bind the empty one by name
  empty.inputShapes["x"] = {0, 3, 4};
  OnnxModel again = importOnnxBytes(bytes, "again.onnx", empty);
  CHECK(again.module->main().outputs()[0]->type.str() == "f32[3,4,0]");
}

TEST_CASE("export: every example network passes the ONNX checker and reimports identically",
          "[onnx][export]") {
  for (const auto &e : fs::directory_iterator(fs::path(CNNC_SOURCE_DIR) / "examples")) {
    if (e.path().extension() != ".cnn")
      continue;
    DYNAMIC_SECTION(e.path().filename().string()) {
      CnnOptions co;
      co.batch = 2;
      if (e.path().stem() == "vgg16")
        co.inputHW = std::make_pair(int64_t(32), int64_t(32)); // keeps the interpreter quick
      auto mod = parseCnnFile(e.path().string(), co);
      const Function &f = mod->main();
      std::map<std::string, OnnxTensor> weights;
      std::map<std::string, interp::Tensor<float>> feeds;
      uint64_t seed = 1;
      for (const auto &n : f.nodes()) {
        if (n->op == OpKind::Param) {
          // Seeded init, plus noise so that zero-initialised biases and statistics matter.
          std::vector<double> v = initParam(*n, seed);
          interp::Tensor<float> r = randomTensor(n->type.shape, ++seed);
          // (variances stay positive: a NaN output would compare unequal to itself)
          const bool var = n->name.find("var") != std::string::npos;
          for (size_t i = 0; i < v.size(); ++i) {
            const double x = v[i] + (var ? 1.5 : 0.1) * r.data()[i];
            v[i] = (double)(float)(var ? std::abs(x) + 0.05 : x);
          }
          weights[n->name] = OnnxTensor{n->name, n->type.dtype, n->type.shape, v};
          interp::Tensor<float> t = interp::Tensor<float>::from_shape(
              std::vector<size_t>(n->type.shape.begin(), n->type.shape.end()));
          std::copy(v.begin(), v.end(), t.begin());
          feeds[n->name] = t;
        } else if (n->op == OpKind::Input) {
          feeds[n->name] = randomTensor(n->type.shape, 99);
        }
      }
      // f as lowered, then after the pipeline (fused epilogues export as their ops: a conv's
      // residual as Conv + Add, its ReLU as Relu)
      // (VGG-16 once: its pipeline folds nothing, and its interpreter runs dominate the test)
      const bool pipelined = GENERATE(false, true);
      INFO((pipelined ? "pipelined" : "as lowered"));
      if (pipelined && e.path().stem() == "vgg16")
        return;
      if (pipelined)
        runPipeline(*mod);
      std::string bytes = exportOnnxBytes(f, weights); // runs onnx::checker::check_model
      // The batch is exported symbolic ("N"): bind it to the original's.
      OnnxOptions oo;
      oo.batch = co.batch;
      OnnxModel back = importOnnxBytes(bytes, e.path().stem().string() + ".onnx", oo);
      const Function &g = back.module->main();
      std::map<std::string, interp::Tensor<float>> feeds2;
      for (const auto &[name, t] : back.weights) {
        interp::Tensor<float> v =
            interp::Tensor<float>::from_shape(std::vector<size_t>(t.shape.begin(), t.shape.end()));
        std::copy(t.values.begin(), t.values.end(), v.begin());
        feeds2[name] = v;
      }
      for (const auto &n : g.nodes())
        if (n->op == OpKind::Input)
          feeds2[n->name] = feeds.at(n->name);
      auto want = interp::run<float>(f, feeds);
      auto got = interp::run<float>(g, feeds2);
      REQUIRE(f.outputs().size() == g.outputs().size());
      for (size_t i = 0; i < f.outputs().size(); ++i) {
        const auto &a = want.at(f.outputs()[i]->name), &b2 = got.at(g.outputs()[i]->name);
        REQUIRE(a.shape() == b2.shape());
        // Same ops in the same order: the same bits.
        CHECK(std::equal(a.begin(), a.end(), b2.begin()));
      }
      // Any other batch binds too.
      oo.batch = 3;
      CHECK(importOnnxBytes(bytes, "rebatched.onnx", oo).module->main().outputs()[0]->type.shape[0] == 3);
    }
  }
}

TEST_CASE("softplus exports as ONNX Softplus and reimports to the same values", "[onnx][export]") {
  auto mod = parseCnn("input x 3x4x5\nsoftplus\n", "sp.cnn");
  const Function &f = mod->main();
  const std::string bytes = exportOnnxBytes(f, {}); // runs onnx::checker::check_model
  onnx::ModelProto proto;
  REQUIRE(proto.ParseFromString(bytes));
  REQUIRE(proto.graph().node_size() == 1);
  CHECK(proto.graph().node(0).op_type() == "Softplus");
  OnnxModel back = importOnnxBytes(bytes, "sp.onnx");
  const Function &g = back.module->main();
  const Node *y = g.outputs().at(0);
  CHECK(y->op == OpKind::Softplus);
  std::map<std::string, interp::Tensor<float>> feeds{{"x", randomTensor({1, 3, 4, 5}, 5)}};
  auto a = interp::run<float>(f, feeds), b = interp::run<float>(g, feeds);
  const bool same = a.begin()->second == b.begin()->second; // xtensor: every element equal
  CHECK(same);
}

TEST_CASE("export rejects what has no ONNX inference form", "[onnx][export]") {
  CnnOptions co;
  co.training = true;
  auto mod = parseCnnFile(std::string(CNNC_SOURCE_DIR) + "/examples/mnist_bn.cnn", co);
  std::map<std::string, OnnxTensor> w;
  for (const auto &n : mod->main().nodes())
    if (n->op == OpKind::Param)
      w[n->name] = OnnxTensor{n->name, n->type.dtype, n->type.shape, initParam(*n, 0)};
  CHECK_THAT(errorOf([&] { exportOnnxBytes(mod->main(), w); }),
             Catch::Contains("has no ONNX form"));
  auto inf = parseCnnFile(std::string(CNNC_SOURCE_DIR) + "/examples/mnist_bn.cnn");
  CHECK_THAT(errorOf([&] { exportOnnxBytes(inf->main(), {}); }),
             Catch::Contains("no weight for parameter"));
}

TEST_CASE("cnnc run/export take .onnx, ONNX names and .pb tensors", "[onnx][cli]") {
  fs::path d = tmpDir();
  auto sh = [&](const std::string &args) {
    std::string cmd = fmt::format("cd {} && {} {} >{} 2>&1", CNNC_SOURCE_DIR, CNNC_EXE, args,
                                  (d / "log").string());
    int status = std::system(cmd.c_str());
    return std::make_pair(WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(d / "log"));
  };
  const std::string t = kData + "/node/test_gemm_all_attributes";
  auto [code, log] = sh(fmt::format("run {0}/model.onnx --input a={0}/test_data_set_0/input_0.pb "
                                    "--input b={0}/test_data_set_0/input_1.pb --input "
                                    "c={0}/test_data_set_0/input_2.pb --output y={1}",
                                    t, (d / "y.pb").string()));
  INFO(log);
  REQUIRE(code == 0);
  CHECK_THAT(log, Catch::Contains("%y : [3,5]"));
  OnnxTensor got = readOnnxTensorFile((d / "y.pb").string());
  OnnxTensor want = readOnnxTensorFile(t + "/test_data_set_0/output_0.pb");
  REQUIRE(got.shape == want.shape);
  for (size_t i = 0; i < got.values.size(); ++i)
    CHECK(std::abs(got.values[i] - want.values[i]) <= 1e-7 + 1e-3 * std::abs(want.values[i]));

  auto [c2, l2] = sh(fmt::format("export examples/mnist_bn.cnn -o {}", (d / "bn.onnx").string()));
  INFO(l2);
  CHECK(c2 == 0);
  auto [c3, l3] = sh(fmt::format("info {}", (d / "bn.onnx").string()));
  CHECK(c3 == 0);
  CHECK_THAT(l3, Catch::Contains("batchnorm"));
  auto [c4, l4] =
      sh(fmt::format("run {0}/model.onnx --input nope={0}/test_data_set_0/input_0.pb", t));
  CHECK(c4 == 1);
}

TEST_CASE("cnnc run: a zero-size output on both backends, written as .pb",
          "[onnx][cli][zero]") {
  fs::path d = tmpDir();
  const std::string t = kData + "/node/test_reshape_allowzero_reordered";
  for (const char *backend : {"interp", "jit"}) {
    INFO(backend);
    const std::string log = (d / "zlog").string();
    std::string cmd = fmt::format(
        "cd {0} && {1} run {2}/model.onnx --backend {3} --input data={2}/test_data_set_0/input_0.pb "
        "--input shape={2}/test_data_set_0/input_1.pb --output reshaped={4} >{5} 2>&1",
        CNNC_SOURCE_DIR, CNNC_EXE, t, backend, (d / "r.pb").string(), log);
    int status = std::system(cmd.c_str());
    INFO(slurp(log));
    REQUIRE((WIFEXITED(status) && WEXITSTATUS(status) == 0));
    CHECK_THAT(slurp(log), Catch::Contains("%reshaped : [3,4,0]") &&
                               Catch::Contains("(no elements)"));
    OnnxTensor got = readOnnxTensorFile((d / "r.pb").string());
    CHECK(got.shape == Shape{3, 4, 0});
    CHECK(got.values.empty());
  }
}

// Issue 14: the operators PyTorch's exporter writes for torchvision's families, in one graph
// with the static-shape subgraph (Shape -> Gather -> Unsqueeze -> Concat -> Reshape) that is
// folded at import; export writes every new op back and the reimport computes the same.
TEST_CASE("torchvision's operators import, fold static shapes and export back", "[onnx][export]") {
  ModelBuilder b;
  b.input("x", {2, 4, 6, 6});
  b.constant("pads", {8}, {0, 0, 1, 1, 0, 0, 2, 1});
  ModelBuilder::attr(b.node("Pad", {"x", "pads"}, {"p"}), "mode", std::string("reflect"));
  b.constant("lo", {}, {0}, onnx::TensorProto::FLOAT);
  b.constant("hi", {}, {0.5}, onnx::TensorProto::FLOAT);
  b.node("Clip", {"p", "lo", "hi"}, {"c"});
  ModelBuilder::attrFloat(b.node("HardSigmoid", {"p"}, {"h"}), "alpha", 1.0f / 6);
  b.node("Mul", {"c", "h"}, {"hs"});
  ModelBuilder::attrFloat(b.node("LeakyRelu", {"hs"}, {"l"}), "alpha", 0.2f);
  auto *rm = b.node("ReduceMean", {"l"}, {"m"});
  ModelBuilder::attrInts(rm, "axes", {2, 3});
  ModelBuilder::attrInts(b.node("Transpose", {"l"}, {"t"}), "perm", {0, 2, 3, 1});
  b.constant("split", {2}, {1, 3});
  ModelBuilder::attr(b.node("Split", {"t", "split"}, {"s1", "s2"}), "axis", int64_t(3));
  b.constant("starts", {1}, {1});
  b.constant("ends", {1}, {-1});
  b.constant("axes", {1}, {1});
  b.node("Slice", {"s2", "starts", "ends", "axes"}, {"sl"});
  b.constant("ax3", {1}, {3});
  b.node("Squeeze", {"s1", "ax3"}, {"sq"});
  b.constant("ax1", {1}, {1});
  b.node("Unsqueeze", {"sq", "ax1"}, {"us"});
  b.node("Shape", {"x"}, {"shape"});
  b.constant("one", {}, {1});
  b.node("Gather", {"shape", "one"}, {"c4"});
  b.constant("ax0", {1}, {0});
  b.node("Unsqueeze", {"c4", "ax0"}, {"c4v"});
  b.constant("minus1", {1}, {-1});
  ModelBuilder::attr(b.node("Concat", {"minus1", "c4v"}, {"newshape"}), "axis", int64_t(0));
  b.node("Reshape", {"m", "newshape"}, {"rm"});
  b.node("HardSwish", {"rm"}, {"out"});
  b.m.mutable_opset_import(0)->set_version(14); // HardSwish
  b.output("out", {2, 4});
  b.output("sl", {2, 7, 8, 3});
  b.output("us", {2, 1, 9, 8});

  OnnxModel m = importOnnxBytes(b.bytes(), "tv.onnx");
  const Function &f = m.module->main();
  CHECK(f.find("p")->op == OpKind::Pad);
  CHECK(f.find("p")->type.str() == "f32[2,4,9,8]");
  CHECK(f.find("c")->op == OpKind::Clip);
  CHECK(f.find("h")->op == OpKind::HardSigmoid);
  CHECK(f.find("l")->op == OpKind::LeakyRelu);
  CHECK(f.find("rm")->type.str() == "f32[2,4]"); // the shape subgraph folded
  for (const auto &n : f.nodes())                // ... into nothing computed at run time
    CHECK(n->type.dtype == DType::F32);
  CHECK(f.outputs()[0]->op == OpKind::HardSwish);

  const std::string bytes = exportOnnxBytes(f, m.weights); // runs the ONNX checker
  onnx::ModelProto proto;
  REQUIRE(proto.ParseFromString(bytes));
  CHECK(proto.opset_import(0).version() == 14);
  OnnxOptions oo;
  oo.batch = 2; // the export's batch dimension is symbolic
  OnnxModel back = importOnnxBytes(bytes, "tv2.onnx", oo);
  const Function &g = back.module->main();
  // The same computation: op by op, the same kinds, attributes and types.
  checkSameOps(f, g);
  std::map<std::string, interp::Tensor<float>> feeds{{"x", randomTensor({2, 4, 6, 6}, 3)}};
  auto want = interp::run<float>(f, feeds), got = interp::run<float>(g, feeds);
  REQUIRE(want.size() == got.size());
  for (auto &[name, t] : want) {
    INFO(name);
    const bool same = t == got.at(name); // xtensor: every element equal, bit for bit
    CHECK(same);
  }
}

// Issue 14's smooth activations, elementwise math and variadic ops: imported (Max/Min/Sum/Mean
// of several inputs as chains, one input as identity), exported back, reimported to the same
// ops and the same values bit for bit.
TEST_CASE("elu, selu, prelu, erf, exp, log, sqrt, reciprocal, neg, abs, pow and the variadic "
          "ops import and export back",
          "[onnx][export]") {
  ModelBuilder b;
  b.input("x", {2, 3, 4, 4});
  ModelBuilder::attrFloat(b.node("Elu", {"x"}, {"e"}), "alpha", 0.5f);
  b.node("Selu", {"x"}, {"s"});
  b.init("slope", {3, 1, 1}, {0.1f, -0.2f, 0.3f});
  b.node("PRelu", {"x", "slope"}, {"pr"});
  b.node("Abs", {"x"}, {"ab"});
  b.node("Sqrt", {"ab"}, {"sq"});
  b.node("Exp", {"x"}, {"ex"});
  b.node("Log", {"ex"}, {"lg"});
  b.node("Erf", {"x"}, {"er"});
  b.node("Neg", {"x"}, {"ng"});
  b.node("Reciprocal", {"ex"}, {"rc"});
  b.constant("k", {}, {1.5}, onnx::TensorProto::FLOAT);
  b.node("Pow", {"ab", "k"}, {"pw"});
  b.node("Max", {"e", "s", "pr"}, {"mx"});
  b.node("Min", {"ng", "rc"}, {"mn"});
  b.node("Max", {"mn"}, {"mx1"});
  b.node("Sum", {"mx", "mx1", "er"}, {"sm"});
  b.node("Mean", {"sm", "lg", "pw", "sq"}, {"out"});
  b.output("out", {2, 3, 4, 4});

  OnnxModel m = importOnnxBytes(b.bytes(), "math.onnx");
  const Function &f = m.module->main();
  CHECK(f.find("e")->op == OpKind::Elu);
  CHECK(f.find("e")->getFloat("alpha") == 0.5);
  CHECK(f.find("s")->getFloat("gamma") == (double)1.05070102214813232421875f);
  CHECK(f.find("pr")->op == OpKind::PRelu);
  CHECK(f.find("mx")->op == OpKind::Max);
  CHECK(f.find("mx")->operands[0]->op == OpKind::Max); // max(max(e, s), pr)
  CHECK(f.find("mx1")->op == OpKind::Identity);
  CHECK(f.find("sm")->op == OpKind::Add);
  CHECK(f.find("out")->op == OpKind::Mul); // the sum of 4 times 1/4

  const std::string bytes = exportOnnxBytes(f, m.weights); // runs the ONNX checker
  OnnxOptions oo;
  oo.batch = 2;
  OnnxModel back = importOnnxBytes(bytes, "math2.onnx", oo);
  const Function &g = back.module->main();
  checkSameOps(f, g);
  std::map<std::string, interp::Tensor<float>> feeds{{"x", randomTensor({2, 3, 4, 4}, 4)}};
  for (const auto &[name, t] : m.weights) { // the PRelu slope
    interp::Tensor<float> v = interp::Tensor<float>::from_shape(std::vector<size_t>(t.shape.begin(), t.shape.end()));
    std::copy(t.values.begin(), t.values.end(), v.begin());
    feeds[name] = v;
  }
  auto want = interp::run<float>(f, feeds), got = interp::run<float>(g, feeds);
  const bool same = want.at("out") == got.at("out");
  CHECK(same);
}

// Resize imports as constant-matrix products (linear, or nearest by a non-integer factor) or as a
// pixel repeat (nearest by integer factors); both export back to the same ops. The values are
// checked by the conformance tests (ONNX's reference) and the U-Net test (PyTorch).
TEST_CASE("Resize: linear as products by constant matrices, nearest x2 as a repeat, both export back",
          "[onnx][export]") {
  ModelBuilder b;
  b.input("x", {1, 2, 3, 4});
  b.constant("roi", {0}, {}, onnx::TensorProto::FLOAT);
  b.constant("s2", {4}, {1, 1, 2, 2}, onnx::TensorProto::FLOAT);
  b.constant("s15", {4}, {1, 1, 1.5, 1}, onnx::TensorProto::FLOAT);
  ModelBuilder::attr(b.node("Resize", {"x", "roi", "s2"}, {"lin"}), "mode", std::string("linear"));
  auto *nn = b.node("Resize", {"x", "roi", "s2"}, {"rep"});
  ModelBuilder::attr(nn, "coordinate_transformation_mode", std::string("asymmetric"));
  ModelBuilder::attr(nn, "nearest_mode", std::string("floor"));
  b.node("Resize", {"x", "roi", "s15"}, {"near"});
  b.output("lin", {1, 2, 6, 8});
  b.output("rep", {1, 2, 6, 8});
  b.output("near", {1, 2, 4, 4});
  OnnxModel m = importOnnxBytes(b.bytes(), "resize.onnx");
  const Function &f = m.module->main();
  CHECK(f.find("lin")->op == OpKind::BatchMatMul);
  CHECK(f.find("lin")->type.str() == "f32[1,2,6,8]");
  CHECK(f.find("rep")->op == OpKind::Reshape);
  CHECK(f.find("rep")->operands[0]->op == OpKind::Expand);
  CHECK(f.find("near")->op == OpKind::BatchMatMul); // rows only: the columns keep their size
  CHECK(f.find("near")->operands[1]->op == OpKind::Input);
  const std::string bytes = exportOnnxBytes(f, m.weights);
  OnnxModel back = importOnnxBytes(bytes, "resize2.onnx");
  const Function &g = back.module->main();
  std::map<std::string, interp::Tensor<float>> feeds{{"x", randomTensor({1, 2, 3, 4}, 6)}};
  auto want = interp::run<float>(f, feeds), got = interp::run<float>(g, feeds);
  for (const char *o : {"lin", "rep", "near"}) {
    INFO(o);
    CHECK(g.find(o)->op == f.find(o)->op);
    const bool same = want.at(o) == got.at(o);
    CHECK(same);
  }
  // x2 nearest repeats each pixel: a 2x2 block of rep equals one x
  CHECK(want.at("rep")(0, 1, 5, 7) == feeds.at("x")(0, 1, 2, 3));
}

// Data movement and ReduceL2 import as compositions of existing ops and export back to them.
TEST_CASE("DepthToSpace, SpaceToDepth, Tile and ReduceL2 import as compositions and export back",
          "[onnx][export]") {
  ModelBuilder b;
  b.input("x", {1, 8, 2, 3});
  ModelBuilder::attr(b.node("DepthToSpace", {"x"}, {"d2s"}), "blocksize", int64_t(2));
  ModelBuilder::attr(b.node("SpaceToDepth", {"d2s"}, {"s2d"}), "blocksize", int64_t(2));
  b.constant("reps", {4}, {1, 2, 1, 3});
  b.node("Tile", {"x", "reps"}, {"tile"});
  ModelBuilder::attrInts(b.node("ReduceL2", {"x"}, {"l2"}), "axes", {1});
  b.output("s2d", {1, 8, 2, 3});
  b.output("tile", {1, 16, 2, 9});
  b.output("l2", {1, 1, 2, 3});
  OnnxModel m = importOnnxBytes(b.bytes(), "move.onnx");
  const Function &f = m.module->main();
  CHECK(f.find("d2s")->type.str() == "f32[1,2,4,6]");
  CHECK(f.find("l2")->op == OpKind::Sqrt);
  std::map<std::string, interp::Tensor<float>> feeds{{"x", randomTensor({1, 8, 2, 3}, 8)}};
  auto want = interp::run<float>(f, feeds);
  const bool roundTrip = want.at("s2d") == feeds.at("x"); // SpaceToDepth undoes DepthToSpace (DCR)
  CHECK(roundTrip);
  CHECK(want.at("tile")(0, 13, 1, 8) == feeds.at("x")(0, 5, 1, 2)); // channel 13 = 8 + 5, column 8 = 6 + 2
  OnnxModel back = importOnnxBytes(exportOnnxBytes(f, m.weights), "move2.onnx");
  checkSameOps(f, back.module->main());
}

TEST_CASE("unsupported forms of the new operators are listed with their nodes", "[onnx]") {
  ModelBuilder b;
  b.input("x", {1, 2, 4, 4});
  b.constant("pads", {8}, {0, 0, -1, 0, 0, 0, 1, 0});
  b.node("Pad", {"x", "pads"}, {"p"}, "crop");
  b.constant("s", {1}, {0});
  b.constant("e", {1}, {4});
  b.constant("a", {1}, {3});
  b.constant("st", {1}, {2});
  b.node("Slice", {"x", "s", "e", "a", "st"}, {"q"}, "strided");
  b.node("Gather", {"x", "s"}, {"r"}, "gather_data");
  b.output("p", {1, 2, 4, 4});
  b.output("q", {1, 2, 4, 2});
  b.output("r", {1, 2, 4, 4});
  std::string msg = errorOf([&] { importOnnxBytes(b.bytes(), "bad.onnx"); });
  INFO(msg);
  CHECK_THAT(msg, Catch::Contains("3 problems"));
  CHECK_THAT(msg, Catch::Contains("node 'crop' (Pad): negative pads"));
  CHECK_THAT(msg, Catch::Contains("node 'strided' (Slice): step 2 is not supported"));
  CHECK_THAT(msg, Catch::Contains("node 'gather_data' (Gather): only a Gather of tensors known"));
}
