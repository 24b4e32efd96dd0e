#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine: set-up, build, then cnnc on the seed's
# networks: the VGG-16 report (seed Table 2); MNIST BASE (seed Exercise 6) trained on real
# digits by its compiled training step, compiled to a shared library with the trained
# weights, and that library classifying the test digits from C, reporting the test error.
# MAIN_EPOCHS (default 20, the seed's Exercise 6; ~70 s here) sets the training length.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/install-deps.sh"
bash "$root/scripts/fetch-data.sh"
bash "$root/scripts/build.sh" cnnc
cnnc="$root/build/tools/cnnc"
out="$root/out"
mkdir -p "$out"

step() { printf '\n== %s\n' "$*"; }

step "cnnc info examples/vgg16.cnn   (compare the r.f. column with the seed's Table 2)"
"$cnnc" info "$root/examples/vgg16.cnn"

step "cnnc info examples/mnist_base.cnn --batch 100"
"$cnnc" info "$root/examples/mnist_base.cnn" --batch 100

epochs=${MAIN_EPOCHS:-20}
step "cnnc train examples/mnist_base.cnn: BASE on real MNIST (7,996 train / 2,004 test digits), $epochs epochs,
   the seed's Exercise 6 settings (lr 0.001, momentum 0.9, weight decay 5e-4, batch 100), compiled train step"
"$cnnc" train "$root/examples/mnist_base.cnn" --data mnist --epochs "$epochs" --out "$out/mnist_base" --progress lines

step "cnnc compile examples/mnist_base.cnn -> libmnist_base.so + mnist.h, the trained weights embedded"
"$cnnc" compile "$root/examples/mnist_base.cnn" -o "$out/libmnist_base.so" --header "$out/mnist.h" --batch 100 \
  --prefix mnist --weights "$out/mnist_base/weights.npz"
ls -l "$out/libmnist_base.so"

step "examples/c/classify.c, linked against the .so, classifies the test digits (raw pixels in)"
cc -O2 "$root/examples/c/classify.c" -I"$out" -L"$out" -lmnist_base -Wl,-rpath,"$out" -o "$out/classify"
"$out/classify" "$root/data/mnist/t10k-images-idx3-ubyte" "$root/data/mnist/t10k-labels-idx1-ubyte" | tail -12
echo "training log: $out/mnist_base/log.csv; plot: $out/mnist_base/plot.png"

step "cnnc run examples/vgg16.cnn --backend jit: one seeded random 224x224 image, seeded gauss(0.01) weights"
time "$cnnc" run "$root/examples/vgg16.cnn" --backend jit --input random --seed 1 --output "$out/vgg16.prob.npy"

echo
echo "main: done; outputs in $out/"
