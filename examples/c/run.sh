#!/usr/bin/env bash
# Builds and runs the C example end to end (what its ctest runs):
#   train BASE for one epoch, compile it with the trained weights embedded into a .so + header,
#   build classify.c against them, classify the 2,004 real MNIST test digits, and check that
#   the C program's test error is the one `cnnc train` reported.
# Usage: examples/c/run.sh [CNNC] [WORKDIR]   (defaults: build/tools/cnnc, a temporary directory)
# $CC: the C compiler (default cc; the sanitizer build's test passes an ASan compiler line).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cnnc=${1:-$root/build/tools/cnnc}
work=${2:-$(mktemp -d)}
mkdir -p "$work"
cd "$root"
"$cnnc" train examples/mnist_base.cnn --data mnist --epochs 1 --out "$work/run" --progress none --no-plot | tee "$work/train.log"
"$cnnc" compile examples/mnist_base.cnn -o "$work/libmnist.so" --header "$work/mnist.h" --batch 100 \
  --prefix mnist --weights "$work/run/weights.npz"
${CC:-cc} -O2 -Wall -Wextra -Werror examples/c/classify.c -I"$work" -L"$work" -lmnist -Wl,-rpath,"$work" -o "$work/classify"
"$work/classify" data/mnist/t10k-images-idx3-ubyte data/mnist/t10k-labels-idx1-ubyte | tee "$work/classify.log"
want=$(sed -n 's/^final test error: \([0-9.]*\)%.*/\1/p' "$work/train.log")
got=$(sed -n 's/.*(test error \([0-9.]*\)%)$/\1/p' "$work/classify.log")
if [[ -z "$want" || "$want" != "$got" ]]; then
  echo "FAIL: the C program's test error ($got%) differs from cnnc train's ($want%)"; exit 1
fi
echo "OK: the compiled library classifies the test digits as cnnc train evaluated them ($got% error)"
