#!/usr/bin/env bash
# Do `cnnc bench` and the benchmark (bench/harness.py) report the same time for one case?
# (issue 17: "both give the same GFLOP/s within 3%"). They share the timing and peak library
# (bench/machine.h) and both call a `cnnc compile`d library through its C API; what differs
# is the process. On a shared VM one process's median moves by up to 17% against the next
# one's (docs/performance.md, "Caveats"), so a single pair proves nothing either way: this
# interleaves ROUNDS rounds (one harness run, then one `cnnc bench` run, per case) and
# compares the medians over the rounds.
#   bash bench/agree.sh [--rounds R] [--threads T]   (needs build/, as bench/run.sh leaves it)
# Cases: VGG-16's conv5_x at batch 1 (one kernel, compute-bound) and MNIST SK at batch 100
# (a whole network: many small kernels). Prints every round and the median ratio per case.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=6 threads=1
while [[ $# -gt 0 ]]; do
  case $1 in
  --rounds) rounds=$2; shift 2 ;;
  --threads) threads=$2; shift 2 ;;
  *) echo "agree.sh: unknown argument '$1' (--rounds R, --threads T)" >&2; exit 2 ;;
  esac
done
cnnc=$root/build/tools/cnnc
[[ -x $cnnc && -x $root/build/bench/cnnc_bench_worker ]] ||
  { echo "agree.sh: build cnnc and cnnc_bench_worker first (bash bench/run.sh --smoke does)" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# case name in the harness | cnnc bench arguments
cases=("conv5_x b1|$root/build/bench/models/vgg_conv5_x.cnn --batch 1"
       "MNIST SK b100|$root/examples/mnist_sk.cnn --batch 100")
for ((r = 1; r <= rounds; ++r)); do
  /usr/bin/python3 "$root/bench/harness.py" --threads "$threads" --isa host --rounds 3 \
    --cases '^(conv5_x b1|MNIST SK b100)$' --out "$out/h$r" >"$out/h$r.log" 2>&1 ||
    { cat "$out/h$r.log" >&2; exit 1; }
  for c in "${cases[@]}"; do
    name=${c%%|*}
    # the harness's cnnc median (ms) from its CSV; cnnc bench's from its table's "infer" row
    h=$(awk -F, -v n="$name" 'NR == 1 { for (i = 1; i <= NF; ++i) col[$i] = i; next }
        $col["case"] == n && $col["system"] == "cnnc" { print $col["median_ms"] }' "$out/h$r/perf.csv")
    # shellcheck disable=SC2086 # the case's arguments are words
    b=$("$cnnc" bench ${c#*|} --threads "$threads" --reps 100 | awk '$1 == "infer" { print $3 }')
    echo "$name|$r|$h|$b" >>"$out/all"
    printf 'round %d  %-14s harness %8.4f ms   cnnc bench %8.4f ms\n' "$r" "$name" "$h" "$b"
  done
done
echo "medians over $rounds rounds ($threads thread(s)):"
for c in "${cases[@]}"; do
  name=${c%%|*}
  awk -F'|' -v n="$name" '
    function median(a, k,   i, j, t) { for (i = 1; i <= k; ++i) for (j = i + 1; j <= k; ++j)
        if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
      return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2 }
    $1 == n { ++k; h[k] = $3; b[k] = $4 }
    END { mh = median(h, k); mb = median(b, k)
      printf "  %-14s harness %.4f ms, cnnc bench %.4f ms: %+.1f%%\n", n, mh, mb, 100 * (mb / mh - 1) }' "$out/all"
done
