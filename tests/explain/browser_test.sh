#!/usr/bin/env bash
# tests/explain/CMakeLists.txt: writes MNIST BASE's and BN's pages with `cnnc explain`, runs
# `npm ci` into the build tree once, and checks each page in headless chromium.
#   browser_test.sh CNNC SOURCE_DIR WORK_DIR
set -euo pipefail
cnnc=$1 src=$2 work=$3
chromium=$(command -v chromium || true)
if [[ -z "$chromium" || -z "$(command -v node)" || -z "$(command -v npm)" ]]; then
  echo "FAILED TO RUN: chromium, node or npm is not installed (scripts/install-deps.sh installs them)" >&2
  exit 1
fi
mkdir -p "$work/npm"
cp "$src/tests/explain/package.json" "$src/tests/explain/package-lock.json" "$work/npm/"
# npm ci once per lockfile (the stamp is the lockfile it installed)
if ! cmp -s "$work/npm/package-lock.json" "$work/npm/installed.stamp"; then
  (cd "$work/npm" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$work/npm/package-lock.json" "$work/npm/installed.stamp"
fi
cd "$src"
for model in mnist_base mnist_bn; do
  "$cnnc" explain "examples/$model.cnn" -o "$work/$model.html"
  echo "== $model"
  node "$src/tests/explain/browser_test.js" "$work/npm" "$chromium" "$work/$model.html"
done
