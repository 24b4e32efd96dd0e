#!/usr/bin/python3
"""The PyTorch side of bench/run.sh: the same networks as examples/*.cnn, timed the same way
(warm-up, then --iters timed calls, the median), on Debian's python3-torch (CPU).
Prints one JSON line: {"ms": median milliseconds}.
usage: torch_bench.py vgg16-infer|base-train|conv --threads T --iters K [--input-shape HxW]"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def vgg16():
    layers, c = [], 3
    for v in [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=True)]
            c = v
    return nn.Sequential(*layers), c


class VGG16(nn.Module):  # examples/vgg16.cnn: the seed's Table 2
    def __init__(self, hw):
        super().__init__()
        self.features, c = vgg16()
        side = hw // 32
        self.classifier = nn.Sequential(nn.Linear(c * side * side, 4096), nn.ReLU(True), nn.Dropout(0.5),
                                        nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(0.5),
                                        nn.Linear(4096, 1000))

    def forward(self, x):
        return F.softmax(self.classifier(torch.flatten(self.features(x), 1)), dim=1)


class Base(nn.Module):  # examples/mnist_base.cnn: the seed's Exercise 6 BASE
    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(1, 20, 5), nn.Conv2d(20, 50, 5)
        self.c3, self.c4 = nn.Conv2d(50, 500, 4), nn.Conv2d(500, 10, 1)

    def forward(self, x):
        x = F.max_pool2d(self.c1(x), 2, 2)
        x = F.max_pool2d(self.c2(x), 2, 2)
        return torch.flatten(self.c4(F.relu(self.c3(x))), 1)


def timed(fn, iters):
    for _ in range(2):
        fn()
    ms = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1e3)
    return sorted(ms)[len(ms) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("workload")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--input-shape", default="224x224")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    if a.workload == "vgg16-infer":
        hw = int(a.input_shape.split("x")[0])
        net = VGG16(hw).eval()
        x = torch.rand(1, 3, hw, hw)
        with torch.no_grad():
            ms = timed(lambda: net(x), a.iters)
    elif a.workload == "base-train":
        net = Base()
        opt = torch.optim.SGD(net.parameters(), lr=0.001, momentum=0.9, weight_decay=5e-4)
        x, y = torch.rand(100, 1, 28, 28), torch.randint(0, 10, (100,))

        def step():
            opt.zero_grad()
            loss = F.cross_entropy(net(x), y)
            loss.backward()
            opt.step()
        ms = timed(step, a.iters)
    elif a.workload == "conv":
        conv = nn.Conv2d(256, 256, 3, padding=1).eval()
        x = torch.rand(1, 256, 56, 56)
        with torch.no_grad():
            ms = timed(lambda: F.relu(conv(x)), a.iters)
    else:
        raise SystemExit("unknown workload " + a.workload)
    print(json.dumps({"ms": ms}))


if __name__ == "__main__":
    main()
