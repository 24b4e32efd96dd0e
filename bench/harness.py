#!/usr/bin/python3
"""cnnc against oneDNN and PyTorch, measured in one run (bench/run.sh calls this after
building; docs/performance.md describes the method and every column): forward layers and
networks, the backward passes of every VGG-16 layer, whole training steps.

Per configuration (build ISA x thread count) and per case, the three systems run as
persistent worker processes (bench/bench_worker.cpp for cnnc and oneDNN,
bench/torch_bench.py for PyTorch); the harness warms each up, then interleaves their
repetitions round by round (cnnc, oneDNN, PyTorch, cnnc, ...). Times are per call; the
table gives medians and min-max over the rounds, GFLOP/s, % of the FMA peak that the
harness measures itself at the same thread count for the ISA in use, and ratios."""
import argparse
import array
import csv
import datetime
import json
import math
import os
import random
import re
import select
import shlex
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = "/usr/bin/python3"

# Every distinct VGG-16 conv layer: name, input channels, output channels, side.
VGG_LAYERS = [("conv1_1", 3, 64, 224), ("conv1_2", 64, 64, 224), ("conv2_1", 64, 128, 112),
              ("conv2_2", 128, 128, 112), ("conv3_1", 128, 256, 56), ("conv3_2", 256, 256, 56),
              ("conv4_1", 256, 512, 28), ("conv4_2", 512, 512, 28), ("conv5_x", 512, 512, 14)]
# VGG-16's fully connected layers alone: name, inputs, outputs (bias, ReLU), batches.
VGG_FCS = [("fc6", 25088, 4096), ("fc7", 4096, 4096)]
FC_BATCHES = (1, 32)
SYSTEMS = ["cnnc", "oneDNN", "PyTorch"]


# Training steps: name, model (relative to the repository, or generated), PyTorch case, batch,
# classes (labels are drawn in 0..classes-1).
TRAIN_NETS = [("MNIST BASE", "examples/mnist_base.cnn", "train_mnist_base", 100, 10),
              ("MNIST BN", "examples/mnist_bn.cnn", "train_mnist_bn", 100, 10),
              ("MNIST SK", "examples/mnist_sk.cnn", "train_mnist_sk", 100, 10),
              ("ResNet-MNIST", "examples/resnet_mnist.cnn", "train_resnet_mnist", 32, 10),
              ("VGG-16", "GEN/vgg16_train.cnn", "train_vgg16", 8, 1000)]
# SGD of every training step, both sides: MatConvNet's setting (ENVIRONMENT.md).
TRAIN_HYPER = (0.001, 0.9, 5e-4)
TRAIN_BATCHES = 4  # distinct random batches each side cycles through (the same bytes)
KINDS_FWD, KINDS_BWD = ("layer", "network"), ("bwd_data", "bwd_weights")


class Case:
    def __init__(self, name, model, torch_case, batch, kind, keep_params=False, classes=0):
        self.name, self.model, self.torch_case, self.batch = name, model, torch_case, batch
        # "layer", "network" (forward); "bwd_data", "bwd_weights" (one layer's gradient);
        # "train" (a whole training step)
        self.kind = kind
        self.keep_params = keep_params
        self.classes = classes
        self.onednn_pass = {"bwd_data": "bwd_data", "bwd_weights": "bwd_weights", "train": "train"}.get(kind, "fwd")
        self.init_npz = self.params_json = None  # training: initial weights, cnnc's param order
        self.data = {}  # training: the step's input name -> raw file of TRAIN_BATCHES batches
        self.flops = None
        self.convs = []
        self.fcs = []  # fc layers for oneDNN's inner_product (layer cases of VGG_FCS only)
        self.fc_bytes = 0
        self.error = None  # a setup error for the whole case (e.g. the ONNX export)


# torchvision's models through ONNX: row name, torch_bench.py case, batches. Each is exported
# once (random init, symbolic batch) into build/bench/models/CASE.onnx and compiled with its
# initializers embedded (keep_params); PyTorch runs the same architecture in eager mode.
ONNX_NETS = [("ResNet-50", "resnet50", (1,)), ("MobileNet v2", "mobilenet_v2", (1, 8)),
             ("ShuffleNet v2", "shufflenet_v2", (1, 8)), ("DenseNet-121", "densenet121", (1, 8))]


def all_cases(gen_dir):
    cases = []
    for batch in (1, 32):
        for name, ic, oc, hw in VGG_LAYERS:
            cases.append(Case(f"{name} b{batch}", os.path.join(gen_dir, f"vgg_{name}.cnn"),
                              f"conv:{ic}:{oc}:{hw}", batch, "layer"))
    for batch in FC_BATCHES:
        for name, k, m in VGG_FCS:
            cases.append(Case(f"{name} b{batch}", os.path.join(gen_dir, f"vgg_{name}.cnn"), f"fc:{k}:{m}",
                              batch, "layer"))
    cases.append(Case("VGG-16 b1", os.path.join(ROOT, "examples/vgg16.cnn"), "vgg16", 1, "network"))
    for name, torch_case, batches in ONNX_NETS:
        for batch in batches:
            cases.append(Case(f"{name} b{batch}", os.path.join(gen_dir, f"{torch_case}.onnx"), torch_case,
                              batch, "network", keep_params=True))
    for batch in (1, 100):
        cases.append(Case(f"MNIST BASE b{batch}", os.path.join(ROOT, "examples/mnist_base.cnn"),
                          "mnist_base", batch, "network"))
        cases.append(Case(f"MNIST SK b{batch}", os.path.join(ROOT, "examples/mnist_sk.cnn"),
                          "mnist_sk", batch, "network"))
    for batch in (1, 32):
        for name, ic, oc, hw in VGG_LAYERS:
            for kind, label in (("bwd_data", "bwd-data"), ("bwd_weights", "bwd-weights")):
                cases.append(Case(f"{name} {label} b{batch}",
                                  os.path.join(gen_dir, f"vgg_{name}_{kind}_b{batch}.ir"),
                                  f"{kind}:{ic}:{oc}:{hw}", batch, kind))
    for name, model, torch_case, batch, classes in TRAIN_NETS:
        path = os.path.join(gen_dir, model[4:]) if model.startswith("GEN/") else os.path.join(ROOT, model)
        cases.append(Case(f"train {name} b{batch}", path, torch_case, batch, "train", classes=classes))
    return cases


def write_layer_models(gen_dir):
    os.makedirs(gen_dir, exist_ok=True)
    for name, ic, oc, hw in VGG_LAYERS:
        text = (f"# VGG-16 {name}: {ic} -> {oc} channels, 3x3, pad 1, stride 1, on {hw}x{hw}; bias, "
                f"ReLU (fused).\n# Generated by bench/harness.py.\nnetwork vgg_{name}\n"
                f"input x {ic}x{hw}x{hw}\nconv {oc} 3x3 pad 1 init he\nrelu\n")
        write_if_changed(os.path.join(gen_dir, f"vgg_{name}.cnn"), text)
        for batch in (1, 32):
            for kind, text in backward_ir(name, ic, oc, hw, batch).items():
                write_if_changed(os.path.join(gen_dir, f"vgg_{name}_{kind}_b{batch}.ir"), text)
    for name, k, m in VGG_FCS:
        text = (f"# VGG-16 {name}: {k} -> {m} features; bias, ReLU (fused).\n"
                f"# Generated by bench/harness.py.\nnetwork vgg_{name}\ninput x {k}\nfc {m} init he\nrelu\n")
        write_if_changed(os.path.join(gen_dir, f"vgg_{name}.cnn"), text)
    # VGG-16 for training: examples/vgg16.cnn with its softmax a `loss softmax` and He
    # initialisation (gauss(0.01) through 16 layers leaves activations and gradients ~1e-12:
    # no denormals, but nothing like a real step either).
    lines = []
    for line in open(os.path.join(ROOT, "examples/vgg16.cnn")):
        code, _, comment = line.partition("#")
        words = code.split()
        if words[:1] == ["softmax"]:
            code = "loss softmax"
        elif words[:1] in (["conv"], ["fc"]):
            code = code.rstrip() + " init he"
        elif words[:1] == ["network"]:
            code = "network vgg16_train"
        lines.append(code.rstrip() + ("  #" + comment if comment else "\n"))
    text = "# Generated by bench/harness.py from examples/vgg16.cnn: training (loss softmax), He init.\n" + "".join(lines)
    write_if_changed(os.path.join(gen_dir, "vgg16_train.cnn"), text)


def write_if_changed(path, text):
    if not os.path.exists(path) or open(path).read() != text:
        with open(path, "w") as f:
            f.write(text)


def backward_ir(name, ic, oc, hw, n):
    """One VGG-16 layer's gradients as IR (docs/ir.md): every operand an input, so the C API
    fills them (cnnc_infer's inputs) and no param is left at zero; no bias (its gradient is a
    separate reduce_sum in cnnc's training step, and oneDNN and PyTorch time none either)."""
    head = (f"# VGG-16 {name}, batch {n}: {ic} -> {oc} channels, 3x3, pad 1, stride 1, on {hw}x{hw}.\n"
            f"# Generated by bench/harness.py.\n")
    return {
        "bwd_data": head + "# dX = row2im(dY F^T) (seed eqs. 45-46)\n"
        f"func @main {{\n  %dy = input : f32[{n},{oc},{hw},{hw}]\n  %w = input : f32[{oc},{ic},3,3]\n"
        f"  %dx = conv2d_grad_input(%dy, %w) {{input_shape=[{n},{ic},{hw},{hw}], pads=[1,1,1,1]}} : "
        f"f32[{n},{ic},{hw},{hw}]\n  return %dx\n}}\n",
        "bwd_weights": head + "# dW = phi(x)^T dY (seed eq. 35)\n"
        f"func @main {{\n  %x = input : f32[{n},{ic},{hw},{hw}]\n  %dy = input : f32[{n},{oc},{hw},{hw}]\n"
        f"  %dw = conv2d_grad_filter(%x, %dy) {{kernel=[3,3], pads=[1,1,1,1]}} : f32[{oc},{ic},3,3]\n"
        f"  return %dw\n}}\n"}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


class Worker:
    """A persistent timing process speaking the run/quit line protocol."""

    def __init__(self, argv, env, timeout):
        self.error = None
        self.info = {}
        self.timeout = timeout
        try:
            self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, env=env)
        except OSError as e:
            self.p, self.error = None, str(e)
            return
        msg = self._read()
        if msg is not None and "error" not in msg:
            self.info = msg

    def _read(self):
        # One request, one line: nothing is left in the pipe's buffer between requests.
        ready, _, _ = select.select([self.p.stdout], [], [], self.timeout)
        if not ready:
            self.p.kill()
            self.error = f"timed out after {self.timeout:.0f} s"
            return None
        line = self.p.stdout.readline()
        if not line:
            err = self.p.stderr.read().strip().splitlines()
            self.error = (err[-1] if err else f"worker exited ({self.p.wait()})")[:300]
            return None
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            self.error = "unexpected worker output: " + line.strip()[:200]
            return None
        if "error" in msg:
            self.error = msg["error"]
        return msg

    def run(self, k):
        """k timed calls; their times in ms, or None after an error."""
        if self.error or self.p is None:
            return None
        try:
            self.p.stdin.write(f"run {k}\n")
            self.p.stdin.flush()
        except (BrokenPipeError, OSError):
            self._read()
            return None
        msg = self._read()
        return None if msg is None or "ms" not in msg else msg["ms"]

    def request(self, line):
        """One request line (e.g. "state"), its JSON answer or None."""
        if self.error or self.p is None:
            return None
        try:
            self.p.stdin.write(line + "\n")
            self.p.stdin.flush()
        except (BrokenPipeError, OSError):
            self._read()
            return None
        return self._read()

    def close(self):
        if self.p is None:
            return
        try:
            self.p.stdin.write("quit\n")
            self.p.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        try:
            self.p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def sh(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, **kw)


def host_cpu_name():
    for llc in ("llc-19", "/usr/lib/llvm-19/bin/llc"):
        if shutil.which(llc) or os.path.exists(llc):
            out = sh([llc, "--version"]).stdout
            m = re.search(r"Host CPU:\s*(\S+)", out)
            if m:
                return m.group(1)
    return "unknown"


def compile_lib(cnnc, case, isa, lib_dir):
    """Builds (or reuses) the case's library for the ISA: (path, seconds or None, error)."""
    tag = re.sub(r"[^A-Za-z0-9]+", "_", case.name).strip("_")
    lib = os.path.join(lib_dir, f"{tag}-{isa}.so")
    deps = [cnnc, case.model]
    if os.path.exists(lib) and all(os.path.getmtime(lib) > os.path.getmtime(d) for d in deps):
        return lib, None, None
    argv = [cnnc, "compile", case.model, "-o", lib, "--batch", str(case.batch),
            "--prefix", "cnnc"]  # bench_worker.cpp calls the unprefixed cnnc_* API
    if case.kind == "train":
        argv.append("--train")
    if isa == "avx2":
        argv += ["--target-cpu", "x86-64-v3"]
    t0 = time.perf_counter()
    r = sh(argv)
    secs = time.perf_counter() - t0
    if r.returncode != 0:
        if os.path.exists(lib):
            os.remove(lib)
        msg = (r.stderr.strip() or r.stdout.strip() or f"exit {r.returncode}").splitlines()
        return None, None, "cnnc compile: " + " / ".join(msg[:3])[:300]
    return lib, secs, None


def prepare_train_case(case, cnnc, gen_dir):
    """Writes what both sides of a training step start from; returns an error or None."""
    tag = re.sub(r"[^A-Za-z0-9]+", "_", case.name).strip("_")
    case.init_npz = os.path.join(gen_dir, f"{tag}.init.npz")
    deps = [cnnc, case.model]
    if not (os.path.exists(case.init_npz) and all(os.path.getmtime(case.init_npz) > os.path.getmtime(d) for d in deps)):
        r = sh([cnnc, "init", case.model, "-o", case.init_npz, "--seed", "1"])
        if r.returncode != 0:
            return "cnnc init: " + (r.stderr.strip() or r.stdout.strip())[:300]
    r = sh([cnnc, "dump", case.model, "--emit=input"])
    if r.returncode != 0:
        return "cnnc dump: " + (r.stderr.strip() or r.stdout.strip())[:300]
    params = [[m.group(1), [int(d) for d in m.group(2).split(",") if d]]
              for m in re.finditer(r"^\s*%(\S+) = param\b.*: f32\[([0-9,]*)\]", r.stdout, re.M)]
    inputs = [[m.group(1), [int(d) for d in m.group(2).split(",") if d]]
              for m in re.finditer(r"^\s*%(\S+) = input\b.*: f32\[([0-9,]*)\]", r.stdout, re.M)]
    if len(inputs) != 1:
        return f"expected one image input in @infer, found {len(inputs)}"
    case.params_json = os.path.join(gen_dir, f"{tag}.params.json")
    with open(case.params_json, "w") as fh:
        json.dump(params, fh)
    # TRAIN_BATCHES batches: pixels uniform in [0, 1), labels uniform over the classes (f32 and
    # i32, little-endian, batch-major: what cnnc_train_step and torch.from_numpy read).
    per = math.prod(inputs[0][1][1:])
    rng = random.Random(7)
    images, labels = os.path.join(gen_dir, f"{tag}.images.f32"), os.path.join(gen_dir, f"{tag}.labels.i32")
    n_img, n_lab = TRAIN_BATCHES * case.batch * per, TRAIN_BATCHES * case.batch
    for path, typ, n, draw in ((images, "f", n_img, rng.random),
                               (labels, "i", n_lab, lambda: rng.randrange(case.classes))):
        if not (os.path.exists(path) and os.path.getsize(path) == 4 * n):
            with open(path, "wb") as fh:
                array.array(typ, (draw() for _ in range(n))).tofile(fh)
    case.data = {inputs[0][0]: images, "label": labels}
    return None


def peak_for(machine, isa, threads):
    i = machine["threads"].index(threads)
    if isa == "host" and machine["avx512f"]:
        return machine["zmm_gflops"][i], "zmm"
    return machine["ymm_gflops"][i], "ymm"


def fmt_num(x):
    return f"{x:.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2f}" if x >= 1 else f"{x:.3g}"


def fmt_ms(s):
    if s is None:
        return "n/a"
    m = fmt_num(s["median"])
    return f"{m} ({fmt_num(s['min'])}–{fmt_num(s['max'])})" if s["n"] > 1 else m


def summarize(vals):
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def measure_case(case, cfg, args, libs, worker_bin):
    isa, threads = cfg
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    for k in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY"):
        env.pop(k, None)
    if isa == "avx2":
        env.update(ONEDNN_MAX_CPU_ISA="AVX2", DNNL_MAX_CPU_ISA="AVX2", ATEN_CPU_CAPABILITY="avx2")
    res = {s: {"summary": None, "error": None, "info": ""} for s in SYSTEMS}
    workers = {}
    lib, lib_err = libs.get((case.name, isa), (None, "not compiled"))
    hyper = ",".join(map(str, TRAIN_HYPER))
    if lib and case.kind == "train":
        workers["cnnc"] = [worker_bin, "cnnc-train", lib, "--batch", str(case.batch), "--threads", str(threads),
                           "--weights", case.init_npz, "--hyper", hyper,
                           "--data", ",".join(f"{k}={v}" for k, v in case.data.items())]
    elif lib:
        argv = [worker_bin, "cnnc", lib, "--batch", str(case.batch), "--threads", str(threads)]
        if case.keep_params:
            argv.append("--keep-params")
        workers["cnnc"] = argv
    else:
        res["cnnc"]["error"] = lib_err
    if case.convs:
        workers["oneDNN"] = [worker_bin, "onednn", "--convs", ";".join(case.convs), "--pass", case.onednn_pass,
                             "--threads", str(threads)]
    elif case.fcs:
        workers["oneDNN"] = [worker_bin, "onednn", "--fcs", ";".join(case.fcs), "--threads", str(threads)]
    else:
        res["oneDNN"]["error"] = "no convolutions"
    if case.kind == "train":
        images, labels = list(case.data.values())
        workers["PyTorch"] = [PY, os.path.join(ROOT, "bench/torch_bench.py"), "serve-train", case.torch_case,
                              "--batch", str(case.batch), "--threads", str(threads), "--weights", case.init_npz,
                              "--params", case.params_json, "--data", images, "--labels", labels,
                              "--hyper", hyper]
    else:
        workers["PyTorch"] = [PY, os.path.join(ROOT, "bench/torch_bench.py"), "serve", case.torch_case,
                              "--batch", str(case.batch), "--threads", str(threads)]
    live = {}
    for s in SYSTEMS:  # started one after the other: setups do not overlap
        if s in workers:
            w = Worker(workers[s], env, args.timeout)
            if w.error:
                res[s]["error"] = w.error
                w.close()
            else:
                live[s] = w
                res[s]["info"] = w.info.get("impl", "")
                if "loss0" in w.info:  # a training step: the first step's loss, same weights and batch
                    res[s]["loss0"] = w.info["loss0"]
    # Warm-up: calls in doubling batches until args.warm_ms has passed (at least one call);
    # a repetition is then as many calls as fill args.rep_ms at the warm-up's median speed.
    reps, nrounds = {}, {}
    for s, w in list(live.items()):
        seen, total, k = [], 0.0, 1
        while True:
            ms = w.run(k)
            if ms is None:
                break
            seen += ms
            total += sum(ms)
            if total >= args.warm_ms or len(seen) >= 1000:
                break
            k *= 2
        if ms is None:
            res[s]["error"] = w.error
            w.close()
            del live[s]
            continue
        t = max(statistics.median(seen[1:] or seen), 1e-3)
        reps[s] = 1 if t >= args.rep_ms else min(1000, math.ceil(args.rep_ms / t))
        # Calls over a second: three rounds unless --rounds says otherwise (the full run's budget).
        nrounds[s] = args.rounds if args.rounds_given or t < 1000 else min(args.rounds, 3)
    values = {s: [] for s in live}
    for r in range(max(nrounds.values(), default=0)):
        for s in SYSTEMS:
            if s not in live or r >= nrounds[s]:
                continue
            ms = live[s].run(reps[s])
            if ms is None:
                res[s]["error"] = live[s].error
                live[s].close()
                del live[s]
                continue
            values[s].append(statistics.median(ms))
    for s, w in live.items():
        if case.kind == "train" and s != "oneDNN":  # after the timed steps: finite, normal numbers?
            res[s]["state"] = w.request("state")
        w.close()
    for s, v in values.items():
        if s in res and res[s]["error"] is None:
            res[s]["summary"] = summarize(v)
            res[s]["calls_per_rep"] = reps[s]
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default=None, help="thread counts, e.g. 1,2 (default: 1 and every CPU)")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved repetitions per case (default 5; 3 for calls over 1 s)")
    ap.add_argument("--cases", default=None, help="regular expression on case names, e.g. 'conv3|VGG'")
    ap.add_argument("--isa", default="host,avx2", help="builds to compare: host (default target), avx2 (x86-64-v3)")
    ap.add_argument("--quick", action="store_true", help="batch-1 cases, the largest thread count, 3 rounds")
    ap.add_argument("--smoke", action="store_true",
                    help="one forward layer, one backward layer, one small training step; one repetition, every peer (CI)")
    ap.add_argument("--rep-ms", type=float, default=None, help="minimum length of one repetition (ms)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds a worker may take for one request")
    ap.add_argument("--out", default=None, help="output directory (default bench/results; smoke: build/bench/smoke)")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--note", default="", help="a sentence for the report's header (e.g. the machine's state)")
    ap.add_argument("--report-from", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    t_start = time.time()
    if args.report_from:
        return report_from(args.report_from, args.out or os.path.join(ROOT, "bench/results"), args.note)

    cnnc = os.path.join(args.build, "tools/cnnc")
    worker_bin = os.path.join(args.build, "bench/cnnc_bench_worker")
    work = os.path.join(args.build, "bench")
    gen_dir, lib_dir = os.path.join(work, "models"), os.path.join(work, "libs")
    os.makedirs(lib_dir, exist_ok=True)
    write_layer_models(gen_dir)

    ncpu = len(os.sched_getaffinity(0))
    if args.threads:
        threads = sorted({int(t) for t in args.threads.split(",")})
    else:
        threads = sorted({1, ncpu})
    isas = [i for i in args.isa.split(",") if i]
    cases = all_cases(gen_dir)
    args.rounds_given = args.rounds is not None
    rounds = 5 if args.rounds is None else args.rounds
    rep_ms, warm_ms = 100.0, 300.0
    if args.quick:
        cases = [c for c in cases if c.batch == 1]
        threads = [max(threads)] if not args.threads else threads
        rounds = 3 if args.rounds is None else rounds
        rep_ms, warm_ms = 50.0, 150.0
    if args.smoke:
        cases = [c for c in cases if c.name in ("conv5_x b1", "conv5_x bwd-data b1", "train MNIST BASE b100")]
        threads = [1] if not args.threads else threads
        rounds = 1 if args.rounds is None else rounds
        rep_ms, warm_ms = 1.0, 0.0
    if args.cases:
        cases = [c for c in cases if re.search(args.cases, c.name)]
    args.rounds = rounds
    args.rep_ms = args.rep_ms if args.rep_ms is not None else rep_ms
    args.warm_ms = warm_ms
    out_dir = args.out or (os.path.join(work, "smoke") if args.smoke else os.path.join(ROOT, "bench/results"))
    os.makedirs(out_dir, exist_ok=True)
    if not cases:
        sys.exit("harness: no case matches --cases")

    # The machine: FMA peaks (zmm, ymm) and triad bandwidth at every thread count of the run.
    log(f"harness: measuring the machine (threads {threads})")
    r = sh([worker_bin, "machine", "--threads", ",".join(map(str, threads)),
            "--seconds", "0.05" if args.smoke else "0.2"])
    if r.returncode != 0:
        sys.exit("harness: cnnc_bench_worker machine failed: " + r.stderr + r.stdout)
    machine = json.loads(r.stdout)
    machine["threads"] = [int(t) for t in machine["threads"]]
    machine["host_cpu"] = host_cpu_name()
    if not machine["avx512f"] and "host" in isas and "avx2" in isas:
        log("harness: no AVX-512 here: the host build is an AVX2 build too")

    # torchvision's models through ONNX, exported once.
    for _, torch_case, _ in ONNX_NETS:
        onnx_path = os.path.join(gen_dir, f"{torch_case}.onnx")
        if not any(c.torch_case == torch_case for c in cases) or os.path.exists(onnx_path):
            continue
        log(f"harness: exporting torchvision's {torch_case} to ONNX")
        r = sh([PY, os.path.join(ROOT, "bench/torch_bench.py"), "export", torch_case, onnx_path])
        if r.returncode != 0:
            for c in cases:
                if c.torch_case == torch_case:
                    c.error = "ONNX export failed: " + (r.stderr.strip().splitlines() or ["?"])[-1][:200]

    # FLOPs, convolutions and FC weights of every case (from the PyTorch models).
    specs = sorted({f"{c.torch_case}:{c.batch}" for c in cases})
    r = sh([PY, os.path.join(ROOT, "bench/torch_bench.py"), "describe", *specs])
    if r.returncode != 0:
        sys.exit("harness: torch_bench.py describe failed: " + r.stderr[-2000:])
    desc = json.loads(r.stdout)
    for c in cases:
        d = desc[f"{c.torch_case}:{c.batch}"]
        c.flops, c.convs, c.fc_bytes = d["flops"], d["convs"], d["fc_weight_bytes"]
        if c.kind == "layer" and c.torch_case.startswith("fc:"):
            c.fcs = d["fcs"]

    # Training steps: initial weights (`cnnc init`), cnnc's param order for PyTorch, the batches.
    for c in cases:
        if c.kind == "train" and not c.error:
            c.error = prepare_train_case(c, cnnc, gen_dir)

    # cnnc libraries, one per case and ISA.
    libs, compile_s = {}, {}
    for c in cases:
        for isa in isas:
            if c.error:
                libs[(c.name, isa)] = (None, c.error)
                continue
            log(f"harness: cnnc compile {c.name} ({isa})")
            lib, secs, err = compile_lib(cnnc, c, isa, lib_dir)
            libs[(c.name, isa)] = (lib, err)
            if secs is not None:
                compile_s[(c.name, isa)] = secs

    # Measure: configuration by configuration, case by case, systems interleaved per round.
    results = []
    for isa in isas:
        for t in threads:
            peak, width = peak_for(machine, isa, t)
            triad = machine["triad_gbs"][machine["threads"].index(t)]
            for c in cases:
                log(f"harness: {isa}, {t} thread(s): {c.name}")
                res = measure_case(c, (isa, t), args, libs, worker_bin)
                results.append({"isa": isa, "threads": t, "peak": peak, "width": width, "triad": triad,
                                "case": c, "res": res})

    # The peaks and the bandwidth are properties of the hardware: measured again at the end,
    # the better of the two measurements counts (a busy machine only ever lowers them).
    r = sh([worker_bin, "machine", "--threads", ",".join(map(str, threads)),
            "--seconds", "0.05" if args.smoke else "0.2"])
    if r.returncode == 0:
        again = json.loads(r.stdout)
        for k in ("zmm_gflops", "ymm_gflops", "triad_gbs"):
            machine[k + "_start"], machine[k + "_end"] = machine[k], again[k]
            machine[k] = [max(a, b) for a, b in zip(machine[k], again[k])]
        for e in results:
            e["peak"], e["width"] = peak_for(machine, e["isa"], e["threads"])
            e["triad"] = machine["triad_gbs"][machine["threads"].index(e["threads"])]

    with open(os.path.join(work, "last-run.json"), "w") as fh:  # to redo the report: --report-from
        json.dump({"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                   "argv": sys.argv[1:], "note": args.note, "load": os.getloadavg(), "rounds": args.rounds, "machine": machine, "isas": isas,
                   "threads": threads, "elapsed": time.time() - t_start,
                   "compile_s": [[n, i, s] for (n, i), s in compile_s.items()],
                   "results": [dict(e, case=vars(e["case"])) for e in results]}, fh)
    write_outputs(results, machine, args, out_dir, compile_s, isas, threads, time.time() - t_start)
    if args.smoke:  # CI: every system must have run (speed is never asserted)
        errors = [f"{e['case'].name} ({e['isa']}, {e['threads']}T), {s}: {e['res'][s]['error']}"
                  for e in results for s in SYSTEMS if e["res"][s]["summary"] is None]
        if errors:
            sys.exit("harness --smoke: a system did not run:\n  " + "\n  ".join(errors))


def report_from(path, out_dir, note=""):
    """Rewrites the report of a finished run from its saved measurements (no re-measuring)."""
    d = json.load(open(path))
    results = []
    for e in d["results"]:
        c = Case.__new__(Case)
        c.__dict__.update(e["case"])
        results.append(dict(e, case=c))
    args = argparse.Namespace(rounds=d["rounds"], note=note or d.get("note", ""))
    sys.argv = [sys.argv[0]] + d["argv"]
    compile_s = {(n, i): s for n, i, s in d["compile_s"]}
    os.makedirs(out_dir, exist_ok=True)
    write_outputs(results, d["machine"], args, out_dir, compile_s, d["isas"], d["threads"], d["elapsed"],
                  d.get("date"), d.get("load"))


def row_numbers(e):
    """Derived numbers of one (configuration, case) result."""
    c, res = e["case"], e["res"]
    out = {}
    for s in SYSTEMS:
        sm = res[s]["summary"]
        out[s] = None
        if sm:
            gf = c.flops / (sm["median"] * 1e-3) / 1e9
            out[s] = {"ms": sm, "gflops": gf, "pct": 100 * gf / e["peak"] if e["peak"] else float("nan")}
    cn, od, pt = out["cnnc"], out["oneDNN"], out["PyTorch"]
    out["vs_onednn"] = od["ms"]["median"] / cn["ms"]["median"] if cn and od else None
    out["vs_torch"] = pt["ms"]["median"] / cn["ms"]["median"] if cn and pt else None
    out["bound_ms"] = None
    if c.kind in ("network", "train") and od:
        out["bound_ms"] = od["ms"]["median"] + (c.fc_bytes / (e["triad"] * 1e9) * 1e3 if e["triad"] else 0)
    out["vs_bound"] = cn["ms"]["median"] / out["bound_ms"] if cn and out["bound_ms"] else None
    return out


SECTIONS = [  # (heading, case kinds, the oneDNN column's header)
    ("Forward", KINDS_FWD, "oneDNN"),
    ("Backward: VGG-16 layers' input and filter gradients (no bias)", KINDS_BWD, "oneDNN"),
    ("Training steps (forward, backward, SGD with momentum and weight decay)", ("train",),
     "oneDNN convs fwd + bwd"),
]


def train_check(res):
    """One line on a training step's sanity: first-step losses (same weights, same batch) and the
    state after the timed steps (finite, no subnormals)."""
    parts = []
    for s in ("cnnc", "PyTorch"):
        l0, st = res[s].get("loss0"), res[s].get("state")
        if l0 is None and not st:
            continue
        p = f"{s} first loss {l0:.6g}" if l0 is not None else f"{s} first loss n/a"
        if st:
            p += (f", after {st['steps']} steps loss {st['loss']:.4g}" if st.get("finite_loss") else
                  f", after {st['steps']} steps loss NOT FINITE")
            p += f", state {st['nonfinite']} non-finite / {st['subnormal']} subnormal of {st['values']}"
        parts.append(p)
    return "; ".join(parts)


def write_row(e, md, text, notes, csv_rows, isa, t):
    c, res = e["case"], e["res"]
    n = row_numbers(e)
    vs_dnnl = c.kind not in ("network", "train")  # whole networks: oneDNN times their convs only

    def cell(s):
        if n[s]:
            return fmt_ms(n[s]["ms"])
        err = res[s]["error"]
        if err and err != "no convolutions":
            notes.append(f"{c.name}, {s}: {err}")
            return "error"
        return "—"
    pct = " / ".join(f"{n[s]['pct']:.0f}%" if n[s] else "—" for s in SYSTEMS)
    od_label = cell("oneDNN")
    if c.kind == "network" and n["oneDNN"]:
        od_label += " (convs)"
    md.append(f"| {c.name} | {c.flops / 1e9:.3g} | {cell('cnnc')} | {od_label} | {cell('PyTorch')} | "
              f"{(n['cnnc']['gflops'] if n['cnnc'] else float('nan')):.1f} | {pct} | "
              f"{'%.2f' % n['vs_onednn'] if n['vs_onednn'] and vs_dnnl else '—'} | "
              f"{'%.2f' % n['vs_torch'] if n['vs_torch'] else '—'} | "
              f"{fmt_num(n['bound_ms']) if n['bound_ms'] else '—'} | "
              f"{'%.2f' % n['vs_bound'] if n['vs_bound'] else '—'} |")
    check = train_check(res) if c.kind == "train" else ""
    if check:
        notes.append(f"{c.name}: {check}")

    def f(x, spec):
        return format(x, spec) if x is not None else "n/a"
    text.append(f"{c.name:<26}"
                + "".join(f"{f(n[s]['ms']['median'] if n[s] else None, '.3f'):>12}" for s in SYSTEMS)
                + f"{f(n['cnnc']['gflops'] if n['cnnc'] else None, '.1f'):>11}"
                + "".join(f"{f(n[s]['pct'] if n[s] else None, '.0f'):>9}" for s in SYSTEMS[:2])
                + f"{f(n['PyTorch']['pct'] if n['PyTorch'] else None, '.0f'):>10}"
                + f"{f(n['vs_onednn'] if vs_dnnl else None, '.2f'):>9}"
                + f"{f(n['vs_torch'], '.2f'):>9}{f(n['vs_bound'], '.2f'):>9}")
    if check:
        text.append(f"    {check}")
    for s in SYSTEMS:
        sm = n[s]["ms"] if n[s] else None
        csv_rows.append({
            "isa": isa, "threads": t, "case": c.name, "batch": c.batch, "kind": c.kind,
            "system": s, "gflop": f"{c.flops / 1e9:.6g}",
            "median_ms": f"{sm['median']:.5g}" if sm else "", "min_ms": f"{sm['min']:.5g}" if sm else "",
            "max_ms": f"{sm['max']:.5g}" if sm else "", "rounds": sm["n"] if sm else 0,
            "calls_per_round": res[s].get("calls_per_rep", ""),
            "gflops": f"{n[s]['gflops']:.4g}" if n[s] else "",
            "peak_gflops": f"{e['peak']:.4g}", "pct_peak": f"{n[s]['pct']:.4g}" if n[s] else "",
            "cnnc_speed_ratio": (f"{n['vs_onednn']:.4g}" if s == "oneDNN" and n["vs_onednn"] and vs_dnnl else
                                 f"{n['vs_torch']:.4g}" if s == "PyTorch" and n["vs_torch"] else ""),
            "bound_ms": f"{n['bound_ms']:.5g}" if s == "cnnc" and n["bound_ms"] else "",
            "first_loss": f"{res[s]['loss0']:.7g}" if res[s].get("loss0") is not None else "",
            "state_check": json.dumps(res[s]["state"]) if res[s].get("state") else "",
            "impl": res[s].get("info", ""), "error": res[s]["error"] or ""})


def write_outputs(results, machine, args, out_dir, compile_s, isas, threads, elapsed, date=None, load=None):
    now = date or datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load = load or os.getloadavg()
    torch_v = sh([PY, "-c", "import torch; print(torch.__version__)"]).stdout.strip()
    dnnl_v = "?"
    hdr = "/usr/include/oneapi/dnnl/dnnl_version.h"
    if os.path.exists(hdr):
        v = dict(re.findall(r"#define DNNL_VERSION_(MAJOR|MINOR|PATCH) (\d+)", open(hdr).read()))
        dnnl_v = f"{v.get('MAJOR')}.{v.get('MINOR')}.{v.get('PATCH')}"
    md = []
    md.append("# cnnc vs oneDNN and PyTorch: forward, backward and training speed (bench/run.sh)\n")
    argv, skip = [], False
    for a in sys.argv[1:]:  # the command without --note TEXT
        if skip or a == "--note":
            skip = not skip
            continue
        if not a.startswith("--note="):
            argv.append(a)
    md.append(f"Measured {now} by `{shlex.join(['bash', 'bench/run.sh'] + argv)}`" +
              f" in {elapsed / 60:.1f} min; load average at the end {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} "
              f"(1 / 5 / 15 min).\n")
    if args.note:
        md.append(f"**{args.note}**\n")
    md.append(f"Machine: {machine['cpu']} (LLVM host CPU `{machine['host_cpu']}`), {machine['logical_cpus']} "
              f"CPUs, AVX-512F {'yes' if machine['avx512f'] else 'no'}. oneDNN {dnnl_v} (OpenMP), "
              f"PyTorch {torch_v}. {args.rounds} interleaved round(s) per case (at most 3 for calls over 1 s unless "
              f"--rounds is given; the CSV has each row's count), per-call times in ms: "
              f"median (min–max over rounds).\n")
    md.append("Measured by the harness at the start and at the end of the run; the better of the two counts "
              "(per-measurement values in machine.json).\n")
    md.append("| threads | FMA peak zmm GFLOP/s | FMA peak ymm GFLOP/s | triad GB/s |\n|---:|---:|---:|---:|")
    for i, t in enumerate(machine["threads"]):
        md.append(f"| {t} | {machine['zmm_gflops'][i]:.1f} | {machine['ymm_gflops'][i]:.1f} | "
                  f"{machine['triad_gbs'][i]:.1f} |")
    md.append("")
    csv_rows = []
    text = []
    for isa in isas:
        for t in threads:
            block = [e for e in results if e["isa"] == isa and e["threads"] == t]
            if not block:
                continue
            e0 = block[0]
            title = (f"## {'host build (default target)' if isa == 'host' else 'AVX2 build (--target-cpu x86-64-v3)'}"
                     f", {t} thread(s); peak = {e0['width']} FMA peak {e0['peak']:.1f} GFLOP/s"
                     + (", oneDNN and PyTorch limited to AVX2" if isa == "avx2" else ""))
            md.append(title + "\n")
            text.append(title[3:])
            notes = []
            for section, kinds, hdr in SECTIONS:
                rows = [e for e in block if e["case"].kind in kinds]
                if not rows:
                    continue
                md.append(f"### {section}\n")
                md.append(f"| case | GFLOP | cnnc ms | {hdr} ms | PyTorch ms | cnnc GFLOP/s | % peak cnnc / oneDNN / PyTorch "
                          "| cnnc ÷ oneDNN speed | cnnc ÷ PyTorch speed | bound ms | cnnc ÷ bound time |")
                md.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
                text.append(f"{section}:")
                text.append(f"{'case':<26}{'cnnc ms':>12}{'oneDNN ms':>12}{'torch ms':>12}{'cnnc GF/s':>11}"
                            f"{'%pk cnnc':>9}{'%pk dnnl':>9}{'%pk torch':>10}{'vs dnnl':>9}{'vs torch':>9}{'vs bound':>9}")
                for e in rows:
                    write_row(e, md, text, notes, csv_rows, isa, t)
                md.append("")
            impls = sorted({e["res"]["oneDNN"]["info"] for e in block if e["res"]["oneDNN"]["info"]})
            if impls:
                md.append(f"\noneDNN implementations chosen: {', '.join('`%s`' % i for i in impls)}.")
            for note in notes:
                md.append(f"\n- {note}")
            md.append("")
            text.append("")
    if compile_s:
        md.append("`cnnc compile` seconds (this run, libraries not already up to date): " +
                  ", ".join(f"{n} ({i}) {s:.2f}" for (n, i), s in sorted(compile_s.items())) + ".\n")
    md.append(
        "Columns: times are per call (median and min–max over the rounds; each round's value is the median of "
        "its calls when one call is short). GFLOP counts 2 × the multiply-adds of the convolutions and "
        "fully connected layers. % peak = GFLOP/s ÷ the FMA peak measured above for the ISA in use (zmm for "
        "the host build on an AVX-512 machine, ymm for the AVX2 build) at the same thread count. "
        "cnnc ÷ X speed = X's time ÷ cnnc's time (above 1: cnnc is faster). For whole networks oneDNN times "
        "only the network's convolutions (primitives in sequence, blocked layouts); the bound is that time + "
        "the FC weights' bytes ÷ the measured triad bandwidth, and cnnc ÷ bound time should be ≤ 1.15 "
        "(issue 12). Backward layers: cnnc's conv2d_grad_input / conv2d_grad_filter (an .ir model of that "
        "one op) beside oneDNN's convolution_backward_data / _weights primitives and aten's "
        "convolution_backward, no bias anywhere. Training steps: GFLOP counts forward, filter gradient and "
        "input gradient (where needed) of every conv and FC layer; oneDNN times forward_training + "
        "backward_weights (+ backward_data where the layer's input needs a gradient) of the step's convs, "
        "each primitive on its own data; the bound (issue 13) is that time + the FC weights' bytes ÷ the "
        "triad bandwidth, and cnnc ÷ bound time should be ≤ 1.2 for VGG-16. docs/performance.md explains "
        "the method.\n")
    with open(os.path.join(out_dir, "perf.md"), "w") as fh:
        fh.write("\n".join(md))
    with open(os.path.join(out_dir, "perf.csv"), "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(csv_rows[0].keys()))
        w.writeheader()
        w.writerows(csv_rows)
    with open(os.path.join(out_dir, "machine.json"), "w") as fh:
        json.dump(machine, fh, indent=1)
    chart(results, isas, threads, out_dir)
    print("\n".join(text))
    i = machine["threads"]
    print("machine: " + "; ".join(f"{t} thread(s): zmm {machine['zmm_gflops'][k]:.1f}, ymm "
                                  f"{machine['ymm_gflops'][k]:.1f} GFLOP/s, triad {machine['triad_gbs'][k]:.1f} GB/s"
                                  for k, t in enumerate(i)))
    print(f"wrote {out_dir}/perf.md, perf.csv, machine.json, perf.png ({elapsed / 60:.1f} min)")


def chart(results, isas, threads, out_dir):
    """perf.png: % of peak per layer case, one bar per system, one panel per configuration."""
    gp = shutil.which("gnuplot")
    if not gp:
        log("harness: gnuplot not found (gnuplot-nox): no chart")
        return
    panels = []
    for isa in isas:
        for t in threads:
            block = [e for e in results if e["isa"] == isa and e["threads"] == t and e["case"].kind == "layer"]
            if not block:
                continue
            dat = os.path.join(out_dir, f".chart-{isa}-{t}.dat")
            with open(dat, "w") as fh:
                for e in block:
                    n = row_numbers(e)
                    vals = [f"{n[s]['pct']:.2f}" if n[s] else "0" for s in SYSTEMS]
                    fh.write(f"\"{e['case'].name}\" {' '.join(vals)}\n")
            label = "host build" if isa == "host" else "AVX2 build"
            panels.append((dat, f"{label}, {t} thread(s): % of the {block[0]['width']} FMA peak "
                                f"({block[0]['peak']:.0f} GFLOP/s)"))
    if not panels:
        return
    png = os.path.join(out_dir, "perf.png")
    h = 380 * len(panels)
    script = [f"set terminal pngcairo size 1400,{h} font 'sans,10'", f"set output '{png}'",
              f"set multiplot layout {len(panels)},1", "set style data histograms",
              "set style histogram clustered gap 1", "set style fill solid 0.85 border -1", "set boxwidth 0.9",
              "set termoption noenhanced", "set yrange [0:100<*]",
              "set arrow from graph 0, first 100 to graph 1, first 100 nohead dt 2 lc rgb 'gray40'", "set ylabel '% of FMA peak'", "set grid ytics", "set key top right",
              "set xtics rotate by -30 nomirror"]
    for dat, title in panels:
        script += [f"set title \"{title}\"",
                   f"plot '{dat}' using 2:xtic(1) title 'cnnc' lc rgb '#1f77b4', '' using 3 title 'oneDNN' "
                   f"lc rgb '#ff7f0e', '' using 4 title 'PyTorch' lc rgb '#2ca02c'"]
    script.append("unset multiplot")
    r = subprocess.run([gp], input="\n".join(script), capture_output=True, text=True)
    if r.returncode != 0:
        log("harness: gnuplot failed: " + r.stderr[-500:])
    for dat, _ in panels:
        os.remove(dat)


if __name__ == "__main__":
    main()
