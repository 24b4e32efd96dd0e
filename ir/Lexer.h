// Tokens of the textual IR (and of the attribute defaults written in Ops.def, which use the
// same syntax). Internal to ir/.
#pragma once

#include "ir/Diagnostic.h"

#include <string>
#include <string_view>
#include <vector>

namespace cnnc::detail {

enum class Tok { Eof, Ident, Value /* %name */, Global /* @name */, Int, Float, String, Punct };

struct Token {
  Tok kind = Tok::Eof;
  std::string text; // identifier/name without sigil, string without quotes, number as written
  char punct = 0;
  int line = 1, col = 1;
};

class Lexer {
public:
  Lexer(std::string_view src, std::string file) : src_(src), file_(std::move(file)) {}
  Token next();
  Token peek();
  /// The full text of a 1-based source line (for carets in error messages).
  std::string lineText(int line) const;
  [[noreturn]] void fail(const Token &at, const std::string &msg) const;
  const std::string &file() const { return file_; }
  /// The line of the last token next() returned (where a node's trailing comment is).
  int lastLine() const { return lastLine_; }

private:
  Token lex();
  void skipSpaceAndComments();
  char cur() const { return pos_ < src_.size() ? src_[pos_] : '\0'; }
  char ahead(size_t k) const { return pos_ + k < src_.size() ? src_[pos_ + k] : '\0'; }
  void advance();

  std::string_view src_;
  std::string file_;
  size_t pos_ = 0;
  int line_ = 1, col_ = 1;
  bool hasPeek_ = false;
  Token peeked_;
  int lastLine_ = 1;
  mutable std::vector<size_t> lineStarts_; // lineText's index: offsets of lines 1, 2, ...
};

bool isNameChar(char c);

} // namespace cnnc::detail

namespace cnnc {
enum class AttrKind : uint8_t;
}
#include <cstdint>
#include <variant>
#include <vector>
namespace cnnc::detail {
using AttrValue = std::variant<int64_t, double, std::vector<int64_t>, std::vector<double>, std::string>;
/// Parses one attribute literal of the expected kind (an int where a float is expected is
/// promoted, and likewise in lists). `what` names the attribute in error messages.
AttrValue parseAttrValue(Lexer &lx, AttrKind expected, const std::string &what);
} // namespace cnnc::detail
