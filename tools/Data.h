// Data sets for `cnnc train` (docs/data.md): four IDX files (the MNIST format, plain or
// gzipped) in a directory or an image folder (train/CLASS/*.png, test/CLASS/*.png), the order of the training examples in each epoch, and the
// per-pixel training mean that the model stores as its preprocessing (tools/Preprocess.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cnnc::tools {

struct Split {
  std::vector<uint8_t> images; // n * pixels bytes, raw 0-255, example-major
  std::vector<int32_t> labels;
  int64_t n = 0;
};

struct Dataset {
  std::string name, dir;
  std::vector<int64_t> exampleShape; // e.g. {28, 28} as stored (IDX rank-3 images)
  int64_t pixels = 0;                // per example
  int64_t classes = 0;               // 1 + the largest label
  std::vector<std::string> classNames; // an image folder's classes (sorted), label i = name i
  Split train, test;
  /// Test images identical (byte for byte) to some training image; 0 for a clean split.
  int64_t overlap = 0;
};

/// Where a data set name leads: "mnist" and "fashion-mnist" are looked up as data/<name> in
/// $CNNC_DATA (if set), the working directory, then the source tree that built cnnc; anything
/// else is a directory. Throws cnnc::Error listing where it looked.
std::string resolveDataDir(const std::string &spec);

/// Which N training examples `--train-size N` keeps (`--train-subset`).
enum class Subset {
  First,      // the first N in file order (what the seed's Exercise 6 asks)
  Stratified, // per class in proportion to its count (largest remainders), each class's
              // examples chosen by a seeded shuffle, kept in file order
};

/// Reads DIR/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz], or when DIR/train is a
/// directory, the image folder DIR/{train,test}/CLASS/*.{png,pgm,ppm,pnm} (tools/Image.h;
/// classes numbered by their sorted folder names, files in name order, all of the first
/// image's size and channels; grey images give examples HxW, colour ones 3xHxW). Checks images against labels
/// (counts, label range) and counts train/test overlap. trainSize/testSize > 0 keep only N
/// examples of each split (an error if the split holds fewer): the test split's first N, the
/// training split's by `subset` (seeded by `seed`); `note`, if given, says which.
/// trainOffset > 0 first drops that many training examples (file order; only with
/// Subset::First): offset 10000(i-1) and size 10000 are the seed's Exercise 6(h) block i.
Dataset loadDataset(const std::string &spec, int64_t trainSize = 0, int64_t testSize = 0,
                    Subset subset = Subset::First, uint64_t seed = 0, std::string *note = nullptr,
                    int64_t trainOffset = 0);
/// The indices (ascending) of the stratified subset of `n` examples of `labels`.
std::vector<int64_t> stratifiedSubset(const std::vector<int32_t> &labels, int64_t n, uint64_t seed);

/// The order of the training examples in epoch `epoch` (1-based): a Fisher-Yates shuffle of
/// 0..n-1 driven by SplitMix64 seeded with seed + epoch * 0x9E3779B97F4A7C15 (mod 2^64);
/// for i = n-1 down to 1: j = next() mod (i+1), swap(p[i], p[j]). A pure function of
/// (seed, epoch, n), so a resumed run sees the same order; bench/accuracy_parity.py
/// reimplements it.
std::vector<int64_t> epochOrder(uint64_t seed, int64_t epoch, int64_t n);

/// Per-pixel mean of the training images (raw 0-255), accumulated in double, as float.
std::vector<float> pixelMean(const Split &s, int64_t pixels);

} // namespace cnnc::tools
