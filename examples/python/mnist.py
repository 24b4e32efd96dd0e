#!/usr/bin/python3
"""Classifies MNIST digits with a network compiled by cnnc, from Python: ctypes + numpy only.

    cnnc train examples/mnist_base.cnn --out run                      # weights + input mean
    cnnc compile examples/mnist_base.cnn -o libmnist.so --batch 100 --weights run/weights.npz
    /usr/bin/python3 examples/python/mnist.py libmnist.so data/mnist

The library takes raw 0-255 pixels (it subtracts the training mean itself, the parameter
%data.mean saved by `cnnc train`). With --train-lib LIB (a library built by
`cnnc compile --train --input-mean`, exporting cnnc_train_step) and --init W.npz (from
`cnnc init --input-mean`), it also trains from scratch for a few SGD steps from Python,
setting the model's %data.mean to the training mean, and shows the loss going down:

    cnnc init examples/mnist_base.cnn --input-mean --seed 0 -o init.npz
    cnnc compile examples/mnist_base.cnn --train --input-mean -o libmnist_train.so --batch 100
    /usr/bin/python3 examples/python/mnist.py libmnist.so data/mnist --train-lib libmnist_train.so --init init.npz
"""
import argparse
import ctypes as C
import gzip
import os
import sys

import numpy as np


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


class Library:
    """A cnnc-compiled shared library (runtime/CnncApi.h) and one instance of it."""

    def __init__(self, path):
        self.lib = lib = C.CDLL(os.path.abspath(path))
        lib.cnnc_create.argtypes = [C.POINTER(C.c_void_p)]
        lib.cnnc_destroy.argtypes = [C.c_void_p]
        lib.cnnc_last_error.argtypes = [C.c_void_p]
        lib.cnnc_last_error.restype = C.c_char_p
        lib.cnnc_load_weights.argtypes = [C.c_void_p, C.c_char_p]
        lib.cnnc_infer.argtypes = [C.c_void_p, C.c_int64, C.POINTER(C.c_void_p), C.POINTER(C.c_void_p)]
        lib.cnnc_max_batch.restype = C.c_int64
        lib.cnnc_num_buffers.argtypes = [C.c_int]
        lib.cnnc_buffer_info.argtypes = [C.c_int, C.c_int, C.POINTER(C.c_char_p), C.POINTER(C.c_int),
                                         C.POINTER(C.c_int64), C.POINTER(C.c_int64)]
        self.inst = C.c_void_p()
        self.check(lib.cnnc_create(C.byref(self.inst)), "cnnc_create")
        self.max_batch = lib.cnnc_max_batch()

    def buffers(self, kind):
        """(name, shape at max batch, per-example size) of each buffer of a kind: 0 input, 1 param, 2 output."""
        out = []
        for i in range(self.lib.cnnc_num_buffers(kind)):
            name, rank, shape, per = C.c_char_p(), C.c_int(), (C.c_int64 * 8)(), C.c_int64()
            self.lib.cnnc_buffer_info(kind, i, C.byref(name), C.byref(rank), shape, C.byref(per))
            out.append((name.value.decode(), tuple(shape[: rank.value]), per.value))
        return out

    def check(self, rc, what):
        if rc != 0:
            raise RuntimeError(f"{what}: {self.lib.cnnc_last_error(self.inst).decode()}")

    def infer(self, x):
        """Class scores for a batch of raw images x [n, ...] (float32)."""
        x = np.ascontiguousarray(x, np.float32)
        classes = self.buffers(2)[0][2]
        out = np.empty((len(x), classes), np.float32)
        ins = (C.c_void_p * 1)(x.ctypes.data)
        outs = (C.c_void_p * 1)(out.ctypes.data)
        self.check(self.lib.cnnc_infer(self.inst, len(x), ins, outs), "cnnc_infer")
        return out

    def __del__(self):
        if getattr(self, "inst", None):
            self.lib.cnnc_destroy(self.inst)


def classify(lib, images, labels):
    predictions = np.concatenate([lib.infer(images[b:b + lib.max_batch]).argmax(1)
                                  for b in range(0, len(images), lib.max_batch)])
    return float((predictions != labels).mean())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("lib", help="shared library from `cnnc compile` (with embedded weights, or pass --weights)")
    ap.add_argument("data", help="directory with the MNIST IDX files (e.g. data/mnist)")
    ap.add_argument("--weights", help="load these weights (.npz) instead of the embedded ones")
    ap.add_argument("--train-lib", help="a library from `cnnc compile --train` (cnnc_train_step): run a few steps")
    ap.add_argument("--init", help="initial weights for --train-lib (.npz, e.g. `cnnc init --input-mean`)")
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()

    images = read_idx(os.path.join(args.data, "t10k-images-idx3-ubyte")).astype(np.float32)
    labels = read_idx(os.path.join(args.data, "t10k-labels-idx1-ubyte")).astype(np.int64)
    lib = Library(args.lib)
    if args.weights:
        lib.check(lib.lib.cnnc_load_weights(lib.inst, args.weights.encode()), "cnnc_load_weights")
    name, shape, per = lib.buffers(0)[0]
    images = images.reshape((len(images),) + shape[1:])  # [n, 1, 28, 28], raw 0-255
    print(f"input %{name} {shape[1:]}, max batch {lib.max_batch}; params:",
          ", ".join(n for n, _, _ in lib.buffers(1)))
    first = lib.infer(images[:10])
    for i, p in enumerate(first):
        print(f"image {i}: label {labels[i]}, predicted {p.argmax()} (p = {p.max():.3f})")
    err = classify(lib, images, labels)
    print(f"test error: {100 * err:.2f}% on {len(images)} digits")

    if args.train_lib:
        train_steps(args)


def train_steps(args):
    """SGD steps from Python through the library's cnnc_train_step (runtime/CnncApi.h): the
    seed's Exercise 6 hyperparameters, mini-batches of cnnc_train_batch() training digits."""
    tl = Library(args.train_lib)
    lib = tl.lib
    if not hasattr(lib, "cnnc_train_step") or not lib.cnnc_has_train_step():
        print(f"{args.train_lib} has no training step (compile it with `cnnc compile --train`)")
        return
    lib.cnnc_train_batch.restype = C.c_int64
    lib.cnnc_set_param.argtypes = [C.c_void_p, C.c_char_p, C.c_void_p, C.c_int64]
    lib.cnnc_train_step.argtypes = [C.c_void_p, C.c_int64, C.POINTER(C.c_void_p), C.c_float, C.c_float,
                                    C.c_float, C.POINTER(C.c_float), C.POINTER(C.c_int64)]
    if args.init:
        tl.check(lib.cnnc_load_weights(tl.inst, args.init.encode()), "cnnc_load_weights")
    x = read_idx(os.path.join(args.data, "train-images-idx3-ubyte")).astype(np.float32)
    y = read_idx(os.path.join(args.data, "train-labels-idx1-ubyte")).astype(np.int32)
    params = [n for n, _, _ in tl.buffers(1)]
    if "data.mean" in params:  # the model's own preprocessing: the per-pixel training mean
        mean = np.ascontiguousarray(x.astype(np.float64).mean(0).astype(np.float32))
        tl.check(lib.cnnc_set_param(tl.inst, b"data.mean", mean.ctypes.data, mean.size), "cnnc_set_param")
    n = lib.cnnc_train_batch()
    order = np.random.default_rng(0).permutation(len(x))
    print(f"training {args.steps} steps of {n} digits from Python (lr 0.001, momentum 0.9, weight decay 5e-4):")
    for step in range(args.steps):
        idx = order[(step * n) % len(x):][:n]  # a pass's last batch may be shorter: fine
        m = len(idx)
        xb = np.ascontiguousarray(x[idx].reshape((m,) + tl.buffers(0)[0][1][1:]))
        yb = np.ascontiguousarray(y[idx])
        ins = (C.c_void_p * 2)(xb.ctypes.data, yb.ctypes.data)
        loss, correct = C.c_float(), C.c_int64()
        tl.check(lib.cnnc_train_step(tl.inst, m, ins, 0.001, 0.9, 5e-4, C.byref(loss), C.byref(correct)),
                 "cnnc_train_step")
        print(f"  step {step + 1:>3}: loss {loss.value:.4f}, {correct.value}/{m} correct")
    images = read_idx(os.path.join(args.data, "t10k-images-idx3-ubyte")).astype(np.float32)
    labels = read_idx(os.path.join(args.data, "t10k-labels-idx1-ubyte")).astype(np.int64)
    images = images.reshape((len(images),) + tl.buffers(0)[0][1][1:])
    print(f"test error after {args.steps} steps: {100 * classify(tl, images, labels):.2f}%")


if __name__ == "__main__":
    main()
