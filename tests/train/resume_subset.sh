#!/usr/bin/env bash
# A checkpoint records which training examples it was trained on (--train-size with
# --train-subset first or stratified, --train-offset; tools/Train.h Checkpoint::subset): --resume with another
# choice of the same number is refused naming both, the same choice resumes, and a checkpoint
# written before the choice was recorded resumes with a warning. Usage: CNNC SOURCE_DIR WORKDIR
set -euo pipefail
cnnc=$1
root=$2
work=$3
rm -rf "$work" && mkdir -p "$work" && cd "$work"
fail() { echo "FAIL: $*"; exit 1; }
common=("$root/examples/mnist_base.cnn" --data "$root/data/mnist" --train-size 40 --test-size 20 --batch 10
        --backend interp --progress none --no-plot)

"$cnnc" train "${common[@]}" --train-subset first --epochs 1 --out first > first.log
set +e
"$cnnc" train "${common[@]}" --train-subset stratified --epochs 2 --out other --resume first/checkpoint.npz \
  > other.out 2> other.err
code=$?
set -e
[[ $code == 1 ]] || fail "another subset resumed (exit $code)"
grep -qF "the checkpoint was trained on --train-size 40 --train-subset first, this run asks for --train-size 40 --train-subset stratified" other.err ||
  fail "message: $(cat other.err)"
[[ ! -e other/weights.npz ]] || fail "the refused run wrote weights"

# the same number of examples from another block (--train-offset) is other examples too
set +e
"$cnnc" train "${common[@]}" --train-subset first --train-offset 40 --epochs 2 --out block \
  --resume first/checkpoint.npz > block.out 2> block.err
code=$?
set -e
[[ $code == 1 ]] || fail "another block resumed (exit $code)"
grep -qF "this run asks for --train-size 40 --train-subset first --train-offset 40" block.err ||
  fail "message: $(cat block.err)"

"$cnnc" train "${common[@]}" --train-subset first --epochs 2 --out same --resume first/checkpoint.npz > same.log 2> same.err
grep -q "resumed from first/checkpoint.npz after epoch 1" same.log || fail "same choice: $(cat same.log same.err)"
[[ ! -s same.err ]] || fail "same choice warned: $(cat same.err)"

# a checkpoint from before the choice was recorded: __config__ without its 7th entry
/usr/bin/python3 - <<'PY'
import numpy as np
a = dict(np.load("first/checkpoint.npz"))
assert a["__config__"].size == 8 and a["__config__"][6] == 1 and a["__config__"][7] == 0, a["__config__"]
a["__config__"] = a["__config__"][:6]
np.savez("old.npz", **a)
PY
"$cnnc" train "${common[@]}" --train-subset stratified --epochs 2 --out old --resume old.npz > old.log 2> old.err
grep -q "warning: --resume old.npz: the checkpoint does not record which training examples" old.err ||
  fail "old checkpoint: $(cat old.err)"
echo "ok: another subset and another block refused, the same resumed, an old checkpoint warned"
