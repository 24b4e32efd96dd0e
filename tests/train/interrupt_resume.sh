#!/usr/bin/env bash
# No lost work (issue 16): training stopped at seeded points -- SIGINT (finish the step, write
# a checkpoint, exit 130), SIGKILL (nothing more happens: the last epoch's checkpoint is all
# there is), SIGKILL halfway through writing a checkpoint (the old one must survive intact) --
# and resumed with --resume until done, writes weights byte-identical to an uninterrupted run,
# and the same log. The signals come from the test hooks CNNC_TEST_SIGNAL=STEP:SIG (raised
# right after global step STEP) and CNNC_TEST_KILL_IN_WRITE=N (SIGKILL inside the N-th file
# write), so the points are reproducible; the seed picks them.
# 1,050 Fashion-MNIST images, batch 100: 11 steps per epoch, 2 epochs, compiled backend.
# SIGNALS: the signals sent, one interrupted run each (a sanitizer build passes "INT KILL": its
# runs take ten times as long, and the second pair repeats the first's code paths).
# Usage: interrupt_resume.sh CNNC SOURCE_DIR [SEED [SIGNALS]]
set -euo pipefail
cnnc=$1 src=$2
RANDOM=${3:-16}
signals=${4:-INT KILL INT KILL}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cd "$src"
[[ -e data/fashion-mnist/train-images-idx3-ubyte.gz ]] || { echo "no data/fashion-mnist: skipped"; exit 0; }
common=(examples/mnist_base.cnn --data fashion-mnist --train-size 1050 --test-size 300 --backend jit
        --progress none --no-plot --epochs 2)
"$cnnc" train "${common[@]}" --out "$out/straight" >/dev/null

# run DIR [ENV...]: one attempt (resuming when DIR has a checkpoint); prints its exit code
run() {
  local dir=$1
  shift
  local resume=()
  [[ -e $dir/checkpoint.npz ]] && resume=(--resume "$dir/checkpoint.npz")
  local rc=0
  env "$@" "$cnnc" train "${common[@]}" --out "$dir" "${resume[@]}" >>"$dir.log" 2>&1 || rc=$?
  echo $rc
}

check() { # DIR: the finished run equals the straight one
  cmp "$out/straight/weights.npz" "$1/weights.npz"
  diff <(cut -d, -f1-5 "$out/straight/log.csv") <(cut -d, -f1-5 "$1/log.csv")
}

n=0
for sig in $signals; do
  step=$((RANDOM % 22 + 1))
  dir=$out/case$((n++))
  mkdir -p "$dir"
  rc=$(run "$dir" CNNC_TEST_SIGNAL="$step:$sig")
  want=$([[ $sig == INT ]] && echo 130 || echo 137)
  [[ $rc == "$want" ]] || { echo "SIG$sig after step $step: exit $rc, want $want"; cat "$dir.log"; exit 1; }
  if [[ $sig == INT ]]; then
    grep -q "to resume, run the same command with --resume $dir/checkpoint.npz" "$dir.log" ||
      { echo "no resume hint"; cat "$dir.log"; exit 1; }
  fi
  rc=$(run "$dir")
  [[ $rc == 0 ]] || { echo "resume after SIG$sig at step $step: exit $rc"; cat "$dir.log"; exit 1; }
  check "$dir"
  echo "OK: SIG$sig after step $step, resumed: identical"
done

# SIGKILL in the middle of writing epoch 2's checkpoint (the 2nd file write): epoch 1's
# checkpoint stays whole, the torn temp file is never read.
dir=$out/torn
mkdir -p "$dir"
rc=$(run "$dir" CNNC_TEST_KILL_IN_WRITE=2)
[[ $rc == 137 ]] || { echo "kill in write: exit $rc"; cat "$dir.log"; exit 1; }
ls "$dir"/checkpoint.npz.*.tmp >/dev/null || { echo "no torn temp file left"; exit 1; }
rc=$(run "$dir")
[[ $rc == 0 ]] || { echo "resume after the torn write: exit $rc"; cat "$dir.log"; exit 1; }
grep -q "resumed from $dir/checkpoint.npz after epoch 1" "$dir.log"
check "$dir"
echo "OK: killed inside a checkpoint write, resumed from the previous checkpoint: identical"
