// The differential fuzz target (docs/hardening.md, "The differential fuzzer"): a random
// small valid model (RandomModel.h) runs through the default pass pipeline and the LLVM JIT,
// and must agree with the reference interpreter on the unoptimised model (in f64). A
// training model is compared as one SGD step (loss and every updated param): autodiff,
// the training passes and every backward kernel are under test too.
//
// The comparison, per output element, with e the f64 interpreter, g the f32 interpreter
// (the conditioning guard) and a the JIT, scale = max(1, max |e| over the output's finite
// elements):
//  - e NaN: a must be NaN; e = +-inf: a must be the same infinity (the interpreter defines
//    the NaN and infinity semantics, PyTorch's: docs/hardening.md);
//  - e finite: |a - e| <= kTol * scale;
//  - skipped where the model is too ill-conditioned at f32 for the comparison to mean
//    anything: g disagrees with e in class (f32 overflow, a NaN the f64 run does not make)
//    or beyond kTol * scale (a near-tie decided differently, rounding amplified).
// A mismatch throws std::logic_error with the model's IR, so the fuzzer reports it.
#include "fuzz/DiffTarget.h"

#include "fuzz/RandomModel.h"
#include "interp/Interpreter.h"
#include "passes/Autodiff.h"
#include "passes/Passes.h"
#include "tools/Compiled.h"

#include <fmt/format.h>

#include <cmath>
#include <stdexcept>

namespace cnnc::fuzz {

namespace {

constexpr double kTol = 1e-3;
constexpr uint64_t kStep = 3; // drives dropout masks, as the codegen tests' steps

using Tensors = std::map<std::string, interp::Tensor<double>>;

// What a function's outputs are called in runJit's results: an update by its param.
std::string outputKey(const Node *o) {
  return o->op == OpKind::Update ? o->operands[0]->name : o->name;
}

enum class Class { Finite, Nan, PosInf, NegInf };
Class classOf(double v) {
  return std::isnan(v) ? Class::Nan : v == INFINITY ? Class::PosInf : v == -INFINITY ? Class::NegInf : Class::Finite;
}

void compare(const std::string &name, const interp::Tensor<double> &e,
             const interp::Tensor<float> &g, const interp::Tensor<double> &a,
             const std::string &what, const std::string &ir) {
  if (a.size() != e.size())
    throw std::logic_error(fmt::format("fuzz diff: %{}: {} elements from the JIT, {} from the "
                                       "interpreter ({})\n{}", name, a.size(), e.size(), what, ir));
  double scale = 1;
  for (double v : e)
    if (std::isfinite(v) && std::abs(v) <= 3.4e38)
      scale = std::max(scale, std::abs(v));
  for (size_t i = 0; i < e.size(); ++i) {
    const double ev = e.data()[i], gv = g.data()[i], av = a.data()[i];
    if (std::abs(ev) > 3.4e38 && std::isfinite(ev))
      continue; // overflows f32
    const Class ec = classOf(ev);
    if (classOf(gv) != ec || (ec == Class::Finite && std::abs(gv - ev) > kTol * scale))
      continue; // ill-conditioned at f32
    const bool ok = ec == Class::Finite ? std::abs(av - ev) <= kTol * scale : classOf(av) == ec;
    if (!ok)
      throw std::logic_error(fmt::format(
          "fuzz diff: %{}[{}]: JIT {} != interpreter {} (f32 interpreter {}, scale {}) ({})\n{}",
          name, i, av, ev, gv, scale, what, ir));
  }
}

// One SGD step of a compiled @train_step (tools::JitTrainer: the params live in the
// trainer, updated in place): the loss and every param after the step, by name.
Tensors jitStep(const Function &ts, const Tensors &feeds, const codegen::TargetOptions &t,
                int threads) {
  auto tr = tools::JitTrainer::compile(ts, t);
  tr->setThreads(threads);
  Tensors params, batch;
  for (const auto &p : tr->paramNames())
    params[p] = feeds.at(p);
  for (const auto &d : tr->dataInputs())
    batch[d] = feeds.at(d);
  tr->setParams(params);
  tr->setStepCount(kStep);
  const interp::StepResult r =
      tr->step(batch, {feeds.at("lr")(), feeds.at("momentum")(), feeds.at("weight_decay")()});
  Tensors out;
  out["loss"] = interp::Tensor<double>(xt::xarray<double>(r.loss));
  for (auto &[name, v] : tr->params())
    out[name] = xt::cast<double>(v);
  return out;
}

std::string run(std::string_view bytes, const std::string &) {
  RandomModel rm = randomModel(bytes);
  const std::string forwardIr = print(*rm.module);
  // the oracle's function: the forward model, or its training step without the passes
  std::unique_ptr<Module> ref = parseModule(forwardIr, "<random model>");
  std::unique_ptr<Module> jit = parseModule(forwardIr, "<random model>");
  Function &rf = ref->main();
  PipelineOptions po;
  po.training = rm.training;
  try {
    if (rm.training)
      buildTrainStep(rf);
    runPipeline(*jit, po);
  } catch (const Error &e) {
    return e.what(); // a model autodiff refuses (e.g. no param reaches the loss)
  }
  const std::string ir = print(*ref);
  Tensors feeds = randomFeeds(rf, rm.feedSeed, rm.specials);
  interp::RunOptions ro;
  ro.step = kStep;
  if (rm.training) {
    auto scalar = [](double v) { return interp::Tensor<double>(xt::xarray<double>(v)); };
    feeds["lr"] = scalar(0.5), feeds["momentum"] = scalar(0.9);
    feeds["weight_decay"] = scalar(5e-4), feeds["step"] = scalar((double)kStep);
  }
  std::map<std::string, interp::Tensor<float>> feeds32;
  for (const auto &[k, v] : feeds)
    feeds32[k] = xt::cast<float>(v);
  const Tensors expected = interp::run<double>(rf, feeds, ro);
  const auto expected32 = interp::run<float>(rf, feeds32, ro);

  // One build per input, chosen by the feeds' seed: the host at 1 thread, the host with
  // every op through a 2-thread pool, AVX2 only (x86-64-v3), 16 lanes.
  codegen::TargetOptions t;
  int threads = 1;
  const char *builds[] = {"host, 1 thread", "host, 2 threads", "x86-64-v3", "16 lanes"};
  const int build = (int)(rm.feedSeed % 4);
  if (build != 0)
    t.parallelMinWork = 0, threads = 2;
  if (build == 2)
    t.cpu = "x86-64-v3";
  if (build == 3)
    t.vectorWidth = 16, t.narrowConvs = (rm.feedSeed / 4) % 2;
  Tensors actual;
  try {
    actual = rm.training ? jitStep(jit->main(), feeds, t, threads)
                         : tools::runJit(jit->main(), feeds, t, nullptr, threads);
  } catch (const Error &e) {
    throw std::logic_error(fmt::format("fuzz diff: the JIT refused a model the interpreter "
                                       "runs: {}\n{}", e.what(), ir));
  }
  const std::string what = fmt::format("{}{}", builds[build], rm.training ? ", training step" : "");
  // Outputs by position: simplify may fold a no-op output into its operand, which then
  // names it (passes/Simplify.cpp); a step's updates by their param.
  const Function &jf = jit->main();
  for (size_t k = 0; k < rf.outputs().size(); ++k) {
    const Node *o = rf.outputs()[k];
    const std::string key = rm.training ? outputKey(o) : jf.outputs().at(k)->name;
    auto it = actual.find(key);
    if (it == actual.end()) {
      std::string keys;
      for (const auto &[name, v] : actual)
        keys += " %" + name;
      throw std::logic_error(
          fmt::format("fuzz diff: no JIT output for %{} (it has{})\n{}", key, keys, ir));
    }
    compare(outputKey(o), expected.at(o->name), expected32.at(o->name), it->second, what, ir);
  }
  return "";
}

} // namespace

const Target &diffTarget() {
  static const Target t{"diff", "diff", false, run};
  return t;
}

} // namespace cnnc::fuzz
