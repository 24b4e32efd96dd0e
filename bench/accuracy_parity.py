#!/usr/bin/python3
"""Accuracy parity: MNIST BASE (the seed's Exercise 6) trained by `cnnc train` and by PyTorch
from the same initial weights, on the same data in the same order, with the same
hyperparameters; compares the test error epoch by epoch.

    /usr/bin/python3 bench/accuracy_parity.py [--cnnc build/tools/cnnc] [--epochs 20]

Same start: PyTorch loads `cnnc init examples/mnist_base.cnn --seed 0` (0.01*randn weights,
zero biases), which is what `cnnc train --seed 0` starts from. Same data: data/mnist's IDX
files (7,996 train / 2,004 test real digits), raw 0-255 pixels minus the per-pixel training
mean. Same order: the documented per-epoch shuffle of tools/Data.h (SplitMix64-driven
Fisher-Yates, seeded with seed + epoch * 0x9E3779B97F4A7C15), reimplemented below; a partial
last mini-batch (96 digits) is a step of its own, as in cnnc (and MatConvNet). Same update:
the training step's SGD as cnnc's IR writes it (docs/training.md), in f32:
    dir = dz/dw + wd * w;  v = momentum * v - lr * dir;  w = w + v   (all params, biases too)
with the loss the batch mean of softmax cross-entropy.

Writes bench/results/parity_cnnc.csv (cnnc's log.csv), parity_torch.csv (same columns) and
parity.md (side by side); exits 1 if the final test errors differ by more than --tolerance
percentage points (1 by default).

The PyTorch side is general enough for every Exercise 6 network, and examples/exercise6/run.py
imports it: parse_cnn reads a .cnn file's layers (conv, bn, relu, sigmoid, pool, dropout),
make_forward runs them (BN with batch statistics and running ones as cnnc's step updates them;
dropout with cnnc's own masks, dropout_mask), load_data selects examples as `cnnc train
--train-subset first --train-offset K --train-size N` does.
"""
import argparse
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MASK = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def epoch_order(seed, epoch, n):
    """tools/Data.h epochOrder: Fisher-Yates driven by SplitMix64."""
    s = (seed + epoch * GOLDEN) & MASK
    p = list(range(n))
    for i in range(n - 1, 0, -1):
        s = (s + GOLDEN) & MASK
        z = s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        z ^= z >> 31
        j = z % (i + 1)
        p[i], p[j] = p[j], p[i]
    return p


def read_idx(path):
    """An IDX file, plain or gzipped (Fashion-MNIST's are)."""
    import gzip
    raw = open(path, "rb").read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    assert raw[:3] == b"\0\0\x08", path
    rank = raw[3]
    shape = np.frombuffer(raw, ">u4", rank, 4).astype(np.int64)
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * rank).reshape(shape)


def resolve_data(name):
    """data/<name> as `cnnc train --data NAME` finds it: in $CNNC_DATA, else the source tree."""
    for root in (os.environ.get("CNNC_DATA"), os.path.join(ROOT, "data")):
        if root and os.path.isdir(os.path.join(root, name)):
            return os.path.join(root, name)
    sys.exit(f"no data/{name} (run scripts/fetch-data.sh, or set CNNC_DATA)")


def idx_in(d, stem):
    return next(p for p in (os.path.join(d, stem), os.path.join(d, stem + ".gz")) if os.path.exists(p))


def load_data(d, train_size=0, train_offset=0, test_size=0):
    """Tensors ((x, y) train, (x, y) test) as `cnnc train --train-subset first --train-offset K
    --train-size N --test-size M` uses them: training examples K..K+N-1 in file order, the
    first M test images, raw pixels minus the per-pixel mean of those training images (f64 sum,
    then f32, as tools/Data.cpp pixelMean). Also returns the mean."""
    xtr = read_idx(idx_in(d, "train-images-idx3-ubyte"))
    ytr = read_idx(idx_in(d, "train-labels-idx1-ubyte"))
    xte = read_idx(idx_in(d, "t10k-images-idx3-ubyte"))
    yte = read_idx(idx_in(d, "t10k-labels-idx1-ubyte"))
    end = train_offset + train_size if train_size else len(xtr)
    xtr, ytr = xtr[train_offset:end].astype(np.float32), ytr[train_offset:end].astype(np.int64)
    if test_size:
        xte, yte = xte[:test_size], yte[:test_size]
    xte, yte = xte.astype(np.float32), yte.astype(np.int64)
    mean = xtr.astype(np.float64).mean(0).astype(np.float32)
    prep = lambda x: torch.from_numpy((x - mean)[:, None])  # [n, 1, 28, 28], f32
    return ((prep(xtr), torch.from_numpy(ytr)), (prep(xte), torch.from_numpy(yte))), mean


def parse_cnn(path):
    """The layers of a .cnn file in the subset that the Exercise 6 networks use (conv, bn,
    relu, sigmoid, pool max 2x2 stride 2, dropout, loss softmax), named as the frontend names
    them (docs/cnn-format.md: a counter per stem): [(kind, name, rate)]. Channel counts come
    from the weights, so a width multiplier needs nothing here."""
    stems = {"conv": "conv", "bn": "bn", "relu": "relu", "sigmoid": "sigmoid", "pool": "pool", "dropout": "drop"}
    count, layers = {}, []
    for line in open(path):
        words = line.split("#")[0].split()
        if not words or words[0] in ("network", "input", "loss"):
            continue
        if words[0] not in stems:
            sys.exit(f"{path}: layer '{words[0]}' is not one the PyTorch side of accuracy_parity.py knows")
        if words[0] == "pool" and words[1:] != ["max", "2x2", "stride", "2"]:
            sys.exit(f"{path}: only 'pool max 2x2 stride 2' is supported, not '{line.strip()}'")
        stem = stems[words[0]]
        count[stem] = count.get(stem, 0) + 1
        rate = float(words[1]) if words[0] == "dropout" and len(words) > 1 else 0.5
        layers.append((words[0], f"{stem}{count[stem]}", rate))
    return layers


def dropout_seeds(cnnc, model):
    """Each dropout node's mask seed, as `cnnc train` compiles it (read from the training IR)."""
    import re
    ir = subprocess.run([cnnc, "dump", model, "--train"], check=True, capture_output=True, text=True).stdout
    return {m[1]: int(m[2]) for m in re.finditer(r"%(\S+) = dropout\(.*?seed=(\d+)", ir)}


def _splitmix64(z):
    """docs/interp.md's splitmix64 on a uint64 array (numpy wraps mod 2^64)."""
    z = z + np.uint64(GOLDEN)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def dropout_mask(seed, step, shape, rate):
    """cnnc's dropout mask, bit for bit (docs/interp.md "Dropout: the exact generator"):
    keep element i (flat, row-major) where u(i) = (splitmix64(key ^ i) >> 11) 2^-53 >= rate,
    key = splitmix64(splitmix64(seed) ^ step); kept values scaled by f32(1 / (1 - rate))."""
    with np.errstate(over="ignore"):
        key = _splitmix64(_splitmix64(np.array([seed], np.uint64)) ^ np.uint64(step))
        i = np.arange(int(np.prod(shape)), dtype=np.uint64)
        u = (_splitmix64(key ^ i) >> np.uint64(11)).astype(np.float64) * 2.0 ** -53
    keep = (u >= rate).reshape(shape)
    return torch.from_numpy(keep.astype(np.float32) * np.float32(1.0 / (1.0 - rate)))


def make_forward(layers, seeds=None):
    """forward(w, x, training, step) -> logits [n, classes] for parse_cnn's layers: BN over the
    batch (updating w's running .mean/.var, momentum 0.1, unbiased variance, as cnnc's step)
    when training, else over the running statistics; dropout with cnnc's mask at `step`."""
    def forward(w, x, training=False, step=0):
        for kind, name, rate in layers:
            if kind == "conv":
                x = F.conv2d(x, w[name + ".w"], w.get(name + ".b"))
            elif kind == "bn":
                x = F.batch_norm(x, w[name + ".mean"], w[name + ".var"], w[name + ".scale"], w[name + ".bias"],
                                 training=training, momentum=0.1, eps=1e-5)
            elif kind == "relu":
                x = F.relu(x)
            elif kind == "sigmoid":
                x = torch.sigmoid(x)
            elif kind == "pool":
                x = F.max_pool2d(x, 2, 2)
            elif kind == "dropout" and training:
                x = x * dropout_mask(seeds[name], step, tuple(x.shape), rate)
        return x.flatten(1)
    return forward


def torch_train(init, data, args, log_path, forward=None, on_epoch=None):
    """SGD as cnnc's @train_step, from `init` (an npz of `cnnc init`), one row per epoch
    (epoch, train loss, train error, test loss, test error, seconds, images/s) written to
    log_path as cnnc's log.csv; on_epoch(rows) after each epoch."""
    forward = forward or make_forward(parse_cnn(os.path.join(ROOT, "examples/mnist_base.cnn")))
    (xtr, ytr), (xte, yte) = data
    stats = tuple(k for k in init.files if k.endswith((".mean", ".var")))  # BN running statistics
    w = {k: torch.tensor(init[k], dtype=torch.float32, requires_grad=k not in stats) for k in init.files}
    train = {k: t for k, t in w.items() if k not in stats}
    v = {k: torch.zeros_like(t) for k, t in train.items()}
    lr, mom, wd = (torch.tensor(a, dtype=torch.float32) for a in (args.lr, args.momentum, args.weight_decay))
    rows, step = [], 0
    for epoch in range(1, args.epochs + 1):
        t0 = time.time()
        order = epoch_order(args.seed, epoch, len(xtr))
        loss_sum, wrong = 0.0, 0
        for b in range(0, len(order), args.batch):
            idx = order[b:b + args.batch]
            x, y = xtr[idx], ytr[idx]
            logits = forward(w, x, True, step)
            loss = F.cross_entropy(logits, y)
            for t in train.values():
                t.grad = None
            loss.backward()
            if not torch.isfinite(loss):
                sys.exit(f"PyTorch: the loss is {loss.item()} at epoch {epoch}")
            with torch.no_grad():
                for k, t in train.items():
                    d = t.grad + t * wd
                    v[k] = v[k] * mom - d * lr
                    t += v[k]
            step += 1
            loss_sum += loss.item() * len(idx)
            wrong += (logits.argmax(1) != y).sum().item()
        train_s = time.time() - t0
        with torch.no_grad():
            logits = torch.cat([forward(w, xte[i:i + args.batch]) for i in range(0, len(xte), args.batch)])
            test_loss = F.cross_entropy(logits, yte).item()
            test_err = (logits.argmax(1) != yte).float().mean().item()
        rows.append((epoch, loss_sum / len(xtr), wrong / len(xtr), test_loss, test_err, time.time() - t0,
                     len(xtr) / train_s))
        if on_epoch is None:
            print(f"torch epoch {epoch:>3}/{args.epochs}  train loss {rows[-1][1]:.4f} error {100 * rows[-1][2]:6.2f}%"
                  f"  test loss {test_loss:.4f} error {100 * test_err:6.2f}%  {rows[-1][5]:.1f} s", flush=True)
        else:
            on_epoch(rows)
        with open(log_path, "w") as f:
            f.write("epoch,train_loss,train_error,test_loss,test_error,seconds,images_per_s\n")
            for r in rows:
                f.write("{},{:.6f},{:.6f},{:.6f},{:.6f},{:.3f},{:.1f}\n".format(*r))
    return rows


def read_log(path):
    lines = open(path).read().split("\n")[1:]
    return [tuple(float(x) for x in line.split(",")) for line in lines if line]


def main():
    ap = argparse.ArgumentParser(description="cnnc vs PyTorch test error, BASE on real MNIST")
    ap.add_argument("--cnnc", default=os.path.join(ROOT, "build/tools/cnnc"))
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--lr", type=float, default=0.001)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--weight-decay", type=float, default=5e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--backend", default="jit", help="cnnc train --backend")
    ap.add_argument("--threads", type=int, default=2, help="PyTorch threads")
    ap.add_argument("--tolerance", type=float, default=1.0, help="allowed final difference, percentage points")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench/results"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    work = os.path.join(args.out, "parity-work")
    os.makedirs(work, exist_ok=True)
    model = os.path.join(ROOT, "examples/mnist_base.cnn")
    hyper = ["--batch", str(args.batch), "--lr", str(args.lr), "--momentum", str(args.momentum),
             "--weight-decay", str(args.weight_decay), "--seed", str(args.seed)]

    # cnnc: the initial weights, then training.
    init_path = os.path.join(work, "init.npz")
    subprocess.run([args.cnnc, "init", model, "--seed", str(args.seed), "-o", init_path], check=True,
                   stdout=subprocess.DEVNULL)
    t0 = time.time()
    subprocess.run([args.cnnc, "train", model, "--data", "mnist", "--epochs", str(args.epochs), "--backend",
                    args.backend, "--out", os.path.join(work, "cnnc"), "--progress", "none"] + hyper,
                   check=True, cwd=ROOT)
    cnnc_seconds = time.time() - t0
    shutil.copy(os.path.join(work, "cnnc/log.csv"), os.path.join(args.out, "parity_cnnc.csv"))

    # PyTorch: the same data, preprocessing, start and order.
    data, mean = load_data(os.path.join(ROOT, "data/mnist"))
    cnnc_mean = np.load(os.path.join(work, "cnnc/weights.npz"))["data.mean"].reshape(mean.shape)
    assert np.array_equal(mean, cnnc_mean), "the training means differ"
    t0 = time.time()
    torch_train(np.load(init_path), data, args, os.path.join(args.out, "parity_torch.csv"))
    torch_seconds = time.time() - t0

    c, t = read_log(os.path.join(args.out, "parity_cnnc.csv")), read_log(os.path.join(args.out, "parity_torch.csv"))
    lines = ["# Accuracy parity: MNIST BASE, cnnc vs PyTorch", "",
             f"Generated by `bench/accuracy_parity.py --epochs {args.epochs}` (cnnc backend {args.backend}, "
             f"PyTorch {torch.__version__} with {args.threads} threads). Same initial weights (`cnnc init --seed "
             f"{args.seed}`), data order, preprocessing and SGD; batch {args.batch}, lr {args.lr}, momentum "
             f"{args.momentum}, weight decay {args.weight_decay}; 7,996 train / 2,004 test real MNIST digits.", "",
             f"Wall time: cnnc {cnnc_seconds:.0f} s, PyTorch {torch_seconds:.0f} s.", "",
             "| epoch | cnnc train loss | PyTorch train loss | cnnc test error | PyTorch test error | difference (pp) |",
             "|---:|---:|---:|---:|---:|---:|"]
    for a, b in zip(c, t):
        lines.append(f"| {int(a[0])} | {a[1]:.4f} | {b[1]:.4f} | {100 * a[4]:.2f}% | {100 * b[4]:.2f}% | "
                     f"{100 * (a[4] - b[4]):+.2f} |")
    diff = 100 * abs(c[-1][4] - t[-1][4])
    verdict = "within" if diff <= args.tolerance else "NOT within"
    lines += ["", f"After {len(c)} epochs: cnnc {100 * c[-1][4]:.2f}%, PyTorch {100 * t[-1][4]:.2f}% test error: "
                  f"{diff:.2f} percentage points apart, {verdict} the {args.tolerance:g}-point tolerance."]
    open(os.path.join(args.out, "parity.md"), "w").write("\n".join(lines) + "\n")
    print("\n".join(lines))
    shutil.rmtree(work, ignore_errors=True)
    return 0 if diff <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
