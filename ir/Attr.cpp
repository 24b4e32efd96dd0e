// Attribute values: printing and parsing. Floats print in the shortest form that parses back
// to the same double, always with a '.', 'e', "inf" or "nan" so that they stay floats.
#include "ir/IR.h"
#include "ir/Lexer.h"

#include <fmt/format.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace cnnc {

const char *attrKindName(AttrKind k) {
  switch (k) {
  case AttrKind::Int: return "int";
  case AttrKind::Float: return "float";
  case AttrKind::Ints: return "ints";
  case AttrKind::Floats: return "floats";
  case AttrKind::Str: return "str";
  }
  CNNC_INTERNAL("bad attr kind");
}

AttrKind attrKindOf(const Attr &a) { return (AttrKind)a.index(); }

static std::string floatStr(double d) {
  if (std::isnan(d))
    return "nan";
  if (std::isinf(d))
    return d > 0 ? "inf" : "-inf";
  std::string s = fmt::format("{}", d);
  if (s.find_first_of(".e") == std::string::npos)
    s += ".0";
  return s;
}

// Control bytes print as \xNN: the text stays one line that parses back to the same bytes
// (an ONNX name or attribute may hold a newline or a NUL; the lexer ends input at NUL).
std::string escapeControl(std::string_view s) {
  std::string out;
  for (char c : s) {
    unsigned char u = (unsigned char)c;
    if (u < 0x20 || u == 0x7f)
      out += fmt::format("\\x{:02x}", u);
    else
      out += c;
  }
  return out;
}

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\')
      out += '\\';
    out += c;
  }
  return escapeControl(out) + "\"";
}

std::string attrStr(const Attr &a) {
  switch (attrKindOf(a)) {
  case AttrKind::Int: return std::to_string(std::get<int64_t>(a));
  case AttrKind::Float: return floatStr(std::get<double>(a));
  case AttrKind::Ints: return fmt::format("[{}]", fmt::join(std::get<std::vector<int64_t>>(a), ","));
  case AttrKind::Floats: {
    std::vector<std::string> parts;
    for (double d : std::get<std::vector<double>>(a))
      parts.push_back(floatStr(d));
    return fmt::format("[{}]", fmt::join(parts, ","));
  }
  case AttrKind::Str: return quote(std::get<std::string>(a));
  }
  CNNC_INTERNAL("bad attr");
}

namespace detail {

static int64_t toInt(Lexer &lx, const Token &t, const std::string &what) {
  if (t.kind != Tok::Int)
    lx.fail(t, fmt::format("attribute '{}' expects an integer, got '{}'", what, t.text));
  errno = 0;
  char *end = nullptr;
  long long v = std::strtoll(t.text.c_str(), &end, 10);
  if (errno != 0 || *end != '\0')
    lx.fail(t, fmt::format("bad integer '{}' for attribute '{}'", t.text, what));
  return v;
}

static double toFloat(Lexer &lx, const Token &t, const std::string &what) {
  if (t.kind != Tok::Int && t.kind != Tok::Float)
    lx.fail(t, fmt::format("attribute '{}' expects a number, got '{}'", what, t.text));
  if (t.text == "nan")
    return NAN;
  if (t.text == "inf")
    return INFINITY;
  char *end = nullptr;
  double v = std::strtod(t.text.c_str(), &end);
  if (*end != '\0')
    lx.fail(t, fmt::format("bad number '{}' for attribute '{}'", t.text, what));
  return v;
}

static Token expectPunct(Lexer &lx, char c, const std::string &what) {
  Token t = lx.next();
  if (t.kind != Tok::Punct || t.punct != c)
    lx.fail(t, fmt::format("expected '{}' in attribute '{}'", c, what));
  return t;
}

template <class T, class F> static std::vector<T> parseList(Lexer &lx, const std::string &what, F elem) {
  expectPunct(lx, '[', what);
  std::vector<T> out;
  Token t = lx.peek();
  if (t.kind == Tok::Punct && t.punct == ']') {
    lx.next();
    return out;
  }
  for (;;) {
    Token e = lx.next();
    // A leading '-' before inf arrives as punctuation; fold it into the literal.
    if (e.kind == Tok::Punct && e.punct == '-' && lx.peek().text == "inf") {
      lx.next();
      e.kind = Tok::Float;
      e.text = "-inf";
    }
    out.push_back(elem(e));
    Token sep = lx.next();
    if (sep.kind == Tok::Punct && sep.punct == ']')
      return out;
    if (sep.kind != Tok::Punct || sep.punct != ',')
      lx.fail(sep, fmt::format("expected ',' or ']' in attribute '{}'", what));
  }
}

AttrValue parseAttrValue(Lexer &lx, AttrKind expected, const std::string &what) {
  switch (expected) {
  case AttrKind::Int: return toInt(lx, lx.next(), what);
  case AttrKind::Float: {
    Token t = lx.next();
    if (t.kind == Tok::Punct && t.punct == '-' && lx.peek().text == "inf") {
      lx.next();
      return -INFINITY;
    }
    return toFloat(lx, t, what);
  }
  case AttrKind::Ints:
    return parseList<int64_t>(lx, what, [&](const Token &t) { return toInt(lx, t, what); });
  case AttrKind::Floats:
    return parseList<double>(lx, what, [&](const Token &t) { return toFloat(lx, t, what); });
  case AttrKind::Str: {
    Token t = lx.next();
    if (t.kind != Tok::String)
      lx.fail(t, fmt::format("attribute '{}' expects a string", what));
    return t.text;
  }
  }
  CNNC_INTERNAL("bad attr kind");
}

} // namespace detail
} // namespace cnnc
