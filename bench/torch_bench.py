#!/usr/bin/python3
"""The PyTorch side of bench/run.sh (driven by bench/harness.py; docs/performance.md), on
Debian's python3-torch (CPU), and the description of every case (FLOPs, its convolutions for
the oneDNN peer, FC weight bytes).

  torch_bench.py serve CASE --batch N --threads T
      builds the case's model (random init, eval mode), then serves timing requests like
      cnnc_bench_worker: a {"ready": true, ...} line; per "run K" line on stdin K timed calls
      under torch.inference_mode(), {"ms": [...]}; "quit" exits.
  torch_bench.py serve-train CASE --batch N --threads T --weights W.npz --params P.json
                 --data IMAGES.f32 --labels LABELS.i32 [--hyper LR,MOMENTUM,DECAY]
      a training step: the model in train mode with cnnc's initial weights (W.npz, written by
      `cnnc init`; P.json lists cnnc's params [name, shape] in node order, which is the
      order of this model's modules), torch.optim.SGD with momentum and weight decay, the
      same D batches as cnnc (raw files, batch-major), one step per call, batch i of the D in
      turn; the first step (batch 0) runs during setup and its loss is in the ready line.
      "state" prints the last loss and the non-finite / subnormal values of the state.
  torch_bench.py describe CASE:N [CASE:N ...]
      one JSON object: per "CASE:N" the FLOPs of its convolutions and linear layers (2 x
      MACs; a training step counts forward, weight gradient and, where the layer's input
      needs one, input gradient), each convolution as
      N,IC,H,W,OC,KH,KW,stride,pad,groups,relu,needs_dx,bias (the spec cnnc_bench_worker
      onednn takes) and the bytes of its linear layers' weights.
  torch_bench.py export CASE OUT.onnx
      a torchvision case (TORCHVISION below; random init: no pretrained weights are
      downloaded) in eval mode exported to ONNX (opset 13) with a symbolic batch, so that
      `cnnc compile --batch N` binds any batch.

CASE: conv:IC:OC:HW (3x3, pad 1, stride 1, bias, ReLU: one VGG-16 layer), fc:K:M (nn.Linear
K -> M + ReLU: VGG-16's fc6 / fc7), vgg16 (the seed's
Table 2, examples/vgg16.cnn), mnist_base, mnist_sk (examples/*.cnn, inference: softmax on
the scores), resnet50, mobilenet_v2, shufflenet_v2, densenet121 (torchvision, 224x224); bwd_data:IC:OC:HW and bwd_weights:IC:OC:HW (one VGG-16
layer's input or filter gradient alone, no bias: aten's convolution_backward with that
output mask); training steps train_mnist_base, train_mnist_bn, train_mnist_sk,
train_resnet_mnist, train_vgg16 (examples/*.cnn with `loss softmax`: logits +
cross-entropy)."""
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


class BaseT(nn.Module):  # examples/mnist_base.cnn, training: the logits of `loss softmax`
    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(1, 20, 5), nn.Conv2d(20, 50, 5)
        self.c3, self.c4 = nn.Conv2d(50, 500, 4), nn.Conv2d(500, 10, 1)

    def forward(self, x):
        x = F.max_pool2d(self.c1(x), 2, 2)
        x = F.max_pool2d(self.c2(x), 2, 2)
        return torch.flatten(self.c4(F.relu(self.c3(x))), 1)


class Base(BaseT):  # examples/mnist_base.cnn, inference (the loss layer is a softmax)
    def forward(self, x):
        return F.softmax(super().forward(x), dim=1)


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


class BnT(nn.Module):  # examples/mnist_bn.cnn, training
    def __init__(self):
        super().__init__()
        self.c1, self.bn1 = nn.Conv2d(1, 20, 5, bias=False), nn.BatchNorm2d(20)
        self.c2, self.bn2 = nn.Conv2d(20, 50, 5, bias=False), nn.BatchNorm2d(50)
        self.c3, self.bn3 = nn.Conv2d(50, 500, 4, bias=False), nn.BatchNorm2d(500)
        self.c4 = nn.Conv2d(500, 10, 1)

    def forward(self, x):
        x = F.max_pool2d(self.bn1(self.c1(x)), 2, 2)
        x = F.max_pool2d(self.bn2(self.c2(x)), 2, 2)
        return torch.flatten(self.c4(F.relu(self.bn3(self.c3(x)))), 1)


class ResNetMnist(nn.Module):  # examples/resnet_mnist.cnn, modules in the file's order
    def __init__(self):
        super().__init__()

        def cb(cin, cout, k, stride=1, pad=1):
            return nn.Conv2d(cin, cout, k, stride, pad, bias=False), nn.BatchNorm2d(cout)
        self.c1, self.n1 = cb(1, 16, 3)
        self.c2, self.n2 = cb(16, 16, 3)
        self.c3, self.n3 = cb(16, 16, 3)
        self.c4, self.n4 = cb(16, 32, 3, 2)
        self.c5, self.n5 = cb(32, 32, 3)
        self.c6, self.n6 = cb(16, 32, 1, 2, 0)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        stem = F.relu(self.n1(self.c1(x)))
        b1 = self.n3(self.c3(F.relu(self.n2(self.c2(stem)))))
        out1 = F.relu(b1 + stem)
        b2 = self.n5(self.c5(F.relu(self.n4(self.c4(out1)))))
        proj = self.n6(self.c6(out1))
        y = F.relu(b2 + proj)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1))


class Logits(nn.Module):  # a model whose forward ends in softmax, without it
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        if isinstance(self.inner, VGG16):
            return self.inner.classifier(torch.flatten(self.inner.features(x), 1))
        return torch.flatten(self.inner.body(x), 1)  # SK


TRAIN_CASES = {  # case: (model builder, input shape without the batch)
    "train_mnist_base": (BaseT, (1, 28, 28)),
    "train_mnist_bn": (BnT, (1, 28, 28)),
    "train_mnist_sk": (lambda: Logits(SK()), (1, 28, 28)),
    "train_resnet_mnist": (ResNetMnist, (1, 28, 28)),
    "train_vgg16": (lambda: Logits(VGG16()), (3, 224, 224)),
}


# torchvision cases: case -> constructor in torchvision.models (ImageNet's 224x224 input)
TORCHVISION = {"resnet50": "resnet50", "mobilenet_v2": "mobilenet_v2",
               "shufflenet_v2": "shufflenet_v2_x1_0", "densenet121": "densenet121"}


def state_tensors(model):
    """Weights and BN statistics in module order: cnnc's param order for the same file."""
    out = []
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            out += [m.weight] + ([m.bias] if m.bias is not None else [])
        elif isinstance(m, nn.BatchNorm2d):
            out += [m.weight, m.bias, m.running_mean, m.running_var]
    return out


def build(case):
    """(model, input shape without the batch)"""
    if case.startswith("conv:"):
        _, ic, oc, hw = case.split(":")
        return ConvRelu(int(ic), int(oc)), (int(ic), int(hw), int(hw))
    if case.startswith("fc:"):
        _, k, m = case.split(":")
        return nn.Sequential(nn.Linear(int(k), int(m)), nn.ReLU()), (int(k),)
    if case == "vgg16":
        return VGG16(), (3, 224, 224)
    if case == "mnist_base":
        return Base(), (1, 28, 28)
    if case == "mnist_sk":
        return SK(), (1, 28, 28)
    if case in TORCHVISION:
        import torchvision
        return getattr(torchvision.models, TORCHVISION[case])(weights=None), (3, 224, 224)
    if case in TRAIN_CASES:
        make, shape = TRAIN_CASES[case]
        return make(), shape
    raise SystemExit(f"torch_bench.py: unknown case {case}")


def conv_bwd_case(case):
    """bwd_data:IC:OC:HW / bwd_weights:IC:OC:HW -> (which, ic, oc, hw)"""
    which, ic, oc, hw = case.split(":")
    return which, int(ic), int(oc), int(hw)


def describe(case, batch):
    if case.startswith(("bwd_data:", "bwd_weights:")):
        _, ic, oc, hw = conv_bwd_case(case)
        return {"flops": 2 * batch * oc * hw * hw * ic * 9, "fc_weight_bytes": 0,
                "convs": [f"{batch},{ic},{hw},{hw},{oc},3,3,1,1,1,0,1,0"]}
    train = case in TRAIN_CASES
    model, shape = build(case)
    model.train(train)
    macs, convs, fc_bytes, fcs = 0, [], 0, []

    def conv_hook(m, inp, out):
        nonlocal macs
        x = inp[0]
        kh, kw = m.kernel_size
        # training: forward + weight gradient (+ input gradient when the input needs one)
        passes = (3 if x.requires_grad else 2) if train else 1
        macs += passes * out.numel() * (m.in_channels // m.groups) * kh * kw
        sh, sw = m.stride
        ph, pw = m.padding if isinstance(m.padding, tuple) else (m.padding, m.padding)
        if kh != kw or sh != sw or ph != pw:
            raise SystemExit(f"describe {case}: non-square conv {m}")
        n, c, h, w = x.shape
        convs.append(f"{n},{c},{h},{w},{m.out_channels},{kh},{kw},{sh},{ph},{m.groups},{0 if train else 1},"
                     f"{int(x.requires_grad or not train)},{int(m.bias is not None)}")

    def linear_hook(m, inp, out):
        nonlocal macs, fc_bytes
        macs += (3 if train else 1) * out.numel() * m.in_features
        fc_bytes += m.weight.numel() * m.weight.element_size()
        # oneDNN's inner_product (bench_worker.cpp --fcs): N,K,M,relu (fc:K:M cases: ReLU after)
        fcs.append(f"{inp[0].shape[0]},{m.in_features},{m.out_features},{int(case.startswith('fc:'))}")

    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            m.register_forward_hook(conv_hook)
        elif isinstance(m, nn.Linear):
            m.register_forward_hook(linear_hook)
    if train:  # hooks see which inputs need a gradient
        model(torch.rand(batch, *shape))
    else:
        with torch.inference_mode():
            model(torch.rand(batch, *shape))
    return {"flops": 2 * macs, "convs": convs, "fc_weight_bytes": fc_bytes, "fcs": fcs}


def serve(case, batch, threads):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    if case.startswith(("bwd_data:", "bwd_weights:")):
        which, ic, oc, hw = conv_bwd_case(case)
        x, dy = torch.rand(batch, ic, hw, hw), torch.rand(batch, oc, hw, hw)
        w = (2 * torch.rand(oc, ic, 3, 3) - 1) * (6.0 / (ic * 9)) ** 0.5
        mask = [True, False, False] if which == "bwd_data" else [False, True, False]

        def call():
            with torch.no_grad():
                torch.ops.aten.convolution_backward(dy, x, w, None, [1, 1], [1, 1], [1, 1], False,
                                                    [0, 0], 1, mask)
    else:
        model, shape = build(case)
        model.eval()
        x = torch.rand(batch, *shape)

        def call():
            with torch.inference_mode():
                model(x)
    request_loop(call, {"ready": True, "threads": torch.get_num_threads(), "torch": torch.__version__})


def serve_train(case, batch, threads, opts):
    import numpy as np
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model, shape = build(case)
    model.train()
    params = json.load(open(opts["--params"]))
    tensors = state_tensors(model)
    if len(params) != len(tensors):
        raise RuntimeError(f"{case}: cnnc has {len(params)} params, the PyTorch model {len(tensors)}")
    weights = np.load(opts["--weights"])
    with torch.no_grad():
        for (name, pshape), t in zip(params, tensors):
            if list(t.shape) != list(pshape):
                raise RuntimeError(f"{case}: cnnc's %{name} is {pshape}, PyTorch's tensor {list(t.shape)}")
            t.copy_(torch.from_numpy(np.asarray(weights[name], dtype=np.float32)).reshape(t.shape))
    per = 1
    for d in shape:
        per *= d
    images = np.fromfile(opts["--data"], dtype=np.float32)
    labels = np.fromfile(opts["--labels"], dtype=np.int32)
    nb = min(images.size // (per * batch), labels.size // batch)
    xs = [torch.from_numpy(images[i * batch * per:(i + 1) * batch * per].copy()).reshape(batch, *shape)
          for i in range(nb)]
    ys = [torch.from_numpy(labels[i * batch:(i + 1) * batch].astype(np.int64)) for i in range(nb)]
    lr, mom, wd = (float(v) for v in opts.get("--hyper", "0.001,0.9,0.0005").split(","))
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=mom, weight_decay=wd)
    st = {"next": 0, "loss": float("nan"), "correct": -1, "steps": 0}

    def call():
        i = st["next"]
        st["next"] = (i + 1) % nb
        opt.zero_grad(set_to_none=True)
        out = model(xs[i])
        loss = F.cross_entropy(out, ys[i])
        loss.backward()
        opt.step()
        st["loss"], st["correct"] = loss.item(), int((out.argmax(1) == ys[i]).sum())
        st["steps"] += 1

    def state():
        nonfinite = subnormal = values = 0
        for t in state_tensors(model) + [v["momentum_buffer"] for v in opt.state.values()
                                         if v.get("momentum_buffer") is not None]:
            a = t.detach()
            nonfinite += int((~torch.isfinite(a)).sum())
            subnormal += int(((a != 0) & (a.abs() < torch.finfo(torch.float32).tiny)).sum())
            values += a.numel()
        finite = st["loss"] == st["loss"] and abs(st["loss"]) != float("inf")
        return {"loss": st["loss"] if finite else 0.0, "finite_loss": int(finite), "steps": st["steps"],
                "values": values, "nonfinite": nonfinite, "subnormal": subnormal}
    call()  # batch 0 from the initial weights
    loss0 = st["loss"] if st["loss"] == st["loss"] else None
    request_loop(call, {"ready": True, "threads": torch.get_num_threads(), "torch": torch.__version__,
                        "batches": nb, "loss0": loss0, "correct0": st["correct"]}, state)


def request_loop(call, ready, state=None):
    print(json.dumps(ready), flush=True)
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
        elif line == "state":  # always one answer line: the harness waits for it
            print(json.dumps(state() if state else {}), flush=True)
        elif line == "quit":
            break


def export(case, path):
    torch.manual_seed(0)
    model, shape = build(case)
    torch.onnx.export(model.eval(), torch.rand(1, *shape), path, opset_version=13,
                      input_names=["data"], output_names=["logits"],
                      dynamic_axes={"data": {0: "N"}, "logits": {0: "N"}})


def main():
    a = sys.argv[1:]
    if len(a) >= 2 and a[0] == "serve":
        opts = dict(zip(a[2::2], a[3::2]))
        try:
            serve(a[1], int(opts.get("--batch", 1)), int(opts.get("--threads", 1)))
        except Exception as e:  # reported as the row's error by the harness
            print(json.dumps({"error": f"{type(e).__name__}: {e}"[:300]}), flush=True)
            sys.exit(1)
    elif len(a) >= 2 and a[0] == "serve-train":
        opts = dict(zip(a[2::2], a[3::2]))
        try:
            serve_train(a[1], int(opts.get("--batch", 1)), int(opts.get("--threads", 1)), opts)
        except Exception as e:
            print(json.dumps({"error": f"{type(e).__name__}: {e}"[:300]}), flush=True)
            sys.exit(1)
    elif len(a) >= 2 and a[0] == "describe":
        out = {}
        for spec in a[1:]:
            case, n = spec.rsplit(":", 1)
            out[spec] = describe(case, int(n))
        print(json.dumps(out))
    elif len(a) == 3 and a[0] == "export" and a[1] in TORCHVISION:
        export(a[1], a[2])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
