// The page works from a file:// URL: <details> elements open each stage's diff without a
// script; one small inline script shows a layer's panel when its graph node or info row is
// clicked and has KaTeX (inlined, tools/ExplainAssets.h) render the equations, whose LaTeX
// source stays readable with scripting off. The network graph is DOT rendered by
// Graphviz (`dot -Tsvg`), the only program the page needs at build time.
#include "tools/Explain.h"

#include "ir/Print.h"
#include "passes/Passes.h"
#include "tools/ExplainAssets.h"
#include "tools/ExplainCode.h"
#include "tools/ExplainConv.h"
#include "tools/ExplainHtml.h"
#include "tools/ExplainLayers.h"
#include "tools/ExplainTrain.h"
#include "tools/TextDiff.h"

#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace cnnc::tools {

namespace {

// `dot -Tsvg` of a DOT text, the <svg> element only (no XML prolog or doctype); "" if dot
// is missing or fails.
std::string renderSvg(const std::string &dotText) {
  const auto dir = std::filesystem::temp_directory_path();
  const std::string base = (dir / fmt::format("cnnc-explain-{}", ::getpid())).string();
  std::ofstream(base + ".dot") << dotText;
  const std::string cmd = fmt::format("dot -Tsvg '{}.dot' -o '{}.svg' 2>/dev/null", base, base);
  std::string svg;
  if (std::system(cmd.c_str()) == 0) {
    std::stringstream ss;
    ss << std::ifstream(base + ".svg").rdbuf();
    svg = ss.str();
    if (size_t at = svg.find("<svg"); at != std::string::npos)
      svg = svg.substr(at);
    else
      svg.clear();
  }
  std::filesystem::remove(base + ".dot");
  std::filesystem::remove(base + ".svg");
  return svg;
}

constexpr const char *kStyle = R"(
body { font-family: sans-serif; margin: 2em auto; max-width: 90em; line-height: 1.4; }
pre { background: #f6f8fa; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
.row { display: flex; gap: 2em; align-items: flex-start; }
.graph { flex: 1; overflow: auto; max-height: 50em; border: 1px solid #ddd; }
.info { flex: 1; overflow: auto; }
.add { color: #116329; } .del { color: #82071e; }
.todo { color: #666; font-style: italic; }
.layer-row, svg g.node.layer { cursor: pointer; }
.layer-row:hover, .layer-row.current { background: #fff8c5; }
svg g.node.current polygon, svg g.node.current ellipse { stroke: #d29922; stroke-width: 3; }
.panel { border: 2px solid #d29922; padding: 0 1em; margin: 1em 0; }
.eqn { display: flex; align-items: center; gap: 1em; margin: 0.5em 0; }
.eqn .tex { flex: 1; overflow-x: auto; } .eqno { color: #666; }
pre.code { max-height: 40em; } .fma { background: #ffd8b5; font-weight: bold; }
svg.curve { border: 1px solid #ddd; }
)";

// Shows the panel of a clicked layer (graph node or info row) and renders the equations.
// Graphviz titles each node's <g> with its DOT id, "function/name".
constexpr const char *kScript = R"(
(function () {
  function show(name) {
    var panel = document.getElementById('layer-' + name);
    if (!panel) return;
    document.querySelectorAll('.panel').forEach(function (p) { p.hidden = p !== panel; });
    document.querySelectorAll('.current').forEach(function (e) { e.classList.remove('current'); });
    document.querySelectorAll('[data-layer="' + name + '"]').forEach(function (e) { e.classList.add('current'); });
    panel.scrollIntoView({block: 'nearest'});
  }
  document.querySelectorAll('#network svg g.node').forEach(function (g) {
    var t = g.querySelector('title');
    var name = t ? t.textContent.slice(t.textContent.lastIndexOf('/') + 1) : '';
    if (!document.getElementById('layer-' + name)) return;
    g.classList.add('layer');
    g.setAttribute('data-layer', name);
    g.addEventListener('click', function () { show(name); });
  });
  document.querySelectorAll('.layer-row').forEach(function (r) {
    r.addEventListener('click', function () { show(r.getAttribute('data-layer')); });
  });
  if (window.katex)
    document.querySelectorAll('.tex').forEach(function (e) {
      katex.render(e.getAttribute('data-tex'), e, {displayMode: true, throwOnError: false});
    });
})();
)";

// A unified diff with added and removed lines coloured.
std::string diffHtml(const std::string &diff) {
  std::string out;
  std::istringstream in(diff);
  for (std::string line; std::getline(in, line);) {
    const char *cls = line.rfind("+++", 0) == 0 || line.rfind("---", 0) == 0 ? ""
                      : !line.empty() && line[0] == '+'                       ? "add"
                      : !line.empty() && line[0] == '-'                       ? "del"
                                                                              : "";
    out += *cls ? fmt::format("<span class=\"{}\">{}</span>\n", cls, html(line)) : html(line) + "\n";
  }
  return out;
}

} // namespace

std::string explainPage(ExplainInput in) {
  // the sections that can fail on the user's options first, before any work
  const std::string curves = trainingCurvesHtml(in.trainLog, in.modelPath);
  std::string code; // --op's section (an unknown --op throws)
  if (in.inference) {
    runPipeline(*in.inference, PipelineOptions{});
    code = generatedCodeHtml(*in.network, in.inference->main(), in.op, in.profile);
  }
  const InlineAssets katex = katexAssets();
  std::string page = fmt::format("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                                 "<title>cnnc explain: {0}</title>\n<style>{1}</style>\n<style>{2}</style>\n</head>\n"
                                 "<body>\n<h1>How cnnc compiles {0}</h1>\n{3}",
                                 html(in.modelName), kStyle, katex.style,
                                 katex.missing.empty() ? "" : "<p class=\"todo\">" + html(katex.missing) + "</p>\n");

  // the network and its table
  const std::string svg = renderSvg(printDot(*in.network));
  page += "<section id=\"network\">\n<h2>The network</h2>\n<div class=\"row\">\n<div class=\"graph\">\n";
  page += svg.empty() ? "<p class=\"todo\">Graphviz's <code>dot</code> was not found: install graphviz "
                        "(scripts/install-deps.sh) to see the graph.</p>\n"
                      : svg;
  page += fmt::format("</div>\n<div class=\"info\">\n<pre>{}</pre>\n</div>\n</div>\n"
                      "<p>Click a layer, in the graph or the table, to see the IR it became, its generated "
                      "code and the seed's equations.</p>\n<div id=\"panels\">\n@PANELS@</div>\n</section>\n",
                      linkedInfoTable(in.infoTable, *in.network));

  // the pipeline, stage by stage
  page += "<section id=\"pipeline\">\n<h2>The pipeline</h2>\n";
  const PrintOptions readable{false, true, 100};
  std::string prevText, prevStage;
  PipelineOptions po;
  po.training = in.training;
  auto why = [](const std::string &stage) -> std::string {
    for (const PassInfo &p : defaultPipeline())
      if (p.name == stage)
        return p.why;
    return "the IR as the frontend lowered the model";
  };
  LayerListings layers;
  addLayerListings(layers, *in.network, *in.network, "inference, as lowered");
  auto stepOf = [&](const Module &m) -> const Function & {
    const Function *f = in.training ? m.find(FunctionRole::TrainStep) : nullptr;
    return f ? *f : m.main();
  };
  po.afterPass = [&](const std::string &stage, const Module &m) {
    if (in.training && stage == "grad")
      addLayerListings(layers, *in.network, stepOf(m), "training step after autodiff");
    std::string now = print(m, readable);
    page += fmt::format("<details{}>\n<summary><b>{}</b>: {}</summary>\n<pre>{}</pre>\n</details>\n",
                        stage == "input" ? " open" : "", html(stage), html(why(stage)),
                        stage == "input" ? html(now)
                                         : diffHtml(unifiedDiff(prevText, now, "after " + prevStage, "after " + stage)));
    prevText = std::move(now);
    prevStage = stage;
  };
  po.unchanged = [&](const std::string &stage) {
    page += fmt::format("<p><b>{}</b>: {} &mdash; no change for this model.</p>\n", html(stage), html(why(stage)));
  };
  runPipeline(*in.build, po);
  page += "</section>\n";
  addLayerListings(layers, *in.network, stepOf(*in.build),
                   in.training ? "training step after the pipeline" : "after the pipeline");
  // each layer's kernels: its forward ops as inference runs them, and a training build's
  // backward ops (the update is one fused SGD pass per param, not a layer's)
  auto addCode = [&](const std::map<std::string, std::string> &code) {
    for (const auto &[layer, block] : code)
      layers.blocks[layer] += block;
  };
  if (in.inference)
    addCode(layerCodeHtml(*in.network, in.inference->main(), "inference build"));
  if (in.training)
    addCode(layerCodeHtml(*in.network, stepOf(*in.build), "training step, backward"));
  page.replace(page.find("@PANELS@"), 8, layerPanels(*in.network, layers));

  page += "<section id=\"conv\">\n<h2>The seed's convolution on a tiny instance (im2row, eqs. 15-22; gradients, "
          "eqs. 35, 45-46)</h2>\n" +
          convExampleHtml(*in.network) + "</section>\n";
  if (in.inference)
    page +=
        "<section id=\"code\">\n<h2>The generated code of one op</h2>\n" + code + "</section>\n";
  page += "<section id=\"training\">\n<h2>Training curves</h2>\n" + curves + "</section>\n";
  if (!katex.script.empty())
    page += "<script>" + katex.script + "</script>\n";
  return page + fmt::format("<script>{}</script>\n</body>\n</html>\n", kScript);
}

} // namespace cnnc::tools
