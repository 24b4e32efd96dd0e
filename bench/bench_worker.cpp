// The native side of bench/run.sh (bench/harness.py drives it; docs/performance.md).
//
//   cnnc_bench_worker machine [--threads 1,2] [--seconds S]
//       prints one JSON line: CPU, FMA peaks (zmm, ymm) and triad bandwidth per thread count.
//   cnnc_bench_worker cnnc LIB.so --batch N --threads T [--keep-params]
//       dlopens a library made by `cnnc compile`, creates an instance through its C API
//       (cnnc_create, cnnc_set_threads, random parameters by cnnc_set_param unless
//       --keep-params keeps the embedded ones), random inputs; then serves timing requests.
//   cnnc_bench_worker cnnc-train LIB.so --batch N --threads T --weights W.npz
//                     --data NAME=FILE[,NAME=FILE...] [--hyper LR,MOMENTUM,DECAY]
//       a `cnnc compile --train` library: cnnc_load_weights(W.npz), the data inputs of the
//       step (kind 3) read from raw files of D whole batches each (f32 images, i32 labels,
//       batch-major), then one cnnc_train_step per call, batch i of the D in turn. The first
//       step (batch 0, the initial weights) runs during setup: its loss is in the ready line.
//   cnnc_bench_worker onednn --convs SPEC[;SPEC...] [--pass P] [--threads T]
//   cnnc_bench_worker onednn --fcs N,K,M,relu[;...] [--threads T]  (inner_product forward)
//       oneDNN convolution primitives (direct algorithm, format_tag::any for every tensor:
//       oneDNN's blocked layouts); data reordered into oneDNN's layouts before timing.
//       SPEC = N,IC,H,W,OC,KH,KW,stride,pad,groups,relu[,needs_dx[,bias]] (needs_dx, bias
//       default 1). P = fwd (default: forward_inference, bias + fused ReLU post-op),
//       bwd_data (convolution_backward_data), bwd_weights (convolution_backward_weights, the
//       bias gradient too when the spec has a bias), or train (per conv: forward_training,
//       backward_weights, and backward_data when needs_dx: what one training step of the
//       convs costs). A request times the whole list executed in sequence.
//       oneDNN (Debian: OpenMP runtime) takes its thread count from OMP_NUM_THREADS, which
//       the harness sets; --threads is checked against omp_get_max_threads().
//
// Serving: after setup the worker prints one JSON line {"ready": true, ...}; then for each
// line "run K" on stdin it makes K calls, timing each on the steady clock, and prints
// {"ms": [t1, ..., tK]}; "quit" or end of input exits. A setup failure prints {"error": ...}
// and exits 1. Keeping the worker alive lets the harness interleave the systems' repetitions
// without paying process start, library load or weight packing in any timed call.
// "state" (cnnc-train only) prints {"loss": the last step's, "nonfinite": n, "subnormal": n}
// over every state array: a check that the timed steps did not run on NaNs or denormals.
#include "bench/machine.h"

#include <dlfcn.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <unordered_map>
#include <functional>
#include <iostream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#ifdef CNNC_BENCH_HAVE_DNNL
#include <oneapi/dnnl/dnnl.hpp>
#include <omp.h>
#endif

using namespace cnnc::bench;

namespace {

std::string jsonEscape(const std::string &s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\')
      o += '\\';
    o += (unsigned char)c < 0x20 ? ' ' : c;
  }
  return o;
}

[[noreturn]] void fail(const std::string &msg) {
  std::cout << "{\"error\": \"" << jsonEscape(msg) << "\"}" << std::endl;
  std::exit(1);
}

// The request loop shared by every system: `call` runs the workload once.
void serve(const std::string &readyJson, const std::function<void()> &call,
           const std::function<std::string()> &state = nullptr) {
  std::cout << readyJson << std::endl;
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.rfind("run", 0) == 0) {
      int k = std::max(1, std::atoi(line.c_str() + 3));
      std::string out = "{\"ms\": [";
      char buf[32];
      for (int i = 0; i < k; ++i) {
        double ms = timeMs(call);
        std::snprintf(buf, sizeof buf, "%s%.5f", i ? ", " : "", ms);
        out += buf;
      }
      std::cout << out << "]}" << std::endl;
    } else if (line == "state") { // always one answer line: the harness waits for it
      std::cout << (state ? state() : std::string("{}")) << std::endl;
    } else if (line == "quit") {
      break;
    }
  }
}

const char *optValue(int argc, char **argv, const char *name, const char *def = nullptr) {
  for (int i = 0; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0)
      return argv[i + 1];
  return def;
}

bool hasFlag(int argc, char **argv, const char *name) {
  for (int i = 0; i < argc; ++i)
    if (std::strcmp(argv[i], name) == 0)
      return true;
  return false;
}

// ---- machine -----------------------------------------------------------------------------
int runMachine(int argc, char **argv) {
  std::vector<int> threads;
  std::stringstream ss(optValue(argc, argv, "--threads", "1"));
  for (std::string t; std::getline(ss, t, ',');)
    threads.push_back(std::max(1, std::atoi(t.c_str())));
  double secs = std::atof(optValue(argc, argv, "--seconds", "0.2"));
  std::cout << toJson(measureMachine(threads, secs)) << std::endl;
  return 0;
}

// ---- cnnc, through the C API of a `cnnc compile` library -------------------------------------
struct CnncApi {
  int (*create)(void **);
  void (*destroy)(void *);
  int (*setParam)(void *, const char *, const float *, int64_t);
  int (*infer)(void *, int64_t, const void *const *, float *const *);
  const char *(*lastError)(const void *);
  int (*setThreads)(void *, int);
  int (*getThreads)(const void *);
  int64_t (*maxBatch)();
  int64_t (*minBatch)();
  int (*numBuffers)(int);
  int (*bufferInfo)(int, int, const char **, int *, int64_t *, int64_t *);
};

template <class F> void bind(void *lib, const char *name, F &f) {
  f = reinterpret_cast<F>(dlsym(lib, name));
  if (!f)
    fail(std::string("symbol missing from the library: ") + name);
}

bool endsWith(const std::string &s, const char *suffix) {
  size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

int runCnnc(int argc, char **argv) {
  if (argc < 3)
    fail("usage: cnnc_bench_worker cnnc LIB.so --batch N --threads T [--keep-params]");
  const char *path = argv[2];
  int64_t batch = std::atoll(optValue(argc, argv, "--batch", "1"));
  int threads = std::atoi(optValue(argc, argv, "--threads", "1"));
  bool keepParams = hasFlag(argc, argv, "--keep-params");

  void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!lib)
    fail(std::string("dlopen: ") + dlerror());
  CnncApi api{};
  bind(lib, "cnnc_create", api.create);
  bind(lib, "cnnc_destroy", api.destroy);
  bind(lib, "cnnc_set_param", api.setParam);
  bind(lib, "cnnc_infer", api.infer);
  bind(lib, "cnnc_last_error", api.lastError);
  bind(lib, "cnnc_set_threads", api.setThreads);
  bind(lib, "cnnc_get_threads", api.getThreads);
  bind(lib, "cnnc_max_batch", api.maxBatch);
  bind(lib, "cnnc_min_batch", api.minBatch);
  bind(lib, "cnnc_num_buffers", api.numBuffers);
  bind(lib, "cnnc_buffer_info", api.bufferInfo);

  if (batch < api.minBatch() || batch > api.maxBatch())
    fail("batch " + std::to_string(batch) + " outside the library's " +
         std::to_string(api.minBatch()) + ".." + std::to_string(api.maxBatch()));
  void *inst = nullptr;
  if (api.create(&inst) != 0)
    fail(std::string("cnnc_create: ") + api.lastError(nullptr));
  if (api.setThreads(inst, threads) != 0)
    fail(std::string("cnnc_set_threads: ") + api.lastError(inst));

  std::mt19937 rng(12345);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  int64_t paramCount = 0;
  if (!keepParams) {
    // He-uniform weights (activations keep their scale through deep networks, no denormals),
    // small biases, unit BN scales and variances.
    for (int i = 0; i < api.numBuffers(1); ++i) {
      const char *name = nullptr;
      int rank = 0;
      int64_t shape[8] = {0}, per = 0;
      api.bufferInfo(1, i, &name, &rank, shape, &per);
      int64_t numel = 1, fanIn = 1;
      for (int d = 0; d < rank; ++d) {
        numel *= shape[d];
        if (d > 0)
          fanIn *= shape[d];
      }
      std::string n = name ? name : "";
      std::vector<float> v((size_t)numel);
      float a = rank >= 2 ? std::sqrt(6.0f / (float)std::max<int64_t>(1, fanIn)) : 0.0f;
      for (auto &x : v) {
        if (rank >= 2)
          x = (2 * unit(rng) - 1) * a;
        else if (endsWith(n, "var") || endsWith(n, "scale"))
          x = 1.0f;
        else if (endsWith(n, "mean"))
          x = 0.0f;
        else
          x = 0.01f * unit(rng);
      }
      if (api.setParam(inst, name, v.data(), numel) != 0)
        fail(std::string("cnnc_set_param ") + n + ": " + api.lastError(inst));
      paramCount += numel;
    }
  }
  std::vector<std::vector<float>> ins, outs;
  std::vector<const void *> inPtrs;
  std::vector<float *> outPtrs;
  for (int kind : {0, 2})
    for (int i = 0; i < api.numBuffers(kind); ++i) {
      const char *name = nullptr;
      int rank = 0;
      int64_t shape[8] = {0}, per = 0;
      api.bufferInfo(kind, i, &name, &rank, shape, &per);
      std::vector<float> v((size_t)(per * batch));
      if (kind == 0) {
        for (auto &x : v)
          x = unit(rng);
        ins.push_back(std::move(v));
        inPtrs.push_back(ins.back().data());
      } else {
        outs.push_back(std::move(v));
        outPtrs.push_back(outs.back().data());
      }
    }
  auto call = [&] {
    if (api.infer(inst, batch, inPtrs.data(), outPtrs.data()) != 0)
      fail(std::string("cnnc_infer: ") + api.lastError(inst));
  };
  std::string ready = "{\"ready\": true, \"threads\": " + std::to_string(api.getThreads(inst)) +
                      ", \"batch\": " + std::to_string(batch) +
                      ", \"params_set\": " + std::to_string(paramCount) + "}";
  serve(ready, call);
  api.destroy(inst);
  return 0;
}

// ---- cnnc training steps, through the C API of a `cnnc compile --train` library ----------
struct TrainApi {
  int (*create)(void **);
  void (*destroy)(void *);
  int (*loadWeights)(void *, const char *);
  int (*getParam)(const void *, const char *, float *, int64_t);
  int (*trainStep)(void *, int64_t, const void *const *, float, float, float, float *, int64_t *);
  const char *(*lastError)(const void *);
  int (*setThreads)(void *, int);
  int (*getThreads)(const void *);
  int64_t (*trainBatch)();
  int64_t (*trainMinBatch)();
  int (*numBuffers)(int);
  int (*bufferInfo)(int, int, const char **, int *, int64_t *, int64_t *);
};

std::vector<char> readFile(const std::string &path) {
  FILE *f = std::fopen(path.c_str(), "rb");
  if (!f)
    fail("cannot open " + path);
  std::vector<char> out;
  char buf[1 << 16];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;)
    out.insert(out.end(), buf, buf + n);
  std::fclose(f);
  return out;
}

int runCnncTrain(int argc, char **argv) {
  if (argc < 3)
    fail("usage: cnnc_bench_worker cnnc-train LIB.so --batch N --threads T --weights W.npz "
         "--data NAME=FILE[,NAME=FILE...] [--hyper LR,MOMENTUM,DECAY]");
  const char *path = argv[2];
  int64_t batch = std::atoll(optValue(argc, argv, "--batch", "1"));
  int threads = std::atoi(optValue(argc, argv, "--threads", "1"));
  const char *weights = optValue(argc, argv, "--weights");
  float hyper[3] = {0.001f, 0.9f, 5e-4f};
  if (const char *h = optValue(argc, argv, "--hyper"))
    if (std::sscanf(h, "%f,%f,%f", &hyper[0], &hyper[1], &hyper[2]) != 3)
      fail(std::string("--hyper ") + h + ": want LR,MOMENTUM,DECAY");
  std::unordered_map<std::string, std::string> files;
  {
    std::stringstream ss(optValue(argc, argv, "--data", ""));
    for (std::string kv; std::getline(ss, kv, ',');) {
      size_t eq = kv.find('=');
      if (eq == std::string::npos)
        fail("--data: want NAME=FILE, got " + kv);
      files[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
  }
  void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!lib)
    fail(std::string("dlopen: ") + dlerror());
  TrainApi api{};
  bind(lib, "cnnc_create", api.create);
  bind(lib, "cnnc_destroy", api.destroy);
  bind(lib, "cnnc_load_weights", api.loadWeights);
  bind(lib, "cnnc_get_param", api.getParam);
  bind(lib, "cnnc_train_step", api.trainStep);
  bind(lib, "cnnc_last_error", api.lastError);
  bind(lib, "cnnc_set_threads", api.setThreads);
  bind(lib, "cnnc_get_threads", api.getThreads);
  bind(lib, "cnnc_train_batch", api.trainBatch);
  bind(lib, "cnnc_train_min_batch", api.trainMinBatch);
  bind(lib, "cnnc_num_buffers", api.numBuffers);
  bind(lib, "cnnc_buffer_info", api.bufferInfo);
  if (batch < api.trainMinBatch() || batch > api.trainBatch())
    fail("batch " + std::to_string(batch) + " outside the training step's " +
         std::to_string(api.trainMinBatch()) + ".." + std::to_string(api.trainBatch()));
  void *inst = nullptr;
  if (api.create(&inst) != 0)
    fail(std::string("cnnc_create: ") + api.lastError(nullptr));
  if (api.setThreads(inst, threads) != 0)
    fail(std::string("cnnc_set_threads: ") + api.lastError(inst));
  if (!weights || api.loadWeights(inst, weights) != 0)
    fail(std::string("cnnc_load_weights: ") + (weights ? api.lastError(inst) : "--weights is required"));
  // The data inputs: D whole batches per file, 4-byte elements (f32 images, i32 labels).
  std::vector<std::vector<char>> data;
  std::vector<int64_t> bytesPerBatch;
  int64_t nbatches = -1;
  for (int i = 0; i < api.numBuffers(3); ++i) {
    const char *name = nullptr;
    int64_t per = 0;
    api.bufferInfo(3, i, &name, nullptr, nullptr, &per);
    auto it = files.find(name ? name : "");
    if (it == files.end())
      fail(std::string("--data has no file for the step's input ") + (name ? name : "?"));
    data.push_back(readFile(it->second));
    bytesPerBatch.push_back(per * batch * 4);
    int64_t d = bytesPerBatch.back() ? (int64_t)data.back().size() / bytesPerBatch.back() : 1;
    if (d < 1 || (bytesPerBatch.back() && (int64_t)data.back().size() % bytesPerBatch.back()))
      fail(it->second + ": not a whole number of batches of " + std::to_string(bytesPerBatch.back()) + " bytes");
    nbatches = nbatches < 0 ? d : std::min(nbatches, d);
  }
  int64_t next = 0, steps = 0;
  float loss = NAN;
  int64_t correct = -1;
  auto call = [&] {
    std::vector<const void *> ptrs;
    for (size_t k = 0; k < data.size(); ++k)
      ptrs.push_back(data[k].data() + next * bytesPerBatch[k]);
    next = (next + 1) % std::max<int64_t>(1, nbatches);
    if (api.trainStep(inst, batch, ptrs.data(), hyper[0], hyper[1], hyper[2], &loss, &correct) != 0)
      fail(std::string("cnnc_train_step: ") + api.lastError(inst));
    ++steps;
  };
  call(); // batch 0 from the initial weights: its loss is comparable with PyTorch's first
  char first[160];
  if (std::isfinite(loss)) // JSON has no NaN
    std::snprintf(first, sizeof first, "\"loss0\": %.9g, \"correct0\": %lld", loss, (long long)correct);
  else
    std::snprintf(first, sizeof first, "\"loss0\": null, \"correct0\": %lld", (long long)correct);
  auto state = [&] {
    int64_t nonfinite = 0, subnormal = 0, values = 0;
    for (int i = 0; i < api.numBuffers(4); ++i) {
      const char *name = nullptr;
      int rank = 0;
      int64_t shape[8] = {0}, per = 1;
      api.bufferInfo(4, i, &name, &rank, shape, nullptr);
      for (int d = 0; d < rank; ++d)
        per *= shape[d];
      std::vector<float> v((size_t)per);
      if (api.getParam(inst, name, v.data(), per) != 0)
        fail(std::string("cnnc_get_param: ") + api.lastError(inst));
      for (float x : v) {
        nonfinite += !std::isfinite(x);
        subnormal += std::fpclassify(x) == FP_SUBNORMAL;
      }
      values += per;
    }
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "{\"loss\": %.9g, \"finite_loss\": %d, \"steps\": %lld, \"values\": %lld, "
                  "\"nonfinite\": %lld, \"subnormal\": %lld}",
                  std::isfinite(loss) ? loss : 0.0, std::isfinite(loss) ? 1 : 0, (long long)steps, (long long)values,
                  (long long)nonfinite, (long long)subnormal);
    return std::string(buf);
  };
  std::string ready = "{\"ready\": true, \"threads\": " + std::to_string(api.getThreads(inst)) +
                      ", \"batch\": " + std::to_string(batch) + ", \"batches\": " +
                      std::to_string(nbatches) + ", " + first + "}";
  serve(ready, call, state);
  api.destroy(inst);
  return 0;
}

// ---- oneDNN --------------------------------------------------------------------------------
#ifdef CNNC_BENCH_HAVE_DNNL
struct ConvSpec {
  int64_t n, ic, h, w, oc, kh, kw, stride, pad, groups;
  bool relu, needsDx = true, bias = true;
};

std::vector<ConvSpec> parseConvs(const std::string &s) {
  std::vector<ConvSpec> out;
  std::stringstream all(s);
  for (std::string one; std::getline(all, one, ';');) {
    if (one.empty())
      continue;
    std::vector<int64_t> v;
    std::stringstream ss(one);
    for (std::string t; std::getline(ss, t, ',');)
      v.push_back(std::atoll(t.c_str()));
    if (v.size() < 11 || v.size() > 13)
      fail("bad conv spec '" + one + "': want N,IC,H,W,OC,KH,KW,stride,pad,groups,relu[,needs_dx[,bias]]");
    ConvSpec c{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10] != 0};
    if (v.size() > 11)
      c.needsDx = v[11] != 0;
    if (v.size() > 12)
      c.bias = v[12] != 0;
    out.push_back(c);
  }
  return out;
}

int runOnednn(int argc, char **argv) {
  using namespace dnnl;
  using tag = memory::format_tag;
  using dt = memory::data_type;
  const char *spec = optValue(argc, argv, "--convs"), *fcSpec = optValue(argc, argv, "--fcs");
  if (!spec && !fcSpec)
    fail("usage: cnnc_bench_worker onednn --convs N,IC,H,W,OC,KH,KW,stride,pad,groups,relu[;...] "
         "[--pass fwd|bwd_data|bwd_weights|train] | --fcs N,K,M,relu[;...]");
  const std::string pass = optValue(argc, argv, "--pass", "fwd");
  if (pass != "fwd" && pass != "bwd_data" && pass != "bwd_weights" && pass != "train")
    fail("--pass " + pass + ": expected fwd, bwd_data, bwd_weights or train");
  int threads = std::atoi(optValue(argc, argv, "--threads", "0"));
  if (threads > 0 && omp_get_max_threads() != threads)
    fail("OMP_NUM_THREADS gives oneDNN " + std::to_string(omp_get_max_threads()) +
         " threads, not " + std::to_string(threads));
  std::vector<ConvSpec> convs = spec ? parseConvs(spec) : std::vector<ConvSpec>{};
  std::vector<std::vector<int64_t>> fcs;
  if (fcSpec) {
    std::stringstream all(fcSpec);
    for (std::string one; std::getline(all, one, ';');) {
      std::vector<int64_t> v;
      std::stringstream ss(one);
      for (std::string t; std::getline(ss, t, ',');)
        v.push_back(std::atoll(t.c_str()));
      if (v.size() != 4)
        fail("bad fc spec '" + one + "': want N,K,M,relu");
      fcs.push_back(v);
    }
  }
  try {
    engine eng(engine::kind::cpu, 0);
    stream strm(eng);
    std::mt19937 rng(12345);
    std::uniform_real_distribution<float> unit(0.0f, 1.0f);
    struct Prim {
      primitive prim;
      std::unordered_map<int, memory> args;
    };
    std::vector<Prim> prims;
    std::vector<std::string> impls;
    // Random values in [-scale, scale) in the plain layout, reordered into oneDNN's (outside
    // any timed call). Every tensor is filled, outputs too: no denormal or NaN garbage.
    auto filled = [&](const memory::desc &userMd, const memory::desc &md, float scale) {
      memory user(userMd, eng);
      float *p = static_cast<float *>(user.get_data_handle());
      size_t n = userMd.get_size() / sizeof(float);
      for (size_t i = 0; i < n; ++i)
        p[i] = scale * (2 * unit(rng) - 1);
      if (md == userMd)
        return user;
      memory m(md, eng);
      reorder(user, m).execute(strm, user, m);
      strm.wait();
      return m;
    };
    for (const ConvSpec &c : convs) {
      int64_t oh = (c.h + 2 * c.pad - c.kh) / c.stride + 1, ow = (c.w + 2 * c.pad - c.kw) / c.stride + 1;
      memory::dims srcD{c.n, c.ic, c.h, c.w}, dstD{c.n, c.oc, oh, ow}, biasD{c.oc};
      memory::dims weiD = c.groups > 1 ? memory::dims{c.groups, c.oc / c.groups, c.ic / c.groups, c.kh, c.kw}
                                       : memory::dims{c.oc, c.ic, c.kh, c.kw};
      memory::dims strides{c.stride, c.stride}, pads{c.pad, c.pad};
      tag weiTag = c.groups > 1 ? tag::goihw : tag::oihw;
      memory::desc srcAny(srcD, dt::f32, tag::any), weiAny(weiD, dt::f32, tag::any),
          dstAny(dstD, dt::f32, tag::any), biasMd(biasD, dt::f32, tag::x);
      memory::desc srcPlain(srcD, dt::f32, tag::nchw), dstPlain(dstD, dt::f32, tag::nchw),
          weiPlain(weiD, dt::f32, weiTag);
      const float wScale = std::sqrt(6.0f / (float)(c.ic / c.groups * c.kh * c.kw));
      const bool fwdOnly = pass == "fwd";
      // The forward primitive: timed for fwd and train, the backward ones' hint otherwise.
      auto fwdDesc = c.bias ? convolution_forward::desc(fwdOnly ? prop_kind::forward_inference : prop_kind::forward_training,
                                                        algorithm::convolution_direct, srcAny, weiAny, biasMd,
                                                        dstAny, strides, pads, pads)
                            : convolution_forward::desc(fwdOnly ? prop_kind::forward_inference : prop_kind::forward_training,
                                                        algorithm::convolution_direct, srcAny, weiAny, dstAny,
                                                        strides, pads, pads);
      primitive_attr attr;
      if (c.relu && (fwdOnly || pass == "train")) {
        post_ops po;
        po.append_eltwise(1.0f, algorithm::eltwise_relu, 0.0f, 0.0f);
        attr.set_post_ops(po);
      }
      convolution_forward::primitive_desc fpd(fwdDesc, attr, eng);
      if (fwdOnly || pass == "train") {
        impls.push_back(fpd.impl_info_str());
        std::unordered_map<int, memory> args{{DNNL_ARG_SRC, filled(srcPlain, fpd.src_desc(), 1.0f)},
                                             {DNNL_ARG_WEIGHTS, filled(weiPlain, fpd.weights_desc(), wScale)},
                                             {DNNL_ARG_DST, filled(dstPlain, fpd.dst_desc(), 1.0f)}};
        if (c.bias)
          args[DNNL_ARG_BIAS] = filled(biasMd, fpd.bias_desc(), 0.01f);
        prims.push_back({convolution_forward(fpd), std::move(args)});
      }
      if (pass == "bwd_weights" || pass == "train") {
        bool bias = c.bias && pass == "train";
        auto d = bias ? convolution_backward_weights::desc(algorithm::convolution_direct, srcAny, weiAny, biasMd,
                                                           dstAny, strides, pads, pads)
                      : convolution_backward_weights::desc(algorithm::convolution_direct, srcAny, weiAny, dstAny,
                                                           strides, pads, pads);
        convolution_backward_weights::primitive_desc pd(d, eng, fpd);
        impls.push_back(pd.impl_info_str());
        std::unordered_map<int, memory> args{{DNNL_ARG_SRC, filled(srcPlain, pd.src_desc(), 1.0f)},
                                             {DNNL_ARG_DIFF_DST, filled(dstPlain, pd.diff_dst_desc(), 1.0f)},
                                             {DNNL_ARG_DIFF_WEIGHTS, filled(weiPlain, pd.diff_weights_desc(), 1.0f)}};
        if (bias)
          args[DNNL_ARG_DIFF_BIAS] = filled(biasMd, pd.diff_bias_desc(), 1.0f);
        prims.push_back({convolution_backward_weights(pd), std::move(args)});
      }
      if (pass == "bwd_data" || (pass == "train" && c.needsDx)) {
        convolution_backward_data::desc d(algorithm::convolution_direct, srcAny, weiAny, dstAny, strides, pads,
                                          pads);
        convolution_backward_data::primitive_desc pd(d, eng, fpd);
        impls.push_back(pd.impl_info_str());
        prims.push_back({convolution_backward_data(pd),
                         {{DNNL_ARG_DIFF_DST, filled(dstPlain, pd.diff_dst_desc(), 1.0f)},
                          {DNNL_ARG_WEIGHTS, filled(weiPlain, pd.weights_desc(), wScale)},
                          {DNNL_ARG_DIFF_SRC, filled(srcPlain, pd.diff_src_desc(), 1.0f)}}});
      }
    }
    // fc (forward inference): weights in the layout oneDNN picks (format_tag::any), reordered
    // once by `filled`, outside the timed calls, like the convs' weights; bias + fused ReLU.
    for (const auto &v : fcs) {
      const int64_t n = v[0], k = v[1], m = v[2];
      memory::desc srcPlain({n, k}, dt::f32, tag::nc), weiPlain({m, k}, dt::f32, tag::oi),
          dstPlain({n, m}, dt::f32, tag::nc), biasMd({m}, dt::f32, tag::x);
      inner_product_forward::desc d(prop_kind::forward_inference,
                                    memory::desc({n, k}, dt::f32, tag::any),
                                    memory::desc({m, k}, dt::f32, tag::any), biasMd,
                                    memory::desc({n, m}, dt::f32, tag::any));
      primitive_attr attr;
      if (v[3]) {
        post_ops po;
        po.append_eltwise(1.0f, algorithm::eltwise_relu, 0.0f, 0.0f);
        attr.set_post_ops(po);
      }
      inner_product_forward::primitive_desc pd(d, attr, eng);
      impls.push_back(pd.impl_info_str());
      prims.push_back({inner_product_forward(pd),
                       {{DNNL_ARG_SRC, filled(srcPlain, pd.src_desc(), 1.0f)},
                        {DNNL_ARG_WEIGHTS, filled(weiPlain, pd.weights_desc(), std::sqrt(6.0f / (float)k))},
                        {DNNL_ARG_BIAS, filled(biasMd, pd.bias_desc(), 0.01f)},
                        {DNNL_ARG_DST, filled(dstPlain, pd.dst_desc(), 1.0f)}}});
    }
    auto call = [&] {
      for (auto &p : prims)
        p.prim.execute(strm, p.args);
      strm.wait();
    };
    // The distinct implementations oneDNN chose (e.g. "brgconv:avx512_core", "jit:avx2").
    std::vector<std::string> distinct;
    for (auto &s : impls)
      if (std::find(distinct.begin(), distinct.end(), s) == distinct.end())
        distinct.push_back(s);
    std::string impl;
    for (auto &s : distinct)
      impl += (impl.empty() ? "" : " ") + s;
    std::string ready = "{\"ready\": true, \"threads\": " + std::to_string(omp_get_max_threads()) +
                        ", \"convs\": " + std::to_string(convs.size()) + ", \"fcs\": " +
                        std::to_string(fcs.size()) + ", \"primitives\": " +
                        std::to_string(prims.size()) + ", \"impl\": \"" + jsonEscape(impl) + "\"}";
    serve(ready, call);
  } catch (const dnnl::error &e) {
    fail(std::string("oneDNN: ") + e.what());
  }
  return 0;
}
#endif

} // namespace

int main(int argc, char **argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "machine")
    return runMachine(argc, argv);
  if (mode == "cnnc")
    return runCnnc(argc, argv);
  if (mode == "cnnc-train")
    return runCnncTrain(argc, argv);
  if (mode == "onednn") {
#ifdef CNNC_BENCH_HAVE_DNNL
    return runOnednn(argc, argv);
#else
    fail("this cnnc_bench_worker was built without oneDNN (libdnnl-dev)");
#endif
  }
  std::cerr << "usage: cnnc_bench_worker machine|cnnc|cnnc-train|onednn ... (see bench/bench_worker.cpp)\n";
  return 2;
}
