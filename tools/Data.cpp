#include "tools/Data.h"

#include "ir/Diagnostic.h"
#include "io/Idx.h"
#include "tools/Image.h"

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
          fmt::format("--data {}: not a directory (expected mnist, fashion-mnist, a directory "
                      "holding the four IDX files, or an image folder: train/CLASS/, test/CLASS/)",
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

static io::Array readIdxIn(const std::string &dir, const std::string &stem) {
  for (const char *suffix : {"", ".gz"}) {
    fs::path p = fs::path(dir) / (stem + suffix);
    if (fs::exists(p))
      try {
        return io::readIdx(p.string());
      } catch (const io::FormatError &e) {
        throw Error(e.what());
      }
  }
  throw Error(fmt::format("data directory '{}' has no {} (or {}.gz)", dir, stem, stem));
}

// The whole split of an IDX directory; `shape` is set by the first split read and checked
// against the others.
static Split readIdxSplit(const std::string &dir, const std::string &prefix, std::vector<int64_t> &shape) {
  io::Array im = readIdxIn(dir, prefix + "-images-idx3-ubyte");
  io::Array lb = readIdxIn(dir, prefix + "-labels-idx1-ubyte");
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
  s.images = std::move(im.data);
  s.labels.assign(lb.data.begin(), lb.data.end());
  return s;
}

// An image folder's split: DIR/SPLIT/CLASS/*.{png,pgm,ppm,pnm}, classes numbered in the
// order of `classes` (the training folder's, sorted by name), files in name order. Every
// image is decoded to the channels of the first training image (grey if it is grey, else
// RGB) and must have its height and width; stored as planes (C,H,W) like the model's input.
static Split readFolderSplit(const std::string &dir, const std::string &split,
                             const std::vector<std::string> &classes, std::vector<int64_t> &shape) {
  Split s;
  for (size_t c = 0; c < classes.size(); ++c) {
    const fs::path cdir = fs::path(dir) / split / classes[c];
    if (!fs::is_directory(cdir))
      continue; // a class the test split does not hold
    std::vector<std::string> files;
    for (const auto &e : fs::directory_iterator(cdir))
      if (e.is_regular_file() && isImageFile(e.path().string()))
        files.push_back(e.path().string());
    std::sort(files.begin(), files.end());
    for (const std::string &f : files) {
      const int channels = shape.size() == 3 ? (int)shape[0] : shape.size() == 2 ? 1 : 0;
      Image im = readImage(f, channels);
      if (shape.empty()) {
        if (im.channels == 2 || im.channels == 4) // grey or RGB with alpha: alpha dropped
          im = readImage(f, im.channels - 1);
        shape = im.channels == 1 ? std::vector<int64_t>{im.height, im.width}
                                 : std::vector<int64_t>{im.channels, im.height, im.width};
      }
      if (im.height != shape[shape.size() - 2] || im.width != shape.back())
        throw Error(fmt::format("{}: {}x{} pixels, the first training image of '{}' has {}x{} (an "
                                "image folder's images must share one size)",
                                f, im.height, im.width, dir, shape[shape.size() - 2], shape.back()));
      for (float v : resizeToPlanes(im, im.height, im.width))
        s.images.push_back((uint8_t)v);
      s.labels.push_back((int32_t)c);
      ++s.n;
    }
  }
  if (s.n == 0)
    throw Error(fmt::format("'{}': no images (.png, .pgm, .ppm) in {}/CLASS/", dir, split));
  return s;
}

// Drops the first `offset` examples (the seed's Exercise 6(h): the i-th block of 10,000 is
// offset 10000(i-1), size 10000), keeping the rest in file order.
static Split dropFirst(Split all, const std::string &dir, const std::string &prefix, int64_t offset) {
  if (offset <= 0)
    return all;
  if (offset >= all.n)
    throw Error(fmt::format("'{}' holds {} {} examples: --train-offset {} leaves none", dir, all.n,
                            prefix, offset));
  const int64_t pixels = (int64_t)all.images.size() / all.n;
  all.images.erase(all.images.begin(), all.images.begin() + offset * pixels);
  all.labels.erase(all.labels.begin(), all.labels.begin() + offset);
  all.n -= offset;
  return all;
}

// The examples `keep` > 0 asks for: the first N, or the stratified subset; `note` says which.
static Split keepSubset(Split all, const std::string &dir, const std::string &prefix, int64_t keep,
                        Subset subset = Subset::First, uint64_t seed = 0, std::string *note = nullptr,
                        int64_t offset = 0) {
  if (offset > 0 && subset != Subset::First)
    throw Error("--train-offset needs --train-subset first (a block of examples in file order)");
  const int64_t total = all.n;
  all = dropFirst(std::move(all), dir, prefix, offset);
  const std::string from =
      offset > 0 ? fmt::format(" starting after the first {}", offset) : std::string();
  if (keep <= 0) {
    if (note && offset > 0)
      *note = fmt::format("the {} training examples {}..{} of {} in file order (1-based)", all.n,
                          offset + 1, total, total);
    return all;
  }
  if (keep > all.n)
    throw Error(fmt::format("'{}' holds {} {} examples{}, fewer than the {} asked for", dir,
                            all.n, prefix, from, keep));
  const int64_t pixels = (int64_t)all.images.size() / std::max<int64_t>(all.n, 1);
  Split s;
  if (keep < all.n && subset == Subset::Stratified) {
    const std::vector<int64_t> pick = stratifiedSubset(all.labels, keep, seed);
    std::map<int32_t, int64_t> perClass;
    for (int64_t i : pick) {
      s.images.insert(s.images.end(), all.images.begin() + i * pixels, all.images.begin() + (i + 1) * pixels);
      s.labels.push_back(all.labels[(size_t)i]);
      ++perClass[all.labels[(size_t)i]];
    }
    s.n = keep;
    if (note) {
      std::string counts;
      for (auto [c, k] : perClass)
        counts += fmt::format("{}{}: {}", counts.empty() ? "" : ", ", c, k);
      *note = fmt::format("a stratified subset of {} of the {} training examples (seed {}; per "
                          "class {}); --train-subset first keeps the first {} in file order",
                          keep, all.n, seed, counts, keep);
    }
    return s;
  }
  if (note)
    *note = offset > 0 ? fmt::format("the training examples {}..{} of {} in file order (1-based)",
                                      offset + 1, offset + keep, total)
                       : fmt::format("the first {} of the {} training examples in file order",
                                     keep, all.n);
  s.n = keep;
  s.images.assign(all.images.begin(), all.images.begin() + keep * pixels);
  s.labels.assign(all.labels.begin(), all.labels.begin() + keep);
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
                    uint64_t seed, std::string *note, int64_t trainOffset) {
  Dataset d;
  d.name = spec;
  d.dir = resolveDataDir(spec);
  if (fs::is_directory(fs::path(d.dir) / "train")) { // an image folder: classes by folder name
    for (const auto &e : fs::directory_iterator(fs::path(d.dir) / "train"))
      if (e.is_directory())
        d.classNames.push_back(e.path().filename().string());
    std::sort(d.classNames.begin(), d.classNames.end());
    if (!fs::is_directory(fs::path(d.dir) / "test"))
      throw Error(fmt::format("'{}': an image folder needs train/CLASS/ and test/CLASS/", d.dir));
    for (const auto &e : fs::directory_iterator(fs::path(d.dir) / "test"))
      if (e.is_directory() && !std::binary_search(d.classNames.begin(), d.classNames.end(),
                                                  e.path().filename().string()))
        throw Error(fmt::format("'{}': test class '{}' has no training folder", d.dir,
                                e.path().filename().string()));
    d.train = keepSubset(readFolderSplit(d.dir, "train", d.classNames, d.exampleShape), d.dir,
                         "train", trainSize, subset, seed, note, trainOffset);
    d.test = keepSubset(readFolderSplit(d.dir, "test", d.classNames, d.exampleShape), d.dir, "test",
                        testSize);
  } else {
    d.train = keepSubset(readIdxSplit(d.dir, "train", d.exampleShape), d.dir, "train", trainSize,
                         subset, seed, note, trainOffset);
    d.test = keepSubset(readIdxSplit(d.dir, "t10k", d.exampleShape), d.dir, "t10k", testSize);
  }
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
