// The .npy bridge (see Npy.h). xt::load_npy<T> requires the file's dtype to be exactly T,
// so the header is read first (xt::detail::load_npy_file) and the buffer cast by its dtype.
#include "interp/Npy.h"

#include <fmt/format.h>
#include <xtensor/xnpy.hpp>

#include <cmath>
#include <fstream>

namespace cnnc::interp {

namespace {

template <class T, class F> Tensor<T> castTo(xt::detail::npy_file &file) {
  return xt::cast<T>(std::move(file).template cast<F>());
}

template <class T, class F> void write(const std::string &path, const Tensor<T> &x) {
  Tensor<F> converted = xt::cast<F>(x);
  if constexpr (std::is_integral_v<F>)
    for (size_t i = 0; i < x.size(); ++i)
      if (x.data()[i] != std::floor(x.data()[i]))
        throw Error(fmt::format("{}: cannot store the non-integral value {} as an integer", path,
                                x.data()[i]));
  std::ofstream out(path, std::ios::binary);
  if (!out)
    throw Error(fmt::format("{}: cannot open for writing", path));
  xt::detail::dump_npy_stream(out, converted);
  if (!out)
    throw Error(fmt::format("{}: write failed", path));
}

} // namespace

template <class T> Tensor<T> loadNpy(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw Error(fmt::format("{}: cannot open .npy file", path));
  try {
    xt::detail::npy_file file = xt::detail::load_npy_file(in);
    if (!in) // the data was shorter than the header promised
      throw std::runtime_error("truncated data");
    const std::string &t = file.m_typestring;
    if (t == "<f4")
      return castTo<T, float>(file);
    if (t == "<f8")
      return castTo<T, double>(file);
    if (t == "<i4")
      return castTo<T, int32_t>(file);
    if (t == "<i8")
      return castTo<T, int64_t>(file);
    throw std::runtime_error("unsupported dtype '" + t + "' (want <f4, <f8, <i4 or <i8)");
  } catch (const Error &) {
    throw;
  } catch (const std::exception &e) {
    throw Error(fmt::format("{}: not a readable .npy file: {}", path, e.what()));
  }
}

template <class T> void saveNpy(const std::string &path, const Tensor<T> &x, DType dtype) {
  switch (dtype) {
  case DType::F32:
    return write<T, float>(path, x);
  case DType::F64:
    return write<T, double>(path, x);
  case DType::I32:
    return write<T, int32_t>(path, x);
  case DType::I64:
    return write<T, int64_t>(path, x);
  }
  CNNC_INTERNAL("bad dtype");
}

template Tensor<float> loadNpy(const std::string &);
template Tensor<double> loadNpy(const std::string &);
template void saveNpy(const std::string &, const Tensor<float> &, DType);
template void saveNpy(const std::string &, const Tensor<double> &, DType);

} // namespace cnnc::interp
