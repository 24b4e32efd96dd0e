// The `.cnn` surface syntax (docs/cnn-format.md): lines -> statements, before any lowering.
//
// A statement is one non-blank line: `network NAME`, `input NAME DIMS`, or a layer
//   [NAME ":"] KIND {ARG} ["<" NAME {NAME}]
// Tokens are whitespace-separated words; `:` and `<` are tokens of their own even without
// spaces around them, and `#` starts a comment. Every token keeps its column so that errors
// can put a caret under exactly the offending word.
//
// Pass 1 (parseStatements) also gives every layer its SSA name: the user's, or an automatic
// `conv1`, `relu2`, ... that skips every name the user wrote anywhere in the file, so a later
// user name can never collide with an earlier automatic one. Internal to frontend/.
#pragma once

#include "ir/Diagnostic.h"

#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace cnnc::cnn {

struct Token {
  std::string text;
  int col = 0; // 1-based
  int len() const { return (int)text.size(); }
};

struct Stmt {
  int line = 0;
  std::string source; // the whole line as written, for carets
  bool hasName = false;
  Token name;              // valid if hasName (the user's name)
  Token kind;              // `conv`, `input`, `network`, ...
  std::vector<Token> args; // between the kind and `<`
  bool hasInputs = false;
  Token arrow;               // the `<`, valid if hasInputs
  std::vector<Token> inputs; // names after `<`
  std::string nodeName;      // the SSA name of the layer's result (pass 1)
};

/// Formats and throws the frontend's errors; all of them go through formatDiagnostic.
class Diag {
public:
  explicit Diag(std::string file) : file_(std::move(file)) {}
  const std::string &file() const { return file_; }
  Loc loc(const Stmt &s, const Token &t) const { return Loc{file_, s.line, t.col}; }
  [[noreturn]] void error(const Stmt &s, const Token &at, const std::string &msg) const;
  /// At the end of the line (for a missing argument).
  [[noreturn]] void errorAtEnd(const Stmt &s, const std::string &msg) const;
  [[noreturn]] void errorAt(int line, int col, const std::string &source, int len,
                            const std::string &msg) const;

private:
  std::string file_;
};

bool isIdent(std::string_view s);

/// The keywords of the parameterless one-input layers (`relu`, `gap`, ...), each one op:
/// the Simple entries of the per-op table cnnForm (CnnLayers.cpp), in Ops.def order.
std::vector<std::string> simpleLayerKeywords();

/// Pass 1: splits the text into statements. Throws on malformed names and misplaced `:`/`<`.
std::vector<Stmt> parseStatements(std::string_view text, const Diag &diag);

/// Makes names unique against a set of taken ones: `base` + 1, 2, ... (or `base` itself
/// first when `numbered` is false).
class NameAllocator {
public:
  void reserve(const std::string &n) { taken_.insert(n); }
  bool taken(const std::string &n) const { return taken_.count(n) != 0; }
  std::string fresh(const std::string &base, bool numbered = true);

private:
  std::set<std::string> taken_;
  std::map<std::string, int> counters_;
};

/// Reserves every user name (throwing on duplicates), then gives each layer without one an
/// automatic name. A loss layer is `loss` in training and `prob` (its softmax) in inference.
void assignNames(std::vector<Stmt> &stmts, NameAllocator &names, bool training, const Diag &diag);

} // namespace cnnc::cnn
