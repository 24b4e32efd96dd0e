#include "tools/ExplainCode.h"

#include "codegen/Codegen.h"
#include "ir/Print.h"
#include "passes/ModelStats.h"
#include "tools/ExplainHtml.h"
#include "tools/Profile.h"

#include <fmt/format.h>

#include <regex>
#include <sstream>

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
std::unique_ptr<Module> alone(const Node &n) {
  auto m = std::make_unique<Module>();
  Function &f = m->addFunction(n.name);
  std::vector<Node *> ops;
  for (const Node *o : n.operands) {
    if (Node *seen = f.find(o->name)) {
      ops.push_back(seen);
      continue;
    }
    const bool param = o->op == OpKind::Param;
    ops.push_back(f.add(param ? OpKind::Param : OpKind::Input, o->name, {}, param ? o->attrs : std::map<std::string, Attr>{},
                        o->type));
  }
  f.outputs() = {f.add(n.op, n.name, ops, n.attrs)};
  return m;
}

// Code with each fused multiply-add line marked, and how many there are.
std::pair<std::string, int> highlightFma(const std::string &code) {
  static const std::regex fma(R"(\bv?f?n?fmadd|\bvfmsub|\bvfnmsub|@llvm\.fma\.|@llvm\.fmuladd\.)");
  std::string out;
  int count = 0;
  std::istringstream in(code);
  for (std::string line; std::getline(in, line);) {
    const bool hit = std::regex_search(line, fma) && line.find("declare ") == std::string::npos;
    count += hit;
    out += hit ? "<span class=\"fma\">" + html(line) + "</span>\n" : html(line) + "\n";
  }
  return {out, count};
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
    return "<p class=\"todo\">This model has no convolution: name an op with <code>--op NAME</code>.</p>\n";
  const Node *node = compiledNodeOf(compiled, *layer);
  if (!node)
    return fmt::format("<p class=\"todo\">%{} is not computed by the compiled model (folded or fused into another "
                       "node by the pipeline).</p>\n",
                       html(layer->name));
  auto m = alone(*node);
  const Function &f = m->main();
  std::string out = fmt::format("<p>Layer <b>%{}</b>{}, as the pipeline left it, compiled alone for this machine "
                                "(<code>cnnc compile --emit=llvm|asm</code> prints a whole model's):</p>\n<pre class=\"ir\">{}</pre>\n",
                                html(layer->name), op.empty() ? " (the convolution with the most multiply-adds)" : "",
                                html(print(f, PrintOptions{})));
  try {
    auto [ll, llFma] = highlightFma(codegen::emit(f, codegen::EmitKind::LLVM));
    auto [as, asFma] = highlightFma(codegen::emit(f, codegen::EmitKind::Asm));
    out += fmt::format("<details><summary>LLVM IR after optimisation ({} fused multiply-add calls, highlighted)"
                       "</summary>\n<pre class=\"code\">{}</pre>\n</details>\n",
                       llFma, ll);
    out += fmt::format("<details open><summary>Assembly ({} FMA instructions, highlighted: the register tile is the "
                       "run of them in the innermost loop, each one vector of outputs times one broadcast "
                       "input)</summary>\n<pre class=\"code\">{}</pre>\n</details>\n",
                       asFma, as);
  } catch (const Error &e) {
    out += fmt::format("<p class=\"todo\">codegen does not compile it: {}</p>\n", html(e.what()));
  }
  if (profile) {
    const Profile p = profileFunction(compiled, {}, 0, 5);
    out += fmt::format("<h4>Time per node of the whole compiled model (<code>--profile</code>)</h4>\n<pre>{}</pre>\n",
                       html(formatProfile(p)));
  } else {
    out += "<p class=\"todo\">With <code>--profile</code>, the page also times every node of the compiled model.</p>\n";
  }
  return out;
}

} // namespace cnnc::tools
