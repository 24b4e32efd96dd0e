// Reading a layer's arguments: positional values, then `option [value]` pairs, each checked
// and reported at its own token. Internal to frontend/.
#pragma once

#include "frontend/CnnSyntax.h"

#include <array>
#include <cstdint>
#include <initializer_list>
#include <set>
#include <string>

namespace cnnc::cnn {

/// `pad` as written: explicit [top, left, bottom, right], or `same` (resolved against the
/// kernel by the layer).
struct PadSpec {
  bool same = false;
  std::array<int64_t, 4> pads{0, 0, 0, 0};
};

/// The seed's (section 6.1) same padding for a window of effective extent k:
/// floor((k-1)/2) before, floor(k/2) after, so a stride-1 window keeps the size.
inline std::array<int64_t, 4> samePads(int64_t kh, int64_t kw) {
  return {(kh - 1) / 2, (kw - 1) / 2, kh / 2, kw / 2};
}

/// Closest word within edit distance 2, or "" (for "did you mean" hints).
std::string closest(const std::string &word, const std::vector<std::string> &candidates);

class Args {
public:
  Args(const Stmt &s, const Diag &d) : s_(s), d_(d) {}

  bool done() const { return i_ >= s_.args.size(); }
  /// The next positional argument; a missing one is reported at the end of the line.
  const Token &take(const std::string &what);
  /// Next option keyword; reports a repeated option.
  const Token &option();
  /// The value following option `opt`.
  const Token &value(const Token &opt);
  [[noreturn]] void unknownOption(const Token &t, std::initializer_list<const char *> allowed);

  int64_t positive(const Token &t, const std::string &what) const;
  /// `AxB` (or a single `A` when `square` allows it, meaning AxA); every entry positive.
  std::array<int64_t, 2> pair(const Token &t, const std::string &what, bool square) const;
  PadSpec pads(const Token &t) const;
  double number(const Token &t, const std::string &what) const;
  /// An initialisation scheme (ir/ParamInit.h), e.g. `he`, `gauss(0.01)`.
  std::string initScheme(const Token &t) const;
  /// Per-example dimensions `3x224x224`.
  std::vector<int64_t> dims(const Token &t) const;

  const Stmt &stmt() const { return s_; }
  const Diag &diag() const { return d_; }

private:
  bool parseInt(std::string_view s, int64_t &v) const;

  const Stmt &s_;
  const Diag &d_;
  size_t i_ = 0;
  std::set<std::string> seen_;
};

} // namespace cnnc::cnn
