#!/usr/bin/env bash
# `cnnc run --input image` (tools/Image.h) gives the same output as the same pixels as .npy.
# The images are written by Python's zlib (PNG) and by hand (PGM), not by the decoding library:
# an MNIST test digit as 8-bit grey PNG, RGB PNG (R = G = B: luma is exact), PGM, and doubled
# to 56x56 (the box filter's 2x2 means are the pixels again); a 14x14 digit enlarged to 28x28
# is compared with PyTorch's bilinear resize (align_corners=False, what stb's triangle filter
# computes). Usage: tests/cli/image_input.sh CNNC SOURCE_DIR WORKDIR
set -euo pipefail
cnnc=$1
root=$2
work=$3
rm -rf "$work" && mkdir -p "$work" && cd "$work"
fail() { echo "FAIL: $*"; exit 1; }
model=$root/examples/mnist_base.cnn

/usr/bin/python3 - "$root/data/mnist/t10k-images-idx3-ubyte" <<'PY'
import struct, sys, zlib
import numpy as np
raw = open(sys.argv[1], "rb").read()
digit = np.frombuffer(raw, np.uint8, 28 * 28, 16).reshape(28, 28)

def png(path, img):  # 8-bit grey (2-D) or RGB (H, W, 3), filter 0 on every row
    h, w = img.shape[:2]
    kind = 0 if img.ndim == 2 else 2
    rows = b"".join(b"\0" + img[y].tobytes() for y in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, kind, 0, 0, 0))
                           + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))

png("digit.png", digit)
png("digit_rgb.png", np.stack([digit] * 3, axis=2))
png("digit56.png", digit.repeat(2, 0).repeat(2, 1))
open("digit.pgm", "wb").write(b"P5\n# an MNIST digit\n28 28\n255\n" + digit.tobytes())
np.save("digit_raw.npy", digit.astype(np.float32).reshape(1, 1, 28, 28))
np.save("digit_unit.npy", (digit.astype(np.float32) / np.float32(255)).reshape(1, 1, 28, 28))
small = np.ascontiguousarray(digit[::2, ::2])
png("digit14.png", small)
import torch
up = torch.nn.functional.interpolate(torch.from_numpy(small.astype(np.float32)).reshape(1, 1, 14, 14),
                                     size=(28, 28), mode="bilinear", align_corners=False)
np.save("digit14_up.npy", up.numpy().astype(np.float32))
PY

# a model trained by `cnnc train` (its preprocessing in the weights) takes raw 0-255 pixels
"$cnnc" init "$model" --input-mean --seed 1 -o pre.npz > /dev/null
# without it, pixels scaled to [0,1]
"$cnnc" init "$model" --seed 1 -o plain.npz > /dev/null
run() { "$cnnc" run "$model" --weights "$1" --input "$2" -o "$3" > /dev/null; }
run pre.npz digit_raw.npy pre_ref.npy
run plain.npz digit_unit.npy plain_ref.npy
run pre.npz digit14_up.npy up_ref.npy
for im in digit.png digit_rgb.png digit.pgm digit56.png; do
  run pre.npz "$im" "pre_${im%.*}.npy"
  run plain.npz "$im" "plain_${im%.*}.npy"
done
run pre.npz digit14.png up.npy

/usr/bin/python3 - <<'PY'
import numpy as np
for kind in ("pre", "plain"):
    ref = np.load(f"{kind}_ref.npy")
    assert ref.std() > 0, "constant output: the comparison would prove nothing"
    for im in ("digit", "digit_rgb", "digit56"):
        out = np.load(f"{kind}_{im}.npy")
        assert np.array_equal(out, ref), (kind, im, np.abs(out - ref).max())
    assert np.array_equal(np.load(f"{kind}_digit.npy"), ref)
up, ref = np.load("up.npy"), np.load("up_ref.npy")
assert np.allclose(up, ref, rtol=0, atol=1e-6), np.abs(up - ref).max()
# the comparison can tell images apart: the enlarged digit is not the original
assert np.abs(up - np.load("pre_ref.npy")).max() > 1e-4
print("ok: PNG, RGB PNG, PGM, 56x56 PNG equal the .npy outputs; 14x14 enlarged matches bilinear")
PY

# a file that is no image: one message naming it, exit 1
printf 'not a png' > bad.png
set +e
"$cnnc" run "$model" --input bad.png > bad.out 2> bad.err
code=$?
set -e
[[ $code == 1 ]] || fail "bad.png: exit $code"
grep -q "bad.png: cannot read the image" bad.err || fail "bad.png: $(cat bad.err)"
