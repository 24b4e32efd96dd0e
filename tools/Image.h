// Image files as model inputs and data (docs/data.md): PNG and PGM/PPM decoded by stb_image
// (Debian's libstb), resized by stb_image_resize. `cnnc run --input digit.png` and the
// image-folder data sets of `cnnc train` both read images through here.
#pragma once

#include "ir/IR.h"
#include "io/Npz.h"

#include <cstdint>
#include <string>
#include <vector>

namespace cnnc::tools {

/// Whether `path` names an image file by its extension (.png, .pgm, .ppm, .pnm; any case).
bool isImageFile(const std::string &path);

struct Image {
  int64_t height = 0, width = 0, channels = 0;
  std::vector<uint8_t> pixels; // height * width * channels, row-major, channels interleaved
};

/// Decodes a PNG or PGM/PPM file. channels 1 converts to grey (stb_image's luma,
/// (77 R + 150 G + 29 B) >> 8), 3 to RGB; 0 keeps what the file stores. Alpha is dropped,
/// 16-bit samples are reduced to 8. Throws cnnc::Error naming the file and stb's reason.
Image readImage(const std::string &path, int channels = 0);

/// The image resized (stretched, no crop) to height x width, as float planes (C,H,W) of the
/// raw 0-255 values. The filter is stb_image_resize's box filter (area averaging) along a
/// dimension that shrinks and its triangle filter (bilinear) along one that grows, edges
/// clamped; the same size is a copy.
std::vector<float> resizeToPlanes(const Image &im, int64_t height, int64_t width);

/// One example for the model input `input` (rank 4: [N,C,H,W] with C 1 or 3; rank 3:
/// [N,H,W], grey) from an image file: converted to C channels, resized to H x W, and scaled
/// to [0,1] unless `rawPixels` (a model carrying the preprocessing of `cnnc train`,
/// tools/Preprocess.h, takes the raw 0-255 values it was trained on). Shape [1, ...].
io::Array imageInput(const std::string &path, const TensorType &input, bool rawPixels);

} // namespace cnnc::tools
