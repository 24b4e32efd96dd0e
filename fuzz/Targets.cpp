// The fuzz targets (see Targets.h). Each catches exactly the error type its reader documents
// (cnnc::Error, io::FormatError, a C API error code); everything else escapes on purpose.
#include "fuzz/Targets.h"

#include "frontend/CnnFrontend.h"
#include "frontend/OnnxImport.h"
#include "interp/Npy.h"
#include "ir/IR.h"
#include "runtime/CnncApi.h"
#include "io/Idx.h"
#include "io/Npz.h"

#include <stdexcept>

namespace cnnc::fuzz {

namespace {

// A property of the compiler, not of the input, failed (an escaping exception, so that the
// fuzzer reports it and the replay test fails).
[[noreturn]] void bug(const std::string &what) {
  throw std::logic_error("fuzz: " + what);
}

// The printer's text must parse back to a module that prints the same (docs/ir.md).
void roundTrip(const Module &m) {
  std::string text = print(m, true);
  std::unique_ptr<Module> back;
  try {
    back = parseModule(text, "<printed>");
  } catch (const Error &e) {
    bug(std::string("the printed IR does not parse back: ") + e.what() + "\n" + text);
  }
  // Locations print as comments (an ONNX node's name, a .cnn position) and parse back as
  // the printed text's own positions: compare the IR without them.
  if (print(*back) != print(m))
    bug("print(parse(print(m))) != print(m):\n" + text);
}

std::string cnn(std::string_view bytes, const std::string &path) {
  std::unique_ptr<Module> m;
  try {
    m = parseCnn(bytes, path);
  } catch (const Error &e) {
    return e.what();
  }
  roundTrip(*m);
  // The training lowering (autodiff-ready: losses take labels, dropout draws masks) of a
  // model that lowers for inference; it may still refuse (no loss layer).
  CnnOptions train;
  train.training = true;
  try {
    roundTrip(*parseCnn(bytes, path, train));
  } catch (const Error &) {
  }
  return "";
}

std::string ir(std::string_view bytes, const std::string &path) {
  std::unique_ptr<Module> m;
  try {
    m = parseModule(bytes, path); // parses and verifies
  } catch (const Error &e) {
    return e.what();
  }
  roundTrip(*m);
  return "";
}

std::string onnx(std::string_view bytes, const std::string &path) {
  OnnxModel m;
  try {
    m = importOnnxBytes(std::string(bytes), path);
  } catch (const Error &e) {
    return e.what();
  }
  roundTrip(*m.module);
  OnnxOptions train;
  train.training = true;
  try {
    importOnnxBytes(std::string(bytes), path, train);
  } catch (const Error &) {
  }
  return "";
}

template <class F> std::string formatErrors(F read) {
  try {
    read();
  } catch (const io::FormatError &e) {
    return e.what();
  }
  return "";
}

std::string npz(std::string_view, const std::string &path) {
  return formatErrors([&] { io::readNpz(path); });
}
std::string npy(std::string_view, const std::string &path) {
  return formatErrors([&] { io::readNpy(path); });
}
std::string idx(std::string_view, const std::string &path) {
  return formatErrors([&] { io::readIdx(path); });
}

std::string npyInterp(std::string_view, const std::string &path) {
  try {
    interp::loadNpy<double>(path);
  } catch (const Error &e) {
    return e.what();
  }
  return "";
}

// The C runtime's reader, through the public API of a library whose model is the fixed
// descriptor of fuzz/CapiModel.c. A checkpoint load reads the same members plus 'step'.
std::string capi(std::string_view, const std::string &path) {
  cnnc_instance *inst = nullptr;
  if (cnnc_create(&inst) != CNNC_OK)
    bug(std::string("cnnc_create failed: ") + cnnc_last_error(nullptr));
  std::string out;
  for (bool checkpoint : {false, true}) {
    int rc = checkpoint ? cnnc_load_checkpoint(inst, path.c_str())
                        : cnnc_load_weights(inst, path.c_str());
    if (rc != CNNC_OK)
      out += (out.empty() ? "" : "\n") + std::string(cnnc_last_error(inst));
  }
  cnnc_destroy(inst);
  return out;
}

const Target kTargets[] = {
    {"cnn", "cnn", false, cnn},        {"ir", "ir", false, ir},
    {"onnx", "onnx", false, onnx},     {"npz", "npz", true, npz},
    {"npy", "npy", true, npy},         {"npyinterp", "interp.npy", true, npyInterp},
    {"idx", "idx", true, idx},         {"capi", "capi.npz", true, capi},
};

} // namespace

const Target *findTarget(std::string_view name) {
  for (const Target &t : kTargets)
    if (name == t.name)
      return &t;
  return nullptr;
}

const Target *targetForFile(std::string_view filename) {
  const Target *best = nullptr;
  for (const Target &t : kTargets) {
    std::string suffix = std::string(".") + t.ext;
    if (filename.ends_with(suffix) && (!best || std::string_view(t.ext).size() > std::string_view(best->ext).size()))
      best = &t;
  }
  return best;
}

} // namespace cnnc::fuzz
