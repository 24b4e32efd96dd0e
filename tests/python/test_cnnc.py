"""The Python module (python/cnnc) on libraries it compiles itself:
 - infer at batches below, at and above the library's largest (split into calls) equals the
   reference interpreter (`cnnc run --backend interp --precision f64`) on the same weights;
 - get_param/set_param round-trip and change the outputs; misuse raises cnnc.CnncError with
   the library's own message and code;
 - a --train library: train_step lowers the loss on a fixed batch; a checkpoint restores the
   state bit for bit (the same next step from the restored state);
 - the library reports its model, cnnc version, CPU and ISA.
Usage: test_cnnc.py CNNC WORKDIR"""
import os
import subprocess
import sys

import numpy as np

os.environ.pop("LD_PRELOAD", None)  # an ASan build preloads its runtime here, not into cnnc

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(root, "python"))
import cnnc  # noqa: E402

exe, work = sys.argv[1], sys.argv[2]
os.makedirs(work, exist_ok=True)
model = os.path.join(root, "examples", "mnist_base.cnn")
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def raises(fn, code, text):
    try:
        fn()
    except cnnc.CnncError as e:
        return e.code == code and text in str(e)
    return False


w = os.path.join(work, "init.npz")
subprocess.run([exe, "init", model, "--seed", "3", "-o", w], check=True, stdout=subprocess.DEVNULL)
so = cnnc.compile(model, os.path.join(work, "libbase.so"), batch=4, weights=w, cnnc=exe)
lib = cnnc.load(so)
check(lib.prefix == "mnist_base", f"the default prefix is the model's name ({lib.prefix})")
check(lib.model_name == "mnist_base" and lib.version and lib.target_isa in ("AVX-512", "AVX2+FMA", "AVX", "SSE")
      and lib.target_cpu, f"the library says what it is: {lib!r}, cnnc {lib.version}")
check((lib.min_batch, lib.max_batch) == (1, 4), "batch 1..4")
check([b.name for b in lib.inputs] == ["data"] and lib.outputs[0].per_example == 10, f"buffers {lib.inputs} {lib.outputs}")

rng = np.random.default_rng(0)
for n in (1, 4, 7):  # 7: two calls (4 + 3)
    x = rng.uniform(0, 255, size=(n, 1, 28, 28)).astype(np.float32)
    got = lib.infer(x)
    xf, yf = os.path.join(work, f"x{n}.npy"), os.path.join(work, f"y{n}.npy")
    np.save(xf, x)
    subprocess.run([exe, "run", model, "--batch", str(n), "--weights", w, "-i", f"data={xf}", "-o", yf,
                    "--precision", "f64"], check=True, stdout=subprocess.DEVNULL)
    want = np.load(yf).reshape(got.shape)
    err = float(np.max(np.abs(got - want)))
    check(got.shape == (n, 10) and err <= 1e-4 * max(1.0, float(np.max(np.abs(want)))),
          f"infer at batch {n} equals the interpreter (max |diff| {err:.2e})")

w1 = lib.get_param("conv1.w")
check(w1.shape == (20, 1, 5, 5), f"get_param's shape {w1.shape}")
x = rng.uniform(0, 255, size=(2, 1, 28, 28)).astype(np.float32)
before = lib.infer(x)
lib.set_param("conv1.w", w1 * 2)
check(np.array_equal(lib.get_param("conv1.w"), (w1 * 2).astype(np.float32)), "set_param then get_param round-trips")
check(not np.array_equal(lib.infer(x), before), "set_param changes the outputs")
check(raises(lambda: lib.set_param("conv1.w", w1[:3]), cnnc.ERR_SIZE, "has 500 elements, not 75"),
      "set_param of the wrong size raises ERR_SIZE with the library's message")
check(raises(lambda: lib.get_param("nope"), cnnc.ERR_NAME, "no parameter 'nope'"),
      "an unknown parameter raises ERR_NAME with the library's message")
check(raises(lambda: lib.load_weights(os.path.join(work, "missing.npz")), cnnc.ERR_IO, "cannot open"),
      "a missing weights file raises ERR_IO")
check(raises(lambda: lib.train_step(x, np.zeros(2, np.int32)), cnnc.ERR_NOTRAIN, "compile with --train"),
      "train_step on an inference library raises ERR_NOTRAIN")
check(raises(lambda: cnnc.compile(model, os.path.join(work, "bad.so"), prefix="9x", cnnc=exe), 1,
             "not a C identifier"), "a failing cnnc compile raises with cnnc's message")
lib.close()

# training: a --train library, a fixed batch, from the seeded initial weights
tso = cnnc.compile(model, os.path.join(work, "libtrain.so"), batch=8, train=True, prefix="tr", cnnc=exe)
t = cnnc.load(tso)
check(t.prefix == "tr" and t.has_train_step and t.train_batch == 8, f"a training library ({t!r})")
t.load_weights(w)
xb = rng.standard_normal(size=(8, 1, 28, 28)).astype(np.float32)  # O(1) inputs: no divergence
yb = np.arange(8) % 10
losses = [t.train_step(xb, yb, lr=0.01)[0] for _ in range(15)]
check(all(np.isfinite(losses)) and losses[-1] < losses[0], f"train_step lowers the loss ({losses[0]:.3f} -> {losses[-1]:.3f})")
ck = os.path.join(work, "ck.npz")
t.save_checkpoint(ck)
after_save = t.train_step(xb, yb, lr=0.01)
p_after = {n: t.get_param(n) for n in t.param_names()}
t.load_checkpoint(ck)
check(t.step_count == 15, f"the checkpoint restores the step counter ({t.step_count})")
again = t.train_step(xb, yb, lr=0.01)
check(again == after_save and all(np.array_equal(p_after[n], t.get_param(n)) for n in p_after),
      "the step after loading the checkpoint repeats the same step bit for bit")
check(raises(lambda: t.train_step(xb[:3], yb[:3] + 20), cnnc.ERR_LABEL, "not a class index"),
      "a bad label raises ERR_LABEL")

if failures:
    print(f"{len(failures)} FAILED")
    sys.exit(1)
print("all passed")
