// Pass 1 of the `.cnn` frontend: tokens, statements and names (see CnnSyntax.h).
#include "frontend/CnnSyntax.h"

#include <cctype>
#include <map>

namespace cnnc::cnn {

void Diag::errorAt(int line, int col, const std::string &source, int len,
                   const std::string &msg) const {
  Loc loc{file_, line, col};
  throw Error(formatDiagnostic(loc, msg, source, len));
}

void Diag::error(const Stmt &s, const Token &at, const std::string &msg) const {
  errorAt(s.line, at.col, s.source, at.len() > 0 ? at.len() : 1, msg);
}

void Diag::errorAtEnd(const Stmt &s, const std::string &msg) const {
  // Just past the last token, so the caret shows where the missing word should go.
  const Token &last = s.hasInputs      ? (s.inputs.empty() ? s.arrow : s.inputs.back())
                      : s.args.empty() ? s.kind
                                       : s.args.back();
  errorAt(s.line, last.col + last.len(), s.source, 1, msg);
}

bool isIdent(std::string_view s) {
  if (s.empty() || !(std::isalpha((unsigned char)s[0]) || s[0] == '_'))
    return false;
  for (char c : s)
    if (!(std::isalnum((unsigned char)c) || c == '_'))
      return false;
  return true;
}

std::string NameAllocator::fresh(const std::string &base, bool numbered) {
  if (!numbered && !taken(base)) {
    taken_.insert(base);
    return base;
  }
  for (int &k = counters_[base];;) {
    std::string n = base + std::to_string(++k);
    if (!taken(n)) {
      taken_.insert(n);
      return n;
    }
  }
}

// Words separated by blanks; `:` and `<` always stand alone; `#` ends the line.
static std::vector<Token> tokenize(const std::string &line) {
  std::vector<Token> toks;
  size_t i = 0;
  while (i < line.size()) {
    char c = line[i];
    if (c == '#')
      break;
    if (std::isspace((unsigned char)c)) {
      ++i;
      continue;
    }
    if (c == ':' || c == '<') {
      toks.push_back({std::string(1, c), (int)i + 1});
      ++i;
      continue;
    }
    size_t j = i;
    while (j < line.size() && !std::isspace((unsigned char)line[j]) && line[j] != '#' &&
           line[j] != ':' && line[j] != '<')
      ++j;
    toks.push_back({line.substr(i, j - i), (int)i + 1});
    i = j;
  }
  return toks;
}

static Stmt parseLine(int lineNo, std::string source, const Diag &diag) {
  Stmt s;
  s.line = lineNo;
  s.source = std::move(source);
  std::vector<Token> toks = tokenize(s.source);
  size_t i = 0;
  if (toks.size() >= 2 && toks[1].text == ":") {
    if (!isIdent(toks[0].text))
      diag.errorAt(lineNo, toks[0].col, s.source, toks[0].len(),
                   "bad layer name '" + toks[0].text +
                       "': names are letters, digits and '_', not starting with a digit");
    s.hasName = true;
    s.name = toks[0];
    i = 2;
    if (i == toks.size())
      diag.errorAt(lineNo, toks[1].col + 1, s.source, 1,
                   "expected a layer after '" + s.name.text + ":'");
  }
  if (toks[i].text == ":" || toks[i].text == "<")
    diag.errorAt(lineNo, toks[i].col, s.source, 1,
                 "unexpected '" + toks[i].text + "': a line starts with [NAME:] LAYER");
  s.kind = toks[i++];
  for (; i < toks.size(); ++i) {
    const Token &t = toks[i];
    if (t.text == ":")
      diag.errorAt(lineNo, t.col, s.source, 1,
                   "unexpected ':': a layer name goes first, 'NAME: LAYER'");
    if (t.text == "<") {
      if (s.hasInputs)
        diag.errorAt(lineNo, t.col, s.source, 1, "a second '<': list all inputs after one '<'");
      s.hasInputs = true;
      s.arrow = t;
      continue;
    }
    (s.hasInputs ? s.inputs : s.args).push_back(t);
  }
  if (s.hasInputs && s.inputs.empty())
    diag.errorAt(lineNo, s.arrow.col, s.source, 1, "expected input names after '<'");
  return s;
}

std::vector<Stmt> parseStatements(std::string_view text, const Diag &diag) {
  std::vector<Stmt> stmts;
  int lineNo = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos)
      end = text.size();
    std::string line(text.substr(pos, end - pos));
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    ++lineNo;
    pos = end + 1;
    if (!tokenize(line).empty())
      stmts.push_back(parseLine(lineNo, std::move(line), diag));
  }
  return stmts;
}

// The automatic name's stem for each layer keyword; unknown keywords get "layer" (pass 2
// reports them, in line order with the other errors).
static std::string autoBase(const std::string &kind) {
  static const std::map<std::string, std::string> bases = {
      {"conv", "conv"}, {"pool", "pool"}, {"fc", "fc"},         {"bn", "bn"},
      {"dropout", "drop"}, {"add", "add"}, {"concat", "concat"}, {"relu6", "clip"},
      {"leakyrelu", "leaky"}, {"pad", "pad"}, {"deconv", "deconv"},
      {"upsample", "up"}};
  if (auto it = bases.find(kind); it != bases.end())
    return it->second;
  for (const std::string &k : simpleLayerKeywords()) // relu, gap, ...: the keyword itself
    if (k == kind)
      return k;
  return "layer";
}

void assignNames(std::vector<Stmt> &stmts, NameAllocator &names, bool training, const Diag &diag) {
  std::map<std::string, int> userLine;
  for (Stmt &s : stmts) {
    const Token *user = nullptr;
    if (s.kind.text == "input" && !s.hasName && !s.args.empty())
      user = &s.args[0]; // `input NAME DIMS`: checked properly in pass 2
    if (s.hasName)
      user = &s.name;
    if (!user || !isIdent(user->text))
      continue;
    auto [it, fresh] = userLine.emplace(user->text, s.line);
    if (!fresh)
      diag.error(s, *user,
                 "duplicate name '" + user->text + "' (first defined on line " +
                     std::to_string(it->second) + ")");
    names.reserve(user->text);
    s.nodeName = user->text;
  }
  for (Stmt &s : stmts) {
    if (!s.nodeName.empty() || s.kind.text == "network" || s.kind.text == "input")
      continue;
    if (s.kind.text == "loss")
      s.nodeName = names.fresh(training ? "loss" : "prob", /*numbered=*/false);
    else
      s.nodeName = names.fresh(autoBase(s.kind.text));
  }
}

} // namespace cnnc::cnn
