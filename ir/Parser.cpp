// Parses the textual IR that Printer.cpp writes (grammar in docs/ir.md):
//   module   := function*
//   function := 'func' '@'NAME '{' node* 'return' value (',' value)* '}'
//   node     := value '=' MNEMONIC ['(' [value (',' value)*] ')'] ['{' attr (',' attr)* '}']
//               ':' type ['loc' '(' STRING ':' INT ':' INT ')'] ['//' comment-to-end-of-line]
// Newlines are spaces (a node or a return may be wrapped); a node's comment is the `// ...`
// at the end of its last line. Whole-line comments (the printer's section headers) are skipped.
//   attr     := NAME '=' literal        type := DTYPE '[' [INT (',' INT)*] ']'
// A node's location is its `loc(...)` when given, else its position in the IR text, so that
// verifier errors on hand-written IR point at the offending line. The parsed module is
// verified before it is returned.
#include "ir/IR.h"
#include "ir/Lexer.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>

namespace cnnc {

using detail::Lexer;
using detail::Tok;
using detail::Token;

namespace {

class Parser {
public:
  Parser(std::string_view text, const std::string &file) : lx_(text, file) {}

  std::unique_ptr<Module> parseModule() {
    auto m = std::make_unique<Module>();
    while (lx_.peek().kind != Tok::Eof)
      parseFunction(*m);
    return m;
  }

private:
  Token expect(char c, const char *context) {
    Token t = lx_.next();
    if (t.kind != Tok::Punct || t.punct != c)
      lx_.fail(t, fmt::format("expected '{}' {}", c, context));
    return t;
  }
  bool accept(char c) {
    Token t = lx_.peek();
    if (t.kind == Tok::Punct && t.punct == c) {
      lx_.next();
      return true;
    }
    return false;
  }
  int64_t intOf(const Token &t, const char *what) {
    if (t.kind != Tok::Int)
      lx_.fail(t, fmt::format("expected {}", what));
    errno = 0;
    char *end = nullptr;
    long long v = std::strtoll(t.text.c_str(), &end, 10);
    if (errno || *end || v < 0 || v > (1LL << 40))
      lx_.fail(t, fmt::format("'{}' is not {} (0 to 2^40)", t.text, what));
    return v;
  }
  Node *useValue(Function &f) {
    Token t = lx_.next();
    if (t.kind != Tok::Value)
      lx_.fail(t, "expected a value name like %x");
    Node *n = f.find(t.text);
    if (!n)
      lx_.fail(t, fmt::format("use of undefined value %{}", t.text));
    return n;
  }

  void parseFunction(Module &m) {
    Token kw = lx_.next();
    if (kw.kind != Tok::Ident || kw.text != "func")
      lx_.fail(kw, "expected 'func'");
    Token name = lx_.next();
    if (name.kind != Tok::Global)
      lx_.fail(name, "expected a function name like @main");
    if (m.find(name.text))
      lx_.fail(name, fmt::format("function @{} is defined twice", name.text));
    Function &f = m.addFunction(name.text);
    if (FunctionRole r = roleOfName(name.text); r != FunctionRole::Other)
      f.setRole(r); // @infer, @train_step
    expect('{', "to open the function body");
    for (;;) {
      Token t = lx_.peek();
      if (t.kind == Tok::Ident && t.text == "return") {
        lx_.next();
        do
          f.outputs().push_back(useValue(f));
        while (accept(','));
        expect('}', "to close the function body");
        return;
      }
      if (t.kind != Tok::Value)
        lx_.fail(t, "expected a node definition (%name = ...) or 'return'");
      parseNode(f);
    }
  }

  TensorType parseType() {
    Token t = lx_.next();
    auto dt = t.kind == Tok::Ident ? parseDType(t.text) : std::nullopt;
    if (!dt)
      lx_.fail(t, "expected an element type (f32, f64, i32, i64)");
    TensorType ty;
    ty.dtype = *dt;
    expect('[', "to open the shape");
    if (accept(']'))
      return ty;
    do {
      ty.shape.push_back(intOf(lx_.next(), "a dimension size"));
    } while (accept(','));
    expect(']', "to close the shape");
    return ty;
  }

  void parseNode(Function &f) {
    Token nameTok = lx_.next();
    expect('=', "after the value name");
    Token opTok = lx_.next();
    auto kind = opTok.kind == Tok::Ident ? opByMnemonic(opTok.text) : std::nullopt;
    if (!kind)
      lx_.fail(opTok, fmt::format("unknown op '{}'", opTok.text));
    const OpInfo &info = opInfo(*kind);

    std::vector<Node *> operands;
    if (accept('(') && !accept(')')) {
      do
        operands.push_back(useValue(f));
      while (accept(','));
      expect(')', "to close the operand list");
    }

    std::map<std::string, Attr> attrs;
    if (accept('{')) {
      do {
        Token an = lx_.next();
        if (an.kind != Tok::Ident)
          lx_.fail(an, "expected an attribute name");
        const AttrSpec *spec = info.attr(an.text);
        if (!spec)
          lx_.fail(an, fmt::format("op '{}' has no attribute '{}'", info.mnemonic, an.text));
        if (attrs.count(an.text))
          lx_.fail(an, fmt::format("attribute '{}' given twice", an.text));
        expect('=', "after the attribute name");
        attrs[an.text] = detail::parseAttrValue(lx_, spec->kind, an.text);
      } while (accept(','));
      expect('}', "to close the attribute list");
    }
    expect(':', "before the result type");
    TensorType type = parseType();

    Loc loc{lx_.file(), nameTok.line, nameTok.col};
    Token t = lx_.peek();
    if (t.kind == Tok::Ident && t.text == "loc") {
      lx_.next();
      expect('(', "after 'loc'");
      Token file = lx_.next();
      if (file.kind != Tok::String)
        lx_.fail(file, "expected a quoted file name");
      expect(':', "in loc");
      int line = (int)intOf(lx_.next(), "a line number");
      expect(':', "in loc");
      int col = (int)intOf(lx_.next(), "a column number");
      expect(')', "to close loc");
      loc = Loc{file.text, line, col};
    }
    if (f.find(nameTok.text))
      lx_.fail(nameTok, fmt::format("value %{} is defined twice", nameTok.text));
    Node *n = f.add(*kind, nameTok.text, std::move(operands), std::move(attrs), type, loc);
    n->comment = trailingComment(lx_.lastLine()); // a wrapped node's comment ends its last line
  }

  // The `// ...` tail of a line, outside string literals (the lexer skips comments).
  std::string trailingComment(int line) {
    std::string text = lx_.lineText(line);
    bool inStr = false;
    for (size_t i = 0; i + 1 < text.size(); ++i) {
      if (text[i] == '"' && (i == 0 || text[i - 1] != '\\'))
        inStr = !inStr;
      if (!inStr && text[i] == '/' && text[i + 1] == '/') {
        size_t b = text.find_first_not_of(' ', i + 2);
        return b == std::string::npos ? "" : text.substr(b, text.find_last_not_of(" \r") + 1 - b);
      }
    }
    return "";
  }

  Lexer lx_;
};

} // namespace

std::unique_ptr<Module> parseModule(std::string_view text, const std::string &filename) {
  Parser p(text, filename);
  auto m = p.parseModule();
  verify(*m);
  return m;
}

} // namespace cnnc
