// Stages are named as the pipeline names them (passes/Pipeline.cpp), with `input` first;
// the number of a stage in --dump-dir is its position in the pipeline (00-input, 01-grad,
// ...), so that a file's name says where it comes from whether or not earlier passes ran.
// Whether a pass changed the IR is decided by the printed text, not only by what the pass
// returns: a pass that rewrote nodes into the same text changed nothing a reader can see.
#include "tools/Dump.h"

#include "codegen/Codegen.h"
#include "passes/Passes.h"
#include "tools/TextDiff.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <ostream>

namespace cnnc::tools {

namespace {

constexpr int kWrap = 100; // columns: a dump reads in a terminal and a side-by-side diff

std::string text(const Module &m, bool locs) { return print(m, PrintOptions{locs, true, kWrap}); }

int stageNumber(const std::string &stage) {
  const auto &passes = defaultPipeline();
  for (size_t i = 0; i < passes.size(); ++i)
    if (passes[i].name == stage)
      return (int)i + 1;
  return 0; // input
}

std::string stageTitle(const std::string &stage) {
  return stage == "input" ? "as lowered (input)" : "after " + stage;
}

void writeFile(const std::filesystem::path &p, const std::string &contents) {
  std::ofstream f(p, std::ios::binary);
  f << contents;
  if (!f.flush())
    throw Error(fmt::format("cnnc dump --dump-dir: cannot write {}", p.string()));
}

// Appends codegen's account of each node (codegen::describeLowering) to its comment.
void annotateLowering(Module &m, const std::string &cpu) {
  codegen::TargetOptions t;
  t.cpu = cpu;
  for (const auto &f : m.functions()) {
    const auto text = codegen::describeLowering(*f, t);
    for (Node *n : f->nodeList()) {
      // (an annotated dump read back carries the old account: replaced, not repeated)
      if (size_t at = n->comment.find("codegen: "); at != std::string::npos)
        n->comment.erase(at >= 3 && n->comment.compare(at - 3, 3, " | ") == 0 ? at - 3 : at);
      if (auto it = text.find(n); it != text.end() && !it->second.empty())
        n->comment = n->comment.empty() ? "codegen: " + it->second : n->comment + " | codegen: " + it->second;
    }
  }
}

} // namespace

void dumpPipeline(Module &m, const DumpOptions &o, std::ostream &out) {
  if (o.lowering && (o.emit != "final" || o.format != "text" || o.printAfterAll || !o.printChanged.empty() ||
                     !o.dumpDir.empty()))
    throw Error("cnnc dump --lowering annotates the final IR as text: not with --emit, --format dot, "
                "--print-after-all, --print-changed or --dump-dir");
  PipelineOptions po;
  po.stopAfter = o.emit == "final" ? "" : o.emit;
  po.training = o.training;
  const bool dot = o.format == "dot", everyStage = o.printAfterAll || !o.printChanged.empty();
  std::string prevText, prevStage, dotBody;

  if (!o.dumpDir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(o.dumpDir, ec);
    if (ec)
      throw Error(fmt::format("cnnc dump --dump-dir {}: {}", o.dumpDir, ec.message()));
  }
  // one stage: changed = false for a pass that ran and left the IR as it was
  auto stage = [&](const std::string &name, bool changed) {
    std::string now = text(m, o.printLocs);
    changed = changed && now != prevText;
    if (!o.dumpDir.empty()) {
      const auto base = std::filesystem::path(o.dumpDir) / fmt::format("{:02}-{}", stageNumber(name), name);
      writeFile(base.string() + ".ir", now);
      writeFile(base.string() + ".dot", dotGraph(stageTitle(name), printDotClusters(m, stageTitle(name), "")));
      out << fmt::format("{}.ir, .dot{}\n", base.string(), changed || name == "input" ? "" : ": no change");
    } else if (everyStage && !changed && name != "input") {
      if (!o.printChanged.empty() && !dot)
        out << fmt::format("// ----- IR after {}: no change -----\n", name);
    } else if (everyStage && dot) {
      dotBody += printDotClusters(m, stageTitle(name), fmt::format("{:02}-{}/", stageNumber(name), name));
    } else if (everyStage) {
      if (o.printChanged == "diff" && name != "input") {
        out << fmt::format("// ----- IR after {} (diff against {}) -----\n", name, prevStage);
        out << unifiedDiff(prevText, now, "after " + prevStage, "after " + name);
      } else {
        out << fmt::format("// ----- IR after {} -----\n", name) << now;
      }
    }
    if (changed || name == "input") {
      prevText = std::move(now);
      prevStage = name;
    }
  };
  if (everyStage || !o.dumpDir.empty()) {
    po.afterPass = [&](const std::string &pass, const Module &) { stage(pass, true); };
    po.unchanged = [&](const std::string &pass) { stage(pass, false); };
  }
  runPipeline(m, po);
  if (!o.dumpDir.empty())
    return;
  if (everyStage) {
    if (dot)
      out << dotGraph("cnnc pipeline", dotBody);
    return;
  }
  if (dot) {
    const std::string title = o.emit == "final" ? "after the pipeline" : stageTitle(o.emit);
    out << dotGraph(title, printDotClusters(m, title, ""));
  } else {
    if (o.lowering)
      annotateLowering(m, o.targetCpu);
    out << text(m, o.printLocs);
  }
}

} // namespace cnnc::tools
