// The LLVM backend of `cnnc train` (tools/Trainer.h): @train_step compiled by JitTrainer,
// @infer by JitModel, both in f32, once, at --batch: the compiled step runs a partial last
// mini-batch too (docs/codegen.md, "Batch"). Only a fixed-batch step (Layout::batchNote says
// which node makes it so, e.g. an ONNX batch_matmul) runs a partial batch on a
// second step compiled at that size, the state copied in and back.
#include "runtime/Memory.h"
#include "tools/Compiled.h"
#include "tools/Trainer.h"

#include <fmt/format.h>

#include <cstdlib>

namespace cnnc::tools {

namespace {

class JitBackend : public Trainer {
public:
  explicit JitBackend(const TrainModelSpec &spec)
      : spec_(spec), module_(loadTrainModule(spec, spec.batch)), pool_(spec.threads) {
    trainer_ = JitTrainer::compile(*module_.trainStep);
    trainer_->setThreads(spec_.threads);
  }
  ~JitBackend() override { std::free(workspace_); }
  std::string backend() const override {
    return fmt::format("jit, {} thread{}", pool_.threads(), pool_.threads() == 1 ? "" : "s");
  }

  interp::StepResult step(const float *images, const int32_t *labels, int64_t n,
                          const interp::Hyper &h, uint64_t step) override {
    JitTrainer &main = *trainer_;
    const bool partial = n < main.minBatchSize();
    JitTrainer &t = partial ? fixedBatch(n) : main;
    if (partial)
      t.setParams(main.params());
    t.setStepCount(step);
    const TrainModule &m = partial ? partialModule_ : module_;
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
    interp::StepResult r = t.step(in.data(), h, n);
    if (partial)
      main.setParams(t.params());
    return r;
  }

  void infer(const float *images, int64_t n, float *scores) override {
    if (!infer_) {
      infer_ = codegen::JitModel::compile(*module_.infer);
      const codegen::Layout &l = infer_->layout();
      workspace_ =
          cnnc_rt_alloc_workspace((size_t)l.workspaceBytes);
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
      JitTrainer &t = *trainer_;
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
    for (auto &[k, v] : trainer_->params())
      s[k] = std::vector<float>(v.begin(), v.end());
    return s;
  }

  void setState(const State &s) override {
    JitTrainer &t = *trainer_;
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

  JitTrainer &fixedBatch(int64_t n) {
    if (!partial_ || partial_->batchSize() != n) {
      partialModule_ = loadTrainModule(spec_, n);
      partial_ = JitTrainer::compile(*partialModule_.trainStep);
      partial_->setThreads(spec_.threads);
    }
    return *partial_;
  }

  TrainModelSpec spec_;
  TrainModule module_, partialModule_;
  std::unique_ptr<JitTrainer> trainer_, partial_;
  ThreadPool pool_; // @infer's (each JitTrainer has its own)
  std::unique_ptr<codegen::JitModel> infer_;
  std::vector<std::vector<float>> bufs_;
  void *workspace_ = nullptr;
  bool dirty_ = true;
};

} // namespace

std::unique_ptr<Trainer> makeJitTrainer(const TrainModelSpec &spec) {
  return std::make_unique<JitBackend>(spec);
}

} // namespace cnnc::tools
