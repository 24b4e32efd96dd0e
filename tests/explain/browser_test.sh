#!/usr/bin/env bash
# tests/explain/CMakeLists.txt: writes MNIST BASE's and BN's pages with `cnnc explain` and
# checks both in one headless chromium. `npm ci` runs into the build tree only when its
# node_modules is not the lockfile's (the stamp is the lockfile it installed), so a rerun
# costs no network and no install.
#   browser_test.sh CNNC SOURCE_DIR WORK_DIR
set -euo pipefail
cnnc=$1 src=$2 work=$3
# Debian's chromium-headless-shell (what install-deps.sh installs: half of chromium's packages,
# no GTK, systemd or dbus), else the full chromium.
chromium=$(command -v chromium-headless-shell || command -v chromium || true)
if [[ -z "$chromium" || -z "$(command -v node)" || -z "$(command -v npm)" ]]; then
  echo "FAILED TO RUN: chromium-headless-shell (or chromium), node or npm is not installed" \
       "(scripts/install-deps.sh installs them)" >&2
  exit 1
fi
npm=$work/npm
mkdir -p "$npm"
if ! cmp -s "$src/tests/explain/package-lock.json" "$npm/installed.stamp" ||
   [[ ! -f "$npm/node_modules/puppeteer-core/package.json" ]]; then
  cp "$src/tests/explain/package.json" "$src/tests/explain/package-lock.json" "$npm/"
  SECONDS=0
  (cd "$npm" && npm ci --no-audit --no-fund --loglevel=error)
  echo "npm ci: ${SECONDS} s"
  cp "$npm/package-lock.json" "$npm/installed.stamp"
fi
cd "$src"
pages=()
for model in mnist_base mnist_bn; do
  "$cnnc" explain "examples/$model.cnn" -o "$work/$model.html"
  pages+=("$work/$model.html")
done
node "$src/tests/explain/browser_test.js" "$npm" "$chromium" "${pages[@]}"
