"""An ONNX inference graph run by PyTorch: cnnc's own converter (`cnnc bench --vs-torch`,
docs/cli.md). PyTorch 1.13 reads no ONNX, so the graph is read with the onnx package
(Debian's python3-onnx) and each node becomes a torch.nn.functional (or torch) call, in
graph order, on the graph's initializers as tensors. The ops are those `cnnc export` writes
and the common ones of imported models; any other op is an error naming the node.

    import cnnc.onnx_torch as ot
    run = ot.convert("model.onnx")           # a callable: run(*inputs) -> list of outputs
    outs = run(torch.from_numpy(x))

As a worker (the interleaved timing of `cnnc bench --vs-torch`, the protocol of
bench/bench_worker.cpp):

    python3 onnx_torch.py serve MODEL.onnx --inputs A.npy[,B.npy] --expect OUT.npy[,...]
                          --threads T [--rtol R]
prints {"ready": true, "max_err": e, "scale": s} once the outputs on the given inputs
(positional: the graph's inputs that are not initializers, in graph order) agree with the
expected ones (cnnc's) within max|a - b| <= R * max(1, max|b|) per output (default R 1e-3),
else {"error": ...} and exits 1; then per line "run K" makes K timed calls and prints
{"ms": [...]}; "quit" or the end of input exits.
"""

import json
import sys
import time

import numpy as np
import onnx
from onnx import numpy_helper
import torch
import torch.nn.functional as F


def _attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _pads_2d(pads, rank):
    """ONNX pads [b1, b2, ..., e1, e2, ...] over the spatial dims -> F.pad's order (last dim
    first, begin then end)."""
    k = rank - 2
    out = []
    for d in reversed(range(k)):
        out += [pads[d], pads[d + k]]
    return out


def _symmetric(pads):
    k = len(pads) // 2
    return all(pads[d] == pads[d + k] for d in range(k)), list(pads[:k])


def _ints(t):
    return [int(v) for v in t.flatten().tolist()]


class _Graph:
    def __init__(self, model):
        g = model.graph
        self.consts = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in g.initializer}
        self.inputs = [i.name for i in g.input if i.name not in self.consts]
        self.outputs = [o.name for o in g.output]
        self.nodes = list(g.node)
        for n in self.nodes:  # fail now, not at the first call
            if n.op_type not in _OPS:
                raise ValueError(f"onnx_torch: node '{n.name or n.output[0]}': op {n.op_type} is not converted")

    def __call__(self, *xs):
        env = dict(self.consts)
        for name, x in zip(self.inputs, xs):
            env[name] = x
        for n in self.nodes:
            args = [env[i] if i else None for i in n.input]
            res = _OPS[n.op_type](args, _attrs(n))
            if not isinstance(res, (list, tuple)):
                res = [res]
            for name, v in zip(n.output, res):
                if name:
                    env[name] = v
        return [env[o] for o in self.outputs]


def _conv(a, at):
    x, w = a[0], a[1]
    b = a[2] if len(a) > 2 else None
    rank = x.dim()
    pads = at.get("pads", [0] * (2 * (rank - 2)))
    sym, p = _symmetric(pads)
    if not sym:
        x, p = F.pad(x, _pads_2d(pads, rank)), [0] * (rank - 2)
    conv = F.conv2d if rank == 4 else F.conv1d
    return conv(x, w, b, stride=at.get("strides", 1), padding=p, dilation=at.get("dilations", 1),
                groups=at.get("group", 1))


def _conv_transpose(a, at):
    x, w = a[0], a[1]
    b = a[2] if len(a) > 2 else None
    pads = at.get("pads", [0, 0, 0, 0])
    sym, p = _symmetric(pads)
    if not sym:
        raise ValueError("onnx_torch: ConvTranspose with asymmetric pads is not converted")
    return F.conv_transpose2d(x, w, b, stride=at.get("strides", 1), padding=p,
                              output_padding=at.get("output_padding", 0), groups=at.get("group", 1),
                              dilation=at.get("dilations", 1))


def _pool(kind):
    def run(a, at):
        x = a[0]
        k = at["kernel_shape"]
        pads = at.get("pads", [0] * (2 * len(k)))
        s = at.get("strides", [1] * len(k))
        ceil = bool(at.get("ceil_mode", 0))
        sym, p = _symmetric(pads)
        if kind == "max":
            if not sym:
                x, p = F.pad(x, _pads_2d(pads, x.dim()), value=float("-inf")), [0] * len(k)
            return F.max_pool2d(x, k, s, p, dilation=at.get("dilations", 1), ceil_mode=ceil)
        include = bool(at.get("count_include_pad", 0))
        if not sym:
            if not include:
                raise ValueError("onnx_torch: AveragePool with asymmetric pads excluded from the count")
            x, p = F.pad(x, _pads_2d(pads, x.dim())), [0] * len(k)
        return F.avg_pool2d(x, k, s, p, ceil_mode=ceil, count_include_pad=include)
    return run


def _gemm(a, at):
    x, w = a[0], a[1]
    if at.get("transA", 0):
        x = x.t()
    if at.get("transB", 0):
        w = w.t()
    y = at.get("alpha", 1.0) * (x @ w)
    if len(a) > 2 and a[2] is not None:
        y = y + at.get("beta", 1.0) * a[2]
    return y


def _reshape(a, at):
    x, shape = a[0], _ints(a[1])
    if not at.get("allowzero", 0):
        shape = [x.shape[i] if v == 0 else v for i, v in enumerate(shape)]
    return x.reshape(shape)


def _flatten(a, at):
    x, axis = a[0], at.get("axis", 1)
    axis = axis + x.dim() if axis < 0 else axis
    lead = 1
    for d in x.shape[:axis]:
        lead *= d
    return x.reshape(lead, -1)


def _batchnorm(a, at):
    x, scale, bias, mean, var = a[:5]
    return F.batch_norm(x, mean, var, scale, bias, training=False, eps=at.get("epsilon", 1e-5))


def _slice(a, at):
    x = a[0]
    starts, ends = _ints(a[1]), _ints(a[2])
    axes = _ints(a[3]) if len(a) > 3 and a[3] is not None else list(range(len(starts)))
    steps = _ints(a[4]) if len(a) > 4 and a[4] is not None else [1] * len(starts)
    idx = [slice(None)] * x.dim()
    for s, e, ax, st in zip(starts, ends, axes, steps):
        if st < 0:
            raise ValueError("onnx_torch: Slice with a negative step is not converted")
        n = x.shape[ax]
        s = max(0, min(n, s + n if s < 0 else s))
        e = max(0, min(n, e + n if e < 0 else e))
        idx[ax] = slice(s, e, st)
    return x[tuple(idx)]


def _pad(a, at):
    x, pads = a[0], _ints(a[1])
    value = float(a[2].item()) if len(a) > 2 and a[2] is not None else 0.0
    mode = at.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    r = x.dim()
    tp = []
    for d in reversed(range(r)):
        tp += [pads[d], pads[d + r]]
    mode = {"constant": "constant", "reflect": "reflect", "edge": "replicate"}[mode]
    if mode == "constant":
        return F.pad(x, tp, value=value)
    # reflect/replicate pad only the trailing dims in torch
    while len(tp) > 2 * (r - 2) and tp[-1] == 0 and tp[-2] == 0:
        tp = tp[:-2]
    return F.pad(x, tp, mode=mode)


def _clip(a, at):
    lo = a[1].item() if len(a) > 1 and a[1] is not None else at.get("min", None)
    hi = a[2].item() if len(a) > 2 and a[2] is not None else at.get("max", None)
    return torch.clamp(a[0], lo, hi)


def _reduce_sum(a, at):
    axes = _ints(a[1]) if len(a) > 1 and a[1] is not None else at.get("axes", None)
    keep = bool(at.get("keepdims", 1))
    if axes is None:
        return a[0].sum().reshape([1] * a[0].dim()) if keep else a[0].sum()
    return a[0].sum(dim=axes, keepdim=keep)


def _softmax(log):
    def run(a, at):
        f = F.log_softmax if log else F.softmax
        return f(a[0], dim=at.get("axis", -1))
    return run


def _constant(a, at):
    return torch.from_numpy(numpy_helper.to_array(at["value"]).copy())


_OPS = {
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "MaxPool": _pool("max"),
    "AveragePool": _pool("avg"),
    "GlobalAveragePool": lambda a, at: a[0].mean(dim=(2, 3), keepdim=True),
    "GlobalMaxPool": lambda a, at: a[0].amax(dim=(2, 3), keepdim=True),
    "Gemm": _gemm,
    "MatMul": lambda a, at: torch.matmul(a[0], a[1]),
    "Relu": lambda a, at: F.relu(a[0]),
    "LeakyRelu": lambda a, at: F.leaky_relu(a[0], at.get("alpha", 0.01)),
    "Elu": lambda a, at: F.elu(a[0], at.get("alpha", 1.0)),
    "Selu": lambda a, at: F.selu(a[0]),
    "PRelu": lambda a, at: torch.where(a[0] > 0, a[0], a[1] * a[0]),
    "HardSigmoid": lambda a, at: torch.clamp(at.get("alpha", 0.2) * a[0] + at.get("beta", 0.5), 0, 1),
    "HardSwish": lambda a, at: F.hardswish(a[0]),
    "Sigmoid": lambda a, at: torch.sigmoid(a[0]),
    "Tanh": lambda a, at: torch.tanh(a[0]),
    "Exp": lambda a, at: torch.exp(a[0]),
    "Log": lambda a, at: torch.log(a[0]),
    "Sqrt": lambda a, at: torch.sqrt(a[0]),
    "Abs": lambda a, at: torch.abs(a[0]),
    "Neg": lambda a, at: -a[0],
    "Clip": _clip,
    "Add": lambda a, at: a[0] + a[1],
    "Sub": lambda a, at: a[0] - a[1],
    "Mul": lambda a, at: a[0] * a[1],
    "Div": lambda a, at: a[0] / a[1],
    "Max": lambda a, at: torch.stack(torch.broadcast_tensors(*a)).amax(0),
    "Min": lambda a, at: torch.stack(torch.broadcast_tensors(*a)).amin(0),
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Transpose": lambda a, at: a[0].permute(at.get("perm", list(reversed(range(a[0].dim()))))),
    "Concat": lambda a, at: torch.cat(a, dim=at["axis"]),
    "Slice": _slice,
    "Pad": _pad,
    "Expand": lambda a, at: a[0].expand(torch.broadcast_shapes(a[0].shape, tuple(_ints(a[1])))),
    "Identity": lambda a, at: a[0],
    "Dropout": lambda a, at: a[0],  # inference
    "BatchNormalization": _batchnorm,
    "Softmax": _softmax(False),
    "LogSoftmax": _softmax(True),
    "ReduceSum": _reduce_sum,
    "Constant": _constant,
}


def convert(path):
    """The graph of an ONNX file as a callable on torch tensors (inputs positional)."""
    return _Graph(onnx.load(path))


def _serve(argv):
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--inputs", required=True)
    ap.add_argument("--expect", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rtol", type=float, default=1e-3)
    a = ap.parse_args(argv)
    torch.set_num_threads(max(1, a.threads))
    try:
        run = convert(a.model)
        xs = [torch.from_numpy(np.load(f)) for f in a.inputs.split(",")]
        with torch.inference_mode():
            outs = run(*xs)
        worst, scale = 0.0, 0.0
        for out, f in zip(outs, a.expect.split(",")):
            ref = np.load(f)
            got = out.numpy()
            if got.shape != ref.shape:
                raise ValueError(f"output shape {list(got.shape)}, cnnc's {list(ref.shape)}")
            err = float(np.max(np.abs(got.astype(np.float64) - ref))) if ref.size else 0.0
            s = max(1.0, float(np.max(np.abs(ref))) if ref.size else 0.0)
            if err > a.rtol * s:
                raise ValueError(f"PyTorch and cnnc disagree: max|difference| {err:.3g} > {a.rtol:g} x {s:.3g}")
            worst, scale = max(worst, err), max(scale, s)
    except Exception as e:  # one line for the caller, whatever failed
        print(json.dumps({"error": str(e)}), flush=True)
        return 1
    print(json.dumps({"ready": True, "max_err": worst, "scale": scale,
                      "threads": torch.get_num_threads(), "torch": torch.__version__}), flush=True)
    with torch.inference_mode():
        for line in sys.stdin:
            line = line.strip()
            if line.startswith("run"):
                k = max(1, int(line[3:] or 1))
                ms = []
                for _ in range(k):
                    t0 = time.perf_counter()
                    run(*xs)
                    ms.append((time.perf_counter() - t0) * 1e3)
                print(json.dumps({"ms": ms}), flush=True)
            elif line == "quit":
                break
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] != "serve":
        sys.exit(__doc__)
    sys.exit(_serve(sys.argv[2:]))
