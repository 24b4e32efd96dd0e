#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine: set-up, build, then cnnc on the seed's
# networks: the VGG-16 report (seed Table 2) and MNIST BASE (seed Exercise 6) run on real
# digits with seeded initial weights, on the reference interpreter.
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

step "cnnc run examples/mnist_base.cnn on 16 real MNIST test digits (untrained: seeded 0.01*randn weights)"
"$cnnc" init "$root/examples/mnist_base.cnn" --seed 0 -o "$out/mnist_base.init.npz"
"$cnnc" run "$root/examples/mnist_base.cnn" --weights "$out/mnist_base.init.npz" \
  --input "$root/data/mnist/sample-images.npy" --output "$out/mnist_base.prob.npy"
echo "true labels: $(/usr/bin/python3 -c "import numpy; print(numpy.load('$root/data/mnist/sample-labels.npy').tolist())" 2>/dev/null || echo '(numpy not installed)')"

step "cnnc run examples/vgg16.cnn on one seeded random 224x224 image (seeded gauss(0.01) weights)"
time "$cnnc" run "$root/examples/vgg16.cnn" --input random --seed 1 --output "$out/vgg16.prob.npy"

echo
echo "main: done; outputs in $out/"
