#!/usr/bin/env bash
# Runs the Python example end to end (what its ctest runs): train BASE for one epoch, compile
# it with the trained weights embedded, classify the real MNIST test digits from Python
# (ctypes + numpy), and check the test error is the one `cnnc train` reported. When
# `cnnc compile --train` exists, also build the training library and run a few SGD steps.
# Usage: examples/python/run.sh [CNNC] [WORKDIR]
# $CNNC_EXAMPLE_PYTHON: the Python command (default /usr/bin/python3; the sanitizer build's
# test preloads the ASan runtime into it, docs/hardening.md).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cnnc=${1:-$root/build/tools/cnnc}
work=${2:-$(mktemp -d)}
mkdir -p "$work"
cd "$root"
"$cnnc" train examples/mnist_base.cnn --data mnist --epochs 1 --out "$work/run" --progress none --no-plot | tee "$work/train.log"
"$cnnc" compile examples/mnist_base.cnn -o "$work/libmnist.so" --batch 100 --weights "$work/run/weights.npz"
extra=()
if "$cnnc" compile --help | grep -q -- '--train'; then # from scratch: seeded init, the mean set from Python
  "$cnnc" init examples/mnist_base.cnn --input-mean --seed 0 -o "$work/init.npz"
  "$cnnc" compile examples/mnist_base.cnn --train --input-mean -o "$work/libmnist_train.so" --batch 100
  extra=(--train-lib "$work/libmnist_train.so" --init "$work/init.npz" --steps 30)
fi
${CNNC_EXAMPLE_PYTHON:-/usr/bin/python3} examples/python/mnist.py "$work/libmnist.so" data/mnist "${extra[@]}" | tee "$work/py.log"
want=$(sed -n 's/^final test error: \([0-9.]*\)%.*/\1/p' "$work/train.log")
got=$(sed -n 's/^test error: \([0-9.]*\)%.*/\1/p' "$work/py.log")
if [[ -z "$want" || "$want" != "$got" ]]; then
  echo "FAIL: Python's test error ($got%) differs from cnnc train's ($want%)"; exit 1
fi
echo "OK: the library classifies the test digits from Python as cnnc train evaluated them ($got% error)"
if [[ ${#extra[@]} -gt 0 ]]; then # the Python-driven SGD steps must have learnt something
  after=$(sed -n 's/^test error after [0-9]* steps: \([0-9.]*\)%.*/\1/p' "$work/py.log")
  awk -v e="$after" 'BEGIN { exit !(e != "" && e < 50) }' || { echo "FAIL: test error $after% after the Python steps"; exit 1; }
fi
