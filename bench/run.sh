#!/usr/bin/env bash
# cnnc against oneDNN and PyTorch, measured in the same run (docs/performance.md).
#   bash bench/run.sh [--threads 1,2] [--rounds R] [--cases REGEX] [--isa host,avx2]
#                     [--quick] [--smoke] [--out DIR]
# Installs the benchmark's packages (Debian: python3-torch, python3-torchvision, libdnnl-dev,
# gnuplot-nox), builds cnnc and the worker, measures the machine (FMA peaks, triad), compiles
# every case with `cnnc compile` (host and x86-64-v3 targets), times cnnc through the
# library's C API beside oneDNN's convolution primitives and PyTorch, interleaved, and writes
# perf.md, perf.csv, machine.json and perf.png into bench/results/ (--smoke: build/bench/smoke/).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
for a in "$@"; do
  case "$a" in -h|--help) exec /usr/bin/python3 "$root/bench/harness.py" --help ;; esac
done
bash "$root/scripts/install-deps.sh" --bench
bash "$root/scripts/build.sh" -j"${CNNC_BUILD_JOBS:-2}" cnnc cnnc_rtapi cnnc_bench_worker >/dev/null
exec /usr/bin/python3 "$root/bench/harness.py" "$@"
