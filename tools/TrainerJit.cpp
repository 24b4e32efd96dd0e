// The LLVM backend of `cnnc train` (tools/Trainer.h): @train_step compiled by JitTrainer,
// @infer by JitModel, both in f32. A compiled training step runs at one batch size (its
// graph's N, docs/codegen.md), so a partial last mini-batch gets a second trainer compiled
// at its own size; the state moves between them with params()/setParams(), exactly.
#include "tools/Compiled.h"
#include "tools/Trainer.h"

#include <fmt/format.h>

#include <cstdlib>

namespace cnnc::tools {

namespace {

class JitBackend : public Trainer {
public:
  explicit JitBackend(const TrainModelSpec &spec) : spec_(spec), pool_(spec.threads) {
    active_ = spec.batch;
    trainer(spec.batch);
  }
  ~JitBackend() override { std::free(workspace_); }
  std::string backend() const override {
    return fmt::format("jit, {} thread{}", pool_.threads(), pool_.threads() == 1 ? "" : "s");
  }

  interp::StepResult step(const float *images, const int32_t *labels, int64_t n,
                          const interp::Hyper &h, uint64_t step) override {
    JitTrainer &t = trainer(n);
    if (n != active_) { // the state lives in one compiled trainer at a time
      JitTrainer &from = trainer(active_);
      t.setParams(from.params());
      active_ = n;
    }
    t.setStepCount(step);
    const TrainModule &m = modules_.at(n);
    std::vector<const void *> in;
    for (const std::string &name : t.dataInputs()) {
      if (name == m.imageInput)
        in.push_back(images);
      else if (name == m.labelInput)
        in.push_back(labels);
      else
        throw Error(fmt::format("the compiled training step has an unexpected input %{}", name));
    }
    dirty_ = true;
    return t.step(in.data(), h);
  }

  void infer(const float *images, int64_t n, float *scores) override {
    if (!infer_) {
      const TrainModule &m = modules_.at(spec_.batch);
      infer_ = codegen::JitModel::compile(*m.infer);
      const codegen::Layout &l = infer_->layout();
      workspace_ =
          std::aligned_alloc(64, (size_t)std::max<int64_t>(64, (l.workspaceBytes + 63) / 64 * 64));
      if (!workspace_)
        throw std::bad_alloc();
      bufs_.resize(l.buffers.size());
      for (size_t i = 0; i < l.buffers.size(); ++i)
        bufs_[i].assign(std::max<int64_t>(l.buffers[i].type.numel(), 1), 0.f);
    }
    const codegen::Layout &l = infer_->layout();
    if (n > l.maxBatch || (!l.batchPolymorphic && n != l.maxBatch))
      return inferPadded(images, n, scores);
    if (dirty_) { // the weights changed since the last evaluation
      JitTrainer &t = trainer(active_);
      for (size_t i = 0; i < l.buffers.size(); ++i)
        if (l.buffers[i].kind == codegen::BufferKind::Param)
          t.getParam(l.buffers[i].name, bufs_[i].data(), (int64_t)bufs_[i].size());
      dirty_ = false;
    }
    std::vector<void *> ptrs(l.buffers.size());
    int out = -1;
    for (size_t i = 0; i < l.buffers.size(); ++i) {
      const codegen::BufferSlot &s = l.buffers[i];
      ptrs[i] = bufs_[i].data();
      if (s.kind == codegen::BufferKind::Input)
        ptrs[i] = const_cast<float *>(images);
      if (s.kind == codegen::BufferKind::Output && out < 0)
        out = (int)i;
    }
    if (infer_->run(ptrs.data(), workspace_, n, pool_.get()) != codegen::kStatusOk)
      throw Error("the compiled @infer failed");
    const codegen::BufferSlot &o = l.buffers[out];
    std::copy(bufs_[out].begin(), bufs_[out].begin() + n * o.perExample(), scores);
  }

  State state() const override {
    State s;
    for (auto &[k, v] : trainers_.at(active_)->params())
      s[k] = std::vector<float>(v.begin(), v.end());
    return s;
  }

  void setState(const State &s) override {
    JitTrainer &t = trainer(active_);
    for (const auto &[k, v] : s)
      t.setParam(k, v.data(), (int64_t)v.size());
    dirty_ = true;
  }

private:
  // A fixed-batch @infer: evaluate a short batch padded with zeros to the full size.
  void inferPadded(const float *images, int64_t n, float *scores) {
    const codegen::Layout &l = infer_->layout();
    const int64_t B = l.maxBatch;
    int64_t per = 0, classes = 0;
    for (const auto &s : l.buffers) {
      if (s.kind == codegen::BufferKind::Input && !per)
        per = s.perExample();
      if (s.kind == codegen::BufferKind::Output && !classes)
        classes = s.perExample();
    }
    std::vector<float> x(B * per, 0.f), y(B * classes);
    for (int64_t b = 0; b < n; b += B) {
      int64_t k = std::min(B, n - b);
      std::copy(images + b * per, images + (b + k) * per, x.begin());
      std::fill(x.begin() + k * per, x.end(), 0.f);
      infer(x.data(), B, y.data());
      std::copy(y.begin(), y.begin() + k * classes, scores + b * classes);
    }
  }

  JitTrainer &trainer(int64_t n) {
    auto it = trainers_.find(n);
    if (it != trainers_.end())
      return *it->second;
    modules_.emplace(n, loadTrainModule(spec_, n));
    auto t = JitTrainer::compile(*modules_.at(n).trainStep);
    t->setThreads(spec_.threads);
    return *trainers_.emplace(n, std::move(t)).first->second;
  }

  TrainModelSpec spec_;
  std::map<int64_t, TrainModule> modules_;
  std::map<int64_t, std::unique_ptr<JitTrainer>> trainers_;
  int64_t active_ = 0;
  std::unique_ptr<codegen::JitModel> infer_;
  std::vector<std::vector<float>> bufs_;
  void *workspace_ = nullptr;
  bool dirty_ = true;
  ThreadPool pool_; // @infer's (each JitTrainer has its own)
};

} // namespace

std::unique_ptr<Trainer> makeJitTrainer(const TrainModelSpec &spec) {
  return std::make_unique<JitBackend>(spec);
}

} // namespace cnnc::tools
