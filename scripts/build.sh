#!/usr/bin/env bash
# Configures and builds cnnc into build/ (Ninja, RelWithDebInfo). Incremental.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# ccache, when installed, makes rebuilds in several checkouts cheap (CI has none: no effect).
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
cmake -S "$root" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" >/dev/null
ninja -C "$root/build" "$@"
