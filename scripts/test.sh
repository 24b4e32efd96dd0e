#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: installs dependencies, fetches the
# data sets, builds, runs every test through ctest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/install-deps.sh" --bench
bash "$root/scripts/fetch-data.sh"
bash "$root/scripts/build.sh"
cd "$root/build"
ctest --output-on-failure -j"$(nproc)"
# The benchmark's smoke mode (a forward layer, a backward layer and MNIST BASE's training step;
# one repetition, cnnc + oneDNN + PyTorch, both ISAs):
# keeps bench/ from rotting. It asserts nothing about speed; it fails only if a system errors.
bash "$root/bench/run.sh" --smoke
