#!/usr/bin/python3
"""The seed's Exercise 6 (b)-(j), measured: every run trained by `cnnc train` and by PyTorch
from cnnc's own initial weights (bench/accuracy_parity.py: same data, order, preprocessing and
SGD), then report.md, runs.csv and PNG plots (docs/exercise6.md).

    /usr/bin/python3 examples/exercise6/run.py [--out exercise6] [--items bcdefghij]
        [--data fashion-mnist,mnist] [--epochs 20] [--train-size CAP] [--test-size M]

Resumable: each run's results live in OUT/runs/<data>/<run>/ (cnnc's log.csv and checkpoint,
torch.csv, run.json); a run whose results match its settings is not trained again, a cnnc run
stopped mid-way resumes from its checkpoint. Progress on stderr: run k of n, epoch, ETA.
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path[:0] = [HERE, os.path.join(ROOT, "bench")]

import numpy as np  # noqa: E402
import torch  # noqa: E402

import accuracy_parity as ap  # noqa: E402
import plan as P  # noqa: E402
import report  # noqa: E402

LOG_HEADER = "epoch,train_loss,train_error,test_loss,test_error,seconds,images_per_s"


def hms(s):
    s = int(round(s))
    return f"{s // 3600}:{s // 60 % 60:02}:{s % 60:02}"


def complete(path, epochs):
    """A log.csv-format file holding exactly `epochs` epochs."""
    return os.path.exists(path) and len(ap.read_log(path)) == epochs


class Progress:
    """Run k of n, engine, epoch, and the plan's ETA from the time per training image-epoch
    measured so far (per engine and network, else over everything)."""

    def __init__(self, runs, args):
        self.n, self.args, self.t0 = len(runs), args, time.time()
        self.rate = {}  # (engine, net, width) -> [seconds, image-epochs]
        self.left = {(r, e): r.size * args.epochs for r in runs for e in ("cnnc", "torch")}

    def done(self, run, engine, seconds, image_epochs):
        if image_epochs:
            acc = self.rate.setdefault((engine, run.net, run.width), [0.0, 0])
            acc[0] += seconds
            acc[1] += image_epochs
        self.left.pop((run, engine), None)

    def eta(self, cur=None):
        """cur = (run, engine, epochs timed, their seconds, epochs done) of the run in progress."""
        rate, left = {k: list(v) for k, v in self.rate.items()}, dict(self.left)
        if cur and cur[2]:
            run, e, timed, sec, done = cur
            acc = rate.setdefault((e, run.net, run.width), [0.0, 0])
            acc[0] += sec
            acc[1] += run.size * timed
            left[(run, e)] = run.size * (self.args.epochs - done)
        total = [sum(v[0] for v in rate.values()), sum(v[1] for v in rate.values())]
        if not total[1]:
            return "--"
        def per(r, e):  # seconds per training image-epoch
            s, n = rate.get((e, r.net, r.width), total)
            return s / n
        return hms(sum(per(r, e) * w for (r, e), w in left.items()))

    def say(self, k, run, what, cur=None):
        print(f"[run {k}/{self.n}] {P.run_id(run)}  {what}  plan elapsed {hms(time.time() - self.t0)}, "
              f"ETA {self.eta(cur)}", file=sys.stderr, flush=True)


def train_cnnc(run, d, args, prog, k):
    model = os.path.join(ROOT, "examples", P.NETS[run.net] + ".cnn")
    out = os.path.join(d, "cnnc")
    cmd = [args.cnnc, "train", model, "--data", run.data, "--epochs", str(args.epochs), "--seed", str(run.seed),
           "--train-subset", "first", "--train-size", str(run.size), "--train-offset", str(run.offset),
           "--out", out, "--progress", "none", "--no-plot", "--threads", str(args.threads), "--backend", args.backend]
    if args.test_size:
        cmd += ["--test-size", str(args.test_size)]
    if run.net.startswith("sk"):
        cmd += ["--width", f"{run.width:g}"]
    ckpt = os.path.join(out, "checkpoint.npz")
    if os.path.exists(ckpt):  # stopped mid-way: continue (bit for bit, docs/training.md)
        cmd += ["--resume", ckpt]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    start, first = time.time(), None
    for line in proc.stdout:  # "epoch   3/20  train loss … error …%  test loss … error …%  …"
        if line.startswith("epoch"):
            done = int(line.split()[1].split("/")[0])
            first = first or done  # a resumed run starts later
            prog.say(k, run, f"cnnc  epoch {done}/{args.epochs}  {line.split('error')[2].split('%')[0].strip()}% "
                     "test error", (run, "cnnc", done - first + 1, time.time() - start, done))
    if proc.wait() != 0:
        sys.exit(f"exercise6: cnnc train failed for {P.run_id(run)}: {' '.join(cmd)}")


def train_torch(run, d, args, prog, k):
    model = os.path.join(ROOT, "examples", P.NETS[run.net] + ".cnn")
    init = os.path.join(d, "init.npz")
    cmd = [args.cnnc, "init", model, "--seed", str(run.seed), "-o", init]
    if run.net.startswith("sk"):
        cmd += ["--width", f"{run.width:g}"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    data, mean = ap.load_data(ap.resolve_data(run.data), run.size, run.offset, args.test_size)
    cnnc_mean = np.load(os.path.join(d, "cnnc/weights.npz"))["data.mean"].reshape(mean.shape)
    if not np.array_equal(mean, cnnc_mean):
        sys.exit(f"exercise6: {P.run_id(run)}: PyTorch's training mean differs from cnnc's (other examples?)")
    forward = ap.make_forward(ap.parse_cnn(model), ap.dropout_seeds(args.cnnc, model))
    hyper = argparse.Namespace(epochs=args.epochs, batch=100, lr=0.001, momentum=0.9, weight_decay=5e-4,
                               seed=run.seed)
    start = time.time()
    say = lambda rows: prog.say(k, run, f"torch epoch {len(rows)}/{args.epochs}  {100 * rows[-1][4]:.2f}% test error",
                                (run, "torch", len(rows), time.time() - start, len(rows)))
    ap.torch_train(np.load(init), data, hyper, os.path.join(d, "torch.csv"), forward, say)
    os.remove(init)


def main():
    ap_ = argparse.ArgumentParser(description="the seed's Exercise 6 (b)-(j), cnnc and PyTorch side by side")
    ap_.add_argument("--out", default="exercise6", help="results directory (default: exercise6)")
    ap_.add_argument("--items", default=P.ITEMS, help="which items, e.g. bcj (default: bcdefghij)")
    ap_.add_argument("--data", default="fashion-mnist,mnist", help="data sets, comma-separated")
    ap_.add_argument("--epochs", type=int, default=20)
    ap_.add_argument("--train-size", type=int, default=0, help="cap every training set at N examples")
    ap_.add_argument("--test-size", type=int, default=0, help="evaluate on the first M test images (default: all)")
    ap_.add_argument("--cnnc", default=os.path.join(ROOT, "build/tools/cnnc"))
    ap_.add_argument("--threads", type=int, default=2, help="threads of cnnc and of PyTorch")
    ap_.add_argument("--backend", default="jit", help="cnnc train --backend: jit, or interp (no compile time: "
                     "quicker for tiny smoke runs)")
    ap_.add_argument("--report-only", action="store_true", help="write the report from the runs on disk")
    args = ap_.parse_args()
    args.out = os.path.abspath(args.out)  # cnnc runs in the source tree (data/ is found there)
    bad = set(args.items) - set(P.ITEMS)
    datas = args.data.split(",")
    if bad or not args.items:
        sys.exit(f"exercise6: --items {args.items}: the items are letters of {P.ITEMS}")
    if set(datas) - set(P.ITEMS_BY_DATA):
        sys.exit(f"exercise6: --data {args.data}: one or more of {', '.join(P.ITEMS_BY_DATA)}")
    torch.set_num_threads(args.threads)
    n_train = {d: len(ap.read_idx(ap.idx_in(ap.resolve_data(d), "train-labels-idx1-ubyte"))) for d in datas}
    per_item, runs = P.plan(args.items, datas, n_train, args.train_size)
    prog = Progress(runs, args)
    t0 = time.time()
    for k, run in enumerate(runs, 1):
        d = os.path.join(args.out, "runs", P.run_id(run))
        want = {"run": run._asdict(), "epochs": args.epochs, "test_size": args.test_size}
        meta = os.path.join(d, "run.json")
        if os.path.exists(meta) and json.load(open(meta)) != want:
            sys.exit(f"exercise6: {d} holds a run with other settings ({open(meta).read().strip()}); "
                     f"use another --out or remove it")
        os.makedirs(d, exist_ok=True)
        json.dump(want, open(meta, "w"))
        for engine, train, log in (("cnnc", train_cnnc, "cnnc/log.csv"), ("torch", train_torch, "torch.csv")):
            path = os.path.join(d, log)
            if complete(path, args.epochs) and (engine == "torch" or os.path.exists(os.path.join(d, "cnnc/weights.npz"))):
                prog.done(run, engine, 0, 0)
                prog.say(k, run, f"{engine} done earlier (its results are on disk)")
                continue
            if args.report_only:
                sys.exit(f"exercise6: --report-only: {d} has no complete {engine} run")
            start = time.time()
            train(run, d, args, prog, k)
            seconds = time.time() - start
            with open(os.path.join(d, engine + ".seconds"), "w") as f:
                f.write(f"{seconds:.1f}\n")
            prog.done(run, engine, seconds, run.size * args.epochs)
    wall = time.time() - t0
    plan_wall = os.path.join(args.out, "wall.seconds")  # summed over the invocations (a resumed plan)
    before = float(open(plan_wall).read()) if os.path.exists(plan_wall) else 0.0
    if not args.report_only:
        with open(plan_wall, "w") as f:
            f.write(f"{before + wall:.1f}\n")
    report.write(args, per_item, runs, before + (0 if args.report_only else wall))
    print(f"exercise6: {len(runs)} runs, this invocation {hms(wall)}; wrote {args.out}/report.md, runs.csv, "
          f"plots/", file=sys.stderr)


if __name__ == "__main__":
    main()
