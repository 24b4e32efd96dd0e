#include "ir/Diagnostic.h"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>

namespace cnnc {

std::string Loc::str() const {
  if (!known())
    return "";
  return fmt::format("{}:{}:{}", file, line, col);
}

std::string formatDiagnostic(const Loc &loc, const std::string &msg, const std::string &sourceLine,
                             int len) {
  std::string out = loc.known() ? fmt::format("{}: error: {}", loc.str(), msg) : "error: " + msg;
  if (!sourceLine.empty() && loc.col > 0) {
    // Tabs keep their width under the caret so it lines up in a terminal.
    std::string pad;
    for (int i = 0; i + 1 < loc.col && i < (int)sourceLine.size(); ++i)
      pad += sourceLine[i] == '\t' ? '\t' : ' ';
    out += fmt::format("\n  {}\n  {}^{}", sourceLine, pad, std::string(len > 1 ? len - 1 : 0, '~'));
  }
  return out;
}

Error::Error(const Loc &loc, const std::string &msg) : std::runtime_error(formatDiagnostic(loc, msg)) {}

Error::Error(const Loc &loc, const std::string &msg, const std::string &sourceLine, int len)
    : std::runtime_error(formatDiagnostic(loc, msg, sourceLine, len)) {}

void internalError(const char *file, int line, const std::string &msg) {
  std::fprintf(stderr, "cnnc: internal compiler error at %s:%d: %s\n(this is a bug in cnnc, not in your model)\n",
               file, line, msg.c_str());
  std::abort();
}

} // namespace cnnc
