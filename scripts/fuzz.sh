#!/usr/bin/env bash
# Fuzzing (docs/hardening.md): builds the libFuzzer targets (fuzz/) into build-fuzz/ with
# clang-19, ASan + UBSan and coverage instrumentation of our code (the readers' libraries;
# for the differential target `diff`, code generation too, linked with the prebuilt LLVM),
# then runs every target for a bounded time from its seeds and dictionary. Any crash,
# sanitizer report, abort, leak, timeout or out-of-memory fails the script; the input that
# caused it is left in build-fuzz/findings/ (add it, fixed, to tests/bad-inputs/ with its
# expected message; a `diff` finding to fuzz/seeds/diff/, which test_fuzz_diff replays).
#
# Usage: scripts/fuzz.sh [seconds per target (default 20)] [target ...]
#   CNNC_JOBS overrides the build's -j (default: nproc).
# Prints per target: executions, coverage (cov: edges, ft: features) and corpus size.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-20}
shift || true
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=(cnn ir onnx npz npy npyinterp idx capi diff)
jobs=${CNNC_JOBS:-$(nproc)}
build=$root/build-fuzz
command -v clang-19 >/dev/null || { echo "fuzz.sh: clang-19 missing (scripts/install-deps.sh)"; exit 1; }
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi

TIMEFORMAT="fuzz.sh: build: %0R s wall, %0U s user + %0S s sys CPU"
time {
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang-19 -DCMAKE_CXX_COMPILER=clang++-19 \
    -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" \
    -DCNNC_SANITIZE=address,undefined -DCNNC_FUZZ=ON -DBUILD_TESTING=OFF "${launcher[@]}" >/dev/null
  ninja -C "$build" -j"$jobs" "${targets[@]/#/fuzz_}"
}

# Seeds: the examples and test data of the tree, the ONNX backend tests' models, and the
# small archives of fuzz/seeds/ (numpy.savez, savez_compressed, IDX plain and gzipped).
seeds() { # target -> directories / files
  local onnxdata=/usr/share/libonnx-testdata/data
  case $1 in
  cnn) echo "$root/examples" ;;
  ir) find "$root/tests/goldens/data" "$root/tests/frontend/golden" -name '*.ir' -size -8k ;;
  onnx) find "$onnxdata/node" "$onnxdata/simple" -name model.onnx -size -4k 2>/dev/null ;;
  npz) echo "$root/fuzz/seeds/npz" ;;
  npy | npyinterp) find "$root/tests/goldens/data" -name '*.npy' -size -2k | head -200 ;;
  idx) echo "$root/fuzz/seeds/idx" ;;
  capi) echo "$root/fuzz/seeds/capi" ;;
  diff) echo "$root/fuzz/seeds/diff" ;;
  esac
}
dict() {
  case $1 in
  npyinterp) echo npy ;;
  capi) echo npz ;;
  diff) ;; # bytes are choices (fuzz/RandomModel.h): no tokens
  *) echo "$1" ;;
  esac
}

symbolizer=/usr/lib/llvm-19/bin/llvm-symbolizer
export ASAN_OPTIONS="external_symbolizer_path=$symbolizer:detect_leaks=1"
export UBSAN_OPTIONS="external_symbolizer_path=$symbolizer:print_stacktrace=1:halt_on_error=1"
status=0
for t in "${targets[@]}"; do
  corpus=$build/corpus/$t
  mkdir -p "$corpus" "$build/findings" "$build/seeds/$t"
  # libFuzzer reads seed directories, not file lists: link the files into one directory.
  for s in $(seeds "$t"); do
    if [[ -d $s ]]; then cp -f "$s"/* "$build/seeds/$t/" 2>/dev/null || true
    else cp -f "$s" "$build/seeds/$t/$(echo "${s#/}" | tr / _)"; fi
  done
  log=$build/fuzz_$t.log
  rc=0
  d=$(dict "$t")
  "$build/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    ${d:+-dict="$root/fuzz/dict/$d.dict"} -print_final_stats=1 \
    -artifact_prefix="$build/findings/$t-" "$corpus" "$build/seeds/$t" >"$log" 2>&1 || rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' || true)
  if [[ $rc -ne 0 ]]; then
    status=1
    echo "fuzz.sh: $t: FINDING (exit $rc); log: $log"
    grep -E 'ERROR|SUMMARY|runtime error|internal compiler error|terminate|what\(\)' "$log" | head -5 || true
  else
    echo "fuzz.sh: $t: ${secs} s, ${runs:-?} executions, $last"
  fi
done
exit $status
