#include "tools/Compiled.h"
#include "tools/MemoryLimit.h"

#include "runtime/Memory.h"
#include "runtime/Parallel.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <fstream>

namespace cnnc::tools {

ThreadPool::~ThreadPool() {
  cnnc_rt_pool_destroy(pool_);
}

void ThreadPool::setThreads(int threads) {
  if (threads < 0)
    throw Error(fmt::format("{} threads (0 = every CPU)", threads));
  if (threads == 0)
    threads = cnnc_rt_default_threads();
  if (threads != threads_) {
    cnnc_rt_pool_destroy(pool_);
    pool_ = nullptr;
    threads_ = threads;
  }
}

cnnc_rt_pool *ThreadPool::get() {
  if (threads_ > 1 && !pool_ && !(pool_ = cnnc_rt_pool_create(threads_)))
    throw Error(fmt::format("cannot start {} threads", threads_));
  return pool_;
}

std::map<std::string, interp::Tensor<double>> runJit(const Function &f, const Feeds &feeds,
                                                     const codegen::TargetOptions &t,
                                                     JitTimes *times, int threads) {
  ThreadPool pool(threads);
  auto jit = codegen::JitModel::compile(f, t);
  const codegen::Layout &l = jit->layout();
  std::vector<std::vector<float>> data(l.buffers.size());
  std::vector<std::vector<int32_t>> labels(l.buffers.size());
  std::vector<std::vector<int64_t>> longs(l.buffers.size());
  std::vector<void *> ptrs(l.buffers.size());
  for (size_t i = 0; i < l.buffers.size(); ++i) {
    const codegen::BufferSlot &s = l.buffers[i];
    if (s.kind == codegen::BufferKind::Output) { // 2 floats per element of an i64 (argmax)
      data[i].assign(std::max<int64_t>(s.type.numel(), 1) * (s.type.dtype == DType::I64 ? 2 : 1), 0.f);
      ptrs[i] = data[i].data();
      continue;
    }
    auto it = feeds.find(s.name);
    if (it == feeds.end())
      throw Error(fmt::format("no value for %{}", s.name));
    if (s.type.dtype == DType::I32) {
      labels[i].assign(it->second.begin(), it->second.end());
      ptrs[i] = labels[i].data();
    } else if (s.type.dtype == DType::I64) { // the training step counter, ONNX labels
      longs[i].assign(it->second.begin(), it->second.end());
      ptrs[i] = longs[i].data();
    } else {
      data[i].assign(it->second.begin(), it->second.end());
      ptrs[i] = data[i].data();
    }
  }
  int64_t io = 0;
  for (const auto &b : l.buffers)
    io = checkedAdd(io, b.type.bytes()).value_or(INT64_MAX);
  checkMemory(checkedAdd(l.workspaceBytes, io).value_or(INT64_MAX),
              fmt::format("running @{} compiled (workspace and buffers)", f.name()));
  void *ws =
      cnnc_rt_alloc_workspace((size_t)l.workspaceBytes);
  if (!ws)
    throw std::bad_alloc();
  auto t0 = std::chrono::steady_clock::now();
  const int32_t rc = jit->run(ptrs.data(), ws, l.maxBatch, pool.get());
  auto t1 = std::chrono::steady_clock::now();
  std::free(ws);
  if (times)
    *times = {jit->compileSeconds(), std::chrono::duration<double>(t1 - t0).count()};
  if (rc == codegen::kStatusBadLabel)
    throw Error("a label is not a class index of softmax_xent (the loss is NaN)");
  std::map<std::string, interp::Tensor<double>> out;
  for (size_t i = 0; i < l.buffers.size(); ++i) {
    const codegen::BufferSlot &s = l.buffers[i];
    if (s.kind != codegen::BufferKind::Output)
      continue;
    std::vector<size_t> shape(s.type.shape.begin(), s.type.shape.end());
    interp::Tensor<double> tsr = interp::Tensor<double>::from_shape(shape);
    if (s.type.dtype == DType::I32) { // count_correct: the bits are an int32
      for (int64_t k = 0; k < s.type.numel(); ++k) {
        int32_t v;
        std::memcpy(&v, &data[i][k], 4);
        tsr.data()[k] = v;
      }
    } else if (s.type.dtype == DType::I64) { // argmax: the bits are an int64
      for (int64_t k = 0; k < s.type.numel(); ++k) {
        int64_t v;
        std::memcpy(&v, &data[i][2 * k], 8);
        tsr.data()[k] = (double)v;
      }
    } else
      std::copy(data[i].begin(), data[i].begin() + s.type.numel(), tsr.begin());
    out[s.name] = tsr;
  }
  return out;
}

static void embedWeights(const Function &f, const CompileRequest &r, codegen::AotOptions &o) {
  if (!r.weights.empty()) {
    for (auto &[name, t] : loadParams(f, r.weights))
      o.embeddedWeights[name] = std::vector<float>(t.begin(), t.end());
    return;
  }
  if (r.fileWeights.empty())
    return;
  for (const auto &n : f.nodes()) {
    if (n->op != OpKind::Param)
      continue;
    auto it = r.fileWeights.find(n->name);
    if (it == r.fileWeights.end() || (int64_t)it->second.size() != n->type.numel())
      throw Error(fmt::format("cannot embed the model's own weights: they have no value for "
                              "param %{} {} (pass --weights FILE.npz)",
                              n->name, n->type.str()));
    o.embeddedWeights[n->name] = std::vector<float>(it->second.begin(), it->second.end());
  }
}

std::string cIdentifier(const std::string &name) {
  std::string r;
  for (char c : name)
    r += std::isalnum((unsigned char)c) ? c : '_';
  if (r.empty() || std::isdigit((unsigned char)r[0]))
    r = "m_" + r;
  return r;
}

static std::string fileSize(const std::string &path) {
  std::error_code ec;
  const auto n = std::filesystem::file_size(path, ec);
  if (ec)
    return "?";
  return n >= 10 << 20 ? fmt::format("{:.1f} MB", (double)n / (1 << 20))
         : n >= 10 << 10 ? fmt::format("{:.1f} KB", (double)n / (1 << 10))
                        : fmt::format("{} B", n);
}

// The shared library (and header) of `f`, reported as `cnnc compile` prints it.
static void compileLibrary(const Function &f, const CompileRequest &r, codegen::AotOptions &o,
                           std::ostream *report) {
  o.target = r.target;
  o.headerPath = r.header;
  o.prefix = r.prefix;
  o.modelName = r.modelName;
  embedWeights(f, r, o);
  codegen::compileSharedLibrary(f, r.output, o);
  if (!report)
    return;
  int64_t params = 0, floats = 0;
  for (const auto &n : f.nodes())
    if (n->op == OpKind::Param)
      ++params, floats += n->type.numel();
  const std::string p = r.prefix.empty() ? "cnnc" : r.prefix;
  *report << fmt::format("wrote {} ({}): exports {}_create, {}_infer, ... ({} functions{})\n",
                         r.output, fileSize(r.output), p, p, codegen::apiFunctionNames().size(),
                         o.trainStep ? ", with a training step" : "");
  if (!r.header.empty())
    *report << fmt::format("wrote {} ({}): the C API, shapes and constants of {}\n", r.header,
                           fileSize(r.header), r.output);
  if (!o.embeddedWeights.empty())
    *report << fmt::format("weights: embedded ({} params, {} floats{})\n", params, floats,
                           r.weights.empty() ? ", the model file's own" : ", from " + r.weights);
  else if (params > 0)
    std::cerr << fmt::format(
        "warning: no weights embedded: an instance of {} starts from zero parameters ({} params, "
        "{} floats); pass --weights FILE.npz, or call {}_load_weights / {}_set_param before {}_infer\n",
        r.output, params, floats, p, p, p);
}

void compileTrainModel(const Function &infer, const Function &trainStep, const CompileRequest &r,
                       std::ostream *report) {
  codegen::AotOptions o;
  o.trainStep = &trainStep;
  o.trainNaiveBytes = r.trainNaiveBytes;
  compileLibrary(infer, r, o, report);
}

void compileModel(const Function &f, const CompileRequest &r, std::ostream *report) {
  if (r.emit == "so") {
    codegen::AotOptions o;
    compileLibrary(f, r, o, report);
    return;
  }
  const codegen::EmitKind k = r.emit == "llvm"  ? codegen::EmitKind::LLVM
                              : r.emit == "asm" ? codegen::EmitKind::Asm
                                                : codegen::EmitKind::Obj;
  const std::string s = codegen::emit(f, k, r.target);
  if (r.output == "-") {
    std::fwrite(s.data(), 1, s.size(), stdout);
    return;
  }
  std::ofstream os(r.output, std::ios::binary);
  os.write(s.data(), (std::streamsize)s.size());
  if (!os)
    throw Error(fmt::format("cannot write {}", r.output));
}

} // namespace cnnc::tools

// ------------------------------------------------------------------------ JitTrainer --
namespace cnnc::tools {

namespace {
bool isHyper(const std::string &n) {
  return n == "lr" || n == "momentum" || n == "weight_decay" || n == "step";
}
} // namespace

struct JitTrainer::Impl {
  std::unique_ptr<codegen::JitModel> jit;
  std::vector<std::string> dataInputs;
  std::vector<int> dataSlots;           // buffer index of each data input
  std::map<std::string, int> paramSlot; // param name -> buffer index
  std::vector<std::string> paramOrder;
  std::vector<std::vector<float>> state; // per buffer (params only)
  int lossSlot = -1, correctSlot = -1;
  void *workspace = nullptr;
  uint64_t step = 0;
  ThreadPool pool;
  ~Impl() { std::free(workspace); }
};

JitTrainer::JitTrainer() : impl_(std::make_unique<Impl>()) {}
void JitTrainer::setThreads(int threads) {
  impl_->pool.setThreads(threads);
}
int JitTrainer::threads() const {
  return impl_->pool.threads();
}
JitTrainer::~JitTrainer() = default;

std::unique_ptr<JitTrainer> JitTrainer::compile(const Function &f,
                                                const codegen::TargetOptions &t) {
  std::unique_ptr<JitTrainer> tr(new JitTrainer());
  Impl &m = *tr->impl_;
  m.jit = codegen::JitModel::compile(f, t);
  const codegen::Layout &l = m.jit->layout();
  m.state.resize(l.buffers.size());
  const Node *loss = f.outputs().empty() ? nullptr : f.outputs()[0];
  for (size_t i = 0; i < l.buffers.size(); ++i) {
    const codegen::BufferSlot &s = l.buffers[i];
    if (s.kind == codegen::BufferKind::Input && !isHyper(s.name)) {
      m.dataInputs.push_back(s.name);
      m.dataSlots.push_back((int)i);
    } else if (s.kind == codegen::BufferKind::Param) {
      m.paramSlot[s.name] = (int)i;
      m.paramOrder.push_back(s.name);
      m.state[i].assign(std::max<int64_t>(s.type.numel(), 1), 0.f);
    } else if (s.kind == codegen::BufferKind::Output) {
      if (loss && s.name == loss->name && m.lossSlot < 0)
        m.lossSlot = (int)i;
      else if (s.type.dtype == DType::I32 && m.correctSlot < 0)
        m.correctSlot = (int)i;
    }
  }
  if (!loss || !loss->info().loss || m.lossSlot < 0)
    throw Error(fmt::format("JitTrainer: @{} is not a training step (its first output must be "
                            "the loss; build it with the grad pass)",
                            f.name()));
  const int64_t ws = std::max<int64_t>(64, (l.workspaceBytes + 63) / 64 * 64);
  int64_t io = 0;
  for (const auto &b : l.buffers)
    io = checkedAdd(io, b.type.bytes()).value_or(INT64_MAX);
  checkMemory(checkedAdd(ws, io).value_or(INT64_MAX),
              fmt::format("training @{} compiled (state, workspace and buffers)", f.name()));
  m.workspace = cnnc_rt_alloc_workspace((size_t)ws);
  if (!m.workspace)
    throw std::bad_alloc();
  return tr;
}

const std::vector<std::string> &JitTrainer::dataInputs() const {
  return impl_->dataInputs;
}
int64_t JitTrainer::batchSize() const {
  return impl_->jit->layout().maxBatch;
}
int64_t JitTrainer::minBatchSize() const {
  const codegen::Layout &l = impl_->jit->layout();
  return l.batchPolymorphic ? 1 : l.maxBatch;
}
std::vector<std::string> JitTrainer::paramNames() const {
  return impl_->paramOrder;
}
const codegen::Layout &JitTrainer::layout() const {
  return impl_->jit->layout();
}
double JitTrainer::compileSeconds() const {
  return impl_->jit->compileSeconds();
}
uint64_t JitTrainer::stepCount() const {
  return impl_->step;
}
void JitTrainer::setStepCount(uint64_t s) {
  impl_->step = s;
}

static int slotOf(const std::map<std::string, int> &m, const std::string &name) {
  auto it = m.find(name);
  if (it == m.end())
    throw Error(fmt::format("the training step has no param %{}", name));
  return it->second;
}

const TensorType &JitTrainer::paramType(const std::string &name) const {
  return impl_->jit->layout().buffers[slotOf(impl_->paramSlot, name)].type;
}

interp::StepResult JitTrainer::step(const void *const *inputs, const interp::Hyper &h,
                                    int64_t batch) {
  Impl &m = *impl_;
  const codegen::Layout &l = m.jit->layout();
  if (!batch)
    batch = l.maxBatch;
  if (batch < minBatchSize() || batch > l.maxBatch)
    throw Error(
        l.batchPolymorphic
            ? fmt::format("JitTrainer::step: batch {} outside 1..{}", batch, l.maxBatch)
            : fmt::format("JitTrainer::step: batch {}, but this training step runs at batch {} "
                          "only ({})",
                          batch, l.maxBatch, l.batchNote));
  float lr = (float)h.lr, mom = (float)h.momentum, wd = (float)h.weightDecay;
  int64_t stepv = (int64_t)m.step;
  std::vector<std::vector<float>> outs(l.buffers.size());
  std::vector<void *> ptrs(l.buffers.size(), nullptr);
  size_t k = 0;
  for (size_t i = 0; i < l.buffers.size(); ++i) {
    const codegen::BufferSlot &s = l.buffers[i];
    switch (s.kind) {
    case codegen::BufferKind::Input:
      if (s.name == "lr")
        ptrs[i] = &lr;
      else if (s.name == "momentum")
        ptrs[i] = &mom;
      else if (s.name == "weight_decay")
        ptrs[i] = &wd;
      else if (s.name == "step")
        ptrs[i] = &stepv;
      else {
        ptrs[i] = const_cast<void *>(inputs[k++]);
        if (!ptrs[i])
          throw Error(fmt::format("JitTrainer::step: no data for %{}", s.name));
      }
      break;
    case codegen::BufferKind::Param:
      ptrs[i] = m.state[i].data();
      break;
    case codegen::BufferKind::Output:
      outs[i].assign(std::max<int64_t>(s.type.numel(), 1), 0.f);
      ptrs[i] = outs[i].data();
      break;
    }
  }
  if (m.jit->run(ptrs.data(), m.workspace, batch, m.pool.get()) == codegen::kStatusBadLabel)
    throw Error("JitTrainer::step: a label is not a class index; the step was not applied");
  interp::StepResult r;
  r.loss = outs[m.lossSlot][0];
  if (m.correctSlot >= 0) {
    int32_t c;
    std::memcpy(&c, outs[m.correctSlot].data(), 4);
    r.correct = c;
  }
  ++m.step;
  return r;
}

template <class T>
static interp::StepResult
stepFrom(JitTrainer &tr, const codegen::Layout &l, const std::vector<std::string> &names,
         const std::map<std::string, interp::Tensor<T>> &batch, const interp::Hyper &h) {
  std::vector<std::vector<float>> f(names.size());
  std::vector<std::vector<int32_t>> ints(names.size());
  std::vector<const void *> ptrs(names.size());
  int64_t n = -1; // the batch the tensors hold
  for (size_t k = 0; k < names.size(); ++k) {
    auto it = batch.find(names[k]);
    if (it == batch.end())
      throw Error(fmt::format("JitTrainer::step: the batch has no %{}", names[k]));
    const codegen::BufferSlot *s = nullptr;
    for (const auto &b : l.buffers)
      if (b.kind == codegen::BufferKind::Input && b.name == names[k])
        s = &b;
    const int64_t size = (int64_t)it->second.size(), per = s->perExample();
    if (!s->batched && size != s->type.numel())
      throw Error(fmt::format("JitTrainer::step: %{} has {} elements, the step takes {}",
                              names[k], size, s->type.numel()));
    if (s->batched) {
      const int64_t nk = per && size % per == 0 ? size / per : -1;
      if (nk < tr.minBatchSize() || nk > l.maxBatch || (n >= 0 && nk != n))
        throw Error(fmt::format("JitTrainer::step: %{} has {} elements, the step takes {} per "
                                "example, batch {}..{}{}",
                                names[k], size, per, tr.minBatchSize(), l.maxBatch,
                                n >= 0 ? fmt::format(" (the other inputs hold {})", n) : ""));
      n = nk;
    }
    if (s->type.dtype == DType::F32) {
      f[k].assign(it->second.begin(), it->second.end());
      ptrs[k] = f[k].data();
      continue;
    }
    for (T v : it->second) {
      if (v != std::floor(v) || std::abs((double)v) > 2147483647.0)
        throw Error(
            fmt::format("JitTrainer::step: %{} holds {}, not an integer", names[k], (double)v));
      ints[k].push_back((int32_t)v);
    }
    if (s->type.dtype == DType::I64)
      throw Error(fmt::format("JitTrainer::step: i64 input %{} is not supported", names[k]));
    ptrs[k] = ints[k].data();
  }
  return tr.step(ptrs.data(), h, n > 0 ? n : 0);
}

interp::StepResult JitTrainer::step(const std::map<std::string, interp::Tensor<float>> &batch,
                                    const interp::Hyper &h) {
  return stepFrom(*this, layout(), impl_->dataInputs, batch, h);
}
interp::StepResult JitTrainer::step(const std::map<std::string, interp::Tensor<double>> &batch,
                                    const interp::Hyper &h) {
  return stepFrom(*this, layout(), impl_->dataInputs, batch, h);
}

void JitTrainer::setParam(const std::string &name, const float *data, int64_t count) {
  const int i = slotOf(impl_->paramSlot, name);
  const int64_t n = layout().buffers[i].type.numel();
  if (count != n)
    throw Error(fmt::format("param %{} has {} elements, not {}", name, n, count));
  std::copy(data, data + n, impl_->state[i].begin());
}
void JitTrainer::getParam(const std::string &name, float *data, int64_t count) const {
  const int i = slotOf(impl_->paramSlot, name);
  const int64_t n = layout().buffers[i].type.numel();
  if (count != n)
    throw Error(fmt::format("param %{} has {} elements, not {}", name, n, count));
  std::copy(impl_->state[i].begin(), impl_->state[i].begin() + n, data);
}
void JitTrainer::setParams(const std::map<std::string, interp::Tensor<float>> &p) {
  for (const auto &[name, t] : p)
    setParam(name, t.data(), (int64_t)t.size());
}
void JitTrainer::setParams(const std::map<std::string, interp::Tensor<double>> &p) {
  for (const auto &[name, t] : p) {
    std::vector<float> v(t.begin(), t.end());
    setParam(name, v.data(), (int64_t)v.size());
  }
}
std::map<std::string, interp::Tensor<float>> JitTrainer::params() const {
  std::map<std::string, interp::Tensor<float>> out;
  for (const auto &[name, i] : impl_->paramSlot) {
    const TensorType &t = layout().buffers[i].type;
    std::vector<size_t> shape(t.shape.begin(), t.shape.end());
    interp::Tensor<float> v = interp::Tensor<float>::from_shape(shape);
    std::copy(impl_->state[i].begin(), impl_->state[i].begin() + t.numel(), v.begin());
    out[name] = std::move(v);
  }
  return out;
}

void JitTrainer::saveCheckpoint(const std::string &path) const {
  std::map<std::string, io::Array> arrays;
  for (const auto &[name, i] : impl_->paramSlot) {
    const TensorType &t = layout().buffers[i].type;
    arrays[name] = io::Array::fromFloats(
        std::vector<float>(impl_->state[i].begin(), impl_->state[i].begin() + t.numel()),
        std::vector<int64_t>(t.shape.begin(), t.shape.end()));
  }
  io::Array s;
  s.type = io::ElemType::I64;
  s.data.resize(8);
  const int64_t v = (int64_t)impl_->step;
  std::memcpy(s.data.data(), &v, 8);
  arrays["step"] = s;
  io::writeNpz(path, arrays);
}

void JitTrainer::loadCheckpoint(const std::string &path) {
  auto arrays = io::readNpz(path);
  auto st = arrays.find("step");
  if (st == arrays.end() || st->second.numel() != 1)
    throw Error(fmt::format("{}: not a checkpoint (no scalar 'step')", path));
  for (const auto &[name, i] : impl_->paramSlot) {
    auto it = arrays.find(name);
    if (it == arrays.end())
      throw Error(fmt::format("{}: the checkpoint has no param '{}'", path, name));
    const TensorType &t = layout().buffers[i].type;
    if (it->second.shape != std::vector<int64_t>(t.shape.begin(), t.shape.end()))
      throw Error(fmt::format("{}: '{}' has another shape than the param", path, name));
  }
  if (arrays.size() != impl_->paramSlot.size() + 1)
    throw Error(fmt::format("{}: holds {} arrays, the training step has {} params + step", path,
                            arrays.size(), impl_->paramSlot.size()));
  for (const auto &[name, i] : impl_->paramSlot) {
    const io::Array &a = arrays.at(name);
    if (a.type == io::ElemType::F32)
      std::memcpy(impl_->state[i].data(), a.data.data(), a.data.size());
    else {
      auto d = a.toDoubles();
      std::copy(d.begin(), d.end(), impl_->state[i].begin());
    }
  }
  impl_->step = (uint64_t)st->second.toDoubles()[0];
  if (st->second.type == io::ElemType::I64)
    std::memcpy(&impl_->step, st->second.data.data(), 8);
}

} // namespace cnnc::tools
