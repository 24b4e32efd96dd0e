#!/usr/bin/env bash
# cnnc against PyTorch on the same machine, same thread count, interleaved runs, medians.
#   bash bench/run.sh [--rounds R] [--iters K] [--threads T]
# Prints a table: workload, cnnc ms, PyTorch ms, speed-up (PyTorch / cnnc), GFLOP/s of each.
# Both sides run with T threads (default 1): cnnc_bench --threads T, torch.set_num_threads(T).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=3 iters=10 threads=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --iters) iters=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    *) echo "usage: bench/run.sh [--rounds R] [--iters K] [--threads T]" >&2; exit 2 ;;
  esac
done
bash "$root/scripts/install-deps.sh" --bench
bash "$root/scripts/build.sh" cnnc_bench >/dev/null
bench="$root/build/bench/cnnc_bench"
py=/usr/bin/python3
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# name | cnnc arguments | torch arguments
workloads=(
  "VGG-16 conv3_2 fwd (1x256x56x56)|$root/bench/conv_vgg_3_2.cnn --batch 1|conv"
  "VGG-16 inference, batch 1|$root/examples/vgg16.cnn --batch 1|vgg16-infer"
  "MNIST BASE train step, batch 100|$root/examples/mnist_base.cnn --batch 100 --train|base-train"
)
for ((r = 1; r <= rounds; ++r)); do
  for w in "${workloads[@]}"; do
    IFS='|' read -r name cargs targs <<<"$w"
    # shellcheck disable=SC2086
    c=$("$bench" $cargs --iters "$iters" --threads "$threads" || true)
    t=$(OPENBLAS_NUM_THREADS=$threads OMP_NUM_THREADS=$threads "$py" "$root/bench/torch_bench.py" "$targs" --threads "$threads" --iters "$iters")
    printf '%s\t%s\t%s\n' "$name" "$c" "$t" >>"$out"
  done
done
"$py" - "$out" "$threads" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, c, t = line.rstrip("\n").split("\t")
    rows.setdefault(name, []).append((json.loads(c), json.loads(t)))
print(f"{'workload':<36} {'cnnc ms':>10} {'torch ms':>10} {'speed-up':>9} {'cnnc GFLOP/s':>13} {'torch GFLOP/s':>14}")
for name, runs in rows.items():
    cs = [c for c, _ in runs]
    tms = statistics.median(t["ms"] for _, t in runs)
    if any("error" in c for c in cs):
        err = next(c["error"] for c in cs if "error" in c)
        print(f"{name:<36} {'n/a':>10} {tms:>10.2f} {'':>9} {'':>13} {'':>14}  cnnc: {err[:60]}")
        continue
    cms = statistics.median(c["ms"] for c in cs)
    flops = cs[0]["flops"]
    print(f"{name:<36} {cms:>10.2f} {tms:>10.2f} {tms / cms:>8.2f}x {flops / cms / 1e6:>13.1f} {flops / tms / 1e6:>14.1f}")
print("\nmedians of", len(next(iter(rows.values()))), f"interleaved rounds; {sys.argv[2]} thread(s) each; GFLOP/s = 2 x multiply-adds / time")
PY
