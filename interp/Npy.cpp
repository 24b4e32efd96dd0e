// The .npy bridge (see Npy.h): io/'s codec (io::readNpy, io::writeNpy), the one .npy
// reader and writer of the C++ side. Its reader checks every header field and size against
// the file before allocating anything; xtensor's own reader trusted the header (fuzz/: an
// empty header, a 4 GiB header length or a shape whose byte count overflows crashed it).
#include "interp/Npy.h"

#include "io/Npz.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>

namespace cnnc::interp {

namespace {

template <class T, class F>
void write(const std::string &path, const Tensor<T> &x, io::ElemType type) {
  io::Array a;
  a.type = type;
  a.shape.assign(x.shape().begin(), x.shape().end());
  a.data.resize(x.size() * sizeof(F));
  for (size_t i = 0; i < x.size(); ++i) {
    const T v = x.data()[i];
    if constexpr (std::is_integral_v<F>)
      if (v != std::floor(v))
        throw Error(
            fmt::format("{}: cannot store the non-integral value {} as an integer", path, v));
    const F f = static_cast<F>(v);
    std::memcpy(a.data.data() + i * sizeof(F), &f, sizeof(F));
  }
  try {
    io::writeNpy(path, a);
  } catch (const io::FormatError &e) {
    throw Error(e.what()); // "path: what is wrong"
  }
}

} // namespace

template <class T> Tensor<T> loadNpy(const std::string &path) {
  io::Array a;
  try {
    a = io::readNpy(path);
  } catch (const io::FormatError &e) {
    throw Error(e.what()); // "path: what is wrong"
  }
  if (a.type == io::ElemType::U8)
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
    return write<T, float>(path, x, io::ElemType::F32);
  case DType::F64:
    return write<T, double>(path, x, io::ElemType::F64);
  case DType::I32:
    return write<T, int32_t>(path, x, io::ElemType::I32);
  case DType::I64:
    return write<T, int64_t>(path, x, io::ElemType::I64);
  }
  CNNC_INTERNAL("bad dtype");
}

template Tensor<float> loadNpy(const std::string &);
template Tensor<double> loadNpy(const std::string &);
template void saveNpy(const std::string &, const Tensor<float> &, DType);
template void saveNpy(const std::string &, const Tensor<double> &, DType);

} // namespace cnnc::interp
