#include "tools/Compiled.h"

#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <fstream>

namespace cnnc::tools {

std::map<std::string, interp::Tensor<double>>
runJit(const Function &f, const Feeds &feeds, const codegen::TargetOptions &t, JitTimes *times) {
  auto jit = codegen::JitModel::compile(f, t);
  const codegen::Layout &l = jit->layout();
  std::vector<std::vector<float>> data(l.buffers.size());
  std::vector<std::vector<int32_t>> labels(l.buffers.size());
  std::vector<void *> ptrs(l.buffers.size());
  for (size_t i = 0; i < l.buffers.size(); ++i) {
    const codegen::BufferSlot &s = l.buffers[i];
    if (s.kind == codegen::BufferKind::Output) {
      data[i].assign(std::max<int64_t>(s.type.numel(), 1), 0.f);
      ptrs[i] = data[i].data();
      continue;
    }
    auto it = feeds.find(s.name);
    if (it == feeds.end())
      throw Error(fmt::format("no value for %{}", s.name));
    if (s.type.dtype == DType::I32) {
      labels[i].assign(it->second.begin(), it->second.end());
      ptrs[i] = labels[i].data();
    } else {
      data[i].assign(it->second.begin(), it->second.end());
      ptrs[i] = data[i].data();
    }
  }
  void *ws =
      std::aligned_alloc(64, (size_t)std::max<int64_t>(64, (l.workspaceBytes + 63) / 64 * 64));
  if (!ws)
    throw std::bad_alloc();
  auto t0 = std::chrono::steady_clock::now();
  const int32_t rc = jit->run(ptrs.data(), ws, l.maxBatch);
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
    std::copy(data[i].begin(), data[i].begin() + s.type.numel(), tsr.begin());
    out[s.name] = tsr;
  }
  return out;
}

void compileModel(const Function &f, const CompileRequest &r) {
  if (r.emit == "so") {
    codegen::AotOptions o;
    o.target = r.target;
    o.headerPath = r.header;
    if (!r.weights.empty())
      for (auto &[name, t] : loadParams(f, r.weights))
        o.embeddedWeights[name] = std::vector<float>(t.begin(), t.end());
    codegen::compileSharedLibrary(f, r.output, o);
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
