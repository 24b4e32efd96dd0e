// Every forward op lowered by codegen, one small function each, run by the JIT against the
// f64 interpreter; then all of them in one function compiled to a .so (the AOT path).
// Shapes are chosen to hit the SIMD tails (odd widths, channel counts not multiple of 16).
#include "CodegenTestUtil.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>

using namespace cnnc;
using namespace cnnc::cgtest;
using K = OpKind;
using Ints = std::vector<int64_t>;

namespace {

// Each case adds its op(s) to a builder and marks outputs.
struct Case {
  std::string name;
  std::function<void(Builder &)> build;
};

Node *conv(Builder &b, Node *x, int64_t M, Ints k, std::map<std::string, Attr> a,
           bool bias = true, Node *residual = nullptr) {
  const int64_t G = a.count("groups") ? std::get<int64_t>(a["groups"]) : 1;
  Node *w = b.param(fmt::format("w{}", b.f.nodes().size()), {M, x->type.shape[1] / G, k[0], k[1]});
  std::vector<Node *> ops{x, w};
  if (bias)
    ops.push_back(b.param(fmt::format("b{}", b.f.nodes().size()), {M}));
  if (residual)
    ops.push_back(residual);
  return b.op(K::Conv2d, ops, a);
}

std::vector<Case> cases() {
  std::vector<Case> c;
  c.push_back({"conv2d basic", [](Builder &b) {
                 b.out(conv(b, b.input("x", {2, 3, 9, 11}), 5, {3, 3}, {}));
               }});
  c.push_back(
      {"conv2d stride pads dilation", [](Builder &b) {
         b.out(
             conv(b, b.input("x", {2, 4, 10, 9}), 20, {3, 2},
                  {{"stride", Ints{2, 1}}, {"pads", Ints{1, 2, 0, 1}}, {"dilation", Ints{2, 1}}}));
       }});
  c.push_back({"conv2d groups", [](Builder &b) {
                 b.out(conv(b, b.input("x", {1, 6, 7, 8}), 4, {3, 3},
                            {{"groups", int64_t(2)}, {"pads", Ints{1, 1, 1, 1}}}));
               }});
  c.push_back({"conv2d depthwise", [](Builder &b) {
                 b.out(conv(b, b.input("x", {2, 8, 6, 6}), 8, {3, 3},
                            {{"groups", int64_t(8)}, {"stride", Ints{2, 2}}}));
               }});
  c.push_back({"conv2d 1x1 no bias", [](Builder &b) {
                 b.out(conv(b, b.input("x", {3, 17, 5, 3}), 40, {1, 1}, {}, false));
               }});
  // 1×1 convs tile the whole plane as one row; a strided one first gathers its pixels
  // (ResNet's downsampling: stride 2, and 2 along rows only, a fused ReLU)
  c.push_back({"conv2d strided 1x1", [](Builder &b) {
                 b.out(conv(b, b.input("x", {3, 20, 9, 7}), 24, {1, 1}, {{"stride", Ints{2, 2}}}));
                 b.out(conv(b, b.input("x2", {2, 9, 8, 5}), 17, {1, 1},
                            {{"stride", Ints{2, 1}}, {"relu", int64_t(1)}}, false));
                 // 24 channels: AVX2 gathers them channel-blocked, at stride 2 and 1
                 b.out(conv(b, b.input("x3", {2, 24, 7, 6}), 16, {1, 1}, {{"stride", Ints{2, 2}}}));
                 b.out(conv(b, b.input("x4", {2, 24, 5, 7}), 20, {1, 1}, {}));
                 // planes re-cut into longer rows: 7×7 as one row of 49, 14×14 as 4 rows of 49
                 b.out(conv(b, b.input("x5", {1, 24, 7, 7}), 1040, {1, 1}, {{"relu", int64_t(1)}}));
                 b.out(conv(b, b.input("x6", {1, 8, 14, 14}), 300, {1, 1}, {}));
               }});
  c.push_back(
      {"conv2d 3x3 pad 1, 32->48", [](Builder &b) {
         b.out(conv(b, b.input("x", {1, 32, 12, 13}), 48, {3, 3}, {{"pads", Ints{1, 1, 1, 1}}}));
       }});
  // the register tile's shapes (EmitConv.cpp): rows cut into full tiles and a tail (29 wide
  // is prime), a partial last column block (40 and 24 channels), every tap looped (7x7)
  c.push_back({"conv2d row tails and partial column blocks", [](Builder &b) {
                 b.out(conv(b, b.input("x", {3, 5, 6, 29}), 40, {3, 3},
                            {{"pads", Ints{1, 1, 1, 1}}, {"relu", int64_t(1)}}));
                 b.out(conv(b, b.input("x2", {1, 9, 5, 31}), 24, {5, 5}, {{"pads", Ints{2, 2, 2, 2}}}));
               }});
  // a 1×1 output tiles images: 17 = one whole tile of 14 (AVX-512) or two of 6 (AVX2) and
  // single images after it, 40 channels (a partial last column block)
  c.push_back({"conv2d over its whole input (1x1 output), batch 17", [](Builder &b) {
                 b.out(conv(b, b.input("x", {17, 6, 4, 4}), 40, {4, 4}, {{"relu", int64_t(1)}}));
               }});
  // panels over 256 KB and a batch whose input outweighs them: bands of output rows run
  // through every column block (the second band partial), 136 channels (a partial block)
  c.push_back({"conv2d bands of rows through every column block, batch 8", [](Builder &b) {
                 b.out(conv(b, b.input("x", {8, 64, 16, 15}), 136, {3, 3},
                            {{"pads", Ints{1, 1, 1, 1}}}));
               }});
  // copies whose planes are a multiple of 512 B get a line of slack between planes
  // (ConvGeom::plane): 14×14 padded to 16×16 (VGG's conv5_x), batch 2, 20 channels (not
  // blocked at AVX2 either), and a strided 1×1 whose gathered plane is 16×8
  c.push_back({"conv2d planes with slack: 14x14 padded to 16x16, strided 1x1 to 16x8", [](Builder &b) {
                 b.out(conv(b, b.input("x", {2, 20, 14, 14}), 24, {3, 3},
                            {{"pads", Ints{1, 1, 1, 1}}, {"relu", int64_t(1)}}));
                 b.out(conv(b, b.input("x2", {1, 12, 32, 16}), 20, {1, 1}, {{"stride", Ints{2, 2}}}));
               }});
  // a residual r added in the epilogue (fuse-residual), before the ReLU: row tiles with a
  // tail and a partial column block, a padded 14×14 (plane slack), image tiles (1×1 output)
  c.push_back({"conv2d with a residual operand, with and without the ReLU", [](Builder &b) {
                 b.out(conv(b, b.input("x", {3, 5, 6, 29}), 40, {3, 3},
                            {{"pads", Ints{1, 1, 1, 1}}, {"relu", int64_t(1)}}, true,
                            b.input("r", {3, 40, 6, 29})));
                 b.out(conv(b, b.input("x2", {2, 20, 14, 14}), 24, {3, 3}, {{"pads", Ints{1, 1, 1, 1}}},
                            true, b.input("r2", {2, 24, 14, 14})));
                 b.out(conv(b, b.input("x3", {17, 6, 4, 4}), 40, {4, 4}, {{"relu", int64_t(1)}}, true,
                            b.input("r3", {17, 40, 1, 1})));
               }});
  // a row of 32 pixels in tiles of two sizes: 6,6,5,5,5,5 (AVX2), 11,11,10 (AVX-512)
  c.push_back({"conv2d rows in tiles of two sizes", [](Builder &b) {
                 b.out(conv(b, b.input("x", {1, 9, 5, 32}), 20, {3, 3},
                            {{"pads", Ints{1, 1, 1, 1}}}));
               }});
  // channel-blocked padded inputs (ConvGeom::blocked: Cg a multiple of the lanes): groups,
  // stride, dilation, uneven pads, rows not a multiple of the lanes, and the looped taps
  c.push_back({"conv2d channel-blocked input: groups, stride 2, dilation 2", [](Builder &b) {
                 b.out(conv(b, b.input("x", {2, 32, 11, 13}), 24, {3, 3},
                            {{"groups", int64_t(2)}, {"stride", Ints{2, 2}},
                             {"dilation", Ints{2, 2}}, {"pads", Ints{2, 1, 1, 2}}}));
               }});
  c.push_back({"conv2d channel-blocked input, 7x7 pad 3 (taps looped), fused relu", [](Builder &b) {
                 b.out(conv(b, b.input("x", {2, 16, 9, 10}), 17, {7, 7},
                            {{"pads", Ints{3, 3, 3, 3}}, {"relu", int64_t(1)}}));
               }});
  c.push_back({"conv2d 7x7 stride 2 pad 3 (taps looped)", [](Builder &b) {
                 b.out(conv(b, b.input("x", {2, 3, 19, 23}), 17, {7, 7},
                            {{"stride", Ints{2, 2}}, {"pads", Ints{3, 3, 3, 3}}}));
               }});
  c.push_back({"conv2d fused relu (fuse-relu's epilogue)", [](Builder &b) {
                 b.out(conv(b, b.input("x", {2, 5, 7, 9}), 19, {3, 3},
                            {{"pads", Ints{1, 1, 1, 1}}, {"relu", int64_t(1)}}));
               }});
  // plane tiles (ConvGeom::planeTiles): rows narrower than the register tile are tiled as
  // whole planes, a tile running on into the next rows, one kernel copy per starting column:
  // 14-wide rows (AVX2's 6-pixel tiles, channel-blocked input, a residual and ReLU), 7-wide
  // (AVX-512's 14), MNIST's 8-wide 5x5 rows, stride 2 with dilation; batches of 2 and 3
  c.push_back({"conv2d plane tiles (narrow rows)", [](Builder &b) {
                 Node *x = b.input("x", {2, 16, 14, 14});
                 b.out(conv(b, x, 20, {3, 3}, {{"pads", Ints{1, 1, 1, 1}}, {"relu", int64_t(1)}}, true,
                            b.input("r", {2, 20, 14, 14})));
                 b.out(conv(b, b.input("x7", {3, 16, 7, 7}), 40, {3, 3}, {{"pads", Ints{1, 1, 1, 1}}}));
                 b.out(conv(b, b.input("x12", {3, 20, 12, 12}), 50, {5, 5}, {}));
                 b.out(conv(b, b.input("xs", {2, 5, 17, 17}), 19, {3, 3},
                            {{"stride", Ints{2, 2}}, {"pads", Ints{1, 1, 1, 1}}, {"dilation", Ints{2, 1}}}));
               }});
  // a fused clip (ReLU6; relu_max, fuse-relu): a cap of 0.3 so that random outputs cross it,
  // on the matrix-product conv, the depthwise form, a fused residual, fc and batchnorm
  c.push_back({"conv2d / depthwise / fc / batchnorm with a capped ReLU (a fused clip)", [](Builder &b) {
                 const std::map<std::string, Attr> cap{{"relu", int64_t(1)}, {"relu_max", 0.3}};
                 auto padded = cap;
                 padded["pads"] = Ints{1, 1, 1, 1};
                 b.out(conv(b, b.input("x", {2, 5, 7, 9}), 19, {3, 3}, padded));
                 auto dw = padded;
                 dw["groups"] = int64_t(8);
                 b.out(conv(b, b.input("xd", {2, 8, 6, 21}), 8, {3, 3}, dw));
                 Node *xr = b.input("xr", {1, 4, 5, 6});
                 b.out(conv(b, xr, 4, {3, 3}, padded, true, b.input("r", {1, 4, 5, 6})));
                 b.out(b.op(K::FullyConnected,
                            {b.input("xf", {3, 37}), b.param("fw", {10, 37}), b.param("fb", {10})}, cap));
                 b.out(b.op(K::FullyConnected, {b.input("xf1", {1, 37}), b.param("fw1", {10, 37})}, cap));
                 Node *xb = b.input("xb", {2, 6, 3, 5});
                 b.out(b.op(K::BatchNorm,
                            {xb, b.param("scale", {6}), b.param("bias", {6}), b.param("mean", {6}),
                             b.param("var", {6})},
                            cap));
               }});
  c.push_back({"maxpool 2x2", [](Builder &b) {
                 b.out(b.op(K::MaxPool, {b.input("x", {2, 3, 8, 9})},
                            {{"kernel", Ints{2, 2}}, {"stride", Ints{2, 2}}}));
               }});
  // tiled windows (EmitReduce.cpp, TiledPool): vectors of windows, a scalar tail, uncovered
  // last rows and columns; kernels 2x2 (MNIST, VGG), 3x2 and 1x3 (vectors of 6 or 12 lanes)
  c.push_back({"maxpool tiled 2x2 wide", [](Builder &b) {
                 b.out(b.op(K::MaxPool, {b.input("x", {2, 3, 9, 37})},
                            {{"kernel", Ints{2, 2}}, {"stride", Ints{2, 2}}}));
               }});
  c.push_back({"maxpool tiled 3x2 and 1x3", [](Builder &b) {
                 Node *x = b.input("x", {2, 2, 10, 45});
                 b.out(b.op(K::MaxPool, {x}, {{"kernel", Ints{3, 2}}, {"stride", Ints{3, 2}}}));
                 b.out(b.op(K::MaxPool, {x}, {{"kernel", Ints{1, 3}}, {"stride", Ints{1, 3}}}));
               }});
  c.push_back({"maxpool pads dilation ceil", [](Builder &b) {
                 b.out(b.op(K::MaxPool, {b.input("x", {2, 3, 9, 10})},
                            {{"kernel", Ints{3, 2}},
                             {"stride", Ints{2, 2}},
                             {"pads", Ints{1, 1, 1, 0}},
                             {"dilation", Ints{1, 2}},
                             {"ceil_mode", int64_t(1)}}));
               }});
  for (int cip = 0; cip < 2; ++cip)
    c.push_back({fmt::format("avgpool ceil count_include_pad={}", cip), [cip](Builder &b) {
                   b.out(b.op(K::AvgPool, {b.input("x", {2, 3, 9, 8})},
                              {{"kernel", Ints{3, 3}},
                               {"stride", Ints{2, 2}},
                               {"pads", Ints{1, 1, 1, 1}},
                               {"ceil_mode", int64_t(1)},
                               {"count_include_pad", int64_t(cip)}}));
                 }});
  c.push_back({"global_avgpool", [](Builder &b) {
                 b.out(b.op(K::GlobalAvgPool, {b.input("x", {2, 5, 7, 9})}));
               }});
  for (K k : {K::Relu, K::Sigmoid, K::Tanh})
    c.push_back({opInfo(k).mnemonic, [k](Builder &b) {
                   b.out(b.op(k, {b.input("x", {2, 3, 5, 7})}));
                 }});
  // ONNX Softplus, also where exp(x) overflows f32 (|x| up to 100): the interpreter and the
  // lowering use max(x, 0) + log1p(exp(-|x|)); the f64 oracle is the reference.
  c.push_back({"softplus", [](Builder &b) {
                 b.out(b.op(K::Softplus, {b.input("x", {2, 3, 5, 7})}));
               }});
  c.push_back({"softplus of large values", [](Builder &b) {
                 Node *s = b.f.add(K::Constant, "s", {}, {{"value", std::vector<double>{100.0}}},
                                   TensorType{DType::F32, {}});
                 b.out(b.op(K::Softplus, {b.op(K::Mul, {b.input("x", {3, 41}), s})}));
               }});
  // issue 14's smooth activations and elementwise math, inputs spread over [-3, 3] (elu and
  // selu cross 0 and their series/exp switch at |x| = 0.1); log, sqrt, reciprocal and pow's
  // base on |x| + 0.5; the broadcasting binaries on operands of different shapes
  c.push_back({"elu / selu / erf / exp / log / sqrt / reciprocal / neg / abs", [](Builder &b) {
                 auto k = [&](const char *name, double v) {
                   return b.f.add(K::Constant, name, {}, {{"value", std::vector<double>{v}}},
                                  TensorType{DType::F32, {}});
                 };
                 Node *x = b.op(K::Mul, {b.input("x", {3, 37}), k("three", 3.0)});
                 Node *pos = b.op(K::Add, {b.op(K::Abs, {x}), k("half", 0.5)});
                 b.out(b.op(K::Elu, {x}));
                 b.out(b.op(K::Elu, {x}, {{"alpha", 0.3}}));
                 b.out(b.op(K::Selu, {x}));
                 for (K op : {K::Erf, K::Exp, K::Neg, K::Abs})
                   b.out(b.op(op, {x}));
                 for (K op : {K::Log, K::Sqrt, K::Reciprocal})
                   b.out(b.op(op, {pos}));
                 b.out(b.op(K::Pow, {pos, b.input("e", {37})}));
               }});
  c.push_back({"prelu / max / min broadcast", [](Builder &b) {
                 Node *x = b.input("x", {2, 3, 5, 7});
                 b.out(b.op(K::PRelu, {x, b.param("slope", {3, 1, 1})}));
                 b.out(b.op(K::Max, {x, b.input("m", {5, 7})}));
                 b.out(b.op(K::Min, {b.input("n", {3, 1, 1}), x}));
                 b.out(b.op(K::Max, {b.input("u", {3, 1}), b.input("v", {1, 4})}));
               }});
  c.push_back({"fc", [](Builder &b) {
                 b.out(b.op(K::FullyConnected,
                            {b.input("x", {3, 37}), b.param("w", {10, 37}), b.param("b", {10})}));
               }});
  c.push_back({"fc fused relu", [](Builder &b) {
                 b.out(b.op(K::FullyConnected,
                            {b.input("x", {3, 37}), b.param("w", {10, 37}), b.param("b", {10})},
                            {{"relu", int64_t(1)}}));
               }});
  c.push_back({"fc no bias", [](Builder &b) {
                 b.out(b.op(K::FullyConnected, {b.input("x", {2, 50}), b.param("w", {5, 50})}));
               }});
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb)
      c.push_back(
          {fmt::format("matmul trans_a={} trans_b={}", ta, tb), [ta, tb](Builder &b) {
             Node *x = b.input("a", ta ? Shape{19, 3} : Shape{3, 19});
             Node *y = b.param("b", tb ? Shape{21, 19} : Shape{19, 21});
             b.out(b.op(K::MatMul, {x, y}, {{"trans_a", int64_t(ta)}, {"trans_b", int64_t(tb)}}));
           }});
  c.push_back({"add bias broadcast", [](Builder &b) {
                 b.out(b.op(K::Add, {b.input("x", {2, 3, 4, 5}), b.param("c", {1, 3, 1, 1})}));
               }});
  c.push_back({"sub trailing broadcast", [](Builder &b) {
                 b.out(b.op(K::Sub, {b.input("x", {2, 3, 4, 5}), b.param("c", {5})}));
               }});
  c.push_back({"mul two-sided broadcast", [](Builder &b) {
                 b.out(b.op(K::Mul, {b.input("x", {2, 1, 4, 1}), b.param("c", {3, 1, 19})}));
               }});
  c.push_back({"div by constant", [](Builder &b) {
                 Node *k =
                     b.f.add(K::Constant, "k", {}, {{"value", std::vector<double>{2, -4, 0.5}}},
                             TensorType{DType::F32, {3, 1}});
                 b.out(b.op(K::Div, {b.input("x", {2, 3, 17}), k}));
               }});
  c.push_back({"add same shape + scalar", [](Builder &b) {
                 Node *s = b.op(K::Add, {b.input("x", {2, 33}), b.input("y", {2, 33})});
                 b.out(b.op(K::Mul, {s, b.param("s", {})}));
               }});
  for (int64_t ax : {0, 1, 3})
    c.push_back({fmt::format("concat axis {}", ax), [ax](Builder &b) {
                   Shape s1{2, 3, 4, 5}, s2{2, 3, 4, 5};
                   s2[ax] = 2;
                   b.out(b.op(K::Concat, {b.input("x", s1), b.input("y", s2), b.input("z", s1)},
                              {{"axis", ax}}));
                 }});
  c.push_back({"flatten / reshape / identity / dropout (views)", [](Builder &b) {
                 Node *x = b.input("x", {2, 3, 4, 5});
                 Node *r = b.op(K::Relu, {x});
                 Node *fl = b.op(K::Flatten, {r});
                 b.out(b.op(K::Sigmoid, {fl}));
                 b.out(b.op(K::Reshape, {r}, {{"shape", Ints{2, -1, 4}}}));
                 b.out(b.op(K::Identity, {x}));
                 b.out(b.op(K::Dropout, {b.op(K::Tanh, {x})}, {{"rate", 0.3}}));
               }});
  c.push_back({"softmax", [](Builder &b) { b.out(b.op(K::Softmax, {b.input("x", {3, 10})})); }});
  c.push_back({"softmax axis 1 of 4-D", [](Builder &b) {
                 b.out(b.op(K::Softmax, {b.input("x", {2, 4, 3, 3})}));
               }});
  c.push_back({"log_softmax axis -1", [](Builder &b) {
                 b.out(b.op(K::LogSoftmax, {b.input("x", {2, 3, 7})}, {{"axis", int64_t(-1)}}));
               }});
  c.push_back({"batchnorm", [](Builder &b) {
                 b.out(b.op(K::BatchNorm,
                            {b.input("x", {2, 5, 4, 3}), b.param("scale", {5}),
                             b.param("bias", {5}), b.param("mean", {5}), b.param("var", {5})}));
               }});
  c.push_back({"batchnorm 2-D", [](Builder &b) {
                 b.out(b.op(K::BatchNorm,
                            {b.input("x", {3, 6}), b.param("scale", {6}), b.param("bias", {6}),
                             b.param("mean", {6}), b.param("var", {6})},
                            {{"epsilon", 1e-3}}));
               }});
  c.push_back({"bn_mean / bn_var", [](Builder &b) {
                 Node *x = b.input("x", {3, 5, 4, 7});
                 Node *m = b.out(b.op(K::BnMean, {x}));
                 b.out(b.op(K::BnVar, {x, m}));
               }});
  c.push_back(
      {"softmax_xent", [](Builder &b) {
         b.out(b.op(K::SoftmaxXent, {b.input("x", {4, 10}), b.input("label", {4}, DType::I32)}));
       }});
  c.push_back({"l2_loss", [](Builder &b) {
                 b.out(b.op(K::L2Loss, {b.input("x", {3, 7}), b.input("t", {3, 7})}));
               }});
  // issue 14: the activations of imported models, inputs spread over [-5, 5] to cross their
  // bends, and clip's gradient (the same select)
  c.push_back({"clip / hard_sigmoid / hard_swish / leaky_relu / clip_grad", [](Builder &b) {
                 Node *x = b.input("x", {3, 37});
                 Node *five = b.f.add(K::Constant, "five", {}, {{"value", std::vector<double>{5.0}}},
                                      TensorType{DType::F32, {}});
                 Node *s = b.op(K::Mul, {x, five});
                 b.out(b.op(K::Clip, {s}, {{"min", 0.0}, {"max", 3.0}}));
                 b.out(b.op(K::Clip, {x}, {{"min", -0.3}}));
                 b.out(b.op(K::HardSigmoid, {s}, {{"alpha", 1.0 / 6}}));
                 b.out(b.op(K::HardSigmoid, {x}, {{"alpha", -0.9}, {"beta", 0.2}}));
                 b.out(b.op(K::HardSwish, {s}));
                 b.out(b.op(K::LeakyRelu, {x}, {{"alpha", 0.1}}));
                 b.out(b.op(K::ClipGrad, {b.input("dy", {3, 37}), s}, {{"min", -3.0}, {"max", 3.0}}));
               }});
  // pad's three modes on every dim (borders element by element, the interior in vectors), a
  // 1-D pad (the innermost dim only), and pad_grad's scatter-add of mirrored positions
  for (const char *mode : {"constant", "reflect", "edge"})
    c.push_back({fmt::format("pad / pad_grad {}", mode), [mode](Builder &b) {
                   const Ints pads{0, 1, 2, 3, 0, 2, 1, 4};
                   const std::string m = mode;
                   Node *p = b.out(b.op(K::Pad, {b.input("x", {2, 3, 5, 19})},
                                        {{"pads", pads}, {"mode", m}, {"value", 0.25}}));
                   b.out(b.op(K::PadGrad, {b.op(K::Mul, {p, p})}, {{"pads", pads}, {"mode", m}}));
                   b.out(b.op(K::Pad, {b.input("v", {7})}, {{"pads", Ints{2, 3}}, {"mode", m}}));
                 }});
  // reduce_max/reduce_min (a contiguous innermost run in vectors, strided dims element by
  // element, everything, keepdims), the tie mask of their gradient, and argmax over ties
  // (concat(x, x): the first copy, or the last with select_last_index)
  c.push_back({"reduce_max / reduce_min / equal_mask / argmax", [](Builder &b) {
                 Node *x = b.input("x", {2, 5, 3, 37});
                 for (K k : {K::ReduceMax, K::ReduceMin}) {
                   b.out(b.op(k, {x}, {{"axes", Ints{3}}}));
                   b.out(b.op(k, {x}, {{"axes", Ints{0, 2}}, {"keepdims", int64_t(1)}}));
                   b.out(b.op(k, {x}, {{"axes", Ints{1, 2, 3}}}));
                 }
                 Node *m = b.op(K::ReduceMax, {x}, {{"axes", Ints{2, 3}}, {"keepdims", int64_t(1)}});
                 b.out(b.op(K::EqualMask, {x, m}));
                 Node *xx = b.op(K::Concat, {x, x}, {{"axis", int64_t(3)}});
                 b.out(b.op(K::ArgMax, {xx}, {{"axis", int64_t(3)}}));
                 b.out(b.op(K::ArgMax, {xx}, {{"axis", int64_t(-1)}, {"keepdims", int64_t(0)},
                                              {"select_last_index", int64_t(1)}}));
                 b.out(b.op(K::ArgMax, {x}, {{"axis", int64_t(1)}, {"keepdims", int64_t(0)}}));
               }});
  return c;
}

} // namespace

TEST_CASE("every forward op: JIT matches the f64 interpreter", "[codegen][jit]") {
  for (const Case &c : cases()) {
    SECTION(c.name) {
      Builder b;
      c.build(b);
      verify(b.f);
      Feeds feeds = randomFeeds(b.f, 7);
      const Results want = oracle(b.f, feeds);
      compareJitBuilds(b.f, feeds, want, c.name);
    }
  }
}

TEST_CASE("every forward op in one shared library: AOT matches the interpreter", "[codegen][aot]") {
  // All cases side by side in one function (inputs renamed per case), one .so.
  Builder all;
  int k = 0;
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
    ++k;
  }
  verify(all.f);
  Feeds feeds = randomFeeds(all.f, 11);
  const std::string so = tempPath("allops.so");
  codegen::AotOptions o;
  o.target = parallelTarget();
  codegen::compileSharedLibrary(all.f, so, o);
  SharedLib lib(so);
  const codegen::Layout l = codegen::layoutFor(all.f);
  CHECK(!l.batchPolymorphic); // the cases disagree on the batch
  const Results want = oracle(all.f, feeds);
  for (int threads : kThreadCounts)
    compareAll(want, lib.infer(l, feeds, l.maxBatch, true, "", threads),
               fmt::format("all ops (AOT, {} threads)", threads));
}

TEST_CASE("codegen rejects what it cannot store, naming the node", "[codegen][errors]") {
  SECTION("f64 storage") {
    Builder b;
    b.out(b.op(K::Relu, {b.input("x", {2, 3}, DType::F64)}));
    CHECK_THROWS_WITH(codegen::emit(b.f, codegen::EmitKind::LLVM),
                      Catch::Contains("f32 tensors only"));
  }
  SECTION("a bad label makes the entry return an error") {
    Builder b;
    b.out(b.op(K::SoftmaxXent, {b.input("x", {2, 4}), b.input("label", {2}, DType::I32)}));
    Feeds feeds = randomFeeds(b.f, 1, 4);
    feeds["label"](1) = 4;
    CHECK_THROWS_WITH(tools::runJit(b.f, feeds), Catch::Contains("not a class index"));
  }
}
