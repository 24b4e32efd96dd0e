"""cnnc from Python: compile a model (through the `cnnc` command) and run the shared library
it makes, with ctypes and numpy only (no C extension to build).

    import cnnc, numpy as np
    cnnc.compile("examples/mnist_base.cnn", "libmnist.so", batch=100, weights="weights.npz")
    lib = cnnc.load("libmnist.so")          # the library's prefix is read from its symbols
    prob = lib.infer(images)                # float32 [n, 1, 28, 28] -> [n, 10], any n
    lib.set_param("conv1.w", w); lib.get_param("conv1.w")
    loss, correct = lib.train_step(x, y, lr=0.001)   # libraries compiled with train=True
    lib.save_checkpoint("ck.npz"); lib.load_checkpoint("ck.npz")

Every failing call of the library raises cnnc.CnncError carrying its message (the library's
<prefix>_last_error) and code (cnnc.ERR_*). The C API and its contracts: runtime/CnncApi.h,
or the header `cnnc compile --header` writes.
"""

import ctypes as C
import os
import shutil
import struct
import subprocess

import numpy as np

__all__ = ["compile", "load", "Library", "CnncError", "find_cnnc", "exported_symbols"]

# runtime/CnncApi.h's constants
OK = 0
ERR_NULL, ERR_BATCH, ERR_NAME, ERR_SIZE, ERR_IO, ERR_NOMEM = 1, 2, 3, 4, 5, 6
ERR_LABEL, ERR_INDEX, ERR_NOTRAIN, ERR_THREADS = 7, 8, 9, 10
KIND_INPUT, KIND_PARAM, KIND_OUTPUT, KIND_TRAIN_INPUT, KIND_STATE = 0, 1, 2, 3, 4

_HERE = os.path.dirname(os.path.abspath(__file__))


class CnncError(RuntimeError):
    """A failed call of a compiled library (code: cnnc.ERR_*) or of the cnnc command."""

    def __init__(self, message, code=None):
        super().__init__(message)
        self.code = code


def find_cnnc():
    """The cnnc command: $CNNC, the installed one beside this package (PREFIX/bin/cnnc), the
    source tree's build (build/tools/cnnc), or the first `cnnc` on PATH."""
    candidates = [os.environ.get("CNNC"),
                  os.path.join(_HERE, "..", "..", "..", "..", "bin", "cnnc"),
                  os.path.join(_HERE, "..", "..", "build", "tools", "cnnc"),
                  shutil.which("cnnc")]
    for c in candidates:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return os.path.abspath(c)
    raise CnncError("cannot find the cnnc command: set $CNNC or put cnnc on PATH")


def compile(model, output, *, header=None, prefix=None, batch=None, weights=None, train=False,
            target_cpu=None, args=(), cnnc=None):
    """Runs `cnnc compile MODEL -o OUTPUT ...`; returns OUTPUT. The report cnnc prints (and
    its warnings) are returned in the exception on failure, else discarded."""
    argv = [cnnc or find_cnnc(), "compile", os.fspath(model), "-o", os.fspath(output)]
    if header:
        argv += ["--header", os.fspath(header)]
    if prefix:
        argv += ["--prefix", prefix]
    if batch:
        argv += ["--batch", str(int(batch))]
    if weights:
        argv += ["--weights", os.fspath(weights)]
    if train:
        argv.append("--train")
    if target_cpu:
        argv += ["--target-cpu", target_cpu]
    argv += [str(a) for a in args]
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode != 0:
        raise CnncError((r.stderr.strip() or r.stdout.strip()) or f"cnnc compile exited {r.returncode}",
                        r.returncode)
    return os.fspath(output)


def exported_symbols(path):
    """The names a shared library exports (its ELF .dynsym, defined symbols only)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise CnncError(f"{path}: not a 64-bit little-endian ELF shared library")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    names = []
    for _, stype, _, _, off, size, link, _, _, entsize in sections:
        if stype != 11:  # SHT_DYNSYM
            continue
        stroff = sections[link][4]
        for k in range(1, size // (entsize or 24)):
            name, _, _, shndx, _, _ = struct.unpack_from("<IBBHQQ", data, off + k * 24)
            if shndx == 0:  # undefined
                continue
            end = data.index(b"\0", stroff + name)
            names.append(data[stroff + name:end].decode())
    return names


def _prefix_of(path):
    syms = set(exported_symbols(path))
    found = [s[:-len("_create")] for s in syms
             if s.endswith("_create") and s[:-len("_create")] + "_infer" in syms]
    if len(found) != 1:
        raise CnncError(f"{path}: not a library compiled by cnnc (no PREFIX_create/PREFIX_infer pair)"
                        if not found else f"{path}: several prefixes {found}: pass prefix=")
    return found[0]


class Buffer:
    """One buffer of the library (cnnc_buffer_info): name, shape at the largest batch,
    elements per example."""

    def __init__(self, name, shape, per_example):
        self.name, self.shape, self.per_example = name, tuple(shape), per_example

    def __repr__(self):
        return f"Buffer({self.name!r}, {self.shape}, per_example={self.per_example})"


class Library:
    """One instance of a compiled library (its own parameters, workspace, threads)."""

    def __init__(self, path, prefix=None):
        self.path = os.path.abspath(os.fspath(path))
        self.prefix = prefix or _prefix_of(self.path)
        self._lib = lib = C.CDLL(self.path)
        p = self.prefix
        vp, i64, cs = C.c_void_p, C.c_int64, C.c_char_p

        def fn(name, restype, *argtypes):
            f = getattr(lib, f"{p}_{name}")
            f.restype, f.argtypes = restype, list(argtypes)
            return f

        self._create = fn("create", C.c_int, C.POINTER(vp))
        self._destroy = fn("destroy", None, vp)
        self._last_error = fn("last_error", cs, vp)
        self._infer = fn("infer", C.c_int, vp, i64, C.POINTER(vp), C.POINTER(vp))
        self._set_param = fn("set_param", C.c_int, vp, cs, vp, i64)
        self._get_param = fn("get_param", C.c_int, vp, cs, vp, i64)
        self._load_weights = fn("load_weights", C.c_int, vp, cs)
        self._save_checkpoint = fn("save_checkpoint", C.c_int, vp, cs)
        self._load_checkpoint = fn("load_checkpoint", C.c_int, vp, cs)
        self._train_step = fn("train_step", C.c_int, vp, i64, C.POINTER(vp), C.c_float, C.c_float,
                              C.c_float, C.POINTER(C.c_float), C.POINTER(i64))
        self._set_threads = fn("set_threads", C.c_int, vp, C.c_int)
        self._get_threads = fn("get_threads", C.c_int, vp)
        self._step_count = fn("step_count", i64, vp)
        self._set_step_count = fn("set_step_count", C.c_int, vp, i64)
        num_buffers = fn("num_buffers", C.c_int, C.c_int)
        info = fn("buffer_info", C.c_int, C.c_int, C.c_int, C.POINTER(cs), C.POINTER(C.c_int),
                  C.POINTER(i64), C.POINTER(i64))
        text = lambda name: fn(name, cs)().decode()  # noqa: E731
        self.model_name, self.version = text("model_name"), text("version")
        self.target_cpu, self.target_isa = text("target_cpu"), text("target_isa")
        self.max_batch, self.min_batch = fn("max_batch", i64)(), fn("min_batch", i64)()
        self.has_train_step = bool(fn("has_train_step", C.c_int)())
        self.train_batch, self.train_min_batch = fn("train_batch", i64)(), fn("train_min_batch", i64)()

        def buffers(kind):
            out = []
            for k in range(num_buffers(kind)):
                name, rank, shape, per = cs(), C.c_int(), (i64 * 8)(), i64()
                self._check(info(kind, k, C.byref(name), C.byref(rank), shape, C.byref(per)), None)
                out.append(Buffer(name.value.decode(), shape[:rank.value], per.value))
            return out

        self.inputs, self.params, self.outputs = buffers(KIND_INPUT), buffers(KIND_PARAM), buffers(KIND_OUTPUT)
        self.train_inputs, self.state = buffers(KIND_TRAIN_INPUT), buffers(KIND_STATE)
        self._inst = vp()
        self._check(self._create(C.byref(self._inst)), None)

    # ---------------------------------------------------------------- lifetime
    def close(self):
        if getattr(self, "_inst", None):
            self._destroy(self._inst)
            self._inst = None

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return (f"<cnnc.Library {self.model_name!r} prefix={self.prefix!r} ({self.target_cpu}, "
                f"{self.target_isa}) batch {self.min_batch}..{self.max_batch}>")

    def _check(self, rc, inst):
        if rc != OK:
            raise CnncError(self._last_error(inst).decode(), rc)

    def _live(self):
        if not self._inst:
            raise CnncError("the library's instance is closed", ERR_NULL)
        return self._inst

    # ---------------------------------------------------------------- inference
    def infer(self, *xs):
        """Runs @infer on n examples, any n >= 1: inputs in the library's order, each
        [n, ...] (converted to contiguous float32); split into calls of at most max_batch
        (a fixed-batch library's last call is padded). Returns the output (a tuple when there
        are several), [n, ...] float32."""
        inst = self._live()
        if len(xs) != len(self.inputs):
            raise CnncError(f"infer: {len(self.inputs)} inputs expected, {len(xs)} given", ERR_SIZE)
        arrs = [np.ascontiguousarray(x, dtype=np.float32) for x in xs]
        n = arrs[0].shape[0] if arrs and arrs[0].ndim else 1
        for a, b in zip(arrs, self.inputs):
            if a.ndim == 0 or a.shape[0] != n or a.size != n * b.per_example:
                raise CnncError(f"infer: input {b.name!r} has shape {a.shape}: expected n x {b.shape[1:]} "
                                f"({b.per_example} elements per example, the same n for every input)",
                                ERR_SIZE)
        outs = [np.empty((n,) + tuple(b.shape[1:]), np.float32) for b in self.outputs]
        step = self.max_batch
        for s in range(0, n, step):
            k = min(step, n - s)
            run = max(k, self.min_batch)  # a fixed-batch library runs at its batch only
            ins = [a[s:s + k] for a in arrs]
            if run != k:
                ins = [np.concatenate([a, np.zeros((run - k,) + a.shape[1:], np.float32)]) for a in ins]
            res = [np.empty((run,) + tuple(b.shape[1:]), np.float32) for b in self.outputs]
            in_ptrs = (C.c_void_p * max(1, len(ins)))(*[a.ctypes.data for a in ins])
            out_ptrs = (C.c_void_p * max(1, len(res)))(*[r.ctypes.data for r in res])
            self._check(self._infer(inst, run, in_ptrs, out_ptrs), inst)
            for o, r in zip(outs, res):
                o[s:s + k] = r[:k]
        return outs[0] if len(outs) == 1 else tuple(outs)

    # ---------------------------------------------------------------- parameters
    def get_param(self, name):
        """A parameter (or state array) as a float32 array of its shape."""
        inst = self._live()
        b = next((b for b in self.state if b.name == name), None)
        out = np.empty(b.shape if b else (0,), np.float32)  # unknown: the library says so
        self._check(self._get_param(inst, name.encode(), out.ctypes.data, out.size), inst)
        return out

    def set_param(self, name, value):
        inst = self._live()
        a = np.ascontiguousarray(value, dtype=np.float32)
        self._check(self._set_param(inst, name.encode(), a.ctypes.data, a.size), inst)

    def param_names(self):
        """Every state array's name: @infer's params, then the training step's momentum."""
        return [b.name for b in self.state]

    def load_weights(self, path):
        inst = self._live()
        self._check(self._load_weights(inst, os.fspath(path).encode()), inst)

    def save_checkpoint(self, path):
        inst = self._live()
        self._check(self._save_checkpoint(inst, os.fspath(path).encode()), inst)

    def load_checkpoint(self, path):
        inst = self._live()
        self._check(self._load_checkpoint(inst, os.fspath(path).encode()), inst)

    @property
    def threads(self):
        return self._get_threads(self._live())

    @threads.setter
    def threads(self, n):
        inst = self._live()
        self._check(self._set_threads(inst, int(n)), inst)

    @property
    def step_count(self):
        return self._step_count(self._live())

    @step_count.setter
    def step_count(self, s):
        inst = self._live()
        self._check(self._set_step_count(inst, int(s)), inst)

    # ---------------------------------------------------------------- training
    def train_step(self, *data, lr=0.001, momentum=0.9, weight_decay=5e-4):
        """One SGD step (libraries compiled with train=True) on `data`, the training step's
        data inputs in order (images float32 [n, ...], labels int [n]), n between
        train_min_batch and train_batch. Returns (loss, correct); correct is -1 when the loss
        has no notion of a correct prediction."""
        inst = self._live()
        if not self.has_train_step:
            self._check(self._train_step(inst, 0, None, 0, 0, 0, None, None), inst)
        if len(data) != len(self.train_inputs):
            raise CnncError(f"train_step: {len(self.train_inputs)} data inputs expected "
                            f"({', '.join(b.name for b in self.train_inputs)}), {len(data)} given", ERR_SIZE)
        arrs = []
        n = np.asarray(data[0]).shape[0]
        for d, b in zip(data, self.train_inputs):
            integral = np.issubdtype(np.asarray(d).dtype, np.integer)
            a = np.ascontiguousarray(d, dtype=np.int32 if integral else np.float32)
            if a.shape[0] != n or a.size != n * b.per_example:
                raise CnncError(f"train_step: {b.name!r} has shape {a.shape}: expected n x {b.shape[1:]}",
                                ERR_SIZE)
            arrs.append(a)
        ptrs = (C.c_void_p * len(arrs))(*[a.ctypes.data for a in arrs])
        loss, correct = C.c_float(), C.c_int64()
        self._check(self._train_step(inst, n, ptrs, lr, momentum, weight_decay, C.byref(loss),
                                     C.byref(correct)), inst)
        return float(loss.value), int(correct.value)


def load(path, prefix=None):
    """Opens a library compiled by `cnnc compile` and creates an instance of it. `prefix`:
    its symbol prefix, by default found among the library's exported symbols."""
    return Library(path, prefix)
