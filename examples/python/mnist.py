#!/usr/bin/python3
"""Classifies MNIST digits with a network compiled by cnnc, from Python (the cnnc module:
python/cnnc, ctypes + numpy, nothing to build).

    cnnc train examples/mnist_base.cnn --out run                      # weights + input mean
    cnnc compile examples/mnist_base.cnn -o libmnist.so --batch 100 --weights run/weights.npz
    /usr/bin/python3 examples/python/mnist.py libmnist.so data/mnist

The library takes raw 0-255 pixels (it subtracts the training mean itself, the parameter
%data.mean saved by `cnnc train`). With --train-lib LIB (a library built by
`cnnc compile --train --input-mean`) and --init W.npz (from `cnnc init --input-mean`), it
also trains from scratch for a few SGD steps from Python, setting the model's %data.mean to
the training mean, and shows the loss going down:

    cnnc init examples/mnist_base.cnn --input-mean --seed 0 -o init.npz
    cnnc compile examples/mnist_base.cnn --train --input-mean -o libmnist_train.so --batch 100
    /usr/bin/python3 examples/python/mnist.py libmnist.so data/mnist --train-lib libmnist_train.so --init init.npz

The module is found in the source tree (python/) or where `cmake --install` put it.
"""
import argparse
import gzip
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import cnnc  # noqa: E402


def read_idx(path):
    """An IDX file (the MNIST format), plain or gzipped, as a uint8 array of its shape."""
    for p in (path, path + ".gz"):
        if os.path.exists(p):
            with (gzip.open if p.endswith(".gz") else open)(p, "rb") as f:
                raw = f.read()
            break
    else:
        sys.exit(f"no IDX file {path}[.gz]")
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 8:
        sys.exit(f"{path}: not an IDX file of unsigned bytes")
    rank = raw[3]
    shape = np.frombuffer(raw, ">u4", rank, 4).astype(np.int64)
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * rank).reshape(shape)


def test_set(data, lib):
    images = read_idx(os.path.join(data, "t10k-images-idx3-ubyte")).astype(np.float32)
    labels = read_idx(os.path.join(data, "t10k-labels-idx1-ubyte")).astype(np.int64)
    return images.reshape((len(images),) + lib.inputs[0].shape[1:]), labels  # [n, 1, 28, 28]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("lib", help="shared library from `cnnc compile` (with embedded weights, or pass --weights)")
    ap.add_argument("data", help="directory with the MNIST IDX files (e.g. data/mnist)")
    ap.add_argument("--weights", help="load these weights (.npz) instead of the embedded ones")
    ap.add_argument("--train-lib", help="a library from `cnnc compile --train`: run a few SGD steps")
    ap.add_argument("--init", help="initial weights for --train-lib (.npz, e.g. `cnnc init --input-mean`)")
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()

    lib = cnnc.load(args.lib)
    if args.weights:
        lib.load_weights(args.weights)
    print(f"{lib!r}; input %{lib.inputs[0].name} {lib.inputs[0].shape[1:]}; params:",
          ", ".join(b.name for b in lib.params))
    images, labels = test_set(args.data, lib)
    prob = lib.infer(images)  # every digit: the module splits them into calls of max_batch
    for i in range(10):
        print(f"image {i}: label {labels[i]}, predicted {prob[i].argmax()} (p = {prob[i].max():.3f})")
    print(f"test error: {100 * float((prob.argmax(1) != labels).mean()):.2f}% on {len(images)} digits")

    if args.train_lib:
        train_steps(args)


def train_steps(args):
    """SGD steps from Python through the library's training step: the seed's Exercise 6
    hyperparameters, mini-batches of train_batch training digits."""
    tl = cnnc.load(args.train_lib)
    if not tl.has_train_step:
        print(f"{args.train_lib} has no training step (compile it with `cnnc compile --train`)")
        return
    if args.init:
        tl.load_weights(args.init)
    x = read_idx(os.path.join(args.data, "train-images-idx3-ubyte")).astype(np.float32)
    y = read_idx(os.path.join(args.data, "train-labels-idx1-ubyte")).astype(np.int32)
    if "data.mean" in tl.param_names():  # the model's own preprocessing: the per-pixel mean
        tl.set_param("data.mean", x.astype(np.float64).mean(0).astype(np.float32))
    n = tl.train_batch
    order = np.random.default_rng(0).permutation(len(x))
    shape = tl.train_inputs[0].shape[1:]
    print(f"training {args.steps} steps of {n} digits from Python (lr 0.001, momentum 0.9, weight decay 5e-4):")
    for step in range(args.steps):
        idx = order[(step * n) % len(x):][:n]  # a pass's last batch may be shorter: fine
        loss, correct = tl.train_step(x[idx].reshape((len(idx),) + shape), y[idx],
                                      lr=0.001, momentum=0.9, weight_decay=5e-4)
        print(f"  step {step + 1:>3}: loss {loss:.4f}, {correct}/{len(idx)} correct")
    images, labels = test_set(args.data, tl)
    err = float((tl.infer(images).argmax(1) != labels).mean())
    print(f"test error after {args.steps} steps: {100 * err:.2f}%")


if __name__ == "__main__":
    main()
