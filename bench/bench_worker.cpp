// The native side of bench/run.sh (bench/harness.py drives it; docs/performance.md).
//
//   cnnc_bench_worker machine [--threads 1,2] [--seconds S]
//       prints one JSON line: CPU, FMA peaks (zmm, ymm) and triad bandwidth per thread count.
//   cnnc_bench_worker cnnc LIB.so --batch N --threads T [--keep-params]
//       dlopens a library made by `cnnc compile`, creates an instance through its C API
//       (cnnc_create, cnnc_set_threads, random parameters by cnnc_set_param unless
//       --keep-params keeps the embedded ones), random inputs; then serves timing requests.
//   cnnc_bench_worker onednn --convs SPEC[;SPEC...] [--threads T]
//       oneDNN convolution forward primitives (direct algorithm, format_tag::any for
//       src/weights/dst: oneDNN's blocked layouts), bias + fused ReLU post-op; data reordered
//       into oneDNN's layouts before timing. SPEC = N,IC,H,W,OC,KH,KW,stride,pad,groups,relu.
//       A request times the whole list executed in sequence (one conv, or a network's convs).
//       oneDNN (Debian: OpenMP runtime) takes its thread count from OMP_NUM_THREADS, which
//       the harness sets; --threads is checked against omp_get_max_threads().
//
// Serving: after setup the worker prints one JSON line {"ready": true, ...}; then for each
// line "run K" on stdin it makes K calls, timing each on the steady clock, and prints
// {"ms": [t1, ..., tK]}; "quit" or end of input exits. A setup failure prints {"error": ...}
// and exits 1. Keeping the worker alive lets the harness interleave the systems' repetitions
// without paying process start, library load or weight packing in any timed call.
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
void serve(const std::string &readyJson, const std::function<void()> &call) {
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

// ---- oneDNN --------------------------------------------------------------------------------
#ifdef CNNC_BENCH_HAVE_DNNL
struct ConvSpec {
  int64_t n, ic, h, w, oc, kh, kw, stride, pad, groups;
  bool relu;
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
    if (v.size() != 11)
      fail("bad conv spec '" + one + "': want N,IC,H,W,OC,KH,KW,stride,pad,groups,relu");
    out.push_back({v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10] != 0});
  }
  return out;
}

int runOnednn(int argc, char **argv) {
  using namespace dnnl;
  using tag = memory::format_tag;
  using dt = memory::data_type;
  const char *spec = optValue(argc, argv, "--convs");
  if (!spec)
    fail("usage: cnnc_bench_worker onednn --convs N,IC,H,W,OC,KH,KW,stride,pad,groups,relu[;...]");
  int threads = std::atoi(optValue(argc, argv, "--threads", "0"));
  if (threads > 0 && omp_get_max_threads() != threads)
    fail("OMP_NUM_THREADS gives oneDNN " + std::to_string(omp_get_max_threads()) +
         " threads, not " + std::to_string(threads));
  std::vector<ConvSpec> convs = parseConvs(spec);
  try {
    engine eng(engine::kind::cpu, 0);
    stream strm(eng);
    std::mt19937 rng(12345);
    std::uniform_real_distribution<float> unit(0.0f, 1.0f);
    struct Prim {
      convolution_forward prim;
      std::unordered_map<int, memory> args;
    };
    std::vector<Prim> prims;
    std::vector<std::string> impls;
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
      tag weiTag = c.groups > 1 ? tag::goihw : tag::oihw;
      memory::desc srcAny(srcD, dt::f32, tag::any), weiAny(weiD, dt::f32, tag::any),
          dstAny(dstD, dt::f32, tag::any), biasMd(biasD, dt::f32, tag::x);
      convolution_forward::desc d(prop_kind::forward_inference, algorithm::convolution_direct, srcAny,
                                  weiAny, biasMd, dstAny, {c.stride, c.stride}, {c.pad, c.pad},
                                  {c.pad, c.pad});
      primitive_attr attr;
      if (c.relu) {
        post_ops po;
        po.append_eltwise(1.0f, algorithm::eltwise_relu, 0.0f, 0.0f);
        attr.set_post_ops(po);
      }
      convolution_forward::primitive_desc pd(d, attr, eng);
      impls.push_back(pd.impl_info_str());
      float wScale = std::sqrt(6.0f / (float)(c.ic / c.groups * c.kh * c.kw));
      memory src = filled(memory::desc(srcD, dt::f32, tag::nchw), pd.src_desc(), 1.0f);
      memory wei = filled(memory::desc(weiD, dt::f32, weiTag), pd.weights_desc(), wScale);
      memory bias = filled(biasMd, pd.bias_desc(), 0.01f);
      memory dst(pd.dst_desc(), eng);
      prims.push_back({convolution_forward(pd), {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei},
                                                 {DNNL_ARG_BIAS, bias}, {DNNL_ARG_DST, dst}}});
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
                        ", \"convs\": " + std::to_string(convs.size()) + ", \"impl\": \"" +
                        jsonEscape(impl) + "\"}";
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
  if (mode == "onednn") {
#ifdef CNNC_BENCH_HAVE_DNNL
    return runOnednn(argc, argv);
#else
    fail("this cnnc_bench_worker was built without oneDNN (libdnnl-dev)");
#endif
  }
  std::cerr << "usage: cnnc_bench_worker machine|cnnc|onednn ... (see bench/bench_worker.cpp)\n";
  return 2;
}
