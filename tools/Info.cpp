// `cnnc info`: the per-layer table. Layers are the non-source nodes; each shows the
// parameters it consumes, its multiply-adds, its result's memory and its receptive field in
// the seed's section 8.2 sense (the extent in the layer's input that one element of the
// chosen layer's output depends on).
#include "tools/Info.h"

#include <fmt/format.h>

namespace cnnc::tools {

std::string humanBytes(int64_t b) {
  if (b < 1024)
    return fmt::format("{} B", b);
  if (b < 1024 * 1024)
    return fmt::format("{:.1f} KiB", b / 1024.0);
  if (b < 1024LL * 1024 * 1024)
    return fmt::format("{:.1f} MiB", b / (1024.0 * 1024));
  return fmt::format("{:.2f} GiB", b / (1024.0 * 1024 * 1024));
}

std::string grouped(int64_t v) {
  std::string s = std::to_string(v), out;
  int k = 0;
  for (auto it = s.rbegin(); it != s.rend(); ++it, ++k) {
    if (k && k % 3 == 0 && *it != '-')
      out += ',';
    out += *it;
  }
  return std::string(out.rbegin(), out.rend());
}

// A compact description in the seed's notation where it has one ("5x5x1x20" for a conv).
static std::string describeAttrs(const Node &n) {
  std::vector<std::string> parts;
  if (n.op == OpKind::Conv2d || n.op == OpKind::FullyConnected) {
    const Shape &w = n.operands[1]->type.shape;
    parts.push_back(n.op == OpKind::Conv2d ? fmt::format("{}x{}x{}x{}", w[2], w[3], w[1], w[0])
                                           : fmt::format("{}x{}", w[1], w[0]));
  }
  for (const AttrSpec &spec : n.info().attrs) {
    auto it = n.attrs.find(spec.name);
    if (it != n.attrs.end() && !(spec.defaultValue && *spec.defaultValue == it->second))
      parts.push_back(fmt::format("{}={}", spec.name, attrStr(it->second)));
  }
  return fmt::format("{}", fmt::join(parts, " "));
}

std::string formatInfo(const Function &f, const ModelStats &s) {
  std::string out = fmt::format("model @{}\n", f.name());
  for (const auto &n : f.nodes())
    if (n->op == OpKind::Input)
      out += fmt::format("input %{} : {}\n", n->name, n->type.str());
  out += "\n";
  std::string rfHead = s.rfTarget ? fmt::format("r.f. (-> %{})", s.rfTarget->name) : "r.f.";
  out += fmt::format("{:>3}  {:<14} {:<14} {:<34} {:<20} {:>13} {:>17} {:>11}  {}\n", "#", "layer",
                     "type", "attributes", "output", "params", "MACs", "act. mem", rfHead);
  int i = 0;
  for (const NodeStats &ns : s.nodes) {
    const Node &n = *ns.node;
    std::string rf;
    if (ns.receptiveField) {
      auto [r, c] = *ns.receptiveField;
      rf = r == c ? std::to_string(r) : fmt::format("{}x{}", r, c);
    }
    out += fmt::format("{:>3}  {:<14} {:<14} {:<34} {:<20} {:>13} {:>17} {:>11}  {}\n", ++i, n.name,
                       n.info().mnemonic, describeAttrs(n), shapeStr(n.type.shape),
                       ns.params ? grouped(ns.params) : "", ns.macs ? grouped(ns.macs) : "",
                       humanBytes(ns.activationBytes), rf);
  }
  out += fmt::format("\ntotal: {} parameters ({}), {} multiply-adds, {} of activations\n",
                     grouped(s.totalParams), humanBytes(s.totalParams * 4), grouped(s.totalMacs),
                     humanBytes(s.totalActivationBytes));
  return out;
}

} // namespace cnnc::tools
