// Every op that training graphs and ONNX imports add (codegen/Emit*.cpp), one small
// function each, compiled by the JIT against the f64 interpreter (max|a-b| <= 1e-4 max(1,
// max|b|)); then all of them in one shared library. Shapes hit SIMD tails and clamped tiles.
#include "CodegenTestUtil.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <chrono>
#include <cstdlib>

using namespace cnnc;
using namespace cnnc::cgtest;
using K = OpKind;
using Ints = std::vector<int64_t>;

namespace {

struct Case {
  std::string name;
  std::function<void(Builder &)> build;
  std::function<void(Feeds &)> fix = nullptr; // adjust random feeds (steps, ties)
};

Node *im2row(Builder &b, Node *x, std::map<std::string, Attr> a) {
  return b.op(K::Im2Row, {x}, std::move(a));
}

std::vector<Case> cases() {
  std::vector<Case> c;
  c.push_back(
      {"transpose 4-D", [](Builder &b) {
         b.out(b.op(K::Transpose, {b.input("x", {2, 3, 4, 5})}, {{"perm", Ints{1, 0, 3, 2}}}));
       }});
  c.push_back({"transpose 3-D keeps last", [](Builder &b) {
                 b.out(b.op(K::Transpose, {b.input("x", {3, 4, 19})}, {{"perm", Ints{1, 0, 2}}}));
               }});
  c.push_back({"expand", [](Builder &b) {
                 b.out(b.op(K::Expand, {b.input("x", {3, 1, 5})}, {{"shape", Ints{2, 3, 4, 5}}}));
               }});
  c.push_back({"expand scalar", [](Builder &b) {
                 b.out(b.op(K::Expand, {b.input("x", {})}, {{"shape", Ints{3, 17}}}));
               }});
  c.push_back({"reduce_sum bias axes", [](Builder &b) {
                 b.out(b.op(K::ReduceSum, {b.input("x", {3, 5, 4, 7})}, {{"axes", Ints{0, 2, 3}}}));
               }});
  c.push_back({"reduce_sum keepdims middle", [](Builder &b) {
                 b.out(b.op(K::ReduceSum, {b.input("x", {2, 3, 19})},
                            {{"axes", Ints{1}}, {"keepdims", int64_t(1)}}));
               }});
  c.push_back({"reduce_sum last", [](Builder &b) {
                 b.out(b.op(K::ReduceSum, {b.input("x", {2, 3, 21})}, {{"axes", Ints{-1}}}));
               }});
  c.push_back({"slice", [](Builder &b) {
                 b.out(b.op(K::Slice, {b.input("x", {2, 7, 5})},
                            {{"axis", int64_t(1)}, {"start", int64_t(2)}, {"end", int64_t(6)}}));
               }});
  c.push_back({"im2row stride pads dilation groups", [](Builder &b) {
                 b.out(im2row(b, b.input("x", {2, 4, 7, 6}),
                              {{"kernel", Ints{3, 2}},
                               {"stride", Ints{2, 1}},
                               {"pads", Ints{1, 0, 1, 1}},
                               {"dilation", Ints{1, 2}},
                               {"groups", int64_t(2)}}));
               }});
  c.push_back({"row2im (im2row's adjoint)", [](Builder &b) {
                 std::map<std::string, Attr> a{{"kernel", Ints{3, 3}},
                                               {"stride", Ints{2, 2}},
                                               {"pads", Ints{1, 1, 0, 1}},
                                               {"groups", int64_t(2)}};
                 Node *rows = im2row(b, b.input("x", {2, 4, 7, 8}), a);
                 Node *r = b.input("r", rows->type.shape);
                 a["input_shape"] = Ints{2, 4, 7, 8};
                 b.out(b.op(K::Row2Im, {r}, a));
               }});
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      c.push_back(
          {fmt::format("matmul 3-D trans_a={} trans_b={}", ta, tb), [ta, tb](Builder &b) {
             Node *x = b.input("a", ta ? Shape{2, 23, 13} : Shape{2, 13, 23});
             Node *y = b.input("b", tb ? Shape{2, 37, 23} : Shape{2, 23, 37});
             b.out(b.op(K::MatMul, {x, y}, {{"trans_a", int64_t(ta)}, {"trans_b", int64_t(tb)}}));
           }});
      c.push_back(
          {fmt::format("matmul 2-D wide trans_a={} trans_b={}", ta, tb), [ta, tb](Builder &b) {
             Node *x = b.input("a", ta ? Shape{31, 7} : Shape{7, 31});
             Node *y = b.param("b", tb ? Shape{40, 31} : Shape{31, 40});
             b.out(b.op(K::MatMul, {x, y}, {{"trans_a", int64_t(ta)}, {"trans_b", int64_t(tb)}}));
           }});
    }
  c.push_back({"matmul long K (k blocks) trans_a", [](Builder &b) {
                 b.out(b.op(K::MatMul, {b.input("a", {1, 300, 13}), b.input("b", {1, 300, 37})},
                            {{"trans_a", int64_t(1)}}));
               }});
  c.push_back({"matmul long K trans_b (packed)", [](Builder &b) {
                 b.out(b.op(K::MatMul, {b.input("a", {13, 300}), b.param("b", {37, 300})},
                            {{"trans_b", int64_t(1)}}));
               }});
  c.push_back({"batch_matmul broadcast", [](Builder &b) {
                 b.out(b.op(K::BatchMatMul, {b.input("a", {2, 1, 5, 7}), b.input("b", {3, 7, 9})}));
               }});
  c.push_back({"batch_matmul 2-D", [](Builder &b) {
                 b.out(b.op(K::BatchMatMul, {b.input("a", {5, 7}), b.input("b", {7, 16})}));
               }});
  for (K k : {K::ReluGrad, K::SigmoidGrad, K::TanhGrad})
    c.push_back({opInfo(k).mnemonic, [k](Builder &b) {
                   b.out(b.op(k, {b.input("dy", {2, 3, 5, 7}), b.input("x", {2, 3, 5, 7})}));
                 }});
  c.push_back({"maxpool_grad pads dilation ceil", [](Builder &b) {
                 std::map<std::string, Attr> a{{"kernel", Ints{3, 2}},
                                               {"stride", Ints{2, 2}},
                                               {"pads", Ints{1, 1, 1, 0}},
                                               {"dilation", Ints{1, 2}},
                                               {"ceil_mode", int64_t(1)}};
                 Node *x = b.input("x", {2, 3, 9, 10});
                 Node *y = b.op(K::MaxPool, {x}, a);
                 b.out(b.op(K::MaxPoolGrad, {b.input("dy", y->type.shape), x}, a));
               }});
  c.push_back({"maxpool_grad overlapping with ties", [](Builder &b) {
                 std::map<std::string, Attr> a{{"kernel", Ints{2, 2}}, {"stride", Ints{1, 1}}};
                 Node *x = b.op(K::Relu, {b.input("x", {2, 3, 6, 7})}); // zeros tie
                 Node *y = b.op(K::MaxPool, {x}, a);
                 b.out(b.op(K::MaxPoolGrad, {b.input("dy", y->type.shape), x}, a));
               }});
  // tiled windows (EmitGrad.cpp): ReLU's zeros tie; vectors and a tail of windows; the
  // uncovered last row and column must come out zero
  for (Ints k : {Ints{2, 2}, Ints{3, 2}, Ints{1, 3}})
    c.push_back({fmt::format("maxpool_grad tiled {}x{} with ties", k[0], k[1]), [k](Builder &b) {
                   std::map<std::string, Attr> a{{"kernel", k}, {"stride", k}};
                   Node *x = b.op(K::Relu, {b.input("x", {2, 3, 10, 37})});
                   Node *y = b.op(K::MaxPool, {x}, a);
                   b.out(b.op(K::MaxPoolGrad, {b.input("dy", y->type.shape), x}, a));
                 }});
  for (int cip = 0; cip < 2; ++cip)
    c.push_back({fmt::format("avgpool_grad ceil count_include_pad={}", cip), [cip](Builder &b) {
                   std::map<std::string, Attr> a{{"kernel", Ints{3, 3}},
                                                 {"stride", Ints{2, 2}},
                                                 {"pads", Ints{1, 1, 1, 1}},
                                                 {"ceil_mode", int64_t(1)},
                                                 {"count_include_pad", int64_t(cip)}};
                   Node *y = b.op(K::AvgPool, {b.input("x", {2, 3, 9, 8})}, a);
                   a["input_shape"] = Ints{2, 3, 9, 8};
                   b.out(b.op(K::AvgPoolGrad, {b.input("dy", y->type.shape)}, a));
                 }});
  c.push_back({"softmax_grad", [](Builder &b) {
                 Node *y = b.op(K::Softmax, {b.input("x", {3, 10})});
                 b.out(b.op(K::SoftmaxGrad, {b.input("dy", {3, 10}), y}));
               }});
  c.push_back(
      {"log_softmax_grad axis -1", [](Builder &b) {
         Node *y = b.op(K::LogSoftmax, {b.input("x", {2, 3, 7})}, {{"axis", int64_t(-1)}});
         b.out(b.op(K::LogSoftmaxGrad, {b.input("dy", {2, 3, 7}), y}, {{"axis", int64_t(-1)}}));
       }});
  for (const char *wrt : {"x", "scale", "mean", "var"})
    c.push_back({fmt::format("batchnorm_grad wrt {}", wrt), [wrt](Builder &b) {
                   Node *x = b.input("x", {3, 5, 4, 7});
                   b.out(b.op(K::BatchNormGrad,
                              {b.input("dy", {3, 5, 4, 7}), x, b.param("scale", {5}),
                               b.param("mean", {5}), b.param("var", {5})},
                              {{"wrt", std::string(wrt)}, {"epsilon", 1e-3}}));
                 }});
  for (Shape x : {Shape{3, 5, 4, 7}, Shape{6, 5}})
    c.push_back({fmt::format("bn_train_grad {}", shapeStr(x)), [x](Builder &b) {
                   Node *xn = b.input("x", x);
                   b.out(b.op(K::BnTrainGrad,
                              {b.input("dy", x), xn, b.param("scale", {5}), b.param("mean", {5}),
                               b.param("var", {5}), b.param("dscale", {5}), b.param("dbias", {5})},
                              {{"epsilon", 1e-3}}));
                 }});
  c.push_back({"bn_mean_grad", [](Builder &b) {
                 b.out(b.op(K::BnMeanGrad, {b.param("dm", {5}), b.input("x", {3, 5, 4, 7})}));
               }});
  for (const char *wrt : {"x", "mean"})
    c.push_back({fmt::format("bn_var_grad wrt {}", wrt), [wrt](Builder &b) {
                   b.out(b.op(K::BnVarGrad,
                              {b.param("dv", {5}), b.input("x", {3, 5, 4, 7}), b.param("m", {5})},
                              {{"wrt", std::string(wrt)}}));
                 }});
  c.push_back({"softmax_xent_grad", [](Builder &b) {
                 b.out(b.op(K::SoftmaxXentGrad, {b.param("dz", {}), b.input("x", {4, 10}),
                                                 b.input("label", {4}, DType::I32)}));
               }});
  c.push_back({"l2_loss_grad", [](Builder &b) {
                 b.out(b.op(K::L2LossGrad,
                            {b.param("dz", {}), b.input("x", {3, 7}), b.input("t", {3, 7})}));
               }});
  c.push_back(
      {"count_correct",
       [](Builder &b) {
         b.out(b.op(K::CountCorrect, {b.input("x", {9, 10}), b.input("label", {9}, DType::I32)}));
       },
       [](Feeds &f) { // make a few examples right
         for (int n = 0; n < 9; n += 2)
           f["x"](n, (int)f["label"](n)) = 5;
       }});
  c.push_back({"dropout training, step operand",
               [](Builder &b) {
                 b.out(b.op(K::Dropout, {b.input("x", {3, 4, 33}), b.input("step", {}, DType::I64)},
                            {{"training", int64_t(1)}, {"rate", 0.3}, {"seed", int64_t(-12345)}}));
               },
               [](Feeds &f) { f["step"]() = 7; }});
  c.push_back({"dropout training, step 0", [](Builder &b) {
                 b.out(b.op(K::Dropout, {b.input("x", {2, 50})},
                            {{"training", int64_t(1)}, {"rate", 0.5}, {"seed", int64_t(3)}}));
               }});
  for (const char *red : {"none", "sum", "mean"})
    c.push_back({fmt::format("softmax_xent_nd {} weights ignore_index", red), [red](Builder &b) {
                   b.out(b.op(K::SoftmaxXentNd,
                              {b.input("x", {2, 10, 3}), b.input("label", {2, 3}, DType::I32),
                               b.param("w", {10})},
                              {{"reduction", std::string(red)}, {"ignore_index", Ints{2}}}));
                 }});
  c.push_back(
      {"softmax_xent_nd plain mean", [](Builder &b) {
         b.out(b.op(K::SoftmaxXentNd, {b.input("x", {4, 10}), b.input("label", {4}, DType::I32)}));
       }});
  return c;
}

} // namespace

TEST_CASE("every training/ONNX op: JIT matches the f64 interpreter", "[codegen][train][jit]") {
  for (const Case &c : cases()) {
    SECTION(c.name) {
      Builder b;
      c.build(b);
      verify(b.f);
      Feeds feeds = randomFeeds(b.f, 7);
      if (c.fix)
        c.fix(feeds);
      const Results want = oracle(b.f, feeds);
      compareJitBuilds(b.f, feeds, want, c.name);
    }
  }
}

TEST_CASE("dropout in training mode reproduces the interpreter's mask bit for bit",
          "[codegen][train][dropout]") {
  Builder b;
  b.out(b.op(K::Dropout, {b.input("x", {4, 257}), b.input("step", {}, DType::I64)},
             {{"training", int64_t(1)}, {"rate", 0.37}, {"seed", int64_t(99)}}));
  Feeds feeds = randomFeeds(b.f, 3);
  for (int64_t step : {0, 1, 1234567}) { // f32 holds the step exactly up to 2^24
    feeds["step"]() = (double)step;
    std::map<std::string, interp::Tensor<float>> ff;
    for (auto &[k, v] : feeds)
      ff[k] = v;
    auto want = interp::run<float>(b.f, ff, {.step = (uint64_t)step});
    auto got = tools::runJit(b.f, feeds);
    const auto &w = want.begin()->second;
    const auto &g = got.begin()->second;
    REQUIRE(w.size() == g.size());
    int zeros = 0;
    for (size_t i = 0; i < w.size(); ++i) {
      INFO("element " << i << " step " << step);
      REQUIRE((float)g.data()[i] == w.data()[i]); // exact: same mask, same f32 product
      zeros += w.data()[i] == 0;
    }
    CHECK(zeros > 250); // ~37% of 1028
    CHECK(zeros < 520);
  }
}

TEST_CASE("a batch-polymorphic matmul runs at a smaller batch", "[codegen][train][aot]") {
  Builder b;
  b.out(b.op(K::MatMul, {b.input("x", {8, 19}), b.param("w", {19, 21})}));
  const codegen::Layout l = codegen::layoutFor(b.f);
  REQUIRE(l.batchPolymorphic);
  const std::string so = tempPath("matmul_poly.so");
  codegen::compileSharedLibrary(b.f, so, {});
  SharedLib lib(so);
  Feeds feeds = randomFeeds(b.f, 4);
  Results full = oracle(b.f, feeds);
  Results got = lib.infer(l, feeds, 3);
  const auto &y = got.begin()->second, &w = full.begin()->second;
  REQUIRE(y.size() == 3 * 21);
  double worst = 0;
  for (size_t i = 0; i < y.size(); ++i)
    worst = std::max(worst, std::abs(y.data()[i] - w.data()[i]));
  CHECK(worst <= 1e-4 * 5);
}

TEST_CASE("every training/ONNX op in one shared library: AOT matches the interpreter",
          "[codegen][train][aot]") {
  Builder all;
  int k = 0;
  Feeds fixed;
  for (const Case &c : cases()) {
    Builder one;
    c.build(one);
    std::map<const Node *, Node *> map;
    for (const auto &n : one.f.nodes()) {
      std::vector<Node *> ops;
      for (Node *o : n->operands)
        ops.push_back(map.at(o));
      map[n.get()] = all.f.add(n->op, fmt::format("c{}.{}", k, n->name), ops, n->attrs, n->type);
    }
    for (Node *o : one.f.outputs())
      all.f.outputs().push_back(map.at(o));
    if (c.fix) {
      Feeds f = randomFeeds(one.f, 11 + k);
      c.fix(f);
      for (auto &[name, v] : f)
        fixed[fmt::format("c{}.{}", k, name)] = v;
    }
    ++k;
  }
  verify(all.f);
  Feeds feeds = randomFeeds(all.f, 11);
  for (auto &[name, v] : fixed)
    feeds[name] = v;
  const std::string so = tempPath("alltrainops.so");
  codegen::AotOptions o;
  o.target = parallelTarget();
  codegen::compileSharedLibrary(all.f, so, o);
  SharedLib lib(so);
  const codegen::Layout l = codegen::layoutFor(all.f);
  const Results want = oracle(all.f, feeds);
  for (int threads : kThreadCounts)
    compareAll(want, lib.infer(l, feeds, l.maxBatch, true, "", threads),
               fmt::format("all training ops (AOT, {} threads)", threads));
}

TEST_CASE("timing: the ops of MNIST BASE's backward pass at batch 100",
          "[.bench][codegen][train]") {
  struct B {
    std::string name;
    std::function<void(Builder &)> build;
  };
  std::vector<B> cases = {
      {"im2row conv2",
       [](Builder &b) {
         b.out(im2row(b, b.input("x", {100, 20, 12, 12}), {{"kernel", Ints{5, 5}}}));
       }},
      {"im2row conv1",
       [](Builder &b) {
         b.out(im2row(b, b.input("x", {100, 1, 28, 28}), {{"kernel", Ints{5, 5}}}));
       }},
      {"row2im conv2",
       [](Builder &b) {
         b.out(b.op(K::Row2Im, {b.input("r", {1, 6400, 500})},
                    {{"kernel", Ints{5, 5}}, {"input_shape", Ints{100, 20, 12, 12}}}));
       }},
      {"matmul eq.35 conv2 (50x500, K=6400, trans_a)",
       [](Builder &b) {
         b.out(b.op(K::MatMul, {b.input("a", {1, 6400, 50}), b.input("b", {1, 6400, 500})},
                    {{"trans_a", int64_t(1)}}));
       }},
      {"matmul eq.45 conv2 (6400x500, K=50)",
       [](Builder &b) {
         b.out(b.op(K::MatMul, {b.input("a", {1, 6400, 50}), b.input("b", {1, 50, 500})}));
       }},
      {"matmul eq.35 conv1 (20x25, K=57600, trans_a)",
       [](Builder &b) {
         b.out(b.op(K::MatMul, {b.input("a", {1, 57600, 20}), b.input("b", {1, 57600, 25})},
                    {{"trans_a", int64_t(1)}}));
       }},
      {"transpose conv1 dy",
       [](Builder &b) {
         b.out(b.op(K::Transpose, {b.input("x", {100, 1, 20, 576})}, {{"perm", Ints{1, 0, 3, 2}}}));
       }},
      {"maxpool_grad pool1",
       [](Builder &b) {
         std::map<std::string, Attr> a{{"kernel", Ints{2, 2}}, {"stride", Ints{2, 2}}};
         b.out(b.op(K::MaxPoolGrad,
                    {b.input("dy", {100, 20, 12, 12}), b.input("x", {100, 20, 24, 24})}, a));
       }},
      {"conv2d conv2 forward",
       [](Builder &b) {
         b.out(b.op(K::Conv2d, {b.input("x", {100, 20, 12, 12}), b.param("w", {50, 20, 5, 5})}));
       }},
  };
  for (auto &c : cases) {
    Builder b;
    c.build(b);
    auto jit = codegen::JitModel::compile(b.f);
    const auto &l = jit->layout();
    std::vector<std::vector<float>> bufs(l.buffers.size());
    std::vector<void *> ptrs;
    for (size_t i = 0; i < l.buffers.size(); ++i) {
      bufs[i].assign(std::max<int64_t>(l.buffers[i].type.numel(), 1), 0.5f);
      ptrs.push_back(bufs[i].data());
    }
    void *ws =
        std::aligned_alloc(64, (size_t)std::max<int64_t>(64, (l.workspaceBytes + 63) / 64 * 64));
    jit->run(ptrs.data(), ws, l.maxBatch);
    auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < 5; ++r)
      jit->run(ptrs.data(), ws, l.maxBatch);
    double ms =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 5 * 1e3;
    std::free(ws);
    WARN(c.name << ": " << ms << " ms");
  }
}
