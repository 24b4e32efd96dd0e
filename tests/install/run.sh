#!/usr/bin/env bash
# Installs cnnc into a temporary prefix and builds examples/c/classify.c against the
# installed package with CMake (find_package + cnnc_add_model) and with pkg-config; both
# programs classify the MNIST test digits, and must agree exactly (same seeded weights).
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
         lib/cmake/cnnc/cnncConfigVersion.cmake lib/pkgconfig/cnnc.pc lib/python3/dist-packages/cnnc/__init__.py \
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
echo "OK: installed into $prefix; CMake and pkg-config builds agree: $(grep '^accuracy' "$work/cmake.out")"
