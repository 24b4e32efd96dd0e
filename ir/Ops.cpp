// Builds the op table from Ops.def. The operand and attribute specs are strings in the table
// (so that the table stays one readable line per op); they are parsed once, here, with the
// IR's own attribute-literal parser, and a malformed spec is a compiler bug.
#include "ir/IR.h"
#include "ir/Lexer.h"

#include <sstream>

namespace cnnc {

namespace {

std::vector<std::string> words(const std::string &s) {
  std::istringstream in(s);
  std::vector<std::string> out;
  for (std::string w; in >> w;)
    out.push_back(w);
  return out;
}

std::vector<OperandSpec> parseOperands(const std::string &spec) {
  std::vector<OperandSpec> out;
  for (std::string w : words(spec)) {
    OperandSpec o;
    if (w.back() == '?')
      o.optional = true;
    if (w.back() == '*')
      o.variadic = true;
    if (o.optional || o.variadic)
      w.pop_back();
    o.name = w;
    out.push_back(o);
  }
  return out;
}

std::optional<AttrKind> kindByName(const std::string &s) {
  for (AttrKind k : {AttrKind::Int, AttrKind::Float, AttrKind::Ints, AttrKind::Floats, AttrKind::Str})
    if (s == attrKindName(k))
      return k;
  return std::nullopt;
}

std::vector<AttrSpec> parseAttrs(const std::string &mnemonic, const std::string &spec) {
  // "name:kind=default name:kind ..."; defaults may contain spaces only inside strings,
  // which the table does not use.
  std::vector<AttrSpec> out;
  for (const std::string &w : words(spec)) {
    size_t colon = w.find(':'), eq = w.find('=');
    if (colon == std::string::npos)
      CNNC_INTERNAL("op " + mnemonic + ": attribute spec without kind: " + w);
    AttrSpec a;
    a.name = w.substr(0, colon);
    auto kind = kindByName(w.substr(colon + 1, eq == std::string::npos ? std::string::npos : eq - colon - 1));
    if (!kind)
      CNNC_INTERNAL("op " + mnemonic + ": bad attribute kind in " + w);
    a.kind = *kind;
    if (eq != std::string::npos) {
      std::string lit = w.substr(eq + 1);
      detail::Lexer lx(lit, "Ops.def");
      a.defaultValue = detail::parseAttrValue(lx, a.kind, a.name);
    }
    out.push_back(a);
  }
  return out;
}

void parseTraits(OpInfo &i, const std::string &spec) {
  bool batchSet = false;
  for (const std::string &tr : words(spec)) {
    if (tr == "source") i.source = true;
    else if (tr == "elementwise") i.elementwise = true;
    else if (tr == "loss") i.loss = true;
    else if (tr == "stochastic") i.stochastic = true;
    else if (tr == "view") i.view = true;
    else if (tr == "macs") i.macs = true;
    else if (tr == "inplace") i.inPlace = true;
    else if (tr.rfind("batch:", 0) == 0) {
      bool known = false;
      for (BatchRule r : {BatchRule::Elementwise, BatchRule::Leading, BatchRule::Axis,
                          BatchRule::Fixed, BatchRule::Custom})
        if (tr.substr(6) == batchRuleName(r))
          i.batch = r, known = batchSet = true;
      if (!known)
        CNNC_INTERNAL("op " + i.mnemonic + ": unknown batch rule " + tr);
    } else
      CNNC_INTERNAL("op " + i.mnemonic + ": unknown trait " + tr);
  }
  if (!batchSet) // elementwise ops follow numpy broadcasting; anything else is safe fixed
    i.batch = i.elementwise ? BatchRule::Elementwise : BatchRule::Fixed;
}

std::vector<OpInfo> buildTable() {
  std::vector<OpInfo> t;
#define OP(Enum, Mnemonic, Operands, Attrs, Traits, Doc, Example)                                   \
  {                                                                                                \
    OpInfo i;                                                                                      \
    i.kind = OpKind::Enum;                                                                         \
    i.mnemonic = Mnemonic;                                                                         \
    i.operands = parseOperands(Operands);                                                          \
    i.attrs = parseAttrs(Mnemonic, Attrs);                                                         \
    parseTraits(i, Traits);                                                                        \
    i.doc = Doc;                                                                                   \
    i.example = Example;                                                                           \
    t.push_back(std::move(i));                                                                     \
  }
#include "ir/Ops.def"
#undef OP
  return t;
}

} // namespace

const std::vector<OpInfo> &allOps() {
  static const std::vector<OpInfo> table = buildTable();
  return table;
}

const char *batchRuleName(BatchRule r) {
  switch (r) {
  case BatchRule::Elementwise: return "elementwise";
  case BatchRule::Leading: return "leading";
  case BatchRule::Axis: return "axis";
  case BatchRule::Fixed: return "fixed";
  case BatchRule::Custom: return "custom";
  }
  CNNC_INTERNAL("bad batch rule");
}

const OpInfo &opInfo(OpKind k) { return allOps().at((size_t)k); }

std::optional<OpKind> opByMnemonic(std::string_view m) {
  for (const OpInfo &i : allOps())
    if (i.mnemonic == m)
      return i.kind;
  return std::nullopt;
}

int OpInfo::minOperands() const {
  int n = 0;
  for (const OperandSpec &o : operands)
    if (!o.optional)
      ++n;
  return n;
}

int OpInfo::maxOperands() const {
  for (const OperandSpec &o : operands)
    if (o.variadic)
      return -1;
  return (int)operands.size();
}

const AttrSpec *OpInfo::attr(std::string_view name) const {
  for (const AttrSpec &a : attrs)
    if (a.name == name)
      return &a;
  return nullptr;
}

} // namespace cnnc
