#!/usr/bin/env bash
# The ONNX backend test suite (Debian's libonnx-testdata) through cnnc: a per-operator table
# of passed / failed / unsupported tests, then a check against tests/onnx/expected.txt.
# Usage: scripts/onnx-conformance.sh [BUILD_DIR] [onnx_conformance options, e.g. -v]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
[ $# -gt 0 ] && shift
ninja -C "$build" onnx_conformance >/dev/null
exec "$build/tests/onnx/onnx_conformance" --table --expected "$root/tests/onnx/expected.txt" "$@"
