#!/usr/bin/env bash
# Compile time and peak memory against depth (docs/performance.md, "Compile time"):
#   bash bench/compile_scale.sh [--quick] [--cases relu,convrelu,ir] [--repeat R] [--out DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/build.sh" cnnc >/dev/null
exec /usr/bin/python3 "$root/bench/compile_scale.py" "$@"
