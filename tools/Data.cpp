#include "tools/Data.h"

#include "ir/Diagnostic.h"
#include "runtime/Idx.h"

#include <fmt/format.h>

#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <filesystem>
#include <map>
#include <string_view>
#include <unordered_set>

namespace fs = std::filesystem;

namespace cnnc::tools {

std::string resolveDataDir(const std::string &spec) {
  if (spec != "mnist" && spec != "fashion-mnist") {
    if (!fs::is_directory(spec))
      throw Error(
          fmt::format("--data {}: not a directory (expected mnist, fashion-mnist or a directory "
                      "holding the four IDX files)",
                      spec));
    return spec;
  }
  std::vector<std::string> roots;
  if (const char *env = std::getenv("CNNC_DATA"))
    roots.push_back(env);
  roots.push_back("data");
#ifdef CNNC_DEFAULT_DATA_ROOT
  roots.push_back(CNNC_DEFAULT_DATA_ROOT);
#endif
  for (const std::string &r : roots)
    if (fs::is_directory(fs::path(r) / spec))
      return (fs::path(r) / spec).string();
  throw Error(
      fmt::format("--data {}: no data/{} in {} (run scripts/fetch-data.sh, or set CNNC_DATA)", spec,
                  spec, fmt::join(roots, ", ")));
}

static rt::Array readIdxIn(const std::string &dir, const std::string &stem) {
  for (const char *suffix : {"", ".gz"}) {
    fs::path p = fs::path(dir) / (stem + suffix);
    if (fs::exists(p))
      try {
        return rt::readIdx(p.string());
      } catch (const rt::FormatError &e) {
        throw Error(e.what());
      }
  }
  throw Error(fmt::format("data directory '{}' has no {} (or {}.gz)", dir, stem, stem));
}

static Split readSplit(const std::string &dir, const std::string &prefix,
                       std::vector<int64_t> &shape, int64_t keep, Subset subset = Subset::First,
                       uint64_t seed = 0, std::string *note = nullptr) {
  rt::Array im = readIdxIn(dir, prefix + "-images-idx3-ubyte");
  rt::Array lb = readIdxIn(dir, prefix + "-labels-idx1-ubyte");
  if (im.shape.size() < 2 || lb.shape.size() != 1 || im.shape[0] != lb.shape[0])
    throw Error(fmt::format("'{}': {} images of shape {} but labels of shape {}", dir, prefix,
                            fmt::join(im.shape, "x"), fmt::join(lb.shape, "x")));
  std::vector<int64_t> ex(im.shape.begin() + 1, im.shape.end());
  if (!shape.empty() && shape != ex)
    throw Error(fmt::format("'{}': training images are {}, {} images are {}", dir,
                            fmt::join(shape, "x"), prefix, fmt::join(ex, "x")));
  shape = ex;
  Split s;
  s.n = im.shape[0];
  if (keep > 0) {
    if (keep > s.n)
      throw Error(fmt::format("'{}' holds {} {} examples, fewer than the {} asked for", dir, s.n,
                              prefix, keep));
  }
  const int64_t pixels = im.numel() / std::max<int64_t>(im.shape[0], 1);
  if (keep > 0 && keep < s.n && subset == Subset::Stratified) {
    const std::vector<int32_t> all(lb.data.begin(), lb.data.end());
    const std::vector<int64_t> pick = stratifiedSubset(all, keep, seed);
    std::map<int32_t, int64_t> perClass;
    for (int64_t i : pick) {
      s.images.insert(s.images.end(), im.data.begin() + i * pixels, im.data.begin() + (i + 1) * pixels);
      s.labels.push_back(all[(size_t)i]);
      ++perClass[all[(size_t)i]];
    }
    s.n = keep;
    if (note) {
      std::string counts;
      for (auto [c, k] : perClass)
        counts += fmt::format("{}{}: {}", counts.empty() ? "" : ", ", c, k);
      *note = fmt::format("a stratified subset of {} of the {} training examples (seed {}; per "
                          "class {}); --train-subset first keeps the first {} in file order",
                          keep, all.size(), seed, counts, keep);
    }
    return s;
  }
  if (keep > 0) {
    if (note)
      *note = fmt::format("the first {} of the {} training examples in file order", std::min(keep, s.n), s.n);
    s.n = std::min(keep, s.n);
  }
  s.images.assign(im.data.begin(), im.data.begin() + s.n * pixels);
  s.labels.assign(lb.data.begin(), lb.data.begin() + s.n);
  return s;
}

std::vector<int64_t> stratifiedSubset(const std::vector<int32_t> &labels, int64_t n, uint64_t seed) {
  std::map<int32_t, std::vector<int64_t>> byClass;
  for (size_t i = 0; i < labels.size(); ++i)
    byClass[labels[i]].push_back((int64_t)i);
  const int64_t total = (int64_t)labels.size();
  // quotas: floor(n * count / total), the rest to the largest remainders (then lower labels)
  std::vector<std::pair<int64_t, int32_t>> rem; // (-remainder, class)
  std::map<int32_t, int64_t> quota;
  int64_t given = 0;
  for (const auto &[c, idx] : byClass) {
    const __int128 num = (__int128)n * (int64_t)idx.size();
    quota[c] = (int64_t)(num / total);
    given += quota[c];
    rem.push_back({-(int64_t)(num % total), c});
  }
  std::sort(rem.begin(), rem.end());
  for (size_t k = 0; given < n && k < rem.size(); ++k, ++given)
    ++quota[rem[k].second];
  std::vector<int64_t> pick;
  for (auto &[c, idx] : byClass) { // each class's examples in a seeded order (epochOrder's)
    const std::vector<int64_t> order = epochOrder(seed ^ (uint64_t)(uint32_t)c, 0, (int64_t)idx.size());
    for (int64_t k = 0; k < quota[c]; ++k)
      pick.push_back(idx[(size_t)order[(size_t)k]]);
  }
  std::sort(pick.begin(), pick.end());
  return pick;
}

Dataset loadDataset(const std::string &spec, int64_t trainSize, int64_t testSize, Subset subset,
                    uint64_t seed, std::string *note) {
  Dataset d;
  d.name = spec;
  d.dir = resolveDataDir(spec);
  d.train = readSplit(d.dir, "train", d.exampleShape, trainSize, subset, seed, note);
  d.test = readSplit(d.dir, "t10k", d.exampleShape, testSize);
  d.pixels = 1;
  for (int64_t s : d.exampleShape)
    d.pixels *= s;
  for (const Split *s : {&d.train, &d.test})
    for (int32_t l : s->labels)
      d.classes = std::max<int64_t>(d.classes, l + 1);
  // The split must be disjoint: a test image that is also a training image measures memory,
  // not generalisation. Byte-identical images are found through a hash set of views.
  std::unordered_set<std::string_view> seen;
  const auto *tr = reinterpret_cast<const char *>(d.train.images.data());
  const auto *te = reinterpret_cast<const char *>(d.test.images.data());
  for (int64_t i = 0; i < d.train.n; ++i)
    seen.insert(std::string_view(tr + i * d.pixels, (size_t)d.pixels));
  for (int64_t i = 0; i < d.test.n; ++i)
    d.overlap += seen.count(std::string_view(te + i * d.pixels, (size_t)d.pixels));
  return d;
}

namespace {
struct SplitMix64 {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
};
} // namespace

std::vector<int64_t> epochOrder(uint64_t seed, int64_t epoch, int64_t n) {
  std::vector<int64_t> p(n);
  for (int64_t i = 0; i < n; ++i)
    p[i] = i;
  SplitMix64 rng{seed + (uint64_t)epoch * 0x9E3779B97F4A7C15ull};
  for (int64_t i = n - 1; i >= 1; --i)
    std::swap(p[i], p[rng.next() % (uint64_t)(i + 1)]);
  return p;
}

std::vector<float> pixelMean(const Split &s, int64_t pixels) {
  std::vector<double> sum(pixels, 0.0);
  for (int64_t i = 0; i < s.n; ++i)
    for (int64_t p = 0; p < pixels; ++p)
      sum[p] += s.images[i * pixels + p];
  std::vector<float> mean(pixels);
  for (int64_t p = 0; p < pixels; ++p)
    mean[p] = (float)(sum[p] / (double)std::max<int64_t>(s.n, 1));
  return mean;
}

} // namespace cnnc::tools
