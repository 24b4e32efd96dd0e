// What the lowering makes of each node, in words, from the plan alone (no LLVM): where the
// value lives, which physical layouts its kernel copies or packs operands into, its register
// tile. `cnnc dump --lowering` appends it to each node's line, so that the IR dump shows the
// layouts and copies that the IR itself leaves to codegen (docs/layout.md, "Physical
// layouts"). Every figure here is read from the same Plan and ConvGeom that Lower.cpp and
// the emitters use, so the text cannot drift from what runs.
#include "codegen/Plan.h"

#include <fmt/format.h>

#include <algorithm>

namespace cnnc::codegen {

namespace {

std::string bytes(int64_t b) {
  if (b >= (int64_t(1) << 20))
    return fmt::format("{:.1f} MiB", double(b) / (1 << 20));
  if (b >= 1024)
    return fmt::format("{:.1f} KiB", double(b) / 1024);
  return fmt::format("{} B", b);
}

// The conv2d's own layouts (EmitConv.cpp), or its depthwise form (EmitConvDw.cpp).
std::string convText(const Node &n, const Plan &p) {
  const unsigned vl = p.layout.vectorWidth;
  if (isDepthwise(n))
    return fmt::format("depthwise form: {} outputs of a row in the lanes, blocks of 4 rows; {}",
                       vl, depthwiseScratchBytes(n) ? "each plane copied into a zero-bordered plane"
                                                    : "x read in place");
  const auto it = p.packed.find(&n);
  const bool prepacked = it != p.packed.end();
  const ConvGeom g = ConvGeom::of(n, vl, prepacked, p.layout.narrowConvs);
  std::string x;
  if (g.subsampled)
    x = g.blocked ? fmt::format("x: read pixels gathered to [N][C/{0}][Ho·Wo][{0}] (channel-blocked)", g.vl)
                  : "x: read pixels gathered to [N][C][Ho·Wo]";
  else if (g.padded)
    x = g.blocked ? fmt::format("x: copied to [N][C/{0}][{1}][{2}][{0}] (zero border, channel-blocked)",
                                g.vl, g.Hp, g.Wp)
                  : fmt::format("x: copied to [N][C][{}][{}] planes (zero border{})", g.Hp, g.Wp,
                                g.plane != g.Hp * g.Wp ? ", a line of slack per plane" : "");
  else
    x = "x: read in place";
  const std::string panel =
      g.blocked ? fmt::format("[{}][{}][C/{}][{}][{}][{}]", g.G, g.ncb, g.vl, g.kh * g.kw, g.vl, g.cols)
                : fmt::format("[{}][{}][{}][{}][{}]", g.G, g.ncb, g.kh * g.kw, g.Cg, g.cols);
  const std::string w = prepacked ? fmt::format("w: panels {} packed once by the prepare entry", panel)
                                  : fmt::format("w: panels {} packed every call", panel);
  if (g.Ho * g.Wo == 1) // a window over the whole input (the seed's FC as a conv, section 6.8)
    return fmt::format("{}; {}; tile: {} image{} × {} channels ({}-lane vectors); y: rows of [N][M], "
                       "stored as the tile's channel vectors",
                       x, w, g.tile, g.tile == 1 ? "" : "s", g.cols, g.vl);
  const std::string tail = g.ntail ? fmt::format(" (then {} of {})", g.ntail, g.tail) : "";
  const std::string along = g.planeTiles ? fmt::format(" of the plane, across rows ({} kernel copies by starting "
                                                       "column)", g.phases.size())
                                         : " of a row";
  return fmt::format("{}; {}; tile: {} pixels{}{} × {} channels ({}-lane vectors); y: N×C×H×W "
                     "from the tile (transposed in registers)",
                     x, w, g.tile, along, tail, g.cols, g.vl);
}

// (the two ops with kernels of their own layouts; every other op: nothing to add)
std::string opText(const Node &n, const Plan &p) {
  if (n.op == OpKind::Conv2d)
    return convText(n, p);
  if (n.op == OpKind::FullyConnected)
    return p.packed.count(&n) ? "w: GEMM panels packed once by the prepare entry (2+ rows); dot rows at 1 row"
                              : "dot rows: w streamed once per row";
  return "";
}

std::string storageText(const Node &n, const Plan &p, const std::map<const Node *, const Node *> &member) {
  const auto it = p.storage.find(&n);
  if (it == p.storage.end())
    return "";
  const Storage &s = it->second;
  switch (s.kind) {
  case StorageKind::Buffer:
    return fmt::format("caller buffer {}", s.buffer);
  case StorageKind::Constant:
    return "module constant";
  case StorageKind::View:
    return fmt::format("view of %{}", s.root->name);
  case StorageKind::Fused:
    if (auto m = member.find(&n); m != member.end())
      return fmt::format("in registers, in %{}'s loop", m->second->name);
    if (p.flipInPack.count(&n))
      return "folded into its conv's weight pack";
    return "fused SGD update pass";
  case StorageKind::Workspace: {
    std::string t = fmt::format("workspace +{} ({})", s.offset, bytes(n.type.bytes()));
    for (const Node *o : n.operands) // a result stored over an operand that dies here
      if (auto oi = p.storage.find(o); oi != p.storage.end() && oi->second.kind == StorageKind::Workspace &&
                                       oi->second.offset == s.offset && o != &n)
        return t + fmt::format(", in place of %{}", o->name);
    if (p.prepared.count(&n))
      t += ", computed by the prepare entry";
    return t;
  }
  }
  return "";
}

} // namespace

std::map<const Node *, std::string> describePlan(const Function &f, const Plan &p) {
  std::map<const Node *, const Node *> member; // group member -> root
  for (const auto &[root, nodes] : p.groups)
    for (const Node *m : nodes)
      if (m != root)
        member[m] = root;
  std::map<const Node *, std::string> out;
  for (const auto &np : f.nodes()) {
    const Node *n = np.get();
    std::vector<std::string> parts;
    if (std::string s = storageText(*n, p, member); !s.empty())
      parts.push_back(std::move(s));
    if (auto g = p.groups.find(n); g != p.groups.end() && g->second.size() > 1)
      parts.push_back(fmt::format("one loop over {} fused elementwise ops", g->second.size()));
    if (std::string s = opText(*n, p); !s.empty())
      parts.push_back(std::move(s));
    if (auto sc = p.scratch.find(n); sc != p.scratch.end()) {
      const int64_t b = scratchBytes(*n, p.layout.vectorWidth, p.layout.narrowConvs, p.packed.count(n) != 0);
      if (b > 0)
        parts.push_back(fmt::format("scratch +{} ({})", sc->second, bytes(b)));
    }
    std::string line;
    for (const auto &s : parts)
      line += (line.empty() ? "" : "; ") + s;
    out[n] = line;
  }
  return out;
}

} // namespace cnnc::codegen
