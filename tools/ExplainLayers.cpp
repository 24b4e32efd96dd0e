#include "tools/ExplainLayers.h"

#include "ir/Print.h"
#include "tools/ExplainHtml.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <sstream>

namespace cnnc::tools {

namespace {

bool isLayer(const Node &n) {
  return !n.info().source;
}

// Each node's line of the printed function (`  %name = op(...) ... // comment`), by name:
// the panels show the IR exactly as `cnnc dump` prints it.
std::map<std::string, std::string> nodeLines(const Function &f) {
  std::map<std::string, std::string> lines;
  std::istringstream in(print(f, PrintOptions{}));
  for (std::string line; std::getline(in, line);) {
    const size_t pct = line.find_first_not_of(' ');
    const size_t eq = line.find(" = ");
    if (pct != std::string::npos && line[pct] == '%' && eq != std::string::npos)
      lines.emplace(line.substr(pct + 1, eq - pct - 1), line.substr(pct));
  }
  return lines;
}

// The op's doc as it applies to n: its clause on relu=1, which cites the seed's ReLU (eq.
// 12), only when n carries relu=1 (a conv without a fused ReLU computes no eq. 12).
std::string docOf(const Node &n) {
  std::string doc = n.info().doc;
  const size_t at = doc.find("relu=1");
  if (at != std::string::npos && n.info().attr("relu") && n.getInt("relu") == 0)
    doc.erase(at);
  return doc;
}

struct Listing {
  std::string text;      // the nodes' lines
  std::vector<int> eqs;  // equations their comments and ops' docs cite
  size_t count = 0;
};

void cite(Listing &l, const std::string &text) {
  for (int n : citedEquations(text))
    if (std::find(l.eqs.begin(), l.eqs.end(), n) == l.eqs.end())
      l.eqs.push_back(n);
}

// The nodes of f that belong to `layer`, in one section of a training step (or all).
Listing listing(const Function &f, const std::map<std::string, std::string> &lines,
                const std::map<const Node *, Section> &sections, const Node &layer, std::optional<Section> part) {
  Listing l;
  for (const auto &n : f.nodes()) {
    if (n->info().source || !belongsTo(*n, layer))
      continue;
    auto s = sections.find(n.get());
    if (part && (s == sections.end() || s->second != *part))
      continue;
    auto it = lines.find(n->name);
    l.text += (it != lines.end() ? it->second : "%" + n->name) + "\n";
    cite(l, n->comment);
    cite(l, docOf(*n));
    ++l.count;
  }
  return l;
}

std::string block(const std::string &title, const Listing &l) {
  if (!l.count)
    return "";
  return fmt::format("<h4>{}</h4>\n<pre class=\"ir\">{}</pre>\n", html(title), html(l.text));
}

} // namespace

bool belongsTo(const Node &n, const Node &layer) {
  if (layer.loc.known() && n.loc.known())
    return n.loc.file == layer.loc.file && n.loc.line == layer.loc.line;
  return n.name == layer.name || n.name.rfind(layer.name + ".", 0) == 0;
}

void addLayerListings(LayerListings &acc, const Function &network, const Function &f,
                      const std::string &stage) {
  const auto lines = nodeLines(f);
  const auto sections = sectionsOf(f);
  for (const auto &np : network.nodes()) {
    const Node &layer = *np;
    if (!isLayer(layer))
      continue;
    auto add = [&](const std::string &title, const Listing &l) {
      acc.blocks[layer.name] += block(title, l);
      auto &eqs = acc.eqs[layer.name];
      for (int n : l.eqs)
        if (std::find(eqs.begin(), eqs.end(), n) == eqs.end())
          eqs.push_back(n);
    };
    if (sections.empty()) {
      add(stage, listing(f, lines, sections, layer, std::nullopt));
      continue;
    }
    add(fmt::format("Forward ({})", stage), listing(f, lines, sections, layer, Section::Forward));
    add(fmt::format("Gradient nodes, backward ({})", stage), listing(f, lines, sections, layer, Section::Backward));
    add(fmt::format("Update ({})", stage), listing(f, lines, sections, layer, Section::Update));
  }
}

std::string layerPanels(const Function &network, const LayerListings &acc) {
  std::string out;
  for (const auto &np : network.nodes()) {
    const Node &layer = *np;
    if (!isLayer(layer))
      continue;
    std::string eqHtml;
    if (auto it = acc.eqs.find(layer.name); it != acc.eqs.end())
      for (int n : it->second)
        eqHtml += equationHtml(n);
    auto blocks = acc.blocks.find(layer.name);
    out += fmt::format("<div class=\"panel\" id=\"layer-{0}\" data-layer=\"{0}\" "
                       "hidden>\n<h3>Layer %{0} ({1}){2}</h3>\n{3}"
                       "<h4>The seed's equations these nodes cite</h4>\n{4}</div>\n",
                       html(layer.name), html(layer.info().mnemonic),
                       layer.loc.known() ? html(fmt::format(", {}", layer.loc.str())) : "",
                       blocks != acc.blocks.end() ? blocks->second : "",
                       eqHtml.empty()
                           ? "<p class=\"todo\">None: the seed has no equation for this op.</p>\n"
                           : eqHtml);
  }
  return out;
}

std::string linkedInfoTable(const std::string &infoTable, const Function &network) {
  std::map<std::string, bool> layers;
  for (const auto &n : network.nodes())
    if (isLayer(*n))
      layers[n->name] = true;
  std::string out;
  std::istringstream in(infoTable);
  for (std::string line; std::getline(in, line);) {
    // a row: "  3  conv1  conv2d ...": the index, then the layer's name
    std::istringstream words(line);
    std::string index, name;
    words >> index >> name;
    const bool row = !index.empty() && std::isdigit(static_cast<unsigned char>(index[0])) && layers.count(name);
    out += row ? fmt::format("<span class=\"layer-row\" data-layer=\"{}\">{}</span>\n", html(name), html(line))
               : html(line) + "\n";
  }
  return out;
}

} // namespace cnnc::tools
