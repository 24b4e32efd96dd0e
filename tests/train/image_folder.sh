#!/usr/bin/env bash
# An image folder (DIR/{train,test}/CLASS/*.png|.pgm, tools/Data.h) trains exactly as the same
# images as IDX files: classes numbered by sorted folder name ("one" 0, "two" 1, "zero" 2 hold
# the digits 1, 2, 0), files in name order. Both runs, on the interpreter, must write
# byte-identical weights and the same losses, with all examples and with a stratified subset.
# The images are written by Python's zlib (PNG) and by hand (PGM). Usage: CNNC SOURCE_DIR WORKDIR
set -euo pipefail
cnnc=$1
root=$2
work=$3
rm -rf "$work" && mkdir -p "$work" && cd "$work"
fail() { echo "FAIL: $*"; exit 1; }

/usr/bin/python3 - "$root/data/mnist" <<'PY'
import os, struct, sys, zlib
import numpy as np
src = sys.argv[1]
def idx(name):
    raw = open(os.path.join(src, name), "rb").read()
    nd = raw[3]
    dims = struct.unpack(">" + "I" * nd, raw[4:4 + 4 * nd])
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * nd).reshape(dims)
def png(path, img):
    h, w = img.shape
    rows = b"".join(b"\0" + img[y].tobytes() for y in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                           + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
names = {0: "zero", 1: "one", 2: "two"}
label = {d: sorted(names.values()).index(n) for d, n in names.items()}  # one 0, two 1, zero 2
os.makedirs("idx")
for split, prefix, per in (("train", "train", 20), ("test", "t10k", 5)):
    images, labels = idx(prefix + "-images-idx3-ubyte"), idx(prefix + "-labels-idx1-ubyte")
    xs, ys = [], []
    for d in sorted(names, key=lambda d: names[d]):  # the folder reader's order
        os.makedirs(f"folder/{split}/{names[d]}")
        for k, i in enumerate(np.flatnonzero(labels == d)[:per]):
            path = f"folder/{split}/{names[d]}/{k:03d}"
            if k == 3:  # one PGM among the PNGs
                open(path + ".pgm", "wb").write(b"P5 28 28 255\n" + images[i].tobytes())
            else:
                png(path + ".png", images[i])
            xs.append(images[i]); ys.append(label[d])
    open(f"folder/{split}/{names[0]}/notes.txt", "w").write("not an image: skipped\n")
    n = len(ys)
    open(f"idx/{prefix}-images-idx3-ubyte", "wb").write(struct.pack(">IIII", 0x803, n, 28, 28) + np.array(xs).tobytes())
    open(f"idx/{prefix}-labels-idx1-ubyte", "wb").write(struct.pack(">II", 0x801, n) + bytes(ys))
PY

train() { # DATA OUT [options]
  local data=$1 out=$2
  shift 2
  "$cnnc" train "$root/examples/mnist_base.cnn" --data "$data" --epochs 2 --batch 10 --backend interp \
    --progress none --no-plot --out "$out" "$@" > "$out.log"
}
train folder f_all
train idx i_all
grep -q "classes (folders sorted by name): 0 one, 1 two, 2 zero" f_all.log || fail "no class list: $(cat f_all.log)"
grep -q "60 train / 15 test images" f_all.log || fail "counts: $(head -3 f_all.log)"
cmp f_all/weights.npz i_all/weights.npz || fail "folder and IDX weights differ"
diff <(cut -d, -f1-5 f_all/log.csv) <(cut -d, -f1-5 i_all/log.csv) || fail "folder and IDX losses differ"
train folder f_sub --train-size 30
train idx i_sub --train-size 30
cmp f_sub/weights.npz i_sub/weights.npz || fail "stratified subsets differ"
grep -q "per class 0: 10, 1: 10, 2: 10" f_sub.log || fail "subset: $(grep examples f_sub.log)"
cmp -s f_all/weights.npz f_sub/weights.npz && fail "the subset changed nothing: the comparison proves nothing"

# an image of another size: one message naming it, exit 1
/usr/bin/python3 -c "open('folder/train/two/999.pgm', 'wb').write(b'P5 14 14 255\n' + bytes(196))"
set +e
"$cnnc" train "$root/examples/mnist_base.cnn" --data folder --epochs 1 --progress none --no-plot --out bad > bad.out 2> bad.err
code=$?
set -e
[[ $code == 1 ]] || fail "a 14x14 image: exit $code"
grep -q "999.pgm: 14x14 pixels" bad.err || fail "a 14x14 image: $(cat bad.err)"
echo "ok: the image folder trains exactly as its IDX twin (all examples and a stratified 30)"
