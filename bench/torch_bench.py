#!/usr/bin/python3
"""The PyTorch side of bench/run.sh (driven by bench/harness.py; docs/performance.md), on
Debian's python3-torch (CPU), and the description of every case (FLOPs, its convolutions for
the oneDNN peer, FC weight bytes).

  torch_bench.py serve CASE --batch N --threads T
      builds the case's model (random init, eval mode), then serves timing requests like
      cnnc_bench_worker: a {"ready": true, ...} line; per "run K" line on stdin K timed calls
      under torch.inference_mode(), {"ms": [...]}; "quit" exits.
  torch_bench.py describe CASE:N [CASE:N ...]
      one JSON object: per "CASE:N" the multiply-adds of its convolutions and linear layers
      (FLOPs = 2 x MACs), each convolution as N,IC,H,W,OC,KH,KW,stride,pad,groups,relu (the
      spec cnnc_bench_worker onednn takes) and the bytes of its linear layers' weights.
  torch_bench.py export-resnet50 OUT.onnx
      torchvision's ResNet-50 (random init: no pretrained weights are downloaded), batch 1,
      exported to ONNX (opset 13).

CASE: conv:IC:OC:HW (3x3, pad 1, stride 1, bias, ReLU: one VGG-16 layer), vgg16 (the seed's
Table 2, examples/vgg16.cnn), mnist_base, mnist_sk (examples/*.cnn, inference: softmax on
the scores), resnet50 (torchvision)."""
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def vgg16_features():
    layers, c = [], 3
    for v in [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=True)]
            c = v
    return nn.Sequential(*layers), c


class VGG16(nn.Module):  # examples/vgg16.cnn: the seed's Table 2
    def __init__(self, hw=224):
        super().__init__()
        self.features, c = vgg16_features()
        side = hw // 32
        self.classifier = nn.Sequential(nn.Linear(c * side * side, 4096), nn.ReLU(True), nn.Dropout(0.5),
                                        nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(0.5),
                                        nn.Linear(4096, 1000))

    def forward(self, x):
        return F.softmax(self.classifier(torch.flatten(self.features(x), 1)), dim=1)


class Base(nn.Module):  # examples/mnist_base.cnn, inference (the loss layer is a softmax)
    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(1, 20, 5), nn.Conv2d(20, 50, 5)
        self.c3, self.c4 = nn.Conv2d(50, 500, 4), nn.Conv2d(500, 10, 1)

    def forward(self, x):
        x = F.max_pool2d(self.c1(x), 2, 2)
        x = F.max_pool2d(self.c2(x), 2, 2)
        return F.softmax(torch.flatten(self.c4(F.relu(self.c3(x))), 1), dim=1)


class SK(nn.Module):  # examples/mnist_sk.cnn (SK-1), inference: BN with running statistics
    def __init__(self):
        super().__init__()

        def block(cin, cout, k):
            return [nn.Conv2d(cin, cout, k, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]
        self.body = nn.Sequential(*block(1, 20, 3), *block(20, 20, 3), nn.MaxPool2d(2, 2),
                                  *block(20, 50, 5), nn.MaxPool2d(2, 2), *block(50, 500, 4),
                                  nn.Conv2d(500, 10, 1))

    def forward(self, x):
        return F.softmax(torch.flatten(self.body(x), 1), dim=1)


class ConvRelu(nn.Module):  # one VGG-16 layer: 3x3, pad 1, bias, ReLU
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)

    def forward(self, x):
        return F.relu(self.conv(x), inplace=True)


def build(case):
    """(model, input shape without the batch)"""
    if case.startswith("conv:"):
        _, ic, oc, hw = case.split(":")
        return ConvRelu(int(ic), int(oc)), (int(ic), int(hw), int(hw))
    if case == "vgg16":
        return VGG16(), (3, 224, 224)
    if case == "mnist_base":
        return Base(), (1, 28, 28)
    if case == "mnist_sk":
        return SK(), (1, 28, 28)
    if case == "resnet50":
        import torchvision
        return torchvision.models.resnet50(weights=None), (3, 224, 224)
    raise SystemExit(f"torch_bench.py: unknown case {case}")


def describe(case, batch):
    model, shape = build(case)
    model.eval()
    macs, convs, fc_bytes = 0, [], 0

    def conv_hook(m, inp, out):
        nonlocal macs
        x = inp[0]
        kh, kw = m.kernel_size
        macs += out.numel() * (m.in_channels // m.groups) * kh * kw
        sh, sw = m.stride
        ph, pw = m.padding if isinstance(m.padding, tuple) else (m.padding, m.padding)
        if kh != kw or sh != sw or ph != pw:
            raise SystemExit(f"describe {case}: non-square conv {m}")
        n, c, h, w = x.shape
        convs.append(f"{n},{c},{h},{w},{m.out_channels},{kh},{kw},{sh},{ph},{m.groups},1")

    def linear_hook(m, inp, out):
        nonlocal macs, fc_bytes
        macs += out.numel() * m.in_features
        fc_bytes += m.weight.numel() * m.weight.element_size()

    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            m.register_forward_hook(conv_hook)
        elif isinstance(m, nn.Linear):
            m.register_forward_hook(linear_hook)
    with torch.inference_mode():
        model(torch.rand(batch, *shape))
    return {"flops": 2 * macs, "convs": convs, "fc_weight_bytes": fc_bytes}


def serve(case, batch, threads):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model, shape = build(case)
    model.eval()
    x = torch.rand(batch, *shape)

    def call():
        with torch.inference_mode():
            model(x)
    print(json.dumps({"ready": True, "threads": torch.get_num_threads(), "torch": torch.__version__}),
          flush=True)
    for line in sys.stdin:
        line = line.strip()
        if line.startswith("run"):
            k = max(1, int(line[3:] or 1))
            ms = []
            for _ in range(k):
                t0 = time.perf_counter()
                call()
                ms.append((time.perf_counter() - t0) * 1e3)
            print(json.dumps({"ms": [round(v, 5) for v in ms]}), flush=True)
        elif line == "quit":
            break


def export_resnet50(path):
    import torchvision
    torch.manual_seed(0)
    model = torchvision.models.resnet50(weights=None).eval()
    torch.onnx.export(model, torch.rand(1, 3, 224, 224), path, opset_version=13,
                      input_names=["data"], output_names=["logits"])


def main():
    a = sys.argv[1:]
    if len(a) >= 2 and a[0] == "serve":
        opts = dict(zip(a[2::2], a[3::2]))
        try:
            serve(a[1], int(opts.get("--batch", 1)), int(opts.get("--threads", 1)))
        except Exception as e:  # reported as the row's error by the harness
            print(json.dumps({"error": f"{type(e).__name__}: {e}"[:300]}), flush=True)
            sys.exit(1)
    elif len(a) >= 2 and a[0] == "describe":
        out = {}
        for spec in a[1:]:
            case, n = spec.rsplit(":", 1)
            out[spec] = describe(case, int(n))
        print(json.dumps(out))
    elif len(a) == 2 and a[0] == "export-resnet50":
        export_resnet50(a[1])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
