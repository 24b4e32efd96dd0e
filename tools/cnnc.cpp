// The `cnnc` command line: wires the frontends, passes, analyses and backends together.
// Exit codes: 0 success, 1 a user error (bad model, bad input, mismatched weights) with one
// message on stderr, 2 a command-line usage error. docs/cli.md is the manual.
#include "frontend/OnnxImport.h"
#include "interp/Interpreter.h"
#include "passes/ModelStats.h"
#include "passes/Passes.h"
#include "tools/CliDocs.h"
#include "tools/Bench.h"
#include "tools/Compiled.h"
#include "tools/Dump.h"
#include "tools/Explain.h"
#include "tools/Image.h"
#include "tools/MemoryLimit.h"
#include "tools/Info.h"
#include "tools/Model.h"
#include "tools/OnnxDoc.h"
#include "tools/Preprocess.h"
#include "tools/Profile.h"
#include "tools/Train.h"
#include "tools/GitVersion.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>

using namespace cnnc;
using namespace cnnc::tools;

namespace {

// CLI11's PositiveNumber/NonNegativeNumber say "Value 0 not in range 0.000000 to 1.79769e+308"
// (with all 309 digits); these say what is wanted, under the same names in --help and the man page.
CLI::Validator numberAtLeast(bool zeroOk) {
  return CLI::Validator(
      [zeroOk](std::string &s) -> std::string {
        double v = 0;
        if (CLI::detail::lexical_cast(s, v) && (zeroOk ? v >= 0 : v > 0))
          return {};
        return fmt::format("'{}' is not a {} number", s, zeroOk ? "non-negative" : "positive");
      },
      zeroOk ? "NONNEGATIVE" : "POSITIVE");
}
const CLI::Validator kPositive = numberAtLeast(false), kNonNegative = numberAtLeast(true);

// An enum option by name: CLI11's CheckedTransformer also takes the enum's numbers and fails
// with "Check bogus value in {first->0,stratified->1} OR {0,1} FAILED". The description keeps
// the "{a,b}" form that tools/CliDocs reads the choices from.
template <typename E> CLI::Validator oneOf(const std::vector<std::pair<std::string, E>> &names) {
  std::vector<std::string> keys;
  for (const auto &[k, v] : names)
    keys.push_back(k);
  return CLI::Validator(
      [names, keys](std::string &s) -> std::string {
        for (const auto &[k, v] : names)
          if (s == k) {
            s = std::to_string(static_cast<int>(v));
            return {};
          }
        return fmt::format("'{}' is not one of {}", s, fmt::join(keys, ", "));
      },
      fmt::format("{{{}}}", fmt::join(keys, ",")));
}

struct ModelArgs {
  std::string path;
  int64_t batch = 0; // 0 = the default (1, or the input file's batch for `run`)
  std::string inputShape;
  double width = 1.0;
  bool train = false;
  bool inputMean = false; // the preprocessing params of tools/Preprocess.h
  std::string loss;       // .onnx with --train: the loss added on the output

  void add(CLI::App *app) {
    app->add_option("model", path, "model file (.cnn, .ir or .onnx)")->required();
    app->add_option("--batch", batch, "mini-batch size N (default 1)")->check(kPositive);
    app->add_option("--input-shape", inputShape, "override the input's spatial size, HxW (e.g. 32x32)");
    app->add_option("--width", width, "width multiplier s of SK-s networks (seed Exercise 6(f))")
        ->check(kPositive);
    app->add_flag("--train", train, "build the training graph (batch statistics, dropout on, loss)");
    app->add_option("--loss", loss, "ONNX models with --train and no loss of their own: the loss to add, "
                                    "softmax (default) or l2")
        ->check(CLI::IsMember({"softmax", "softmax_xent", "l2"}));
    app->add_flag("--input-mean", inputMean,
                  "add the input preprocessing params %<input>.mean and .scale that `cnnc train` saves "
                  "(implied by --weights holding them)");
  }

  /// Adds the input preprocessing (tools/Preprocess.h) when asked or when the weights file
  /// holds it, so that a model trained by `cnnc train` takes raw pixels.
  void preprocess(Module &m, const std::string &weights) const {
    if (preprocesses(m, weights))
      addInputPreprocessing(m);
  }
  bool preprocesses(const Module &m, const std::string &weights) const {
    return inputMean || (!weights.empty() && weightsHavePreprocessing(m, weights));
  }

  LoadOptions options(int64_t defaultBatch = 1) const {
    LoadOptions o;
    o.cnn.batch = batch ? batch : defaultBatch;
    o.cnn.width = width;
    o.cnn.training = train;
    if (!loss.empty()) {
      if (path.size() < 5 || path.compare(path.size() - 5, 5, ".onnx") != 0)
        throw Error(fmt::format("--loss {}: only for .onnx models ('{}' names its loss in the file)", loss, path));
      o.loss = loss;
    }
    if (!inputShape.empty()) {
      long h = 0, w = 0;
      char x = 0;
      if (std::sscanf(inputShape.c_str(), "%ld%c%ld", &h, &x, &w) != 3 || x != 'x' || h <= 0 || w <= 0)
        throw Error(fmt::format("--input-shape '{}': expected HxW with positive sizes, e.g. 32x32", inputShape));
      o.cnn.inputHW = std::make_pair((int64_t)h, (int64_t)w);
    }
    return o;
  }
};

// ------------------------------------------------------------------------------ info --
// The naive memory of the model's training step (passes/ModelStats.h, issue 13): @train_step
// right after the grad pass.
int64_t naiveTrainBytesOf(const ModelArgs &m, const std::string &weights) {
  LoadedModel lm = loadModelFile(m.path, m.options());
  m.preprocess(*lm.module, weights);
  PipelineOptions po;
  po.training = true;
  po.stopAfter = "grad";
  runPipeline(*lm.module, po);
  const Function *ts = lm.module->find(FunctionRole::TrainStep);
  return ts ? naiveTrainBytes(*ts) : 0;
}

int cmdInfo(const ModelArgs &m, const std::string &rfTarget) {
  auto mod = loadModel(m.path, m.options());
  const Function &f = mod->main();
  std::cout << formatInfo(f, computeModelStats(f, rfTarget));
  if (m.train) { // the training step's memory: its compiled arena beside the naive sum
    const int64_t naive = naiveTrainBytesOf(m, "");
    PipelineOptions po;
    po.training = true;
    runPipeline(*mod, po);
    const Function *ts = mod->find(FunctionRole::TrainStep);
    if (!ts)
      throw Error("cnnc info --train: the model has no training step");
    const int64_t arena = codegen::layoutFor(*ts).workspaceBytes;
    std::cout << fmt::format(
        "training step @{}: arena {} ({} B, the compiled step's workspace), naive sum {} ({} B, "
        "every tensor the step produces after autodiff, params, gradients and updates "
        "excepted): {:.1f}%\n",
        ts->name(), humanBytes(arena), grouped(arena), humanBytes(naive), grouped(naive),
        naive ? 100.0 * (double)arena / (double)naive : 0.0);
  }
  return 0;
}

// ------------------------------------------------------------------------------ dump --
int cmdDump(const ModelArgs &m, DumpOptions o) {
  ModelArgs margs = m;
  margs.train |= o.emit == "grad"; // the backward graph exists only in a training build
  auto mod = loadModel(m.path, margs.options());
  o.training = margs.train;
  dumpPipeline(*mod, o, std::cout);
  return 0;
}

// ------------------------------------------------------------------------------ explain --
// The training build when the model has a loss (the page then shows autodiff and the
// update), else the inference build.
int cmdExplain(const ModelArgs &m, const std::string &out, ExplainInput in) {
  auto inference = loadModel(m.path, m.options());
  in.modelName = std::filesystem::path(m.path).filename().string();
  in.modelPath = m.path;
  in.network = &inference->main();
  in.inference = loadModel(m.path, m.options());
  in.infoTable = formatInfo(inference->main(), computeModelStats(inference->main()));
  ModelArgs t = m;
  t.train = true;
  try {
    in.build = loadModel(m.path, t.options());
    for (const Node *o : in.build->functions().back()->outputs())
      in.training |= o->info().loss;
  } catch (const Error &) { // e.g. an ONNX model that cannot be trained: show its inference
  }
  if (!in.training)
    in.build = loadModel(m.path, m.options());
  std::ofstream f(out, std::ios::binary);
  f << explainPage(std::move(in));
  if (!f.flush())
    throw Error(fmt::format("cnnc explain: cannot write {}", out));
  std::cout << fmt::format("wrote {}\n", out);
  return 0;
}

// ------------------------------------------------------------------------------ run --
std::vector<std::string> split(const std::string &s, char sep) {
  auto p = s.find(sep);
  if (p == std::string::npos)
    return {s};
  return {s.substr(0, p), s.substr(p + 1)};
}

void printSummary(const std::string &name, const interp::Tensor<double> &t) {
  std::vector<int64_t> shape(t.shape().begin(), t.shape().end());
  std::cout << fmt::format("%{} : {}\n", name, shapeStr(shape));
  if (t.size() == 0) { // a zero-size tensor: no rows to summarise
    std::cout << "  (no elements)\n";
    return;
  }
  if (shape.empty()) {
    std::cout << fmt::format("  = {:.6g}\n", t());
    return;
  }
  if (shape.size() >= 2) { // one row per example: the top class (seed eq. 7) and its score
    int64_t n = shape[0], c = t.size() / n;
    for (int64_t i = 0; i < std::min<int64_t>(n, 20); ++i) {
      const double *row = t.data() + i * c;
      int64_t best = std::max_element(row, row + c) - row;
      std::cout << fmt::format("  example {:>3}: argmax {:>4}  ({:.6g})\n", i, best, row[best]);
    }
    if (n > 20)
      std::cout << fmt::format("  ... {} more\n", n - 20);
  }
}

int cmdRun(ModelArgs m, const std::vector<std::string> &inputs, const std::vector<std::string> &outputs,
           const std::string &weights, uint64_t seed, const std::string &backend,
           const std::string &precision, int threads, int profileReps) {
  if (backend != "interp" && backend != "jit")
    throw Error(fmt::format("--backend {}: expected interp (the reference interpreter) or jit (LLVM)", backend));
  // Read the input files first: their leading dimension sets the batch when --batch is absent.
  // `random` is marked by a shape no file can have ([-1]): a 0-d .npy (shape []) is a file
  // like any other, checked against the model's input (it once passed for `random`).
  const std::vector<int64_t> kRandom{-1};
  // An image file (tools/Image.h) is converted once the model's input is known: until then
  // it is marked by the shape [-2] and carries its path as its bytes.
  const std::vector<int64_t> kImage{-2};
  std::map<std::string, io::Array> files;
  int64_t fileBatch = 0;
  for (const std::string &spec : inputs) {
    auto kv = split(spec, '=');
    std::string name = kv.size() == 2 ? kv[0] : "", file = kv.back();
    if (files.count(name))
      throw Error(fmt::format("--input for '{}' given twice", name.empty() ? "the input" : name));
    if (file.rfind("random", 0) == 0)
      files[name].shape = kRandom;
    else if (isImageFile(file))
      files[name] = io::Array{io::ElemType::U8, kImage, std::vector<unsigned char>(file.begin(), file.end())};
    else
      try {
        files[name] = readTensorFile(file); // .npy or an ONNX TensorProto .pb
      } catch (const io::FormatError &e) {
        throw Error(e.what());
      }
  }
  // ONNX: integer inputs named on the command line are bound at compile time (a Reshape's
  // shape must be static); for labels this changes nothing.
  auto loadOpts = [&](int64_t batch) {
    LoadOptions o = m.options(batch);
    if (m.path.size() > 5 && m.path.compare(m.path.size() - 5, 5, ".onnx") == 0)
      for (auto &[name, a] : files)
        if (!name.empty() && (a.type == io::ElemType::I64 || a.type == io::ElemType::I32))
          o.onnxConstInputs[name] = OnnxTensor{name, DType::I64, a.shape, a.toDoubles()};
    return o;
  };
  LoadedModel lm0 = loadModelFile(m.path, loadOpts(1));
  { // inputs may be named by their ONNX names; those bound at compile time are done
    std::map<std::string, io::Array> keyed;
    for (auto &[name, a] : files) {
      if (loadOpts(1).onnxConstInputs.count(name))
        continue;
      std::string ir = name.empty() ? "" : lm0.resolve(name);
      keyed[ir.empty() ? name : ir] = std::move(a);
    }
    files = std::move(keyed);
  }
  auto &mod0 = lm0.module;
  std::vector<const Node *> modelInputs;
  for (const auto &n : mod0->main().nodes())
    if (n->op == OpKind::Input)
      modelInputs.push_back(n.get());
  for (auto &[name, a] : files) {
    if (a.shape == kRandom)
      continue;
    const Node *in = modelInputs.size() == 1 && name.empty() ? modelInputs[0] : mod0->main().find(name);
    if (!in || in->op != OpKind::Input)
      throw Error(name.empty() ? "the model has several inputs: name them, --input NAME=FILE"
                               : fmt::format("the model has no input named '{}'", name));
    if (a.shape == kImage)
      a = imageInput(std::string(a.data.begin(), a.data.end()), in->type, m.preprocesses(*mod0, weights));
    if ((int)a.shape.size() == in->type.rank() - 1) // one example without its batch dimension
      a.shape.insert(a.shape.begin(), 1);
    if (!fileBatch && !a.shape.empty())
      fileBatch = a.shape[0];
  }
  LoadedModel lm = m.batch || !fileBatch ? std::move(lm0) : loadModelFile(m.path, loadOpts(fileBatch));
  auto &mod = lm.module;
  m.preprocess(*mod, weights);
  Function &f = mod->main();

  // An ONNX model's initializers are its weights unless --weights replaces them.
  Feeds feeds = !weights.empty()      ? loadParams(f, weights)
                : !lm.weights.empty() ? lm.weights
                                      : initParams(f, seed);
  for (const auto &n : f.nodes()) {
    if (n->op != OpKind::Input)
      continue;
    auto it = files.count(n->name) ? files.find(n->name) : files.find("");
    if (it == files.end() || (it->first.empty() && modelInputs.size() != 1))
      throw Error(fmt::format("no value for input %{} {}: pass --input {}=FILE.npy (or =random)",
                              n->name, n->type.str(), n->name));
    if (it->second.shape == kRandom) { // `random`: uniform [0,1), seeded, for smoke runs
      std::mt19937_64 rng(seed);
      std::uniform_real_distribution<double> u(0, 1);
      std::vector<size_t> shape(n->type.shape.begin(), n->type.shape.end());
      interp::Tensor<double> t = xt::zeros<double>(shape);
      for (double &v : t)
        v = n->type.dtype == DType::I32 ? 0 : u(rng);
      feeds[n->name] = t;
    } else {
      if (it->second.shape != n->type.shape)
        throw Error(fmt::format("input %{}: the file holds {}, the model expects {}", n->name,
                                shapeStr(it->second.shape), shapeStr(n->type.shape)));
      feeds[n->name] = toTensor(it->second);
    }
  }

  std::map<std::string, interp::Tensor<double>> results;
  if (backend == "jit") { // compiled f32 code (codegen/), same feeds
    if (precision != "f32")
      throw Error("--backend jit computes in f32; use --precision f32");
    results = runJit(f, feeds, {}, nullptr, threads);
  } else if (precision == "f64") {
    checkMemory(interpreterBytes(f, 8), fmt::format("running @{} on the interpreter (f64)", f.name()));
    results = interp::run<double>(f, feeds);
  } else {
    checkMemory(interpreterBytes(f, 4), fmt::format("running @{} on the interpreter (f32)", f.name()));
    std::map<std::string, interp::Tensor<float>> ff;
    for (auto &[k, v] : feeds)
      ff[k] = xt::cast<float>(v);
    for (auto &[k, v] : interp::run<float>(f, ff))
      results[k] = xt::cast<double>(v);
  }

  std::map<std::string, std::string> outFiles;
  for (const std::string &spec : outputs) {
    auto kv = split(spec, '=');
    if (kv.size() == 1 && f.outputs().size() != 1)
      throw Error("the model has several outputs: name them, --output NAME=FILE");
    std::string name = kv.size() == 2 ? kv[0] : f.outputs()[0]->name;
    if (std::string ir = lm.resolve(name); !ir.empty())
      name = ir; // an ONNX output name
    if (!results.count(name))
      throw Error(fmt::format("the model has no output named '{}'", name));
    outFiles[name] = kv.back();
  }
  for (const Node *o : f.outputs()) {
    printSummary(lm.display(o->name), results.at(o->name));
    if (outFiles.count(o->name))
      writeTensorFile(outFiles[o->name], fromTensor(results.at(o->name), precision == "f64" ? DType::F64 : DType::F32));
  }
  if (profileReps > 0) { // the fused, compiled function (@train_step with --train), same feeds
    PipelineOptions po;
    po.training = m.train;
    runPipeline(*mod, po);
    std::cout << formatProfile(profileFunction(*mod->functions().back(), feeds, threads, profileReps));
  }
  return 0;
}

// ------------------------------------------------------------------------------ compile --
int cmdCompile(const ModelArgs &m, CompileRequest r) {
  LoadedModel lm = loadModelFile(m.path, m.options());
  auto &mod = lm.module;
  // the model's name: its network / graph name, or the file's when that is only a role
  // (@infer of a training build)
  r.modelName = mod->main().name();
  if (roleOfName(r.modelName) != FunctionRole::Other)
    r.modelName = std::filesystem::path(m.path).stem().string();
  if (r.prefix.empty())
    r.prefix = cIdentifier(r.modelName);
  if (r.weights.empty()) // an ONNX model's initializers are embedded unless --weights is given
    r.fileWeights = std::move(lm.weights);
  m.preprocess(*mod, r.weights);
  PipelineOptions po;
  po.training = m.train; // --train: @infer and @train_step in one library
  runPipeline(*mod, po);
  if (r.emit == "so" && r.output == "-")
    throw Error("cnnc compile: a shared library needs -o FILE");
  if (m.train) {
    const Function *inf = mod->find(FunctionRole::Infer),
                   *ts = mod->find(FunctionRole::TrainStep);
    if (!inf || !ts)
      throw Error("cnnc compile --train: the model has no @infer and @train_step");
    if (r.emit != "so")
      throw Error("cnnc compile --train writes a shared library (--emit so)");
    if (!r.header.empty())
      r.trainNaiveBytes = naiveTrainBytesOf(m, r.weights);
    compileTrainModel(*inf, *ts, r, &std::cout);
    return 0;
  }
  compileModel(mod->main(), r, &std::cout);
  return 0;
}

int cmdInit(const ModelArgs &m, const std::string &out, uint64_t seed) {
  auto mod = loadModel(m.path, m.options());
  m.preprocess(*mod, "");
  const Function &f = mod->main();
  saveParams(f, initParams(f, seed), out);
  std::cout << fmt::format("wrote the initial parameters of @{} (seed {}) to {}\n", f.name(), seed, out);
  return 0;
}

// ------------------------------------------------------------------------------ export --
int cmdExport(const ModelArgs &m, const std::string &out, const std::string &weights, uint64_t seed) {
  LoadedModel lm = loadModelFile(m.path, m.options());
  m.preprocess(*lm.module, weights);
  const Function &f = lm.module->main();
  Feeds params = !weights.empty()      ? loadParams(f, weights)
                 : !lm.weights.empty() ? lm.weights
                                       : initParams(f, seed);
  std::map<std::string, OnnxTensor> w;
  for (const auto &[name, t] : params)
    w[name] = OnnxTensor{name, f.find(name)->type.dtype, Shape(t.shape().begin(), t.shape().end()),
                         std::vector<double>(t.begin(), t.end())};
  exportOnnx(f, w, out);
  std::cout << fmt::format("wrote @{} as ONNX (opset {}, {} initializers) to {}\n", f.name(),
                           exportOpset(f), w.size(), out);
  return 0;
}

// ------------------------------------------------------------------------------ train --
int cmdTrain(TrainOptions o, const std::string &backend) {
  if (backend == "interp")
    o.makeTrainer = makeInterpTrainer;
  else if (backend == "jit")
    o.makeTrainer = makeJitTrainer;
  else
    throw Error(fmt::format("--backend {}: expected interp (the reference interpreter, f32) or jit (LLVM)", backend));
  if (o.outDir.empty())
    o.outDir = "train-" + std::filesystem::path(o.model.path).stem().string();
  // interrupted (SIGINT/SIGTERM): the checkpoint is written; exit as the signal would have
  const int sig = train(o, std::cout).interruptedBy;
  return sig ? 128 + sig : 0;
}

// `cnnc --version`: what a bug report needs (the commit, the LLVM, the host's CPU and ISA).
std::string versionText() {
  const codegen::TargetInfo host = codegen::describeTarget({});
  return fmt::format("cnnc {} (git {})\nLLVM {}\nhost CPU {} ({})", codegen::cnncVersion(),
                     CNNC_GIT_DESCRIBE, codegen::llvmVersion(), host.cpu, host.isa);
}

// The closest subcommand to a mistyped one (Levenshtein distance at most 2), or "".
std::string closestCommand(const CLI::App &app, const std::string &word) {
  std::string best; // the word itself when it is a command
  size_t bestD = 3;
  for (const CLI::App *sc : app.get_subcommands({})) {
    const std::string &n = sc->get_name();
    std::vector<size_t> d(n.size() + 1);
    for (size_t j = 0; j <= n.size(); ++j)
      d[j] = j;
    for (size_t i = 1; i <= word.size(); ++i) {
      size_t diag = d[0];
      d[0] = i;
      for (size_t j = 1; j <= n.size(); ++j) {
        const size_t up = d[j];
        d[j] = std::min({d[j] + 1, d[j - 1] + 1, diag + (word[i - 1] != n[j - 1])});
        diag = up;
      }
    }
    if (d[n.size()] < bestD)
      bestD = d[n.size()], best = n;
  }
  return best;
}

} // namespace

int main(int argc, char **argv) {
  CLI::App app{"cnnc: a static compute-graph compiler for convolutional neural networks"};
  app.require_subcommand(1);
  app.set_version_flag("--version", [] { return versionText(); });
  // the build's bash completion and man page (tools/CliDocs.h), from this definition
  app.add_option_function<std::string>(
         "--generate",
         [&app](const std::string &what) {
           std::cout << (what == "man" ? manPage(app, codegen::cnncVersion()) : bashCompletion(app));
           throw CLI::Success();
         },
         "print the bash completion script or the man page")
      ->check(CLI::IsMember({"bash-completion", "man"}))
      ->trigger_on_parse()
      ->group("");

  ModelArgs info, dump, run, init;
  DumpOptions dopt;
  std::string rfTarget, weights, backend = "interp", precision = "f32",
                        initOut;
  std::vector<std::string> inputs, outputs;
  uint64_t seed = 0;
  int runThreads = 0, profileReps = 0;
  std::string maxMemory;

  auto *ci = app.add_subcommand("info", "per-layer table: shapes, parameters, multiply-adds, memory, receptive field");
  info.add(ci);
  ci->add_option("--rf-target", rfTarget, "layer whose output element defines the receptive fields (default: the last pooling layer)");

  auto *cd = app.add_subcommand("dump", "print the IR after the pipeline or any stage of it");
  dump.add(cd);
  cd->add_option("--emit", dopt.emit, "stage: input (as lowered), a pass name (grad: the training step; simplify, fuse-conv-grad, dce), or final")
      ->default_val("final");
  cd->add_flag("--print-after-all", dopt.printAfterAll, "print the IR after every pass that changed it");
  cd->add_flag("--print-changed{full}", dopt.printChanged,
               "print the IR after every pass that changed it and name the others; =diff: a unified diff "
               "against the stage before")
      ->check(CLI::IsMember({"full", "diff"}));
  cd->add_option("--dump-dir", dopt.dumpDir, "write each stage to DIR as NN-stage.ir and NN-stage.dot");
  cd->add_option("--format", dopt.format, "text or dot (Graphviz)")->check(CLI::IsMember({"text", "dot"}))->default_val("text");
  cd->add_flag("--print-locs", dopt.printLocs, "annotate nodes with their source locations");
  cd->add_flag("--lowering", dopt.lowering,
               "annotate each node with what codegen makes of it: storage, the layouts its kernel copies or packs "
               "operands into (padded, channel-blocked, weight panels), its register tile");
  cd->add_option("--target-cpu", dopt.targetCpu, "with --lowering: LLVM CPU name (default: the host); x86-64-v3 = AVX2");

  auto *cr = app.add_subcommand("run", "run a model on inputs (.npy) and print/save its outputs");
  run.add(cr);
  cr->add_option("--input,-i", inputs, "FILE or NAME=FILE (.npy, ONNX TensorProto .pb, or a .png/.pgm image resized to the input; repeatable; NAME may be an ONNX name); 'random' for seeded uniform noise")
      ->required();
  cr->add_option("--output,-o", outputs, "FILE or NAME=FILE (.npy or .pb; repeatable)");
  cr->add_option("--weights,-w", weights, "parameters (.npz); default: an ONNX model's initializers, else initialise by each param's scheme");
  cr->add_option("--seed", seed, "seed for initial parameters and random inputs")->default_val(0);
  cr->add_option("--backend", backend, "interp (the reference interpreter) or jit (LLVM, f32)")->default_val("interp");
  cr->add_option("--threads", runThreads, "threads of --backend jit (0 = every CPU; results do not depend on it)")
      ->check(kNonNegative)->default_val(0);
  cr->add_option("--max-memory", maxMemory, "refuse to run when the tensors need more than this (8G, 512M, bytes; default: the physical memory)");
  bool runProfile = false;
  cr->add_flag("--profile", runProfile,
               "also time every node of the fused, compiled model (@train_step with --train): a table");
  cr->add_option("--profile-reps", profileReps, "--profile: calls to average (default 10)")
      ->check(kPositive)->default_val(10);
  cr->add_option("--precision", precision, "f32 or f64 evaluation")->check(CLI::IsMember({"f32", "f64"}))->default_val("f32");

  auto *cn = app.add_subcommand("init", "write a model's seeded initial parameters to a .npz file");
  init.add(cn);
  cn->add_option("-o,--output", initOut, "weights file to write (.npz)")->required();
  cn->add_option("--seed", seed, "seed")->default_val(0);

  ModelArgs compile;
  CompileRequest creq;
  auto *cc = app.add_subcommand("compile", "compile a model with LLVM: a shared library + C header, or LLVM IR/asm/object");
  compile.add(cc);
  cc->add_option("-o,--output", creq.output, "file to write (- = stdout for llvm/asm)")->required();
  cc->add_option("--emit", creq.emit, "so (shared library), llvm, asm or obj")
      ->check(CLI::IsMember({"so", "llvm", "asm", "obj"}))->default_val("so");
  cc->add_option("--header", creq.header, "also write a C header for the shared library");
  cc->add_option("--prefix", creq.prefix, "the library's symbol prefix: it exports PREFIX_create, PREFIX_infer, ... (default: the model's name as a C identifier)");
  cc->add_option("--weights,-w", creq.weights, "parameters (.npz) to embed in the shared library (default: an ONNX model's initializers)");
  cc->add_option("--target-cpu", creq.target.cpu, "LLVM CPU name (default: the host, e.g. znver4); x86-64-v3 = AVX2");
  cc->add_option("--target-features", creq.target.features, "LLVM features, e.g. +avx2,+fma (default: the host's)");
  cc->add_option("-O", creq.target.optLevel, "optimisation level 0..3")->check(CLI::Range(0, 3))->default_val(3);

  ModelArgs exportArgs;
  std::string exportOut, exportWeights;
  auto *ce = app.add_subcommand("export", "write a model as an ONNX inference model (opset 13), checked by the ONNX checker");
  exportArgs.add(ce);
  ce->add_option("-o,--output", exportOut, "ONNX file to write (.onnx)")->required();
  ce->add_option("--weights,-w", exportWeights, "parameters (.npz); default: an ONNX model's own initializers, else seeded init");
  ce->add_option("--seed", seed, "seed for initial parameters when there are no weights")->default_val(0);

  TrainOptions topt;
  std::string trainBackend = "jit";
  auto *ct = app.add_subcommand("train", "train a model with SGD on MNIST-format data, evaluating the test set each epoch");
  ct->add_option("model", topt.model.path, "model file (.cnn, .onnx, or .ir holding @infer and the training-mode function)")->required();
  ct->add_option("--data", topt.data, "mnist, fashion-mnist, a directory of IDX files (train/t10k images/labels) or an image folder (train/CLASS/*.png, test/CLASS/*.png)")->default_val("mnist");
  ct->add_option("--epochs", topt.epochs, "epochs (passes over the training set)")->check(kPositive)->default_val(20);
  ct->add_option("--batch", topt.model.batch, "mini-batch size")->check(kPositive)->default_val(100);
  ct->add_option("--lr", topt.hyper.lr, "learning rate")->default_val(0.001);
  ct->add_option("--momentum", topt.hyper.momentum, "momentum")->default_val(0.9);
  ct->add_option("--weight-decay", topt.hyper.weightDecay, "weight decay (L2, MatConvNet's)")->default_val(5e-4);
  ct->add_option("--seed", topt.seed, "seed of the initial weights and of the data order")->default_val(0);
  ct->add_option("--train-size", topt.trainSize, "use N training examples (default: all), chosen by --train-subset")->check(kPositive);
  ct->add_option("--train-subset", topt.trainSubset, "which N: stratified (per class in proportion, seeded by --seed) or first (file order)")
      ->transform(oneOf<Subset>({{"first", Subset::First}, {"stratified", Subset::Stratified}}))
      ->default_str("stratified");
  ct->add_option("--train-offset", topt.trainOffset, "skip the first K training examples (file order, with --train-subset first): --train-offset 10000 --train-size 10000 is the 2nd block of 10,000 (seed Exercise 6(h))")
      ->check(kNonNegative);
  ct->add_option("--test-size", topt.testSize, "evaluate on the first N test examples (default: all)")->check(kPositive);
  ct->add_option("--max-memory", maxMemory, "refuse to train when the model state and workspace need more than this (8G, 512M, bytes; default: the physical memory)");
  ct->add_option("--resume", topt.resume, "continue from a checkpoint (DIR/checkpoint.npz of an earlier run)");
  ct->add_option("--out", topt.outDir, "output directory: weights.npz, checkpoint.npz, log.csv, plot.png (default: train-MODEL)");
  ct->add_option("--loss", topt.model.loss, "ONNX models without a loss: the loss to add on the output (softmax)")
      ->check(CLI::IsMember({"softmax", "softmax_xent", "l2"}));
  ct->add_option("--width", topt.model.width, "width multiplier s of SK-s networks")->check(kPositive);
  ct->add_option("--backend", trainBackend, "interp (reference interpreter, f32) or jit (LLVM)")->default_val(trainBackend);
  ct->add_option("--threads", topt.model.threads, "threads of --backend jit (0 = every CPU; results do not depend on it)")
      ->check(kNonNegative)->default_val(0);
  ct->add_option("--progress", topt.progress, "auto (a bar on a terminal, else a line every 30 s), bar, lines or none")
      ->check(CLI::IsMember({"auto", "bar", "lines", "none"}))->default_val("auto");
  ct->add_flag("--no-plot", [&](int64_t) { topt.plot = false; }, "do not draw plot.png");

  ModelArgs benchArgs;
  BenchOptions bopt;
  auto *cb = app.add_subcommand("bench", "time a model compiled to a shared library through its C API: "
                                         "median, min-max, GFLOP/s, share of the FMA peak");
  benchArgs.add(cb);
  cb->add_option("--weights,-w", bopt.weights, "parameters (.npz); default: an ONNX model's initializers, else the seeded init");
  cb->add_option("--threads", bopt.threads, "threads of the compiled code (0 = every CPU)")
      ->check(kNonNegative)->default_val(1);
  cb->add_option("--reps", bopt.reps, "timed calls per function")->check(kPositive)->default_val(20);
  cb->add_option("--warmup", bopt.warmup, "untimed calls first")->check(kNonNegative)->default_val(3);
  cb->add_option("--target-cpu", bopt.targetCpu, "LLVM CPU name (default: the host); x86-64-v3 = AVX2");
  cb->add_flag("--json", bopt.json, "one JSON object instead of the table");
  cb->add_flag("--profile", bopt.profile, "also the per-node profile of each function (a profiled JIT build)");
  cb->add_flag("--vs-torch", bopt.vsTorch, "also PyTorch on the same model (converted from ONNX), checked "
                                          "against cnnc's outputs, timed interleaved with cnnc");

  ModelArgs explainArgs;
  std::string explainOut;
  auto *cx = app.add_subcommand("explain", "one self-contained HTML page of a model's compile: graph, info "
                                           "table, the IR after each pass as a diff and why the pass runs");
  explainArgs.add(cx);
  cx->add_option("-o,--output", explainOut, "HTML file to write")->required();
  ExplainInput explainIn;
  cx->add_option("--op", explainIn.op, "the layer whose generated code is shown (default: the conv with the most FLOPs)");
  cx->add_flag("--profile", explainIn.profile, "also time every node of the compiled model (JIT)");
  cx->add_option("--train-log", explainIn.trainLog, "cnnc train's log.csv: draw the loss and error curves");

  bool markdown = false, onnxTable = false;
  auto *co = app.add_subcommand("ops", "list the IR's ops (from the op table)");
  co->add_flag("--markdown", markdown, "print docs/ops.md");
  co->add_flag("--onnx", onnxTable, "print the ONNX operator table of docs/onnx.md");

  // a mistyped subcommand: name the closest one (CLI11 would only say the argument was not
  // expected)
  const std::string near = argc > 1 && argv[1][0] != '-' ? closestCommand(app, argv[1]) : "";
  if (argc > 1 && argv[1][0] != '-' && near != argv[1]) {
    std::cerr << fmt::format("error: '{}' is not a cnnc command{}; run `cnnc --help` for the list\n",
                             argv[1], near.empty() ? "" : fmt::format(" (did you mean '{}'?)", near));
    return 2;
  }
  try {
    app.parse(argc, argv);
    if (!maxMemory.empty())
      setMemoryLimit(parseByteSize(maxMemory));
  } catch (const Error &e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  } catch (const CLI::ParseError &e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  try {
    if (*ci)
      return cmdInfo(info, rfTarget);
    if (*cd)
      return cmdDump(dump, dopt);
    if (*cr)
      return cmdRun(run, inputs, outputs, weights, seed, backend, precision, runThreads, runProfile ? profileReps : 0);
    if (*cn)
      return cmdInit(init, initOut, seed);
    if (*cc)
      return cmdCompile(compile, creq);
    if (*ce)
      return cmdExport(exportArgs, exportOut, exportWeights, seed);
    if (*ct)
      return cmdTrain(topt, trainBackend);
    if (*cx)
      return cmdExplain(explainArgs, explainOut, std::move(explainIn));
    if (*cb) {
      bopt.model = benchArgs.path;
      bopt.load = benchArgs.options();
      bopt.inputMean = benchArgs.inputMean;
      return runBench(bopt);
    }
    if (*co) {
      if (onnxTable)
        std::cout << tools::onnxOperatorsMarkdown();
      else if (markdown)
        std::cout << opsMarkdown();
      else
        for (const OpInfo &op : allOps())
          std::cout << fmt::format("{:<16} {}\n", op.mnemonic, op.doc);
      return 0;
    }
  } catch (const Error &e) {
    std::cerr << e.what() << "\n";
    return 1;
  } catch (const io::FormatError &e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  } catch (const std::bad_alloc &) {
    std::cerr << "error: out of memory (try a smaller --batch or --input-shape)\n";
    return 1;
  }
  return 0;
}
