#include "CodegenTestUtil.h"
#include "codegen/Plan.h"

#include "passes/Passes.h"
#include "tools/Model.h"

#include "runtime/CnncApi.h"

#include <catch2/catch.hpp>
#include <dlfcn.h>
#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <unistd.h>

namespace cnnc::cgtest {

Feeds randomFeeds(const Function &f, uint64_t seed, int64_t classes) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  Feeds feeds;
  for (const auto &n : f.nodes()) {
    if (n->op != OpKind::Input && n->op != OpKind::Param)
      continue;
    std::vector<size_t> shape(n->type.shape.begin(), n->type.shape.end());
    interp::Tensor<double> t = xt::zeros<double>(shape);
    const auto &s = n->type.shape;
    const double fanIn = s.size() >= 2 ? (double)n->type.numel() / s[0] : 1;
    const bool isVar = n->name.size() >= 3 && n->name.compare(n->name.size() - 3, 3, "var") == 0;
    size_t i = 0;
    for (double &v : t) {
      if (n->type.dtype == DType::I32)
        v = (double)((3 * i + seed) % classes);
      else if (isVar)
        v = 1.0 + 0.5 * u(rng);
      else if (n->op == OpKind::Param)
        v = u(rng) * (s.size() >= 2 ? std::sqrt(3.0 / fanIn) : 0.5);
      else
        v = u(rng);
      ++i;
    }
    feeds[n->name] = t;
  }
  return feeds;
}

Results oracle(const Function &f, const Feeds &feeds) {
  return interp::run<double>(f, feeds);
}

void compareAll(const Results &expected, const Results &actual, const std::string &what) {
  for (const auto &[name, b] : expected) {
    INFO(what << ": output %" << name);
    auto it = actual.find(name);
    REQUIRE(it != actual.end());
    const auto &a = it->second;
    REQUIRE(a.size() == b.size());
    double maxB = 0, maxDiff = 0;
    for (size_t i = 0; i < b.size(); ++i) {
      maxB = std::max(maxB, std::abs(b.data()[i]));
      const double d = std::abs(a.data()[i] - b.data()[i]);
      maxDiff = std::isnan(d) ? INFINITY : std::max(maxDiff, d);
    }
    INFO("max|a-b| = " << maxDiff << ", max|b| = " << maxB);
    CHECK(maxDiff <= 1e-4 * std::max(1.0, maxB));
  }
}

std::string tempPath(const std::string &name) {
  auto dir = std::filesystem::temp_directory_path() / fmt::format("cnnc-cgtest-{}", getpid());
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

std::string runCommand(const std::string &cmd) {
  std::string out;
  FILE *p = popen(cmd.c_str(), "r");
  REQUIRE(p);
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p))
    out.append(buf, n);
  pclose(p);
  return out;
}

SharedLib::SharedLib(const std::string &path) {
  handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  INFO((handle ? "" : dlerror()));
  REQUIRE(handle);
}
SharedLib::~SharedLib() {
  if (handle)
    dlclose(handle);
}
void *SharedLib::sym(const char *name) const {
  void *p = dlsym(handle, name);
  INFO(name);
  REQUIRE(p);
  return p;
}

// An output buffer of a run at `batch` as f64: f32 as it is, count_correct's i32 and argmax's
// i64 read from their bytes.
static interp::Tensor<double> outputTensor(const codegen::BufferSlot &s, int64_t batch,
                                           const float *data) {
  std::vector<size_t> shape(s.type.shape.begin(), s.type.shape.end());
  if (s.batched)
    shape[0] = (size_t)batch;
  interp::Tensor<double> t = interp::Tensor<double>::from_shape(shape);
  for (size_t i = 0; i < t.size(); ++i)
    if (s.type.dtype == DType::I32) {
      int32_t v;
      std::memcpy(&v, data + i, 4);
      t.data()[i] = v;
    } else if (s.type.dtype == DType::I64) {
      int64_t v;
      std::memcpy(&v, data + 2 * i, 8);
      t.data()[i] = (double)v;
    } else
      t.data()[i] = data[i];
  return t;
}

Results SharedLib::infer(const codegen::Layout &l, const Feeds &feeds, int64_t batch,
                         bool setParams, const std::string &npz, int threads) const {
  auto create = fn<int (*)(cnnc_instance **)>("cnnc_create");
  auto destroy = fn<void (*)(cnnc_instance *)>("cnnc_destroy");
  auto setParam =
      fn<int (*)(cnnc_instance *, const char *, const float *, int64_t)>("cnnc_set_param");
  auto load = fn<int (*)(cnnc_instance *, const char *)>("cnnc_load_weights");
  auto run =
      fn<int (*)(cnnc_instance *, int64_t, const void *const *, float *const *)>("cnnc_infer");
  auto lastError = fn<const char *(*)(const cnnc_instance *)>("cnnc_last_error");
  cnnc_instance *inst = nullptr;
  REQUIRE(create(&inst) == CNNC_OK);
  if (threads >= 0) {
    auto setThreads = fn<int (*)(cnnc_instance *, int)>("cnnc_set_threads");
    auto getThreads = fn<int (*)(const cnnc_instance *)>("cnnc_get_threads");
    REQUIRE(setThreads(inst, threads) == CNNC_OK);
    REQUIRE(getThreads(inst) == (threads ? threads : getThreads(inst)));
  }
  std::vector<std::vector<float>> in, out;
  std::vector<std::vector<int32_t>> labels;
  std::vector<std::vector<int64_t>> longs;
  std::vector<const void *> inPtr;
  std::vector<float *> outPtr;
  in.reserve(l.buffers.size()), out.reserve(l.buffers.size()), labels.reserve(l.buffers.size());
  longs.reserve(l.buffers.size());
  for (const auto &s : l.buffers) {
    const int64_t count = s.batched ? batch * s.perExample() : s.type.numel();
    if (s.kind == codegen::BufferKind::Param && setParams) {
      std::vector<float> v(feeds.at(s.name).begin(), feeds.at(s.name).end());
      REQUIRE(setParam(inst, s.name.c_str(), v.data(), (int64_t)v.size()) == CNNC_OK);
    } else if (s.kind == codegen::BufferKind::Input) {
      const auto &t = feeds.at(s.name);
      if (s.type.dtype == DType::I32) {
        labels.emplace_back(t.begin(), t.begin() + count);
        inPtr.push_back(labels.back().data());
      } else if (s.type.dtype == DType::I64) {
        longs.emplace_back(t.begin(), t.begin() + count);
        inPtr.push_back(longs.back().data());
      } else {
        in.emplace_back(t.begin(), t.begin() + count);
        inPtr.push_back(in.back().data());
      }
    } else if (s.kind == codegen::BufferKind::Output) {
      out.emplace_back(std::max<int64_t>(count, 1) * (s.type.dtype == DType::I64 ? 2 : 1), NAN);
      outPtr.push_back(out.back().data());
    }
  }
  if (!npz.empty()) {
    INFO(lastError(inst));
    REQUIRE(load(inst, npz.c_str()) == CNNC_OK);
  }
  const int rc = run(inst, batch, inPtr.data(), outPtr.data());
  INFO(lastError(inst));
  REQUIRE(rc == CNNC_OK);
  destroy(inst);
  Results r;
  size_t k = 0;
  for (const auto &s : l.buffers)
    if (s.kind == codegen::BufferKind::Output)
      r[s.name] = outputTensor(s, batch, out[k++].data());
  return r;
}

std::unique_ptr<Module> loadPipelined(const std::string &name, int64_t batch, bool training) {
  tools::LoadOptions o;
  o.cnn.batch = batch;
  o.cnn.training = training;
  auto m = tools::loadModel(std::string(CNNC_SOURCE_DIR) + "/examples/" + name, o);
  PipelineOptions po;
  po.training = training;
  runPipeline(*m, po);
  return m;
}

Feeds trainFeeds(const Function &f, uint64_t seed) {
  Feeds feeds = randomFeeds(f, seed);
  auto scalar = [](double v) { return interp::Tensor<double>(xt::xarray<double>(v)); };
  feeds["lr"] = scalar(kHyper.lr);
  feeds["momentum"] = scalar(kHyper.momentum);
  feeds["weight_decay"] = scalar(kHyper.weightDecay);
  feeds["step"] = scalar((double)kStep);
  return feeds;
}

Results jitStep(tools::JitTrainer &tr, const Feeds &params, const Feeds &data) {
  Feeds ps;
  for (const auto &p : tr.paramNames())
    ps[p] = params.at(p);
  tr.setParams(ps);
  tr.setStepCount(kStep);
  std::map<std::string, interp::Tensor<double>> batch;
  for (const auto &d : tr.dataInputs())
    batch[d] = data.at(d);
  interp::StepResult r = tr.step(batch, kHyper);
  Results got;
  got["loss"] = interp::Tensor<double>(xt::xarray<double>(r.loss));
  got["correct"] = interp::Tensor<double>(xt::xarray<double>((double)r.correct));
  for (auto &[name, t] : tr.params())
    got[name] = t;
  return got;
}

Results expectedStep(const Function &f, const Feeds &feeds) {
  auto out = interp::run<double>(f, feeds, {.step = kStep});
  Results r;
  for (const Node *o : f.outputs())
    r[o->op == OpKind::Update ? o->operands[0]->name : o->name] = out.at(o->name);
  return r;
}

BatchData batchFor(const Function &f, uint64_t s) {
  Feeds feeds = randomFeeds(f, 100 + s);
  BatchData b;
  b.data.assign(feeds.at("data").begin(), feeds.at("data").end());
  b.labels.assign(feeds.at("label").begin(), feeds.at("label").end());
  b.ptrs = {b.data.data(), b.labels.data()};
  return b;
}

// Whether a 16-lane build with narrow convs may run a conv or a filter gradient 8 lanes wide.
static bool hasNarrowConv(const Function &f, unsigned vl) {
  for (const Node *n : f.nodeList())
    if ((n->op == OpKind::Conv2d && codegen::ConvGeom::of(*n, vl, false, true).vl == 8) ||
        n->op == OpKind::Conv2dGradFilter)
      return true;
  return false;
}

Results jitRun(const codegen::JitModel &j, const Feeds &feeds, int64_t b, cnnc_rt_pool *pool) {
  const codegen::Layout &l = j.layout();
  std::vector<std::vector<float>> store(l.buffers.size());
  std::vector<void *> ptrs(l.buffers.size());
  for (size_t i = 0; i < l.buffers.size(); ++i) {
    const codegen::BufferSlot &s = l.buffers[i];
    REQUIRE(s.type.dtype == DType::F32);
    if (s.kind == codegen::BufferKind::Output)
      store[i].assign(std::max<int64_t>(s.type.numel(), 1), NAN);
    else // the whole batch-N input: a batch-b run must read its first b examples only
      store[i].assign(feeds.at(s.name).begin(), feeds.at(s.name).end());
    ptrs[i] = store[i].data();
  }
  void *ws = std::aligned_alloc(64, (size_t)std::max<int64_t>(64, (l.workspaceBytes + 63) / 64 * 64));
  REQUIRE(ws);
  const int32_t rc = j.run(ptrs.data(), ws, b, pool);
  std::free(ws);
  REQUIRE(rc == codegen::kStatusOk);
  Results r;
  for (size_t i = 0; i < l.buffers.size(); ++i)
    if (l.buffers[i].kind == codegen::BufferKind::Output)
      r[l.buffers[i].name] = outputTensor(l.buffers[i], b, store[i].data());
  return r;
}

void compareJitBuilds(const Function &f, const Feeds &feeds, const Results &expected,
                      const std::string &what) {
  for (int threads : kThreadCounts)
    compareAll(expected, tools::runJit(f, feeds, parallelTarget(), nullptr, threads),
               fmt::format("{} (JIT, {} threads)", what, threads));
  codegen::TargetOptions wide = parallelTarget();
  wide.vectorWidth = 16;
  wide.narrowConvs = 0;
  CHECK(codegen::layoutFor(f, wide).vectorWidth == 16);
  compareAll(expected, tools::runJit(f, feeds, wide, nullptr, 2),
             fmt::format("{} (JIT, 16 lanes, 2 threads)", what));
  // the 8-lane convs of a 16-lane build (Target::narrowConvs: AMD Zen 4's), whatever the host
  if (hasNarrowConv(f, wide.vectorWidth)) {
    wide.narrowConvs = 1;
    compareAll(expected, tools::runJit(f, feeds, wide, nullptr, 2),
               fmt::format("{} (JIT, 16 lanes with 8-lane convs, 2 threads)", what));
  }
  codegen::TargetOptions avx2 = parallelTarget();
  avx2.cpu = "x86-64-v3";
  CHECK(codegen::layoutFor(f, avx2).vectorWidth == 8);
  compareAll(expected, tools::runJit(f, feeds, avx2, nullptr, 2),
             fmt::format("{} (JIT, x86-64-v3, 2 threads)", what));
}

TrainLib::TrainLib(const std::string &so) : lib(so) {
  create = lib.fn<decltype(create)>("cnnc_create");
  destroy = lib.fn<decltype(destroy)>("cnnc_destroy");
  setParam = lib.fn<decltype(setParam)>("cnnc_set_param");
  getParam = lib.fn<decltype(getParam)>("cnnc_get_param");
  trainStep = lib.fn<decltype(trainStep)>("cnnc_train_step");
  stepCount = lib.fn<decltype(stepCount)>("cnnc_step_count");
  setStepCount = lib.fn<decltype(setStepCount)>("cnnc_set_step_count");
  save = lib.fn<decltype(save)>("cnnc_save_checkpoint");
  load = lib.fn<decltype(load)>("cnnc_load_checkpoint");
  loadWeights = lib.fn<decltype(loadWeights)>("cnnc_load_weights");
  setThreads = lib.fn<decltype(setThreads)>("cnnc_set_threads");
  getThreads = lib.fn<decltype(getThreads)>("cnnc_get_threads");
  numBuffers = lib.fn<decltype(numBuffers)>("cnnc_num_buffers");
  bufferInfo = lib.fn<decltype(bufferInfo)>("cnnc_buffer_info");
  trainBatch = lib.fn<decltype(trainBatch)>("cnnc_train_batch");
  trainMinBatch = lib.fn<decltype(trainMinBatch)>("cnnc_train_min_batch");
  err = lib.fn<decltype(err)>("cnnc_last_error");
}

cnnc_instance *TrainLib::fresh(const Function &ts, const Feeds &feeds) const {
  cnnc_instance *inst = nullptr;
  REQUIRE(create(&inst) == CNNC_OK);
  for (const auto &n : ts.nodes())
    if (n->op == OpKind::Param) {
      std::vector<float> v(feeds.at(n->name).begin(), feeds.at(n->name).end());
      REQUIRE(setParam(inst, n->name.c_str(), v.data(), (int64_t)v.size()) == CNNC_OK);
    }
  return inst;
}

std::map<std::string, std::vector<float>> TrainLib::state(cnnc_instance *inst) const {
  std::map<std::string, std::vector<float>> out;
  for (int k = 0; k < numBuffers(4); ++k) {
    const char *name;
    int64_t per;
    REQUIRE(bufferInfo(4, k, &name, nullptr, nullptr, &per) == CNNC_OK);
    std::vector<float> v(per);
    REQUIRE(getParam(inst, name, v.data(), per) == CNNC_OK);
    out[name] = v;
  }
  return out;
}

} // namespace cnnc::cgtest
