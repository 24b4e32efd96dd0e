// Argument parsing for `.cnn` layers (see CnnArgs.h). Sizes are capped so that no later
// product of them can overflow int64 (a 2^31 limit per size, 2^40 elements per tensor in
// the lowering).
#include "frontend/CnnArgs.h"

#include "ir/ParamInit.h"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace cnnc::cnn {

static constexpr int64_t kMaxSize = (int64_t(1) << 31) - 1;

static int editDistance(const std::string &a, const std::string &b) {
  std::vector<int> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j)
    prev[j] = (int)j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = (int)i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string closest(const std::string &word, const std::vector<std::string> &candidates) {
  std::string best;
  int bestD = 3;
  for (const std::string &c : candidates) {
    int d = editDistance(word, c);
    if (d < bestD && d < (int)word.size()) { // no hints for one-letter typos like 'x'
      bestD = d;
      best = c;
    }
  }
  return best;
}

const Token &Args::take(const std::string &what) {
  if (done())
    d_.errorAtEnd(s_, "'" + s_.kind.text + "' needs " + what);
  return s_.args[i_++];
}

const Token &Args::option() {
  const Token &t = s_.args[i_++];
  if (!seen_.insert(t.text).second)
    d_.error(s_, t, "option '" + t.text + "' given twice");
  return t;
}

const Token &Args::value(const Token &opt) {
  if (done())
    d_.errorAtEnd(s_, "option '" + opt.text + "' needs a value");
  return s_.args[i_++];
}

void Args::unknownOption(const Token &t, std::initializer_list<const char *> allowed) {
  std::string msg = "unknown option '" + t.text + "' for '" + s_.kind.text + "'";
  if (std::string hint = closest(t.text, std::vector<std::string>(allowed.begin(), allowed.end()));
      !hint.empty())
    msg += " (did you mean '" + hint + "'?)";
  std::string list;
  for (const char *a : allowed)
    list += (list.empty() ? "" : ", ") + std::string(a);
  msg += list.empty() ? "; it takes no options" : "; expected one of: " + list;
  d_.error(s_, t, msg);
}

bool Args::parseInt(std::string_view s, int64_t &v) const {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

int64_t Args::positive(const Token &t, const std::string &what) const {
  int64_t v = 0;
  if (!parseInt(t.text, v))
    d_.error(s_, t, "bad " + what + " '" + t.text + "': expected a positive integer");
  if (v <= 0)
    d_.error(s_, t, what + " must be positive, got " + t.text);
  if (v > kMaxSize)
    d_.error(s_, t, what + " " + t.text + " is too large");
  return v;
}

std::array<int64_t, 2> Args::pair(const Token &t, const std::string &what, bool square) const {
  size_t x = t.text.find('x');
  if (x == std::string::npos) {
    if (!square)
      d_.error(s_, t, "bad " + what + " '" + t.text + "': expected HxW, e.g. 3x3");
    int64_t v = positive(t, what);
    return {v, v};
  }
  // Report each half at its own columns.
  Token h{t.text.substr(0, x), t.col}, w{t.text.substr(x + 1), t.col + (int)x + 1};
  int64_t a = 0;
  if (!parseInt(h.text, a) || !parseInt(w.text, a))
    d_.error(s_, t, "bad " + what + " '" + t.text + "': expected HxW, e.g. 3x3");
  return {positive(h, what), positive(w, what)};
}

PadSpec Args::pads(const Token &t) const {
  PadSpec p;
  if (t.text == "same") {
    p.same = true;
    return p;
  }
  std::vector<int64_t> vals;
  size_t start = 0;
  for (;;) {
    size_t comma = t.text.find(',', start);
    std::string part = t.text.substr(start, comma == std::string::npos ? comma : comma - start);
    int64_t v = 0;
    if (!parseInt(part, v))
      d_.error(s_, t, "bad pad '" + t.text + "': expected 'same', P, V,H or T,L,B,R (no spaces)");
    if (v < 0 || v > kMaxSize)
      d_.error(s_, t, "pad must be between 0 and " + std::to_string(kMaxSize) + ", got " + part);
    vals.push_back(v);
    if (comma == std::string::npos)
      break;
    start = comma + 1;
  }
  if (vals.size() == 1)
    p.pads = {vals[0], vals[0], vals[0], vals[0]};
  else if (vals.size() == 2)
    p.pads = {vals[0], vals[1], vals[0], vals[1]};
  else if (vals.size() == 4)
    p.pads = {vals[0], vals[1], vals[2], vals[3]};
  else
    d_.error(s_, t, "bad pad '" + t.text + "': give 1, 2 (V,H) or 4 (T,L,B,R) values");
  return p;
}

double Args::number(const Token &t, const std::string &what) const {
  double v = 0;
  auto [p, ec] = std::from_chars(t.text.data(), t.text.data() + t.text.size(), v);
  if (ec != std::errc() || p != t.text.data() + t.text.size() || !std::isfinite(v))
    d_.error(s_, t, "bad " + what + " '" + t.text + "': expected a number");
  return v;
}

std::string Args::initScheme(const Token &t) const {
  if (!validInitScheme(t.text))
    d_.error(s_, t,
             "unknown init scheme '" + t.text +
                 "': expected zeros, ones, const(V), gauss(S), he or xavier");
  return t.text;
}

std::vector<int64_t> Args::dims(const Token &t) const {
  std::vector<int64_t> out;
  size_t start = 0;
  for (;;) {
    size_t x = t.text.find('x', start);
    Token part{t.text.substr(start, x == std::string::npos ? x : x - start), t.col + (int)start};
    int64_t v = 0;
    if (!parseInt(part.text, v))
      d_.error(s_, t, "bad dimensions '" + t.text + "': expected CxHxW, e.g. 3x224x224");
    out.push_back(positive(part, "dimension"));
    if (x == std::string::npos)
      return out;
    start = x + 1;
  }
}

} // namespace cnnc::cnn
