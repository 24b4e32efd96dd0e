// The page is static HTML: <details> elements open each stage's diff without a script, so
// that the page works from a file:// URL with scripting off. The network graph is DOT
// rendered by Graphviz (`dot -Tsvg`), the only program the page needs at build time.
#include "tools/Explain.h"

#include "ir/Print.h"
#include "passes/Passes.h"
#include "tools/TextDiff.h"

#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace cnnc::tools {

namespace {

std::string html(const std::string &s) {
  std::string o;
  for (char c : s)
    switch (c) {
    case '&': o += "&amp;"; break;
    case '<': o += "&lt;"; break;
    case '>': o += "&gt;"; break;
    case '"': o += "&quot;"; break;
    default: o += c;
    }
  return o;
}

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
  std::string page = fmt::format("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                                 "<title>cnnc explain: {0}</title>\n<style>{1}</style>\n</head>\n<body>\n"
                                 "<h1>How cnnc compiles {0}</h1>\n",
                                 html(in.modelName), kStyle);

  // the network and its table
  const std::string svg = renderSvg(printDot(*in.network));
  page += "<section id=\"network\">\n<h2>The network</h2>\n<div class=\"row\">\n<div class=\"graph\">\n";
  page += svg.empty() ? "<p class=\"todo\">Graphviz's <code>dot</code> was not found: install graphviz "
                        "(scripts/install-deps.sh) to see the graph.</p>\n"
                      : svg;
  page += fmt::format("</div>\n<div class=\"info\">\n<pre>{}</pre>\n</div>\n</div>\n</section>\n", html(in.infoTable));

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
  po.afterPass = [&](const std::string &stage, const Module &m) {
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

  for (const char *todo : {"The seed's convolution on a tiny instance (im2row, eqs. 15-22; gradients, eqs. 35, 45-46)",
                           "The generated code of one op (LLVM IR, assembly)", "Training curves (cnnc train's log.csv)"})
    page += fmt::format("<section>\n<h2>{}</h2>\n<p class=\"todo\">Not written yet (issue 18).</p>\n</section>\n", html(todo));
  return page + "</body>\n</html>\n";
}

} // namespace cnnc::tools
