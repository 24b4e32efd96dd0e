// Parameter initialisation (ParamInit.h): the scheme parser and the seeded generator.
//
// The generator, exactly (so that another implementation can reproduce our values):
//   mix(z)   = splitmix64's finaliser: z = (z ^ z>>30) * 0xBF58476D1CE4E5B9;
//              z = (z ^ z>>27) * 0x94D049BB133111EB; z ^ z>>31            (all mod 2^64)
//   fnv1a(s) = 64-bit FNV-1a of the parameter's SSA name (offset 0xCBF29CE484222325,
//              prime 0x100000001B3)
//   key      = mix(seed ^ fnv1a(name))
//   bits(i)  = mix(key + (i + 1) * 0x9E3779B97F4A7C15)     -- splitmix64's i-th output
//   u(i)     = (bits(i) >> 11) * 2^-53                      -- uniform in [0, 1), 53 bits
// Element j of a uniform scheme takes u(j). Element j of a normal scheme takes Box-Muller on
// the pair p = j / 2:  r = sqrt(-2 ln(1 - u(2p))),  t = 2 pi u(2p + 1),
//   even j: r cos t,  odd j: r sin t.
// Because the stream is a pure function of (seed, name, index), a parameter's values do not
// depend on other parameters or on initialisation order, and a counter never runs out.
// std::normal_distribution is avoided on purpose: its algorithm is implementation-defined,
// so values would differ between standard libraries.
#include "ir/ParamInit.h"

#include <cmath>
#include <cstdlib>
#include <numbers>
#include <optional>

namespace cnnc {

namespace {

enum class Scheme { Zeros, Ones, Const, Gauss, He, Xavier };
struct ParsedScheme {
  Scheme kind;
  double value = 0; // const(V): V; gauss(S): S
};

// A full-string double (strtod accepts a prefix; we want all of it) that is finite.
std::optional<double> parseNumber(const std::string &s) {
  if (s.empty() || std::isspace((unsigned char)s[0]))
    return std::nullopt;
  char *end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || !std::isfinite(v))
    return std::nullopt;
  return v;
}

std::optional<ParsedScheme> parseScheme(const std::string &s) {
  if (s == "zeros")
    return ParsedScheme{Scheme::Zeros};
  if (s == "ones")
    return ParsedScheme{Scheme::Ones};
  if (s == "he")
    return ParsedScheme{Scheme::He};
  if (s == "xavier")
    return ParsedScheme{Scheme::Xavier};
  for (auto [prefix, kind] : {std::pair{"const(", Scheme::Const}, {"gauss(", Scheme::Gauss}}) {
    std::string_view p = prefix;
    if (s.size() > p.size() + 1 && s.starts_with(p) && s.back() == ')') {
      auto v = parseNumber(s.substr(p.size(), s.size() - p.size() - 1));
      if (!v || (kind == Scheme::Gauss && *v < 0))
        return std::nullopt;
      return ParsedScheme{kind, *v};
    }
  }
  return std::nullopt;
}

uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t fnv1a(const std::string &s) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001B3ull;
  }
  return h;
}

struct Stream {
  uint64_t key;
  double uniform(uint64_t i) const {
    return double(mix(key + (i + 1) * 0x9E3779B97F4A7C15ull) >> 11) * 0x1.0p-53;
  }
  double normal(uint64_t j) const {
    uint64_t p = j / 2;
    double r = std::sqrt(-2.0 * std::log(1.0 - uniform(2 * p))); // 1 - u in (0, 1]
    double t = 2.0 * std::numbers::pi * uniform(2 * p + 1);
    return j % 2 == 0 ? r * std::cos(t) : r * std::sin(t);
  }
};

} // namespace

bool validInitScheme(const std::string &scheme) {
  return parseScheme(scheme).has_value();
}

std::vector<double> initParam(const Node &param, uint64_t seed) {
  CNNC_ASSERT(param.op == OpKind::Param, "initParam on a non-param node " + param.describe());
  std::string text = param.getStr("init");
  auto scheme = parseScheme(text);
  if (!scheme)
    throw Error(param.describe() + ": unknown init scheme \"" + text +
                "\" (want zeros, ones, const(V), gauss(S) with S >= 0, he or xavier)");

  const Shape &shape = param.type.shape;
  int64_t n = param.type.numel();
  // fan_in = prod(shape[1:]); fan_out = shape[0] * prod(shape[2:]) (ParamInit.h).
  double fanIn = 1, fanOut = shape.empty() ? 1 : double(shape[0]);
  for (size_t i = 1; i < shape.size(); ++i)
    fanIn *= double(shape[i]);
  for (size_t i = 2; i < shape.size(); ++i)
    fanOut *= double(shape[i]);

  Stream st{mix(seed ^ fnv1a(param.name))};
  std::vector<double> v(n > 0 ? size_t(n) : 0);
  for (size_t j = 0; j < v.size(); ++j) {
    switch (scheme->kind) {
    case Scheme::Zeros:
      v[j] = 0;
      break;
    case Scheme::Ones:
      v[j] = 1;
      break;
    case Scheme::Const:
      v[j] = scheme->value;
      break;
    case Scheme::Gauss:
      v[j] = scheme->value * st.normal(j);
      break;
    case Scheme::He:
      v[j] = std::sqrt(2.0 / fanIn) * st.normal(j);
      break;
    case Scheme::Xavier: {
      double a = std::sqrt(6.0 / (fanIn + fanOut));
      v[j] = a * (2.0 * st.uniform(j) - 1.0);
      break;
    }
    }
  }
  return v;
}

} // namespace cnnc
