#include "tools/ExplainCode.h"

#include "codegen/Codegen.h"
#include "ir/Print.h"
#include "passes/ModelStats.h"
#include "tools/ExplainHtml.h"
#include "tools/ExplainLayers.h"
#include "tools/Profile.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <regex>
#include <sstream>
#include <thread>

namespace cnnc::tools {

namespace {

// The node `compiled` computes for the layer: the same location (fusion renames nodes but
// keeps where they came from), else the same name.
const Node *compiledNodeOf(const Function &compiled, const Node &layer) {
  const Node *byName = nullptr;
  for (const auto &n : compiled.nodes()) {
    if (n->info().source)
      continue;
    if (layer.loc.known() && n->loc.file == layer.loc.file && n->loc.line == layer.loc.line && n->op == layer.op)
      return n.get();
    if (n->name == layer.name)
      byName = n.get();
  }
  return byName;
}

// A function computing `n` alone: its operands become inputs (params stay params, so that
// the prepare entry packs the weights as it does in the model).
// `canonical`: operands named a0, a1, ... and the node y, so that two nodes that compile to
// the same code print the same (VGG-16's conv11-13 do).
std::unique_ptr<Module> alone(const Node &n, bool canonical = false) {
  auto m = std::make_unique<Module>();
  Function &f = m->addFunction(canonical ? "k" : n.name);
  std::vector<Node *> ops;
  for (const Node *o : n.operands) {
    const std::string name = canonical ? fmt::format("a{}", ops.size()) : o->name;
    if (Node *seen = canonical ? nullptr : f.find(name)) {
      ops.push_back(seen);
      continue;
    }
    const bool param = o->op == OpKind::Param;
    ops.push_back(f.add(param ? OpKind::Param : OpKind::Input, name, {},
                        param ? o->attrs : std::map<std::string, Attr>{}, o->type));
  }
  f.outputs() = {f.add(n.op, canonical ? "y" : n.name, ops, n.attrs)};
  return m;
}

const std::regex &fmaPattern() {
  static const std::regex fma(R"(\bv?f?n?fmadd|\bvfmsub|\bvfnmsub|@llvm\.fma\.|@llvm\.fmuladd\.)");
  return fma;
}

bool isFma(const std::string &line) {
  return std::regex_search(line, fmaPattern()) && line.find("declare ") == std::string::npos;
}

// Code with each fused multiply-add line marked, and how many there are.
std::pair<std::string, int> highlightFma(const std::vector<std::string> &lines) {
  std::string out;
  int count = 0;
  for (const std::string &line : lines) {
    const bool hit = isFma(line);
    count += hit;
    out += hit ? "<span class=\"fma\">" + html(line) + "</span>\n" : html(line) + "\n";
  }
  return {out, count};
}

std::vector<std::string> splitLines(const std::string &code) {
  std::vector<std::string> lines;
  std::istringstream in(code);
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  return lines;
}

// How to read loops and functions off one listing: a block label, a branch's targets, a
// function's first line. LLVM IR and x86 assembly as LLVM prints them.
struct Syntax {
  std::regex label, branch, function;
};
const Syntax &llvmSyntax() {
  static const Syntax s{std::regex(R"(^([A-Za-z$._][\w$.]*|\d+):)"),
                        std::regex(R"(label %([\w$.]+))"), std::regex(R"(^define )")};
  return s;
}
const Syntax &asmSyntax() {
  static const Syntax s{std::regex(R"(^(\.LBB\d+_\d+):)"),
                        std::regex(R"(^\s+j\w+\s+(\.LBB\d+_\d+))"),
                        std::regex(R"(^[A-Za-z_][\w.$]*:)")};
  return s;
}

// The hot loop of a listing: of the innermost loops (a label and the last branch back to
// it, containing no other such pair), the one with the most FMAs, else the longest, as the
// line range [first, last]; {0, 0} and no loops when there is none.
struct HotLoop {
  size_t first = 0, last = 0;
  size_t innermost = 0; // how many innermost loops the listing has
  int fmas = 0;         // in the hot loop
};
HotLoop hotLoop(const std::vector<std::string> &lines, const Syntax &syn) {
  std::map<std::string, size_t> labels;
  std::vector<std::pair<size_t, size_t>> loops;
  std::map<size_t, size_t> lastBack; // label line -> last branch back to it
  for (size_t i = 0; i < lines.size(); ++i) {
    std::smatch m;
    if (std::regex_search(lines[i], m, syn.label))
      labels[m[1]] = i;
    for (std::sregex_iterator it(lines[i].begin(), lines[i].end(), syn.branch), end; it != end;
         ++it)
      if (auto l = labels.find((*it)[1]); l != labels.end())
        lastBack[l->second] = i;
  }
  for (auto [first, last] : lastBack)
    loops.push_back({first, last});
  HotLoop best;
  int bestFma = -1;
  for (auto [first, last] : loops) {
    bool inner = true;
    for (auto [f2, l2] : loops)
      inner &= !(first <= f2 && l2 <= last && (f2 != first || l2 != last));
    if (!inner)
      continue;
    ++best.innermost;
    int fma = 0;
    for (size_t i = first; i <= last; ++i)
      fma += isFma(lines[i]);
    if (fma > bestFma || (fma == bestFma && last - first > best.last - best.first))
      best.first = first, best.last = last, bestFma = best.fmas = fma;
  }
  return best;
}

// At most this many lines of one hot loop in a panel (a fully unrolled loop can be long).
constexpr size_t kMaxLoopLines = 300;
// A listing this short is shown whole even in a panel.
constexpr size_t kShortListing = 60;

// One listing as a <details> block: whole, or trimmed to its hot loop under the line of
// the function that holds it; `whole` (HTML) says where to see it whole, if anywhere.
std::string listingHtml(const std::string &code, const Syntax &syn, const std::string &what,
                        const std::string &fmaWord, bool trimmed, bool open,
                        const std::string &whole) {
  std::vector<std::string> lines = splitLines(code);
  const size_t total = lines.size();
  std::string note;
  if (trimmed && total > kShortListing) {
    const HotLoop hot = hotLoop(lines, syn);
    std::vector<std::string> kept;
    if (hot.innermost) {
      for (size_t i = hot.first; i-- > 0;)
        if (std::regex_search(lines[i], syn.function)) {
          kept.push_back(lines[i]);
          kept.push_back("  ...");
          break;
        }
      const size_t last = std::min(hot.last, hot.first + kMaxLoopLines - 1);
      kept.insert(kept.end(), lines.begin() + hot.first, lines.begin() + last + 1);
      kept.push_back("  ...");
      note = fmt::format(
          "; trimmed to its hot loop, of its {} innermost loops {}: lines {}-{} of {}{}",
          hot.innermost,
          hot.fmas ? "the one with the most " + fmaWord : "the longest (none has an FMA)",
          hot.first + 1, last + 1, total,
          last < hot.last ? fmt::format(" (the loop's first {} lines)", kMaxLoopLines) : "");
    } else {
      kept.assign(lines.begin(), lines.begin() + kShortListing);
      kept.push_back("...");
      note = fmt::format("; no loop: its first {} lines of {}", kShortListing, total);
    }
    if (!whole.empty())
      note += ". " + whole;
    lines = std::move(kept);
  }
  auto [text, fmas] = highlightFma(lines);
  return fmt::format("<details{}><summary>{} ({} {} highlighted{})</summary>\n<pre "
                     "class=\"code\">{}</pre>\n</details>\n",
                     open ? " open" : "", what, fmas, fmaWord, note, text);
}

} // namespace

std::string generatedCodeHtml(const Function &network, const Function &compiled, const std::string &op, bool profile) {
  const Node *layer = nullptr;
  if (!op.empty()) {
    layer = network.find(op);
    if (!layer || layer->info().source)
      throw Error(fmt::format("cnnc explain: --op {}: @{} has no layer of that name", op, network.name()));
  } else {
    int64_t most = -1;
    for (const NodeStats &s : computeModelStats(network).nodes)
      if (s.node->op == OpKind::Conv2d && s.macs > most)
        most = s.macs, layer = s.node;
  }
  if (!layer)
    return "<p class=\"todo\">This model has no convolution: name an op with <code>--op "
           "NAME</code>.</p>\n";
  const Node *node = compiledNodeOf(compiled, *layer);
  if (!node)
    return fmt::format(
        "<p class=\"todo\">%{} is not computed by the compiled model (folded or fused into another "
        "node by the pipeline).</p>\n",
        html(layer->name));
  std::string out = fmt::format(
      "<p>Layer <b>%{}</b>{}, as the pipeline left it, compiled alone for this machine "
      "(<code>cnnc compile --emit=llvm|asm</code> prints a whole model's):</p>\n<pre "
      "class=\"ir\">{}</pre>\n",
      html(layer->name), op.empty() ? " (the convolution with the most multiply-adds)" : "",
      html(print(alone(*node)->main(), PrintOptions{})));
  out += kernelHtml(*node, false, "");
  if (profile) {
    const Profile p = profileFunction(compiled, {}, 0, 5);
    out += fmt::format("<h4>Time per node of the whole compiled model "
                       "(<code>--profile</code>)</h4>\n<pre>{}</pre>\n",
                       html(formatProfile(p)));
  } else {
    out += "<p class=\"todo\">With <code>--profile</code>, the page also times every node of the "
           "compiled model.</p>\n";
  }
  return out;
}

std::string kernelHtml(const Node &n, bool trimmed, const std::string &whole) {
  try {
    // The page shows the kernel a user's build runs: in a sanitizer build of cnnc the
    // generated code would otherwise carry ASan's shadow checks (the softmax's hot loop
    // became a shadow-memory loop, and each kernel took minutes to instrument and optimise).
    // The code is only printed, never run, so nothing needs the instrumentation.
    codegen::TargetOptions t;
    t.sanitizeAddress = t.sanitizeThread = false;
    const codegen::EmittedCode code = codegen::emitLlvmAndAsm(alone(n)->main(), t);
    return listingHtml(code.llvm, llvmSyntax(), "LLVM IR after optimisation",
                       "fused multiply-add calls", trimmed, false, whole) +
           listingHtml(code.assembly, asmSyntax(), "Assembly", "FMA instructions", trimmed, true,
                       whole);
  } catch (const Error &e) {
    return fmt::format("<p class=\"todo\">codegen does not compile it: {}</p>\n", html(e.what()));
  }
}

std::map<std::string, std::string> layerCodeHtml(const Function &network, const Function &compiled,
                                                 const std::string &title) {
  // the kernels to show, each under one layer, in node order
  struct Kernel {
    const Node *node, *owner;
    std::string key;            // the node compiled alone, canonically named; "" for a view
    const Node *same = nullptr; // an earlier kernel with the same key: its panel has the code
  };
  std::vector<Kernel> kernels;
  std::map<std::string, const Node *> firstOfKey;
  const auto sections = sectionsOf(compiled);
  for (const auto &np : compiled.nodes()) {
    const Node &n = *np;
    if (n.info().source)
      continue;
    if (auto s = sections.find(&n);
        !sections.empty() && (s == sections.end() || s->second != Section::Backward))
      continue;
    const Node *owner = network.find(n.name);
    if (!owner || owner->info().source)
      for (const auto &l : network.nodes())
        if (!l->info().source && belongsTo(n, *l)) {
          owner = l.get();
          break;
        }
    if (!owner)
      continue;
    const bool view =
        n.info().view && !(n.info().attr("training") && n.getInt("training")); // codegen's isView
    Kernel k{&n, owner, view ? "" : print(alone(n, true)->main(), PrintOptions{})};
    if (!k.key.empty()) {
      auto [it, fresh] = firstOfKey.emplace(k.key, &n);
      k.same = fresh ? nullptr : it->second;
    }
    kernels.push_back(std::move(k));
  }
  // compile the distinct ones, one per hardware thread (each its own LLVM context): most of
  // the page's time
  std::vector<std::string> code(kernels.size());
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i; (i = next++) < kernels.size();)
      if (!kernels[i].key.empty() && !kernels[i].same)
        code[i] = kernelHtml(*kernels[i].node, true,
                             sections.empty() &&
                                     compiledNodeOf(compiled, *kernels[i].owner) == kernels[i].node
                                 ? fmt::format("<code>cnnc explain --op {}</code> shows it whole",
                                               html(kernels[i].owner->name))
                                 : "");
  };
  std::vector<std::future<void>> workers;
  for (unsigned t = std::max(1u, std::min(4u, std::thread::hardware_concurrency())); t-- > 0;)
    workers.push_back(std::async(std::launch::async, work));
  for (auto &w : workers)
    w.get();

  std::map<std::string, std::string> out;
  for (size_t i = 0; i < kernels.size(); ++i) {
    const Kernel &k = kernels[i];
    const Node &n = *k.node;
    out[k.owner->name] +=
        k.key.empty() ? fmt::format("<p>%{} ({}) is a view: its operand's bytes read with another "
                                    "shape, no code.</p>\n",
                                    html(n.name), html(n.info().mnemonic))
        : k.same
            ? fmt::format(
                  "<p>%{} ({}) compiles to the same code as %{} (same op, attributes and shapes): "
                  "see that layer's panel.</p>\n",
                  html(n.name), html(n.info().mnemonic), html(k.same->name))
            : fmt::format(
                  "<h4>Generated code of %{} ({}, {}), compiled alone for this machine</h4>\n{}",
                  html(n.name), html(n.info().mnemonic), html(title), code[i]);
  }
  // a layer without code of its own: fused into another's kernel (the fusing pass names it
  // in that node's comment, "was %relu1") or removed
  for (const auto &l : network.nodes()) {
    if (l->info().source || out.count(l->name) || !sections.empty())
      continue;
    std::string into;
    static const std::regex word(R"([\w.$])");
    for (const auto &n : compiled.nodes()) {
      const size_t at = n->comment.find("%" + l->name);
      const size_t end = at + 1 + l->name.size();
      if (at != std::string::npos &&
          (end >= n->comment.size() || !std::regex_match(n->comment.substr(end, 1), word)))
        into = n->name;
    }
    out[l->name] =
        into.empty()
            ? fmt::format("<p class=\"todo\">No code of its own in the {}: the pipeline "
                          "removed it or computes it inside another node (see the pipeline "
                          "below).</p>\n",
                          html(title))
            : fmt::format("<p>No code of its own in the {}: the pipeline fused it into "
                          "%{}'s kernel, shown in that layer's panel.</p>\n",
                          html(title), html(into));
  }
  return out;
}

} // namespace cnnc::tools
