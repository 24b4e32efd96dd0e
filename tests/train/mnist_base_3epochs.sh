#!/usr/bin/env bash
# CI: `cnnc train examples/mnist_base.cnn --data mnist --epochs 3` (the seed's Exercise 6
# settings verbatim: the defaults) on the compiled backend reaches a test error below 7% on
# the 2,004 real test digits, a split the loader checks to be disjoint from the 7,996
# training digits (it warns otherwise; this script fails on the warning).
# Usage: mnist_base_3epochs.sh CNNC SOURCE_DIR
set -euo pipefail
cnnc=$1 src=$2
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cd "$src"
start=$(date +%s.%N)
"$cnnc" train examples/mnist_base.cnn --data mnist --epochs 3 --backend jit --out "$out" 2>"$out/stderr" | tee "$out/stdout"
end=$(date +%s.%N)
cat "$out/stderr"
if grep -q "identical to training images" "$out/stderr"; then
  echo "FAIL: the train/test split is not disjoint"; exit 1
fi
grep -q "7996 train / 2004 test images" "$out/stdout" || { echo "FAIL: not the 7,996/2,004 split"; exit 1; }
err=$(sed -n 's/^final test error: \([0-9.]*\)%.*/\1/p' "$out/stdout")
[[ -n "$err" ]] || { echo "FAIL: no final test error reported"; exit 1; }
awk -v e="$err" -v a="$start" -v b="$end" 'BEGIN { printf "test error after 3 epochs: %s%% (limit 7%%); %.1f s\n", e, b - a }'
awk -v e="$err" 'BEGIN { exit !(e < 7.0) }' || { echo "FAIL: test error $err% >= 7%"; exit 1; }
