#!/usr/bin/env bash
# Configures and builds cnnc into build/ (Ninja, RelWithDebInfo). Incremental.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cmake -S "$root" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C "$root/build" "$@"
