#include "ir/Lexer.h"

#include <cctype>

namespace cnnc::detail {

bool isNameChar(char c) {
  return std::isalnum((unsigned char)c) || c == '_' || c == '.' || c == '$' || c == '-';
}

void Lexer::advance() {
  if (cur() == '\n') {
    ++line_;
    col_ = 1;
  } else {
    ++col_;
  }
  ++pos_;
}

void Lexer::skipSpaceAndComments() {
  for (;;) {
    while (std::isspace((unsigned char)cur()))
      advance();
    // `//` and `#` comments run to the end of the line.
    if ((cur() == '/' && ahead(1) == '/') || cur() == '#') {
      while (cur() != '\n' && cur() != '\0')
        advance();
      continue;
    }
    return;
  }
}

Token Lexer::peek() {
  if (!hasPeek_) {
    peeked_ = lex();
    hasPeek_ = true;
  }
  return peeked_;
}

Token Lexer::next() {
  if (hasPeek_) {
    hasPeek_ = false;
    lastLine_ = peeked_.line;
    return peeked_;
  }
  Token t = lex();
  lastLine_ = t.line;
  return t;
}

Token Lexer::lex() {
  skipSpaceAndComments();
  Token t;
  t.line = line_;
  t.col = col_;
  char c = cur();
  if (c == '\0')
    return t;
  if (c == '%' || c == '@') {
    advance();
    while (isNameChar(cur())) {
      t.text += cur();
      advance();
    }
    if (t.text.empty())
      fail(t, std::string("expected a name after '") + c + "'");
    t.kind = c == '%' ? Tok::Value : Tok::Global;
    return t;
  }
  if (c == '"') {
    advance();
    while (cur() != '"') {
      if (cur() == '\0' || cur() == '\n')
        fail(t, "unterminated string");
      if (cur() == '\\') {
        advance();
        if (cur() == '\0')
          fail(t, "unterminated string");
        if (cur() == 'x' && std::isxdigit((unsigned char)ahead(1)) && std::isxdigit((unsigned char)ahead(2))) {
          t.text += (char)std::stoi(std::string{ahead(1), ahead(2)}, nullptr, 16); // quote()'s \xNN
          advance(), advance(), advance();
          continue;
        }
      }
      t.text += cur();
      advance();
    }
    advance();
    t.kind = Tok::String;
    return t;
  }
  bool sign = (c == '-' || c == '+') && (std::isdigit((unsigned char)ahead(1)) || ahead(1) == '.');
  if (std::isdigit((unsigned char)c) || sign || (c == '.' && std::isdigit((unsigned char)ahead(1)))) {
    bool isFloat = false;
    if (sign) {
      t.text += c;
      advance();
    }
    while (std::isalnum((unsigned char)cur()) || cur() == '.' ||
           ((cur() == '-' || cur() == '+') && (t.text.back() == 'e' || t.text.back() == 'E'))) {
      if (cur() == '.' || cur() == 'e' || cur() == 'E')
        isFloat = true;
      t.text += cur();
      advance();
    }
    t.kind = isFloat ? Tok::Float : Tok::Int;
    return t;
  }
  if (std::isalpha((unsigned char)c) || c == '_') {
    while (isNameChar(cur())) {
      t.text += cur();
      advance();
    }
    // inf/nan are float literals.
    if (t.text == "inf" || t.text == "nan")
      t.kind = Tok::Float;
    else
      t.kind = Tok::Ident;
    return t;
  }
  t.kind = Tok::Punct;
  t.punct = c;
  t.text = std::string(1, c);
  advance();
  return t;
}

std::string Lexer::lineText(int line) const {
  // The starts of lines found so far, extended on demand: the parser asks for every node's
  // line in increasing order (its trailing comment), so the whole file is scanned once
  // (scanning from the top at each call made parsing quadratic in the file's lines).
  if (lineStarts_.empty())
    lineStarts_.push_back(0);
  while ((int)lineStarts_.size() < line) {
    const size_t nl = src_.find('\n', lineStarts_.back());
    if (nl == std::string_view::npos)
      return "";
    lineStarts_.push_back(nl + 1);
  }
  if (line < 1)
    return "";
  const size_t start = lineStarts_[line - 1];
  if (start > src_.size())
    return "";
  size_t end = src_.find('\n', start);
  return std::string(src_.substr(start, end == std::string_view::npos ? end : end - start));
}

void Lexer::fail(const Token &at, const std::string &msg) const {
  int len = at.kind == Tok::Eof ? 1 : (int)std::max<size_t>(1, at.text.size() + (at.kind == Tok::Value || at.kind == Tok::Global ? 1 : 0) + (at.kind == Tok::String ? 2 : 0));
  throw Error(Loc{file_, at.line, at.col}, msg, lineText(at.line), len);
}

} // namespace cnnc::detail
