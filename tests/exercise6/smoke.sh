#!/usr/bin/env bash
# Exercise 6's plan in a smoke configuration (issue 15): items (b) and (c) on Fashion-MNIST,
# 1 epoch, 100 training and 100 test images, cnnc on the interpreter (no compile time). The
# plan is stopped (SIGTERM to its process group) once its first run is finished, then run
# again: the finished run is not trained again (its files untouched, the progress says so),
# the report's numbers equal runs.csv's and its plots are valid PNGs (check_report.py).
# Usage: CNNC SOURCE_DIR WORKDIR
set -euo pipefail
cnnc=$1
root=$2
work=$3
rm -rf "$work" && mkdir -p "$work" && cd "$work"
fail() { echo "FAIL: $*"; exit 1; }
# Fashion-MNIST when installed: its first images hold every class (data/mnist is sorted by digit)
data=mnist
[[ -e $root/data/fashion-mnist/train-images-idx3-ubyte.gz ]] && data=fashion-mnist
plan=(/usr/bin/python3 "$root/examples/exercise6/run.py" --out out --items bc --data $data --epochs 1
      --train-size 100 --test-size 100 --backend interp --threads 1 --cnnc "$cnnc")
first=out/runs/$data/base_n100_o0_s0
second=out/runs/$data/bn_n100_o0_s0

setsid "${plan[@]}" > stopped.out 2> stopped.err &
pid=$!
for _ in $(seq 600); do # until the first run is finished (both engines), at most 5 min
  [[ -e $first/torch.seconds ]] && break
  kill -0 $pid 2>/dev/null || fail "the plan ended before it was stopped: $(cat stopped.err)"
  sleep 0.5
done
[[ -e $first/torch.seconds ]] || fail "no first run after 5 min"
kill -TERM -- -$pid 2>/dev/null || true
wait $pid 2>/dev/null || true
[[ ! -e out/report.md ]] || fail "the stopped plan wrote a report"
[[ ! -e $second/torch.seconds ]] || fail "the plan was not stopped before its second run"
stamp() { stat -c %Y.%s "$first/cnnc/log.csv" "$first/torch.csv" "$first/cnnc/weights.npz"; }
before=$(stamp)

sleep 1.1 # a rewrite would show in the mtimes (1 s resolution at worst)
"${plan[@]}" > resumed.out 2> resumed.err || fail "resumed plan: $(cat resumed.err)"
[[ $(stamp) == "$before" ]] || fail "the finished run was trained again"
grep -qF "[run 1/2] $data/base_n100_o0_s0  cnnc done earlier" resumed.err || fail "progress: $(cat resumed.err)"
grep -qF "[run 1/2] $data/base_n100_o0_s0  torch done earlier" resumed.err || fail "progress: $(cat resumed.err)"
grep -qE "\[run 2/2\] $data/bn_n100_o0_s0  cnnc  epoch 1/1 .* ETA" resumed.err || fail "progress: $(cat resumed.err)"
[[ -e $second/torch.seconds ]] || fail "the second run did not finish"
/usr/bin/python3 "$root/tests/exercise6/check_report.py" out
grep -q "^### (c)" out/report.md || fail "no table for (c)"
echo "ok: stopped after run 1, resumed without retraining it, report checked"
