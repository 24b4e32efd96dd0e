// .npz/.npy reading and writing. The oracle is numpy itself (Debian's /usr/bin/python3, which
// the setup script provides with numpy): it writes archives we read, and reads archives we
// write. Corruption tests check that every malformed input is a FormatError, nothing else.
#include "io/Npz.h"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <system_error>

#include <unistd.h>

using namespace cnnc::io;
namespace fs = std::filesystem;

namespace {

const char *kPython = "/usr/bin/python3";

// A per-process scratch directory, removed at exit.
fs::path tmpDir() {
  static struct Scratch {
    fs::path p = fs::temp_directory_path() / ("cnnc_npz_test_" + std::to_string(::getpid()));
    Scratch() { fs::create_directories(p); }
    ~Scratch() {
      std::error_code ec;
      fs::remove_all(p, ec);
    }
  } scratch;
  return scratch.p;
}

// Runs a Python snippet under Debian's python3; fails the test (never skips) if it fails.
void python(const std::string &code) {
  fs::path script = tmpDir() / "snippet.py";
  std::ofstream(script) << "import sys, numpy as np\n" << code << "\n";
  std::string cmd = std::string(kPython) + " " + script.string();
  int rc = std::system(cmd.c_str());
  INFO("python snippet:\n" << code);
  REQUIRE(rc == 0);
}

std::vector<unsigned char> slurp(const fs::path &p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void spit(const fs::path &p, const std::vector<unsigned char> &b) {
  std::ofstream(p, std::ios::binary).write((const char *)b.data(), (std::streamsize)b.size());
}

std::vector<double> ramp(int64_t n, double scale, double offset) {
  std::vector<double> v(n);
  for (int64_t i = 0; i < n; ++i)
    v[i] = i * scale + offset;
  return v;
}

// Expects readNpz(p) to throw a FormatError whose message contains every one of `parts`.
void expectError(const fs::path &p, std::vector<std::string> parts, bool npy = false) {
  try {
    if (npy)
      readNpy(p.string());
    else
      readNpz(p.string());
    FAIL("no error for " << p);
  } catch (const FormatError &e) {
    std::string msg = e.what();
    INFO(msg);
    for (auto &s : parts)
      CHECK(msg.find(s) != std::string::npos);
  }
}

std::map<std::string, Array> sample() {
  std::vector<float> f(6);
  for (int i = 0; i < 6; ++i)
    f[i] = 0.25f * i - 1.0f;
  Array i32;
  i32.type = ElemType::I32;
  i32.shape = {3};
  int32_t iv[3] = {-7, 0, 2147483647};
  i32.data.assign((unsigned char *)iv, (unsigned char *)iv + sizeof iv);
  return {{"conv1.w", Array::fromFloats(f, {2, 3})},
          {"b", Array::fromDoubles({3.5, -1e300, 1e-300, 0.1}, {4})},
          {"s", Array::fromDoubles({42.0}, {})},
          {"labels", i32},
          {"empty", Array::fromFloats({}, {0, 5})}};
}

} // namespace

TEST_CASE("npz round trip", "[npz]") {
  auto in = sample();
  fs::path p = tmpDir() / "rt.npz";
  writeNpz(p.string(), in);
  auto out = readNpz(p.string());
  REQUIRE(out.size() == in.size());
  for (auto &[k, a] : in) {
    REQUIRE(out.count(k));
    CHECK(out[k].type == a.type);
    CHECK(out[k].shape == a.shape);
    CHECK(out[k].data == a.data);
  }
  CHECK(out["s"].numel() == 1);
  CHECK(out["empty"].numel() == 0);
  CHECK(out["labels"].toDoubles() == std::vector<double>{-7, 0, 2147483647});

  fs::path q = tmpDir() / "one.npy";
  writeNpy(q.string(), in["conv1.w"]);
  Array back = readNpy(q.string());
  CHECK(back.shape == std::vector<int64_t>{2, 3});
  CHECK(back.data == in["conv1.w"].data);
  // numpy aligns the data to 64 bytes; so do we.
  CHECK((slurp(q).size() - 24) % 64 == 0);
}

TEST_CASE("npz written by numpy (savez and savez_compressed)", "[npz][numpy]") {
  fs::path plain = tmpDir() / "np_plain.npz", packed = tmpDir() / "np_packed.npz";
  python("d = dict(w=(np.arange(24, dtype=np.float32).reshape(2,3,4) * 0.5 - 3),\n"
         "         x=np.arange(5, dtype=np.float64) / 3,\n"
         "         n=np.array([[-5, 6], [7, 2**31-1]], dtype=np.int32),\n"
         "         l=np.arange(3, dtype=np.int64) - 2**40,\n"
         "         u=np.arange(4, dtype=np.uint8) * 60,\n"
         "         s=np.float32(2.5),\n"
         "         big=np.arange(100000, dtype=np.float32) * 0.001)\n"
         "np.savez('" +
         plain.string() +
         "', **d)\n"
         "np.savez_compressed('" +
         packed.string() + "', **d)\n");
  for (const fs::path &p : {plain, packed}) {
    INFO(p);
    auto m = readNpz(p.string());
    REQUIRE(m.size() == 7);
    CHECK(m["w"].type == ElemType::F32);
    CHECK(m["w"].shape == std::vector<int64_t>{2, 3, 4});
    CHECK(m["w"].toDoubles() == ramp(24, 0.5, -3));
    CHECK(m["x"].type == ElemType::F64);
    auto x = m["x"].toDoubles();
    REQUIRE(x.size() == 5);
    for (int i = 0; i < 5; ++i)
      CHECK(x[i] == i / 3.0);
    CHECK(m["n"].type == ElemType::I32);
    CHECK(m["n"].shape == std::vector<int64_t>{2, 2});
    CHECK(m["n"].toDoubles() == std::vector<double>{-5, 6, 7, 2147483647});
    CHECK(m["l"].type == ElemType::I64);
    CHECK(m["l"].toDoubles() == ramp(3, 1, -1099511627776.0));
    CHECK(m["u"].type == ElemType::U8);
    CHECK(m["u"].toDoubles() == std::vector<double>{0, 60, 120, 180});
    CHECK(m["s"].shape.empty());
    CHECK(m["s"].toDoubles() == std::vector<double>{2.5});
    auto big = m["big"].toDoubles();
    REQUIRE(big.size() == 100000);
    CHECK(big[99999] == (double)(99999 * 0.001f));
  }
  CHECK(fs::file_size(packed) < fs::file_size(plain)); // really deflated
}

TEST_CASE("npz written by cnnc, read by numpy", "[npz][numpy]") {
  fs::path p = tmpDir() / "ours.npz", q = tmpDir() / "ours.npy";
  writeNpz(p.string(), sample());
  writeNpy(q.string(), Array::fromDoubles(ramp(12, 0.125, -1), {3, 4}));
  python("z = np.load('" + p.string() +
         "')\n"
         "assert sorted(z.files) == ['b', 'conv1.w', 'empty', 'labels', 's'], z.files\n"
         "w = z['conv1.w']\n"
         "assert w.dtype == np.float32 and w.shape == (2, 3)\n"
         "assert (w == np.arange(6, dtype=np.float32).reshape(2, 3) * 0.25 - 1).all()\n"
         "b = z['b']\n"
         "assert b.dtype == np.float64 and list(b) == [3.5, -1e300, 1e-300, 0.1]\n"
         "assert z['s'].shape == () and z['s'] == 42.0\n"
         "assert z['labels'].dtype == np.int32 and list(z['labels']) == [-7, 0, 2**31-1]\n"
         "assert z['empty'].shape == (0, 5) and z['empty'].dtype == np.float32\n"
         "import zipfile\n"
         "assert zipfile.ZipFile('" +
         p.string() +
         "').testzip() is None\n"
         "a = np.load('" +
         q.string() +
         "')\n"
         "assert a.shape == (3, 4) and (a == np.arange(12).reshape(3, 4) * 0.125 - 1).all()\n");
}

TEST_CASE("npz: every truncation is a FormatError", "[npz][corrupt]") {
  fs::path good = tmpDir() / "trunc_src.npz", packed = tmpDir() / "trunc_packed.npz";
  std::map<std::string, Array> small = {{"a", Array::fromFloats({1, 2, 3}, {3})},
                                        {"bb", Array::fromDoubles({4}, {})}};
  writeNpz(good.string(), small);
  python("np.savez_compressed('" + packed.string() +
         "', a=np.arange(3, dtype=np.float32), bb=np.float64(4))");
  for (const fs::path &src : {good, packed}) {
    auto bytes = slurp(src);
    REQUIRE(readNpz(src.string()).size() == 2);
    fs::path t = tmpDir() / "trunc.npz";
    for (size_t n = 0; n < bytes.size(); ++n) {
      spit(t, std::vector<unsigned char>(bytes.begin(), bytes.begin() + n));
      INFO(src << " truncated to " << n << " bytes");
      CHECK_THROWS_AS(readNpz(t.string()), FormatError);
    }
  }
}

TEST_CASE("npz: random byte flips give FormatError or a valid read", "[npz][corrupt]") {
  fs::path good = tmpDir() / "flip_src.npz", packed = tmpDir() / "flip_packed.npz";
  writeNpz(good.string(), sample());
  python("np.savez_compressed('" + packed.string() +
         "', a=np.arange(30, dtype=np.float32), b=np.ones((2,2)))");
  std::mt19937 rng(1234);
  int errors = 0, reads = 0;
  for (const fs::path &src : {good, packed}) {
    auto bytes = slurp(src);
    fs::path t = tmpDir() / "flip.npz";
    for (int trial = 0; trial < 3000; ++trial) {
      auto b = bytes;
      int flips = 1 + trial % 3;
      for (int k = 0; k < flips; ++k)
        b[rng() % b.size()] ^= (unsigned char)(1 + rng() % 255);
      spit(t, b);
      try {
        readNpz(t.string());
        ++reads;
      } catch (const FormatError &) {
        ++errors;
      }
    }
  }
  CHECK(errors > 1000); // most flips hit checked data (CRC covers every payload byte)
  CHECK(reads > 0);     // flips in unchecked fields (timestamps, versions) are harmless
}

TEST_CASE("npz: each malformation has a precise message", "[npz][corrupt]") {
  fs::path d = tmpDir();
  std::string good = (d / "m_good.npz").string();
  writeNpz(good, {{"w", Array::fromFloats({1, 2, 3, 4}, {2, 2})}});
  auto bytes = slurp(good);

  SECTION("missing file") {
    expectError(d / "nope.npz", {"nope.npz", "cannot open"});
  }
  SECTION("not a zip") {
    spit(d / "m.npz", std::vector<unsigned char>(100, 'x'));
    expectError(d / "m.npz", {"m.npz", "not a zip"});
  }
  SECTION("bad CRC") {
    auto b = bytes;
    b[30 + 5 + 64 + 2] ^= 0x40; // a data byte of w.npy (local header, name, npy header)
    spit(d / "m.npz", b);
    expectError(d / "m.npz", {"m.npz", "'w.npy'", "CRC"});
  }
  SECTION("ZIP64") {
    auto b = bytes;
    for (int i = 0; i < 4; ++i)
      b[b.size() - 22 + 12 + i] = 0xFF; // central directory size
    spit(d / "m.npz", b);
    expectError(d / "m.npz", {"m.npz", "ZIP64"});
  }
  SECTION("bad .npy magic") {
    spit(d / "m.npy", std::vector<unsigned char>{'h', 'e', 'l', 'l', 'o', 0, 0, 0, 0, 0, 0});
    expectError(d / "m.npy", {"m.npy", "magic"}, true);
  }
  auto rawNpy = [&](const std::string &header, size_t dataBytes) {
    python("import zipfile\n"
           "h = b\"" +
           header +
           "\"\n"
           "h = h + b' ' * (63 - (10 + len(h)) % 64) + b'\\n'\n"
           "raw = b'\\x93NUMPY\\x01\\x00' + len(h).to_bytes(2, 'little') + h + b'\\x00' * " +
           std::to_string(dataBytes) +
           "\n"
           "open('" +
           (d / "m.npy").string() +
           "', 'wb').write(raw)\n"
           "with zipfile.ZipFile('" +
           (d / "m.npz").string() +
           "', 'w') as z:\n"
           "    z.writestr('arr.npy', raw)\n");
  };
  SECTION("unsupported dtype") {
    rawNpy("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8);
    expectError(d / "m.npz", {"m.npz", "'arr.npy'", "dtype '>f4'"});
    expectError(d / "m.npy", {"m.npy", "dtype '>f4'"}, true);
  }
  SECTION("fortran order") {
    rawNpy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16);
    expectError(d / "m.npz", {"m.npz", "'arr.npy'", "fortran"});
  }
  SECTION("data size mismatch") {
    rawNpy("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", 40);
    expectError(d / "m.npz", {"m.npz", "'arr.npy'", "size mismatch", "48", "40"});
  }
  SECTION("overflowing shape") {
    rawNpy("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", 8);
    expectError(d / "m.npz", {"m.npz", "'arr.npy'", "the shape (4294967296, 4294967296) is too large"});
  }
  SECTION("bad header syntax") {
    rawNpy("{'descr': '<f4', 'shape': (2,), }", 8);
    expectError(d / "m.npz", {"'arr.npy'", "bad .npy header"});
    rawNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", 8);
    expectError(d / "m.npz", {"'arr.npy'", "unexpected key 'x'"});
    rawNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", 8);
    expectError(d / "m.npz", {"'arr.npy'", "bad .npy header"});
  }
  SECTION("duplicate names") {
    python("import zipfile, warnings\n"
           "warnings.simplefilter('ignore')\n"
           "raw = open('" +
           (d / "m_good.npz").string() +
           "', 'rb').read()\n"
           "src = zipfile.ZipFile('" +
           (d / "m_good.npz").string() +
           "').read('w.npy')\n"
           "with zipfile.ZipFile('" +
           (d / "m.npz").string() +
           "', 'w') as z:\n"
           "    z.writestr('w.npy', src)\n"
           "    z.writestr('w.npy', src)\n");
    expectError(d / "m.npz", {"m.npz", "'w.npy'", "duplicate"});
  }
  SECTION("not a .npy entry") {
    python("import zipfile\n"
           "with zipfile.ZipFile('" +
           (d / "m.npz").string() +
           "', 'w') as z:\n"
           "    z.writestr('readme.txt', 'hi')\n");
    expectError(d / "m.npz", {"m.npz", "'readme.txt'", "not a .npy"});
  }
  SECTION("unsupported compression") {
    python("import zipfile\n"
           "with zipfile.ZipFile('" +
           (d / "m.npz").string() +
           "', 'w', zipfile.ZIP_BZIP2) as z:\n"
           "    z.writestr('a.npy', b'x' * 100)\n");
    expectError(d / "m.npz", {"m.npz", "'a.npy'", "compression method 12"});
  }
}

TEST_CASE("Array helpers", "[npz]") {
  CHECK_THROWS_AS(Array::fromFloats({1, 2, 3}, {2, 2}), std::invalid_argument);
  Array a = Array::fromDoubles({1.5, -2}, {2, 1});
  CHECK(a.numel() == 2);
  CHECK(a.toDoubles() == std::vector<double>{1.5, -2});
}
