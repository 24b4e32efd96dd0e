// tools/Profile.h: the profiled JIT build, its calls, and the table.
#include "tools/Profile.h"
#include "passes/ModelStats.h"
#include "runtime/Memory.h"
#include "tools/Compiled.h"
#include "tools/MemoryLimit.h"

#include <cmath>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>

namespace cnnc::tools {

namespace {

// The ops a node of the fused IR computes: its op, plus the epilogue fuse-relu folded in
// (the `relu` attribute of conv2d and fc, read off the attributes rather than the op).
std::string opsOf(const Node &n) {
  std::string ops = n.info().mnemonic;
  if (n.op == OpKind::Conv2d && n.operands.size() > 3)
    ops += "+add";
  if (auto it = n.attrs.find("relu"); it != n.attrs.end() && n.getInt("relu") != 0)
    ops += std::isinf(n.getFloat("relu_max")) ? "+relu" : "+clip";
  return ops;
}

} // namespace

Profile profileFunction(const Function &f, const Feeds &feeds, int threads, int reps,
                        codegen::TargetOptions t) {
  t.profile = true;
  ThreadPool pool(threads);
  auto jit = codegen::JitModel::compile(f, t);
  const codegen::Layout &l = jit->layout();
  // f32, i32 and i64 buffers alike as 8-byte words: every element fits
  std::vector<std::vector<int64_t>> storage(l.buffers.size());
  std::vector<void *> ptrs(l.buffers.size());
  int64_t io = 0;
  for (size_t i = 0; i < l.buffers.size(); ++i) {
    const codegen::BufferSlot &s = l.buffers[i];
    io += s.type.bytes();
    storage[i].assign((size_t)std::max<int64_t>(s.type.numel(), 1), 0);
    ptrs[i] = storage[i].data();
    auto it = feeds.find(s.name);
    for (int64_t k = 0; k < s.type.numel(); ++k) {
      const double v = it != feeds.end() && (size_t)k < it->second.size() ? it->second.data()[k]
                       : s.kind == codegen::BufferKind::Output       ? 0.0
                                                                     : 0.01;
      if (s.type.dtype == DType::F32)
        reinterpret_cast<float *>(ptrs[i])[k] = (float)v;
      else if (s.type.dtype == DType::I32)
        reinterpret_cast<int32_t *>(ptrs[i])[k] = it != feeds.end() ? (int32_t)v : 0;
      else
        reinterpret_cast<int64_t *>(ptrs[i])[k] = it != feeds.end() ? (int64_t)v : 0;
    }
  }
  checkMemory(l.workspaceBytes + io, fmt::format("profiling @{} (workspace and buffers)", f.name()));
  void *ws = cnnc_rt_alloc_workspace((size_t)l.workspaceBytes);
  if (!ws)
    throw std::bad_alloc();
  jit->run(ptrs.data(), ws, l.maxBatch, pool.get()); // warm-up; also computes the prepared state
  int64_t *ctr = jit->profileCounters();
  std::fill(ctr, ctr + l.profileSites.size(), 0);
  Profile p;
  p.function = f.name(), p.batch = l.maxBatch, p.threads = pool.threads(), p.reps = std::max(reps, 1);
  double total = 0;
  for (int r = 0; r < p.reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    jit->runPrepared(ptrs.data(), ws, l.maxBatch, pool.get());
    total += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }
  std::free(ws);
  p.callMs = total / p.reps;
  std::map<std::string, int64_t> macs;
  for (const NodeStats &ns : computeModelStats(f).nodes)
    macs[ns.node->name] = ns.macs;
  for (size_t i = 0; i < l.profileSites.size(); ++i) {
    const std::string &name = l.profileSites[i];
    const Node *n = name == codegen::kProfileUpdateSite ? nullptr : f.find(name);
    p.rows.push_back({name, n ? opsOf(*n) : "sgd update (every param)", (double)ctr[i] / 1e6 / p.reps,
                      n ? 2 * macs[name] : 0});
  }
  std::stable_sort(p.rows.begin(), p.rows.end(), [](const ProfileRow &a, const ProfileRow &b) { return a.ms > b.ms; });
  return p;
}

std::string formatProfile(const Profile &p) {
  std::string s = fmt::format("profile of @{} (compiled, batch {}, {} thread{}, mean of {} calls):\n",
                              p.function, p.batch, p.threads, p.threads == 1 ? "" : "s", p.reps);
  s += fmt::format("  {:<28} {:<24} {:>10} {:>7} {:>9}\n", "node", "ops", "ms", "share", "GFLOP/s");
  double sum = 0;
  for (const ProfileRow &r : p.rows) {
    sum += r.ms;
    s += fmt::format("  {:<28} {:<24} {:>10.4f} {:>6.1f}% {:>9}\n", r.node == codegen::kProfileUpdateSite ? r.node : "%" + r.node, r.ops, r.ms,
                     p.callMs > 0 ? 100 * r.ms / p.callMs : 0.0,
                     r.flops && r.ms > 0 ? fmt::format("{:.2f}", r.flops / (r.ms * 1e6)) : "");
  }
  s += fmt::format("  {:<28} {:<24} {:>10.4f} {:>6.1f}%  (the rest: the timers, output copies, "
                   "the call itself)\n",
                   "sum of nodes", "", sum, p.callMs > 0 ? 100 * sum / p.callMs : 0.0);
  s += fmt::format("  {:<28} {:<24} {:>10.4f}\n", "call", "", p.callMs);
  return s;
}

std::string profileJson(const Profile &p) {
  std::string s = fmt::format("{{\"function\": \"{}\", \"batch\": {}, \"threads\": {}, \"reps\": {}, "
                              "\"call_ms\": {:.6f}, \"nodes\": [",
                              p.function, p.batch, p.threads, p.reps, p.callMs);
  for (size_t i = 0; i < p.rows.size(); ++i) {
    const ProfileRow &r = p.rows[i];
    s += fmt::format("{}{{\"node\": \"{}\", \"ops\": \"{}\", \"ms\": {:.6f}, \"share\": {:.6f}, "
                     "\"flops\": {}, \"gflops\": {:.4f}}}",
                     i ? ", " : "", r.node, r.ops, r.ms, p.callMs > 0 ? r.ms / p.callMs : 0.0, r.flops,
                     r.ms > 0 ? r.flops / (r.ms * 1e6) : 0.0);
  }
  return s + "]}";
}

} // namespace cnnc::tools
