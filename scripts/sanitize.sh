#!/usr/bin/env bash
# The sanitizer runs (docs/hardening.md), each in its own build directory, with clang-19:
#   build-asan/  ASan + UBSan over the whole test suite (-fno-sanitize-recover: any UB fails
#                its test; LeakSanitizer on); the code cnnc generates (JIT and .so) carries
#                LLVM's AddressSanitizer pass too
#   build-tsan/  TSan over the tests that run threads: the thread pool, 1/2/3-thread runs,
#                two instances driven from two threads; the generated code carries LLVM's
#                ThreadSanitizer pass
# Needs clang-19 and libclang-rt-19-dev (scripts/install-deps.sh) and the data sets
# (scripts/fetch-data.sh), as scripts/test.sh does. Excluded from ASan: the torchvision
# models (label `torchvision`): PyTorch runs inside them, and they exercise the kernels the
# op and network tests already run under ASan, at ten times the cost; the browser test (label
# `browser`): it checks the explain page's HTML and script in chromium, which no sanitizer
# sees, while test_cli's explain cases run `cnnc explain` itself under ASan; and ASAN_SKIP
# below (see TSAN_TESTS for what the TSan run covers).
# Usage: scripts/sanitize.sh [asan] [tsan]   (default: both); CNNC_JOBS overrides -j.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=${CNNC_JOBS:-$(nproc)}
runs=("$@")
[[ ${#runs[@]} -eq 0 ]] && runs=(asan tsan)
command -v clang-19 >/dev/null || { echo "sanitize.sh: clang-19 missing (scripts/install-deps.sh)"; exit 1; }
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
configure() { # build-dir sanitizers
  # -O1: a sanitized -O2 tree builds much slower and its tests run barely faster; line
  # tables only: symbolised stack traces without the cost of full debug information.
  cmake -S "$root" -B "$1" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang-19 -DCMAKE_CXX_COMPILER=clang++-19 \
    -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" \
    -DCNNC_SANITIZE="$2" "${launcher[@]}" >/dev/null
}
symbolizer=/usr/lib/llvm-19/bin/llvm-symbolizer
common="print_summary=1:external_symbolizer_path=$symbolizer"

# Left out of the ASan run besides the labels `torchvision` and `slow` (3 epochs of MNIST
# training): tests whose cost is scale, not coverage, of code other tests run under ASan
# too: the 20,000-ReLU compile (ScaleTest's shorter chains cover the same passes), the
# .npz byte-flip sweep (scripts/fuzz.sh runs that reader under ASan with libFuzzer), and
# the JIT twins of the shared-library op tests, the four most expensive tests under ASan
# (clean clone, Zen 5, -j2: 352, 334, 192 and 180 s of the ASan run's ~30 min): every
# forward op's and the conv gradients' kernels still run under ASan in one shared library
# each ("every forward op in one shared library", "the fused conv2d gradients in one shared
# library"), the example networks in "example networks: JIT matches"; and three that time
# or report rather than compute (84, 53 and 92 s): `cnnc bench`, `info --train`'s arena
# figures, and the in-place plan's bit-for-bit comparison with the plan without (the
# plan's own cases run in PlanTest's other tests). Two more run smaller in a sanitizer build
# (its CMake passes or defines it): train_interrupt_resume sends one INT and one KILL instead
# of two of each (477 s under ASan), and BatchTest's training steps at every batch take three
# of the five MNIST networks (424 s).
ASAN_SKIP='20,000-ReLU chain|npz: random byte flips|every forward op: JIT matches'
ASAN_SKIP+='|pipelined example networks on every build|conv2d_grad_filter / conv2d_grad_input: JIT'
ASAN_SKIP+='|grad-input-as-conv: stride-1|bench times inference and a training step'
ASAN_SKIP+='|info --train and the --train header|networks planned in place'

# The TSan run: the ctest names of every test that starts threads (tests/runtime/
# test_parallel.cpp, tests/codegen/ThreadsTest.cpp).
TSAN_TESTS='parallel_for visits|NULL or one-thread pool|pools are independent|same bytes at 1 and 2|same bytes at 1, 2 and 3|two instances in two threads|cnnc_set_threads misuse'
TSAN_TARGETS=(test_runtime_parallel test_codegen_threads)

run() { # asan | tsan: configure, build, test (`|| return`: set -e is off inside `time ... ||`)
  case $1 in
  asan)
    configure "$root/build-asan" address,undefined || return 1
    ninja -C "$root/build-asan" -j"$jobs" || return 1
    cd "$root/build-asan" || return 1
    ASAN_OPTIONS="$common:detect_leaks=1:check_initialization_order=1:strict_init_order=1" \
    UBSAN_OPTIONS="$common:print_stacktrace=1:halt_on_error=1" \
    LSAN_OPTIONS="suppressions=$root/scripts/lsan.supp:print_suppressions=0" \
      ctest -j"$jobs" --output-on-failure -LE 'torchvision|slow|browser' -E "$ASAN_SKIP"
    ;;
  tsan)
    configure "$root/build-tsan" thread || return 1
    ninja -C "$root/build-tsan" -j"$jobs" "${TSAN_TARGETS[@]}" || return 1
    cd "$root/build-tsan" || return 1
    TSAN_OPTIONS="$common:halt_on_error=1:second_deadlock_stack=1" \
      ctest -j"$jobs" --output-on-failure -R "$TSAN_TESTS"
    ;;
  *) echo "sanitize.sh: unknown run '$1' (asan, tsan)"; return 2 ;;
  esac
}

status=0
for r in "${runs[@]}"; do
  # wall and CPU time (build + tests; CPU of every child process)
  TIMEFORMAT="sanitize.sh: $r: %0R s wall, %0U s user + %0S s sys CPU"
  time (run "$r") || status=1
done
exit $status
