#include "tools/Image.h"

#include "ir/Diagnostic.h"

#include <stb_image.h>
#include <stb_image_resize.h>

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <memory>

namespace cnnc::tools {

bool isImageFile(const std::string &path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".png" || ext == ".pgm" || ext == ".ppm" || ext == ".pnm";
}

Image readImage(const std::string &path, int channels) {
  int w = 0, h = 0, stored = 0;
  std::unique_ptr<stbi_uc, void (*)(void *)> data(stbi_load(path.c_str(), &w, &h, &stored, channels),
                                                  stbi_image_free);
  if (!data)
    throw Error(fmt::format("{}: cannot read the image ({})", path,
                            std::filesystem::exists(path) ? stbi_failure_reason() : "no such file"));
  Image im;
  im.height = h, im.width = w, im.channels = channels ? channels : stored;
  im.pixels.assign(data.get(), data.get() + (size_t)h * w * im.channels);
  return im;
}

std::vector<float> resizeToPlanes(const Image &im, int64_t height, int64_t width) {
  const int64_t c = im.channels;
  std::vector<float> src(im.pixels.begin(), im.pixels.end()), dst(height * width * c);
  if (height == im.height && width == im.width)
    dst = src;
  else {
    auto filter = [](int64_t from, int64_t to) { return to < from ? STBIR_FILTER_BOX : STBIR_FILTER_TRIANGLE; };
    if (!stbir_resize_region(src.data(), (int)im.width, (int)im.height, 0, dst.data(), (int)width,
                             (int)height, 0, STBIR_TYPE_FLOAT, (int)c, STBIR_ALPHA_CHANNEL_NONE, 0,
                             STBIR_EDGE_CLAMP, STBIR_EDGE_CLAMP, filter(im.width, width),
                             filter(im.height, height), STBIR_COLORSPACE_LINEAR, nullptr, 0, 0, 1, 1))
      throw Error(fmt::format("cannot resize a {}x{} image to {}x{}", im.height, im.width, height, width));
  }
  std::vector<float> planes(dst.size()); // interleaved HWC -> planes CHW
  for (int64_t p = 0; p < height * width; ++p)
    for (int64_t k = 0; k < c; ++k)
      planes[k * height * width + p] = dst[p * c + k];
  return planes;
}

io::Array imageInput(const std::string &path, const TensorType &input, bool rawPixels) {
  const Shape &s = input.shape;
  const int64_t c = s.size() == 4 ? s[1] : 1;
  if ((s.size() != 4 && s.size() != 3) || (c != 1 && c != 3) || !isFloat(input.dtype))
    throw Error(fmt::format("--input {}: an image feeds a float input [N,C,H,W] with C 1 or 3 or a "
                            "grey [N,H,W]; the model's input is {}",
                            path, input.str()));
  const int64_t h = s[s.size() - 2], w = s[s.size() - 1];
  std::vector<float> v = resizeToPlanes(readImage(path, (int)c), h, w);
  if (!rawPixels)
    for (float &x : v)
      x /= 255.0f;
  std::vector<int64_t> shape(s.begin(), s.end());
  shape[0] = 1;
  return io::Array::fromFloats(v, shape);
}

} // namespace cnnc::tools
