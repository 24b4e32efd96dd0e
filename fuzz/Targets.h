// The fuzz targets (docs/hardening.md, "Fuzzing"): one function per reader of untrusted input.
// Each runs its reader on one input and returns "" if the input was accepted, or the one
// error message it was rejected with. Anything else -- a crash, an abort (CNNC_INTERNAL), an
// exception of another type, a sanitizer report -- is a finding.
//
// The same functions serve the libFuzzer executables (fuzz/FuzzMain.cpp, built by
// scripts/fuzz.sh) and the ctest replay of every committed finding and bad input
// (tests/bad-inputs/), which checks each input's exact message in the normal build.
#pragma once

#include <string>
#include <string_view>

namespace cnnc::fuzz {

struct Target {
  const char *name;
  /// The file-name suffix of its inputs ("cnn", "interp.npy"): tests/bad-inputs/ picks a
  /// file's target by it.
  const char *ext;
  /// true: the reader takes a path (the fuzzer writes each input to a memory file first);
  /// false: it takes the bytes, `path` only names them in messages.
  bool byPath;
  std::string (*run)(std::string_view bytes, const std::string &path);
};

/// cnn (.cnn parse + lowering, inference and training), ir (IR text + verifier + print/parse
/// round trip), onnx (importer), npz and npy (io/Npz.cpp), npyinterp (interp/Npy.cpp),
/// idx (io/Idx.cpp), capi (the C runtime's .npz reader behind cnnc_load_weights and
/// cnnc_load_checkpoint).
const Target *findTarget(std::string_view name);
/// The target whose suffix ends `filename` (the longest such), or null.
const Target *targetForFile(std::string_view filename);

} // namespace cnnc::fuzz
