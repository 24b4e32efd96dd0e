// Errors, the two channels of them (after Halide's user_error / internal_error):
//  - cnnc::Error: the user's mistake (bad model, bad IR text, shape mismatch). It carries a
//    source location when one is known and a message ready to print; tools catch it, print
//    it to stderr and exit 1.
//  - CNNC_INTERNAL(...): a compiler bug. It aborts with a distinct message; no user input
//    may ever trigger it (tests check that bad inputs produce cnnc::Error instead).
#pragma once

#include <stdexcept>
#include <string>

namespace cnnc {

/// A position in a source file (a `.cnn` model, IR text, ...). line/col are 1-based;
/// line == 0 means "no location".
struct Loc {
  std::string file;
  int line = 0;
  int col = 0;

  bool known() const { return line > 0; }
  /// "file:line:col", or "" when unknown.
  std::string str() const;
};

/// A user-facing error. what() is the complete message, already formatted as
/// "file:line:col: error: msg" followed, when available, by the source line and a caret.
class Error : public std::runtime_error {
public:
  explicit Error(const std::string &msg) : std::runtime_error(msg) {}
  Error(const Loc &loc, const std::string &msg);
  /// With the offending source line shown and a caret under `loc.col` (length `len`).
  Error(const Loc &loc, const std::string &msg, const std::string &sourceLine, int len = 1);
};

/// Formats "file:line:col: error: msg\n  <line>\n  ^~~~" (the caret part when sourceLine
/// is non-empty). Shared by every frontend so all errors look the same.
std::string formatDiagnostic(const Loc &loc, const std::string &msg,
                             const std::string &sourceLine = "", int len = 1);

[[noreturn]] void internalError(const char *file, int line, const std::string &msg);

} // namespace cnnc

#define CNNC_INTERNAL(msg) ::cnnc::internalError(__FILE__, __LINE__, (msg))
#define CNNC_ASSERT(cond, msg)                                                                     \
  do {                                                                                             \
    if (!(cond))                                                                                   \
      CNNC_INTERNAL(std::string("assertion failed: " #cond ": ") + (msg));                       \
  } while (0)
