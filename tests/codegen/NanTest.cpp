// NaN through ReLU follows PyTorch (torch.relu(nan) is nan): the relu op and the fused
// epilogues of conv2d, fc and batchnorm (passes/FuseRelu.cpp) keep a NaN, in the interpreter and in
// compiled code, where LLVM's maxnum would have turned it into 0 and a model fed NaN would
// have answered with confidence.
#include "CodegenTestUtil.h"

#include <catch2/catch.hpp>

#include <xtensor/xbuilder.hpp>

#include <cmath>
#include <functional>

using namespace cnnc;
using namespace cnnc::cgtest;
using Ints = std::vector<int64_t>;

TEST_CASE("relu keeps NaN: the op and conv2d/fc/batchnorm epilogues, interpreter and JIT", "[codegen][nan]") {
  Builder b;
  Node *x = b.input("x", {1, 2, 4, 5});
  Node *r = b.out(b.op(OpKind::Relu, {x}));
  Node *w = b.param("w", {16, 2, 1, 1});
  Node *c = b.out(b.op(OpKind::Conv2d, {x, w}, {{"relu", int64_t(1)}}));
  Node *fw = b.param("fw", {3, 40});
  Node *fl = b.op(OpKind::Flatten, {x}, {{"axis", int64_t(1)}});
  Node *fc = b.out(b.op(OpKind::FullyConnected, {fl, fw}, {{"relu", int64_t(1)}}));
  // batchnorm with batch statistics (a training BN), fused and as batchnorm + relu
  Node *s = b.param("s", {2}), *bi = b.param("bi", {2});
  Node *bm = b.op(OpKind::BnMean, {x}), *bv = b.op(OpKind::BnVar, {x, bm});
  Node *bnf = b.out(b.op(OpKind::BatchNorm, {x, s, bi, bm, bv}, {{"relu", int64_t(1)}}));
  Node *bnr = b.out(b.op(OpKind::Relu, {b.op(OpKind::BatchNorm, {x, s, bi, bm, bv})}));
  verify(b.f);
  Feeds feeds = randomFeeds(b.f, 3);
  feeds["x"](0, 1, 2, 3) = NAN; // pixel (2, 3) of channel 1
  feeds["x"](0, 0, 0, 0) = -1.0;
  feeds["s"](0) = 1.5, feeds["bi"](0) = 0.25; // channel 0: some normalised values below 0
  for (const char *backend : {"interp", "jit"}) {
    INFO(backend);
    Results got = std::string(backend) == "interp" ? oracle(b.f, feeds) : tools::runJit(b.f, feeds);
    const auto &rr = got.at(r->name), &cc = got.at(c->name), &ff = got.at(fc->name);
    CHECK(std::isnan(rr(0, 1, 2, 3)));
    CHECK(rr(0, 0, 0, 0) == 0.0);
    for (int64_t m = 0; m < 16; ++m) // every output channel at that pixel reads the NaN
      CHECK(std::isnan(cc(0, m, 2, 3)));
    CHECK(!std::isnan(cc(0, 0, 2, 2)));
    for (int64_t j = 0; j < 3; ++j)
      CHECK(std::isnan(ff(0, j)));
    // channel 1's statistics read the NaN: its plane is NaN; channel 0's is the plain
    // relu(batchnorm) bit for bit, with zeros where the normalised value is negative
    const auto &fused = got.at(bnf->name), &unfused = got.at(bnr->name);
    int zeros = 0;
    for (int64_t h = 0; h < 4; ++h)
      for (int64_t w2 = 0; w2 < 5; ++w2) {
        CHECK(std::isnan(fused(0, 1, h, w2)));
        CHECK(fused(0, 0, h, w2) == unfused(0, 0, h, w2));
        zeros += fused(0, 0, h, w2) == 0.0;
      }
    CHECK(zeros > 0);
  }
}

// ---------------------------------------------------------------------------- pooling --
// PyTorch's max pooling (aten/src/ATen/native/cpu/MaxPoolKernel.cpp) scans each window with
// `if (val > maxval || isnan(val)) { maxval = val; maxindex = index; }` from maxval = -inf and
// maxindex = the first real tap. So (observed with torch 1.13, max_pool2d and its backward):
//  - a window holding a NaN pools to NaN; +inf and -inf are ordinary values;
//  - the gradient goes to the window's last NaN, else to the first position of its maximum.
// The expected tensors below follow that rule directly over the window's real taps.
namespace {

struct Window {
  double value = -INFINITY;
  int64_t at = -1; // flat index in the plane
};

Window pyTorchMaxScan(const interp::Tensor<double> &x, int64_t nc, int64_t oh, int64_t ow,
                      int64_t k, int64_t s, int64_t pad) {
  const int64_t H = (int64_t)x.shape(2), W = (int64_t)x.shape(3);
  const double *plane = x.data() + nc * H * W;
  Window w;
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < k; ++j) {
      int64_t ih = oh * s - pad + i, iw = ow * s - pad + j;
      if (ih < 0 || ih >= H || iw < 0 || iw >= W)
        continue;
      double v = plane[ih * W + iw];
      if (w.at < 0)
        w.at = ih * W + iw; // maxindex starts at the first real tap
      if (v > w.value || std::isnan(v))
        w.value = v, w.at = ih * W + iw;
    }
  return w;
}

// NaN where expected is NaN, infinities equal, finite values within 1e-5 (f32 vs f64).
void checkNanAware(const interp::Tensor<double> &got, const interp::Tensor<double> &want) {
  REQUIRE(got.shape() == want.shape());
  for (size_t i = 0; i < want.size(); ++i) {
    INFO("element " << i << ": got " << got.data()[i] << ", want " << want.data()[i]);
    if (std::isnan(want.data()[i]))
      CHECK(std::isnan(got.data()[i]));
    else if (std::isinf(want.data()[i]))
      CHECK(got.data()[i] == want.data()[i]);
    else
      CHECK(std::abs(got.data()[i] - want.data()[i]) <= 1e-5 * std::max(1.0, std::abs(want.data()[i])));
  }
}

} // namespace

// Overlapping padded windows (the scalar scan) and tiled 2x2 windows (the vectorised scan of
// EmitReduce.cpp's TiledPool: 18 windows a row, vectors plus a tail, an uncovered last row
// and column, whose NaN no window reads).
TEST_CASE("max pooling propagates NaN as PyTorch does: forward and gradient, interpreter and JIT",
          "[codegen][nan]") {
  struct Config {
    int64_t k, s, pad, H, W;
    std::function<void(interp::Tensor<double> &)> poison;
  };
  const std::vector<Config> configs{
      {2, 1, 1, 4, 5, // overlapping windows, padding: every case of the scan
       [](interp::Tensor<double> &xv) {
         xv(0, 0, 1, 1) = NAN; // two NaNs in shared windows: the later one takes the gradient
         xv(0, 0, 1, 2) = NAN;
         xv(0, 0, 3, 4) = NAN; // a corner: its windows are mostly padding
         xv(0, 1, 2, 3) = INFINITY;
         xv(0, 1, 0, 0) = -INFINITY;
         xv(0, 1, 3, 0) = -INFINITY; // with its neighbours below: a window of -inf and padding
         xv(0, 1, 2, 0) = -INFINITY;
       }},
      {2, 2, 0, 5, 37,
       [](interp::Tensor<double> &xv) {
         xv(0, 0, 0, 3) = NAN; // two NaNs in one window: the later one (row-major) wins
         xv(0, 0, 1, 2) = NAN;
         xv(0, 0, 3, 17) = NAN; // a window's last tap, in the vector part
         xv(0, 0, 2, 35) = NAN; // the scalar tail
         xv(0, 0, 4, 7) = NAN;  // the uncovered last row and column: read by no window
         xv(0, 1, 1, 36) = NAN;
         xv(0, 1, 2, 3) = INFINITY;
         for (int64_t i = 0; i < 2; ++i) // a window of -inf only: its first tap wins
           for (int64_t j = 10; j < 12; ++j)
             xv(0, 1, i, j) = -INFINITY;
         xv(0, 1, 2, 20) = -INFINITY; // -inf beside finite values
       }}};
  for (const Config &cf : configs) {
    INFO("kernel " << cf.k << " stride " << cf.s << " pad " << cf.pad);
    Builder b;
    Node *x = b.input("x", {1, 2, cf.H, cf.W});
    std::map<std::string, Attr> attrs{{"kernel", Ints{cf.k, cf.k}}, {"stride", Ints{cf.s, cf.s}},
                                      {"pads", Ints{cf.pad, cf.pad, cf.pad, cf.pad}}};
    Node *y = b.out(b.op(OpKind::MaxPool, {x}, attrs));
    Node *dy = b.input("dy", y->type.shape);
    Node *dx = b.out(b.op(OpKind::MaxPoolGrad, {dy, x}, attrs));
    verify(b.f);
    Feeds feeds = randomFeeds(b.f, 7);
    auto &xv = feeds["x"];
    cf.poison(xv);

    const int64_t Ho = y->type.shape[2], Wo = y->type.shape[3], HW = cf.H * cf.W;
    using Dims = std::vector<size_t>;
    interp::Tensor<double> wantY =
        xt::zeros<double>(Dims(y->type.shape.begin(), y->type.shape.end()));
    interp::Tensor<double> wantDx = xt::zeros<double>(Dims{1, 2, size_t(cf.H), size_t(cf.W)});
    for (int64_t nc = 0; nc < 2; ++nc)
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow) {
          Window w = pyTorchMaxScan(xv, nc, oh, ow, cf.k, cf.s, cf.pad);
          wantY.data()[(nc * Ho + oh) * Wo + ow] = w.value;
          wantDx.data()[nc * HW + w.at] += feeds["dy"].data()[(nc * Ho + oh) * Wo + ow];
        }
    for (const char *backend : {"interp", "jit"}) {
      INFO(backend);
      Results got =
          std::string(backend) == "interp" ? oracle(b.f, feeds) : tools::runJit(b.f, feeds);
      checkNanAware(got.at(y->name), wantY);
      checkNanAware(got.at(dx->name), wantDx);
    }
  }
}

// -------------------------------------------------------------------- softmax and losses --
// PyTorch (softmax, log_softmax, cross_entropy; observed with torch 1.13 on these rows)
// subtracts the row's maximum first, with a NaN-propagating maximum:
//  - a row holding NaN or +inf gives NaN everywhere (NaN - NaN, inf - inf);
//  - a row of -inf only gives NaN everywhere (-inf - -inf);
//  - otherwise a -inf entry has softmax 0 and log_softmax -inf, the rest is as usual;
//  - cross entropy is logsumexp(row) - row[label] averaged over the batch: NaN from any NaN
//    row, +inf when the label's logit is -inf in an otherwise finite row.
namespace {

const std::vector<std::vector<double>> kRows = {
    {1, NAN, 2, 0.5},  {INFINITY, 1, 2, 0.5},    {-INFINITY, 1, 2, 0.5},
    {-INFINITY, -INFINITY, -INFINITY, -INFINITY}, {INFINITY, INFINITY, 1, 0},
    {3, -1, 0.25, 2}};

std::vector<double> pyTorchLogSoftmax(const std::vector<double> &row) {
  double m = -INFINITY;
  bool nan = false;
  for (double v : row)
    nan |= std::isnan(v), m = std::max(m, v);
  std::vector<double> out(row.size(), NAN);
  if (nan || std::isinf(m)) // NaN, +inf, or a row of -inf
    return out;
  double sum = 0;
  for (double v : row)
    sum += std::exp(v - m);
  for (size_t i = 0; i < row.size(); ++i)
    out[i] = row[i] - m - std::log(sum);
  return out;
}

} // namespace

TEST_CASE("softmax, log_softmax and softmax_xent treat NaN and infinities as PyTorch does",
          "[codegen][nan]") {
  const int64_t N = (int64_t)kRows.size(), C = 4;
  Builder b;
  Node *x = b.input("x", {N, C});
  Node *sm = b.out(b.op(OpKind::Softmax, {x}, {{"axis", int64_t(1)}}));
  Node *lsm = b.out(b.op(OpKind::LogSoftmax, {x}, {{"axis", int64_t(1)}}));
  Node *labels = b.input("labels", {N}, DType::I32);
  Node *loss = b.out(b.op(OpKind::SoftmaxXent, {x, labels}));
  // the losses of single rows: which rows make the batch mean NaN or +inf
  Node *x3 = b.input("x3", {1, C});
  Node *l3 = b.input("l3", {1}, DType::I32);
  Node *loss3 = b.out(b.op(OpKind::SoftmaxXent, {x3, l3}));
  verify(b.f);
  Feeds feeds = randomFeeds(b.f, 11);
  interp::Tensor<double> want = xt::zeros<double>(std::vector<size_t>{(size_t)N, (size_t)C}),
                         wantLog = want;
  for (int64_t r = 0; r < N; ++r) {
    std::vector<double> lr = pyTorchLogSoftmax(kRows[r]);
    for (int64_t c = 0; c < C; ++c) {
      feeds["x"](r, c) = kRows[r][c];
      wantLog(r, c) = lr[c];
      want(r, c) = std::exp(lr[c]);
    }
    feeds["labels"](r) = 0;
  }
  // row 2 (-inf first) with label 0: the loss is +inf; x3 alone
  for (int64_t c = 0; c < C; ++c)
    feeds["x3"](0, c) = kRows[2][c];
  feeds["l3"](0) = 0;
  for (const char *backend : {"interp", "jit"}) {
    INFO(backend);
    Results got = std::string(backend) == "interp" ? oracle(b.f, feeds) : tools::runJit(b.f, feeds);
    checkNanAware(got.at(sm->name), want);
    checkNanAware(got.at(lsm->name), wantLog);
    CHECK(std::isnan(got.at(loss->name)()));            // rows 0, 1, 3, 4 are NaN
    CHECK(got.at(loss3->name)() == INFINITY);            // -log(softmax 0)
  }
}
