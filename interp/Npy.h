// .npy files <-> interpreter tensors, via io/Npz.h (io::readNpy, io::writeNpy). Goldens
// (made by PyTorch/NumPy) and interpreter dumps use this format.
#pragma once

#include "interp/Interpreter.h"

#include <string>

namespace cnnc::interp {

/// Reads a little-endian f32, f64, i32 or i64 .npy file (C order) and converts its values to
/// T. Throws cnnc::Error naming the path if the file is missing, truncated,
/// malformed or of another dtype.
template <class T> Tensor<T> loadNpy(const std::string &path);

/// Writes x as a C-order .npy file of the given dtype (values converted; integer dtypes
/// require integral values). Throws cnnc::Error naming the path if it cannot be written.
template <class T> void saveNpy(const std::string &path, const Tensor<T> &x, DType dtype);

} // namespace cnnc::interp
