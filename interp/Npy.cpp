// The .npy bridge (see Npy.h). Reading goes through runtime/'s reader (rt::readNpy), which
// checks every header field and size against the file before allocating anything; xtensor's
// own reader trusted the header (fuzz/: an empty header, a 4 GiB header length or a shape
// whose byte count overflows crashed it). Writing uses xtensor's writer.
#include "interp/Npy.h"

#include "runtime/Npz.h"

#include <fmt/format.h>
#include <xtensor/xnpy.hpp>

#include <cmath>
#include <fstream>

namespace cnnc::interp {

namespace {

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
  rt::Array a;
  try {
    a = rt::readNpy(path);
  } catch (const rt::FormatError &e) {
    throw Error(e.what()); // "path: what is wrong"
  }
  if (a.type == rt::ElemType::U8)
    throw Error(fmt::format("{}: unsupported dtype '|u1' (want <f4, <f8, <i4 or <i8)", path));
  std::vector<size_t> shape(a.shape.begin(), a.shape.end());
  Tensor<T> t = Tensor<T>::from_shape(shape);
  std::vector<double> values = a.toDoubles();
  std::copy(values.begin(), values.end(), t.begin());
  return t;
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
