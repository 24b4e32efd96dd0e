#!/usr/bin/env bash
# Installs cnnc into a temporary prefix and builds examples/c/classify.c against the
# installed package with CMake (find_package + cnnc_add_model) and with pkg-config; both
# programs classify the MNIST test digits, and must agree exactly (same seeded weights). The
# installed Python module lies where /usr/bin/python3 looks under the default prefix
# (/usr/local), and, imported from the prefix, compiles with the installed cnnc and classifies
# the same digits as the C programs.
# Usage: tests/install/run.sh BUILD_DIR WORKDIR
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" > "$work/install.log"
for f in bin/cnnc lib/cnnc/libcnnc_rtapi.a include/cnnc/CnncApi.h lib/cmake/cnnc/cnncConfig.cmake \
         lib/cmake/cnnc/cnncConfigVersion.cmake lib/pkgconfig/cnnc.pc \
         share/bash-completion/completions/cnnc share/man/man1/cnnc.1; do
  [[ -e "$prefix/$f" ]] || { echo "FAIL: $f not installed"; exit 1; }
done
# the installed compiler must not depend on the build tree's runtime archive
unset CNNC_RUNTIME_LIB
"$prefix/bin/cnnc" init "$root/examples/mnist_base.cnn" --input-mean --seed 1 -o "$work/init.npz" > /dev/null
images=$root/data/mnist/t10k-images-idx3-ubyte
labels=$root/data/mnist/t10k-labels-idx1-ubyte

# CMake: the package config and cnnc_add_model
cmake -S "$root/tests/install/consumer" -B "$work/cmake" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" \
  -DCNNC_EXAMPLES="$root/examples" -DCNNC_WEIGHTS="$work/init.npz" > "$work/cmake-configure.log"
cmake --build "$work/cmake" > "$work/cmake-build.log"
"$work/cmake/classify" "$images" "$labels" > "$work/cmake.out"

# pkg-config: the compiler and the include directory
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
cnnc=$(pkg-config --variable=cnnc cnnc)
[[ "$(cd "$(dirname "$cnnc")" && pwd)" == "$prefix/bin" ]] || { echo "FAIL: pkg-config's cnnc is $cnnc"; exit 1; }
mkdir -p "$work/pc"
"$cnnc" compile "$root/examples/mnist_base.cnn" -o "$work/pc/libmnist.so" --header "$work/pc/mnist.h" \
  --batch 100 --prefix mnist --weights "$work/init.npz" > "$work/pc/compile.log"
# shellcheck disable=SC2046
${CC:-cc} ${CFLAGS:-} -O2 -Wall -Werror "$root/examples/c/classify.c" $(pkg-config --cflags cnnc) -I"$work/pc" \
  -L"$work/pc" -lmnist -Wl,-rpath,"$work/pc" ${LDFLAGS:-} -o "$work/pc/classify"
"$work/pc/classify" "$images" "$labels" > "$work/pc.out"

grep -q "^accuracy: " "$work/cmake.out" || { echo "FAIL: no accuracy line"; cat "$work/cmake.out"; exit 1; }
if ! cmp -s "$work/cmake.out" "$work/pc.out"; then
  echo "FAIL: the CMake-built and the pkg-config-built programs disagree"
  diff "$work/cmake.out" "$work/pc.out" | head
  exit 1
fi
# Python: the module's directory must be one python3 searches when the prefix is /usr/local
init=$(cd "$prefix" && find . -path '*/cnnc/__init__.py' | head -1)
[[ -n "$init" ]] || { echo "FAIL: the Python module is not installed"; exit 1; }
pydir=${init#./}
pydir=${pydir%/cnnc/__init__.py}
/usr/bin/python3 -c 'import sys; sys.exit(0 if "/usr/local/" + sys.argv[1] in sys.path else 1)' "$pydir" ||
  { echo "FAIL: the module went to PREFIX/$pydir, which python3 does not search under /usr/local"; exit 1; }
# imported from the prefix (not the source tree), it finds the installed cnnc by itself
mkdir -p "$work/py"
# ($CNNC_TEST_PYTHON_PRELOAD: an ASan build's runtime, for its instrumented libraries; the
# script drops it for the cnnc it runs, an ASan executable having its own)
preload=()
[[ -n "${CNNC_TEST_PYTHON_PRELOAD:-}" ]] && preload=(LD_PRELOAD="$CNNC_TEST_PYTHON_PRELOAD" ASAN_OPTIONS=detect_leaks=0)
(cd "$work/py" && env -u CNNC "${preload[@]}" PYTHONPATH="$prefix/$pydir" PATH=/usr/bin:/bin /usr/bin/python3 - "$prefix" "$root" "$work" <<'PY'
import os, sys
os.environ.pop("LD_PRELOAD", None)
import numpy as np
import cnnc
prefix, root, work = sys.argv[1:]
assert cnnc.__file__.startswith(prefix + "/"), cnnc.__file__
assert cnnc.find_cnnc() == prefix + "/bin/cnnc", cnnc.find_cnnc()
so = cnnc.compile(os.path.join(root, "examples/mnist_base.cnn"), "libpy.so", batch=100,
                  weights=os.path.join(work, "init.npz"))
lib = cnnc.load(so)
def idx(p):
    raw = open(p, "rb").read()
    shape = np.frombuffer(raw, ">u4", raw[3], 4).astype(np.int64)
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * raw[3]).reshape(shape)
x = idx(os.path.join(root, "data/mnist/t10k-images-idx3-ubyte")).astype(np.float32).reshape(-1, 1, 28, 28)
y = idx(os.path.join(root, "data/mnist/t10k-labels-idx1-ubyte"))
n, ok = len(y), int((lib.infer(x).argmax(1) == y).sum())
print("accuracy: %d / %d = %.2f%% (test error %.2f%%)" % (ok, n, 100.0 * ok / n, 100.0 - 100.0 * ok / n))
PY
) > "$work/py.out"
if ! grep -qxF "$(grep '^accuracy' "$work/cmake.out")" "$work/py.out"; then
  echo "FAIL: the installed Python module classifies differently: $(cat "$work/py.out")"
  exit 1
fi
echo "OK: installed into $prefix; CMake, pkg-config and Python (PREFIX/$pydir) agree: $(grep '^accuracy' "$work/cmake.out")"
