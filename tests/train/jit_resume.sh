#!/usr/bin/env bash
# Resume on the compiled backend: 2 epochs straight and 1 epoch + --resume + 1 epoch write
# byte-identical weights (1,050 Fashion-MNIST images: 10 steps of 100 and a partial step of
# 50, which the one compiled step runs at batch 50 each epoch).
# Usage: jit_resume.sh CNNC SOURCE_DIR
set -euo pipefail
cnnc=$1 src=$2
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cd "$src"
[[ -e data/fashion-mnist/train-images-idx3-ubyte.gz ]] || { echo "no data/fashion-mnist: skipped"; exit 0; }
common=(examples/mnist_base.cnn --data fashion-mnist --train-size 1050 --test-size 300 --backend jit
        --progress none --no-plot)
"$cnnc" train "${common[@]}" --epochs 2 --out "$out/straight"
"$cnnc" train "${common[@]}" --epochs 1 --out "$out/half"
"$cnnc" train "${common[@]}" --epochs 2 --out "$out/resumed" --resume "$out/half/checkpoint.npz"
cmp "$out/straight/weights.npz" "$out/resumed/weights.npz"
diff <(cut -d, -f1-5 "$out/straight/log.csv") <(cut -d, -f1-5 "$out/resumed/log.csv")
echo "OK: resumed weights and log are identical to the straight run's"
