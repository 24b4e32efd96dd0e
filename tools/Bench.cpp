// tools/Bench.h. The library is timed the way a user's program calls it: through the C API
// of a `cnnc compile` .so (unprefixed names, as bench/bench_worker.cpp dlopens them), so the
// figures include what the API adds (argument checks, the thread pool), not only the entry.
#include "tools/Bench.h"
#include "bench/machine.h"
#include "passes/ModelStats.h"
#include "passes/Passes.h"
#include "runtime/CnncApi.h"
#include "runtime/Parallel.h"
#include "tools/Compiled.h"
#include "tools/Preprocess.h"
#include "frontend/OnnxImport.h"
#include "tools/Profile.h"

#include <dlfcn.h>
#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <random>

namespace cnnc::tools {

namespace fs = std::filesystem;

namespace {

// The C API of the compiled library, looked up by name (the library is dlopened, so a
// second model in the same process could not clash with it).
struct Api {
  void *lib = nullptr;
  decltype(&cnnc_create) create;
  decltype(&cnnc_destroy) destroy;
  decltype(&cnnc_infer) infer;
  decltype(&cnnc_train_step) trainStep;
  decltype(&cnnc_set_threads) setThreads;
  decltype(&cnnc_last_error) lastError;
  decltype(&cnnc_num_buffers) numBuffers;
  decltype(&cnnc_buffer_info) bufferInfo;
  decltype(&cnnc_target_cpu) targetCpu;
  decltype(&cnnc_target_isa) targetIsa;
  decltype(&cnnc_get_param) getParam;

  template <class F> void bind(const char *name, F &f) {
    f = reinterpret_cast<F>(dlsym(lib, name));
    if (!f)
      throw Error(fmt::format("cnnc bench: the library lacks {}", name));
  }
  explicit Api(const std::string &path) {
    lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib)
      throw Error(fmt::format("cnnc bench: dlopen {}: {}", path, dlerror()));
    bind("cnnc_create", create), bind("cnnc_destroy", destroy), bind("cnnc_infer", infer);
    bind("cnnc_set_threads", setThreads), bind("cnnc_last_error", lastError);
    bind("cnnc_num_buffers", numBuffers), bind("cnnc_buffer_info", bufferInfo);
    bind("cnnc_target_cpu", targetCpu), bind("cnnc_target_isa", targetIsa);
    bind("cnnc_get_param", getParam);
    trainStep = reinterpret_cast<decltype(trainStep)>(dlsym(lib, "cnnc_train_step"));
  }
  ~Api() { dlclose(lib); }
  Api(const Api &) = delete;
  Api &operator=(const Api &) = delete;
};

// Seeded data for one kind of buffer at `batch` examples: f32 uniform [0, 1), integer
// inputs (labels) 0, a class index of every classifier. The dtype is the IR's: the C API
// does not report it.
struct Buffers {
  std::vector<std::vector<int64_t>> words; // 8 bytes per element: f32, i32 and i64 alike
  std::vector<void *> ptrs;
};
Buffers makeBuffers(const Api &api, const Function &f, int kind, int64_t batch, uint64_t seed) {
  Buffers b;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(0, 1);
  const int n = api.numBuffers(kind);
  b.words.resize(n);
  for (int k = 0; k < n; ++k) {
    const char *name = nullptr;
    int rank = 0;
    int64_t per = 0;
    api.bufferInfo(kind, k, &name, &rank, nullptr, &per);
    const int64_t count = per * batch;
    b.words[k].assign((size_t)std::max<int64_t>(count, 1), 0);
    b.ptrs.push_back(b.words[k].data());
    const Node *node = f.find(name);
    if (kind != CNNC_KIND_OUTPUT && (!node || node->type.dtype == DType::F32))
      for (int64_t e = 0; e < count; ++e)
        reinterpret_cast<float *>(b.ptrs.back())[e] = u(rng);
  }
  return b;
}

struct Timing {
  std::string function; // infer | train_step
  int64_t flops = 0;    // 2 x multiply-adds of one call
  bench::Summary ms;
};

template <class Call> bench::Summary timeCalls(const BenchOptions &o, Call &&call) {
  for (int i = 0; i < o.warmup; ++i)
    call();
  std::vector<double> ms;
  for (int i = 0; i < o.reps; ++i)
    ms.push_back(bench::timeMs(call));
  return bench::summarize(ms);
}

std::string fmtMs(double ms) { return fmt::format("{:.4f}", ms); }

// ---- --vs-torch ------------------------------------------------------------------------
// The converter and worker (python/cnnc/onnx_torch.py): $CNNC_PYTHON_DIR, the installed
// package beside this executable (<prefix>/bin/cnnc, <prefix>/CNNC_PYTHON_INSTALL_DIR), or
// the source tree cnnc was built from.
std::string torchScript() {
  std::vector<fs::path> dirs;
  if (const char *e = std::getenv("CNNC_PYTHON_DIR"))
    dirs.emplace_back(e);
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec)
    dirs.push_back(exe.parent_path().parent_path() / CNNC_PYTHON_INSTALL_DIR);
  dirs.emplace_back(CNNC_PYTHON_SOURCE_DIR);
  for (const fs::path &d : dirs)
    if (fs::exists(d / "cnnc/onnx_torch.py"))
      return (d / "cnnc/onnx_torch.py").string();
  throw Error("cnnc bench --vs-torch: python/cnnc/onnx_torch.py not found (set CNNC_PYTHON_DIR)");
}

// A PyTorch worker process: requests on its stdin, one JSON line back per request.
class TorchWorker {
public:
  explicit TorchWorker(const std::vector<std::string> &args) {
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0)
      throw Error("cnnc bench --vs-torch: pipe failed");
    pid_ = fork();
    if (pid_ < 0)
      throw Error("cnnc bench --vs-torch: fork failed");
    if (pid_ == 0) {
      dup2(in[0], 0), dup2(out[1], 1);
      close(in[0]), close(in[1]), close(out[0]), close(out[1]);
      std::vector<char *> argv;
      for (const std::string &a : args)
        argv.push_back(const_cast<char *>(a.c_str()));
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      std::printf("{\"error\": \"cannot run %s\"}\n", argv[0]);
      std::fflush(stdout);
      _exit(127);
    }
    close(in[0]), close(out[1]);
    to_ = fdopen(in[1], "w"), from_ = fdopen(out[0], "r");
  }
  ~TorchWorker() {
    if (to_) {
      std::fputs("quit\n", to_);
      std::fclose(to_);
    }
    if (from_)
      std::fclose(from_);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
  TorchWorker(const TorchWorker &) = delete;
  TorchWorker &operator=(const TorchWorker &) = delete;

  std::string readLine() {
    std::string line;
    for (int c; (c = std::fgetc(from_)) != EOF && c != '\n';)
      line += (char)c;
    if (line.empty())
      throw Error("cnnc bench --vs-torch: the PyTorch worker stopped (is python3-torch installed?)");
    return line;
  }
  // One timed call, in milliseconds (the worker times it with its own clock: no pipe in it).
  double timeOne() {
    std::fputs("run 1\n", to_);
    std::fflush(to_);
    const std::string line = readLine();
    const size_t p = line.find('[');
    if (p == std::string::npos)
      throw Error("cnnc bench --vs-torch: " + line);
    return std::stod(line.substr(p + 1));
  }

private:
  pid_t pid_ = -1;
  FILE *to_ = nullptr, *from_ = nullptr;
};

double jsonField(const std::string &json, const std::string &key) {
  const size_t p = json.find("\"" + key + "\": ");
  return p == std::string::npos ? 0.0 : std::stod(json.substr(p + key.size() + 4));
}

struct TorchResult {
  bench::Summary ms;
  double maxErr = 0;
  std::string version;
};

// Starts the PyTorch worker on the model as ONNX, with the instance's weights, checked
// against cnnc's outputs on `inputs` (one cnnc_infer call) before any timing.
std::unique_ptr<TorchWorker> startTorch(const BenchOptions &o, const Api &api, cnnc_instance *inst,
                                        const Function &inf, const Buffers &in, const fs::path &dir,
                                        int threads, TorchResult &tr) {
  const int64_t batch = o.load.cnn.batch;
  std::string inputs, expect;
  for (int k = 0; k < api.numBuffers(CNNC_KIND_INPUT); ++k) {
    const char *name = nullptr;
    api.bufferInfo(CNNC_KIND_INPUT, k, &name, nullptr, nullptr, nullptr);
    const Node *n = inf.find(name);
    if (!n || n->type.dtype != DType::F32)
      throw Error(fmt::format("cnnc bench --vs-torch: input %{} is not f32", name));
    const float *v = static_cast<const float *>(in.ptrs[k]);
    std::vector<int64_t> shape = n->type.shape;
    const fs::path f = dir / fmt::format("in{}.npy", k);
    writeTensorFile(f.string(), io::Array::fromFloats(std::vector<float>(v, v + n->type.numel()), shape));
    inputs += (k ? "," : "") + f.string();
  }
  Buffers out = makeBuffers(api, inf, CNNC_KIND_OUTPUT, batch, 0);
  std::vector<const void *> ins(in.ptrs.begin(), in.ptrs.end());
  std::vector<float *> outs;
  for (void *p : out.ptrs)
    outs.push_back(static_cast<float *>(p));
  if (api.infer(inst, batch, ins.data(), outs.data()) != 0)
    throw Error(fmt::format("cnnc bench: cnnc_infer: {}", api.lastError(inst)));
  for (int k = 0; k < api.numBuffers(CNNC_KIND_OUTPUT); ++k) {
    const char *name = nullptr;
    api.bufferInfo(CNNC_KIND_OUTPUT, k, &name, nullptr, nullptr, nullptr);
    const Node *n = inf.find(name);
    CNNC_ASSERT(n, "bench: an output of the library is not in @infer");
    const fs::path f = dir / fmt::format("out{}.npy", k);
    writeTensorFile(f.string(), io::Array::fromFloats(std::vector<float>(outs[k], outs[k] + n->type.numel()), n->type.shape));
    expect += (k ? "," : "") + f.string();
  }
  // The model as ONNX: an .onnx as given (its initializers are the library's weights), else
  // cnnc's export of the inference model with the instance's parameters.
  std::string onnx = o.model;
  if (!(o.model.size() > 5 && o.model.compare(o.model.size() - 5, 5, ".onnx") == 0 && o.weights.empty() &&
        !o.inputMean)) {
    LoadOptions lo = o.load;
    lo.cnn.training = false;
    LoadedModel lm = loadModelFile(o.model, lo);
    if (o.inputMean || (!o.weights.empty() && weightsHavePreprocessing(*lm.module, o.weights)))
      addInputPreprocessing(*lm.module);
    const Function &f = lm.module->main();
    std::map<std::string, OnnxTensor> w;
    for (const Node *n : f.nodeList())
      if (n->op == OpKind::Param) {
        std::vector<float> v((size_t)n->type.numel());
        if (api.getParam(inst, n->name.c_str(), v.data(), n->type.numel()) != 0)
          throw Error(fmt::format("cnnc bench --vs-torch: cnnc_get_param {}: {}", n->name, api.lastError(inst)));
        w[n->name] = OnnxTensor{n->name, DType::F32, n->type.shape, std::vector<double>(v.begin(), v.end())};
      }
    onnx = (dir / "model.onnx").string();
    exportOnnx(f, w, onnx);
  }
  auto worker = std::make_unique<TorchWorker>(std::vector<std::string>{
      "/usr/bin/python3", torchScript(), "serve", onnx, "--inputs", inputs, "--expect", expect, "--threads",
      std::to_string(threads)});
  const std::string ready = worker->readLine();
  if (ready.find("\"ready\"") == std::string::npos)
    throw Error("cnnc bench --vs-torch: " + ready);
  tr.maxErr = jsonField(ready, "max_err");
  const size_t v = ready.find("\"torch\": \"");
  if (v != std::string::npos)
    tr.version = ready.substr(v + 10, ready.find('"', v + 10) - v - 10);
  return worker;
}

} // namespace

int runBench(const BenchOptions &o) {
  LoadedModel lm = loadModelFile(o.model, o.load);
  Module &mod = *lm.module;
  const bool train = o.load.cnn.training;
  if (o.inputMean || (!o.weights.empty() && weightsHavePreprocessing(mod, o.weights)))
    addInputPreprocessing(mod);
  // The library's weights: a bench of zero weights would time the same, but --vs-torch
  // compares outputs, and an ONNX model's own initializers are what its user runs.
  CompileRequest r;
  r.emit = "so";
  r.prefix = "cnnc";
  r.weights = o.weights;
  if (o.weights.empty())
    r.fileWeights = !lm.weights.empty() ? lm.weights : initParams(mod.main(), 0);
  r.target.cpu = o.targetCpu;
  r.modelName = fs::path(o.model).stem().string();
  PipelineOptions po;
  po.training = train;
  runPipeline(mod, po);
  const Function *inf = train ? mod.find(FunctionRole::Infer) : &mod.main();
  const Function *ts = train ? mod.find(FunctionRole::TrainStep) : nullptr;
  if (!inf || (train && !ts))
    throw Error("cnnc bench --train: the model has no @infer and @train_step");

  const fs::path dir = fs::temp_directory_path() / fmt::format("cnnc-bench-{}", ::getpid());
  fs::create_directories(dir);
  struct Cleanup {
    fs::path d;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(d, ec);
    }
  } cleanup{dir};
  r.output = (dir / "libmodel.so").string();
  if (train)
    compileTrainModel(*inf, *ts, r);
  else
    compileModel(*inf, r);

  Api api(r.output);
  cnnc_instance *inst = nullptr;
  if (api.create(&inst) != 0)
    throw Error(fmt::format("cnnc bench: cnnc_create: {}", api.lastError(nullptr)));
  std::unique_ptr<cnnc_instance, decltype(api.destroy)> owner(inst, api.destroy);
  const int threads = o.threads > 0 ? o.threads : cnnc_rt_default_threads();
  if (api.setThreads(inst, threads) != 0)
    throw Error(fmt::format("cnnc bench: cnnc_set_threads: {}", api.lastError(inst)));
  const int64_t batch = o.load.cnn.batch;

  std::vector<Timing> timings;
  std::unique_ptr<TorchResult> torch; // --vs-torch: PyTorch on @infer's case
  { // infer
    Buffers in = makeBuffers(api, *inf, CNNC_KIND_INPUT, batch, 1), out = makeBuffers(api, *inf, CNNC_KIND_OUTPUT, batch, 2);
    std::vector<const void *> ins(in.ptrs.begin(), in.ptrs.end());
    std::vector<float *> outs;
    for (void *p : out.ptrs)
      outs.push_back(static_cast<float *>(p));
    Timing t{"infer", 2 * computeModelStats(*inf).totalMacs, {}};
    auto call = [&] {
      if (api.infer(inst, batch, ins.data(), outs.data()) != 0)
        throw Error(fmt::format("cnnc bench: cnnc_infer: {}", api.lastError(inst)));
    };
    if (o.vsTorch) { // interleaved: a cnnc call, a PyTorch call, ... (same inputs, threads)
      torch = std::make_unique<TorchResult>();
      auto worker = startTorch(o, api, inst, *inf, in, dir, threads, *torch);
      for (int i = 0; i < o.warmup; ++i)
        call(), worker->timeOne();
      std::vector<double> cms, tms;
      for (int i = 0; i < o.reps; ++i) {
        cms.push_back(bench::timeMs(call));
        tms.push_back(worker->timeOne());
      }
      t.ms = bench::summarize(cms), torch->ms = bench::summarize(tms);
    } else
      t.ms = timeCalls(o, call);
    timings.push_back(t);
  }
  if (train) {
    Buffers in = makeBuffers(api, *ts, CNNC_KIND_TRAIN_INPUT, batch, 3);
    std::vector<const void *> ins(in.ptrs.begin(), in.ptrs.end());
    // lr 0: the weights stay those of the library, so every step does the same work
    Timing t{"train_step", 2 * computeModelStats(*ts).totalMacs, {}};
    t.ms = timeCalls(o, [&] {
      if (api.trainStep(inst, batch, ins.data(), 0.f, 0.9f, 5e-4f, nullptr, nullptr) != 0)
        throw Error(fmt::format("cnnc bench: cnnc_train_step: {}", api.lastError(inst)));
    });
    timings.push_back(t);
  }

  // The FP32 FMA peak of the library's vector width at the same thread count.
  const bench::CpuInfo cpu = bench::detectCpu();
  const std::string isa = api.targetIsa();
  const bench::VecWidth w = isa == "AVX-512" ? bench::VecWidth::Zmm512 : bench::VecWidth::Ymm256;
  bench::PeakOptions popt;
  popt.threads = threads;
  const double peak = bench::supported(cpu, w) ? bench::fmaPeakGflops(w, popt) : 0.0;

  std::vector<Profile> profiles;
  if (o.profile) {
    profiles.push_back(profileFunction(*inf, {}, threads, o.reps, r.target));
    if (ts)
      profiles.push_back(profileFunction(*ts, {}, threads, o.reps, r.target));
  }
  auto gflops = [](const Timing &t) { return t.ms.median > 0 ? t.flops / (t.ms.median * 1e6) : 0.0; };
  if (o.json) {
    std::string s = fmt::format(
        "{{\"model\": \"{}\", \"batch\": {}, \"threads\": {}, \"target_cpu\": \"{}\", \"isa\": \"{}\", "
        "\"cpu\": \"{}\", \"peak_gflops\": {:.3f}, \"peak_width\": \"{}\", \"reps\": {}, \"warmup\": {}, \"results\": [",
        o.model, batch, threads, api.targetCpu(), isa, cpu.modelName, peak, bench::widthName(w), o.reps, o.warmup);
    for (size_t i = 0; i < timings.size(); ++i) {
      const Timing &t = timings[i];
      s += fmt::format("{}{{\"function\": \"{}\", \"flops\": {}, \"median_ms\": {:.6f}, \"min_ms\": {:.6f}, "
                       "\"max_ms\": {:.6f}, \"gflops\": {:.4f}, \"peak_share\": {:.6f}}}",
                       i ? ", " : "", t.function, t.flops, t.ms.median, t.ms.min, t.ms.max, gflops(t),
                       peak > 0 ? gflops(t) / peak : 0.0);
    }
    s += "]";
    if (torch)
      s += fmt::format(", \"torch\": {{\"version\": \"{}\", \"function\": \"infer\", \"median_ms\": {:.6f}, "
                       "\"min_ms\": {:.6f}, \"max_ms\": {:.6f}, \"max_abs_diff\": {:.3g}, \"speedup\": {:.4f}, "
                       "\"speedup_min\": {:.4f}}}",
                       torch->version, torch->ms.median, torch->ms.min, torch->ms.max, torch->maxErr,
                       torch->ms.median / timings[0].ms.median, torch->ms.min / timings[0].ms.min);
    if (!profiles.empty()) {
      s += ", \"profiles\": [";
      for (size_t i = 0; i < profiles.size(); ++i)
        s += (i ? ", " : "") + profileJson(profiles[i]);
      s += "]";
    }
    std::cout << s << "}\n";
    return 0;
  }
  std::cout << fmt::format("cnnc bench {}: batch {}, {} thread{}, compiled for {} ({}); {} calls after {} warm-up\n",
                           o.model, batch, threads, threads == 1 ? "" : "s", api.targetCpu(), isa, o.reps,
                           o.warmup);
  std::cout << fmt::format("  {:<11} {:>12} {:>10} {:>10} {:>10} {:>9} {:>7}\n", "function", "MFLOP/call",
                           "median ms", "min ms", "max ms", "GFLOP/s", "% peak");
  for (const Timing &t : timings)
    std::cout << fmt::format("  {:<11} {:>12.2f} {:>10} {:>10} {:>10} {:>9.2f} {:>6.1f}%\n", t.function,
                             t.flops / 1e6, fmtMs(t.ms.median), fmtMs(t.ms.min), fmtMs(t.ms.max), gflops(t),
                             peak > 0 ? 100 * gflops(t) / peak : 0.0);
  std::cout << fmt::format("  peak: {:.1f} GFLOP/s ({} FP32 FMA, {} thread{}, measured now; {})\n", peak,
                           bench::widthName(w), threads, threads == 1 ? "" : "s",
                           cpu.modelName.empty() ? "unknown CPU" : cpu.modelName);
  if (torch) {
    std::cout << fmt::format("  {:<11} {:>12} {:>10} {:>10} {:>10}   PyTorch {} (eager, the model converted from ONNX), "
                             "interleaved with cnnc's calls\n",
                             "torch infer", "", fmtMs(torch->ms.median), fmtMs(torch->ms.min), fmtMs(torch->ms.max),
                             torch->version);
    std::cout << fmt::format("  cnnc / PyTorch speed: {:.2f}x by medians, {:.2f}x by minima; outputs agree to {:.2g} "
                             "(max |difference|)\n",
                             torch->ms.median / timings[0].ms.median, torch->ms.min / timings[0].ms.min, torch->maxErr);
  }
  for (const Profile &p : profiles)
    std::cout << "\n" << formatProfile(p);
  return 0;
}

} // namespace cnnc::tools
