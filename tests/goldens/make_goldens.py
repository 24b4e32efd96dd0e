#!/usr/bin/python3
"""PyTorch goldens for cnnc's reference interpreter (tests/interp/GoldenTest.cpp).

Run with Debian's Python, which has torch 1.13 and numpy:
    /usr/bin/python3 tests/goldens/make_goldens.py

For every case it writes tests/goldens/data/<case>/:
    model.ir       a cnnc IR function (one op unless the name says otherwise), in the
                   printer's exact syntax (the C++ test checks print(parse(text)) == text)
    <ssa>.npy      one file per input/param node, named by its SSA name (f32; labels i32)
    expected.npy   the function's single output, computed by PyTorch in float64 from the
                   float32 inputs and rounded to float32

PyTorch is the independent oracle: every expected value comes from torch.nn.functional,
never from cnnc. Asymmetric paddings (which PyTorch's ops lack) are built with F.pad
first: zeros for convolution and average pooling, -inf for max pooling.
"""
import os
import shutil

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
rng = np.random.default_rng(20240601)


def randn(*shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def uniform(lo, hi, *shape):
    return rng.uniform(lo, hi, shape).astype(np.float32)


def t64(a):
    return torch.from_numpy(np.asarray(a)).double()


def ir_type(a):
    dtype = {np.dtype(np.float32): "f32", np.dtype(np.int32): "i32"}[a.dtype]
    return "%s[%s]" % (dtype, ",".join(str(d) for d in a.shape))


def ir_attr(v):
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(ir_attr(x) for x in v) + "]"
    if isinstance(v, float):
        return repr(v)  # shortest round-trip form, as cnnc's printer (fmt "{}")
    return str(v)


def write_case(name, sources, body, result, expected):
    """sources: [(ssa, 'input'|'param', array)]; body: IR lines after the sources (without
    indentation); result: the returned SSA name; expected: a float64 torch tensor."""
    d = os.path.join(ROOT, name)
    os.makedirs(d)
    lines = ["func @%s {" % name.replace("-", "_")]
    for ssa, kind, a in sources:
        lines.append("  %%%s = %s : %s" % (ssa, kind, ir_type(a)))
        np.save(os.path.join(d, ssa + ".npy"), np.ascontiguousarray(a))  # C order: the readers refuse Fortran
    lines += ["  " + l for l in body]
    lines += ["  return %" + result, "}"]
    with open(os.path.join(d, "model.ir"), "w") as f:
        f.write("\n".join(lines) + "\n")
    np.save(os.path.join(d, "expected.npy"), np.ascontiguousarray(expected.detach().numpy().astype(np.float32)))


def one_op(name, op, operands, attrs, expected, kinds=None):
    """A one-op case: %y = op(operands...) {attrs} : <expected's type>. `operands` is
    [(ssa, array)]; the first is an input, the others params unless `kinds` says so. `attrs`
    is [(name, value)] in the op table's order, only values that differ from the defaults."""
    kinds = kinds or ["input"] + ["param"] * (len(operands) - 1)
    sources = [(s, k, a) for (s, a), k in zip(operands, kinds)]
    args = ", ".join("%" + s for s, _ in operands)
    attr_text = ""
    if attrs:
        attr_text = " {" + ", ".join("%s=%s" % (k, ir_attr(v)) for k, v in attrs) + "}"
    exp32 = expected.detach().numpy().astype(np.float32)
    ty = ir_type(exp32)
    write_case(name, sources, ["%%y = %s(%s)%s : %s" % (op, args, attr_text, ty)], "y", expected)


# ---------------------------------------------------------------------------- conv2d --
def conv(name, x, w, b=None, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    top, left, bottom, right = pads
    xp = F.pad(t64(x), (left, right, top, bottom))  # F.pad: last dim first
    y = F.conv2d(xp, t64(w), None if b is None else t64(b), stride=stride, dilation=dilation,
                 groups=groups)
    attrs = []
    if tuple(stride) != (1, 1):
        attrs.append(("stride", list(stride)))
    if tuple(pads) != (0, 0, 0, 0):
        attrs.append(("pads", list(pads)))
    if tuple(dilation) != (1, 1):
        attrs.append(("dilation", list(dilation)))
    if groups != 1:
        attrs.append(("groups", groups))
    ops = [("x", x), ("w", w)] + ([] if b is None else [("b", b)])
    one_op(name, "conv2d", ops, attrs, y)


def conv_cases():
    conv("conv2d_basic", randn(2, 3, 7, 7), randn(4, 3, 3, 3), randn(4))
    conv("conv2d_stride2_pad1", randn(1, 3, 9, 9), randn(5, 3, 3, 3), randn(5), stride=(2, 2),
         pads=(1, 1, 1, 1))
    conv("conv2d_asym_pads", randn(1, 2, 6, 7), randn(3, 2, 3, 3), pads=(0, 1, 1, 2))
    conv("conv2d_dilation2", randn(1, 2, 9, 9), randn(3, 2, 3, 3), randn(3), pads=(2, 2, 2, 2),
         dilation=(2, 2))
    conv("conv2d_groups2", randn(2, 4, 6, 6), randn(6, 2, 3, 3), randn(6), pads=(1, 1, 1, 1),
         groups=2)
    conv("conv2d_depthwise", randn(1, 3, 6, 6), randn(3, 1, 3, 3), pads=(1, 1, 1, 1), groups=3)
    conv("conv2d_nonsquare", randn(1, 3, 8, 9), randn(4, 3, 2, 3), randn(4), stride=(2, 1),
         pads=(1, 0, 1, 0), dilation=(1, 2))
    conv("conv2d_1x1", randn(2, 5, 4, 4), randn(3, 5, 1, 1), randn(3))


# ---------------------------------------------------------------------------- pooling --
def maxpool(name, x, kernel, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), ceil=False):
    top, left, bottom, right = pads
    if top == bottom and left == right:
        y = F.max_pool2d(t64(x), kernel, stride, (top, left), dilation, ceil_mode=ceil)
    else:
        assert not ceil
        xp = F.pad(t64(x), (left, right, top, bottom), value=-np.inf)
        y = F.max_pool2d(xp, kernel, stride, 0, dilation)
    attrs = [("kernel", list(kernel))]
    if tuple(stride) != (1, 1):
        attrs.append(("stride", list(stride)))
    if tuple(pads) != (0, 0, 0, 0):
        attrs.append(("pads", list(pads)))
    if tuple(dilation) != (1, 1):
        attrs.append(("dilation", list(dilation)))
    if ceil:
        attrs.append(("ceil_mode", 1))
    one_op(name, "maxpool", [("x", x)], attrs, y)


def avgpool(name, x, kernel, stride=(1, 1), pads=(0, 0, 0, 0), ceil=False, include=False):
    top, left, bottom, right = pads
    if top == bottom and left == right:
        y = F.avg_pool2d(t64(x), kernel, stride, (top, left), ceil_mode=ceil,
                         count_include_pad=include)
    else:  # zero padding counted in the divisor: only count_include_pad=1, no ceil
        assert include and not ceil
        y = F.avg_pool2d(F.pad(t64(x), (left, right, top, bottom)), kernel, stride)
    attrs = [("kernel", list(kernel))]
    if tuple(stride) != (1, 1):
        attrs.append(("stride", list(stride)))
    if tuple(pads) != (0, 0, 0, 0):
        attrs.append(("pads", list(pads)))
    if ceil:
        attrs.append(("ceil_mode", 1))
    if include:
        attrs.append(("count_include_pad", 1))
    one_op(name, "avgpool", [("x", x)], attrs, y)


def pool_cases():
    maxpool("maxpool_2x2_s2", randn(2, 3, 8, 8), (2, 2), (2, 2))
    maxpool("maxpool_3x3_s2_overlap", randn(1, 2, 9, 9), (3, 3), (2, 2))
    maxpool("maxpool_2x2_s1_overlap", randn(1, 2, 5, 6), (2, 2), (1, 1))
    # All-negative input: a padded zero would win if padding took part.
    maxpool("maxpool_pad_negative", uniform(-9, -1, 1, 2, 7, 7), (3, 3), (2, 2), (1, 1, 1, 1))
    maxpool("maxpool_asym_pads", uniform(-9, -1, 1, 2, 6, 5), (2, 2), (2, 2), (0, 1, 1, 0))
    maxpool("maxpool_dilation2", randn(1, 2, 7, 7), (2, 2), (1, 1), dilation=(2, 2))
    maxpool("maxpool_ceil", randn(1, 2, 8, 8), (3, 3), (2, 2), ceil=True)
    # ceil_mode would add a window starting in the trailing padding: PyTorch drops it.
    maxpool("maxpool_ceil_pad_drop", randn(1, 1, 5, 5), (2, 2), (2, 2), (1, 1, 1, 1), ceil=True)
    avgpool("avgpool_2x2_s2", randn(2, 3, 6, 6), (2, 2), (2, 2))
    avgpool("avgpool_pad_include", randn(1, 2, 5, 5), (3, 3), (1, 1), (1, 1, 1, 1), include=True)
    avgpool("avgpool_pad_exclude", randn(1, 2, 5, 5), (3, 3), (2, 2), (1, 1, 1, 1), include=False)
    avgpool("avgpool_ceil_include", randn(1, 2, 6, 6), (3, 3), (2, 2), (1, 1, 1, 1), ceil=True,
            include=True)
    avgpool("avgpool_ceil_exclude", randn(1, 2, 6, 6), (3, 3), (2, 2), (1, 1, 1, 1), ceil=True,
            include=False)
    avgpool("avgpool_ceil_nopad", randn(1, 2, 7, 7), (2, 2), (2, 2), ceil=True)
    avgpool("avgpool_asym_pads_include", randn(1, 2, 5, 6), (3, 3), (1, 1), (1, 0, 0, 2),
            include=True)
    x = randn(2, 3, 5, 4)
    one_op("global_avgpool", "global_avgpool", [("x", x)], [],
           F.adaptive_avg_pool2d(t64(x), 1))


# ---------------------------------------------------------------------------- the rest --
def elementwise_cases():
    x = uniform(-4, 4, 2, 3, 4, 5)
    one_op("relu", "relu", [("x", x)], [], F.relu(t64(x)))
    one_op("sigmoid", "sigmoid", [("x", x)], [], torch.sigmoid(t64(x)))
    one_op("tanh", "tanh", [("x", x)], [], torch.tanh(t64(x)))
    one_op("identity", "identity", [("x", x)], [], t64(x))
    xd = randn(3, 8)
    one_op("dropout_inference", "dropout", [("x", xd)], [("rate", 0.3)],
           F.dropout(t64(xd), 0.3, training=False))

    def binop(name, op, fn, a, b):
        one_op(name, op, [("a", a), ("b", b)], [], fn(t64(a), t64(b)), kinds=["input", "input"])

    binop("add_same", "add", torch.add, randn(2, 3, 4), randn(2, 3, 4))
    binop("add_bcast_channel", "add", torch.add, randn(2, 3, 4, 5), randn(3, 1, 1))
    binop("sub_bcast_row", "sub", torch.sub, randn(2, 3), randn(3))
    binop("mul_bcast_both", "mul", torch.mul, randn(2, 1, 4), randn(3, 1))
    sign = np.where(rng.random((1, 3, 1)) < 0.5, -1, 1).astype(np.float32)
    binop("div_bcast", "div", torch.div, randn(2, 3, 4), uniform(0.5, 2, 1, 3, 1) * sign)
    binop("div_scalar_rhs", "div", torch.div, randn(2, 3), uniform(1, 2))


def dense_cases():
    x, w, b = randn(3, 10), randn(4, 10), randn(4)
    one_op("fc", "fc", [("x", x), ("w", w), ("b", b)], [], F.linear(t64(x), t64(w), t64(b)))
    one_op("fc_nobias", "fc", [("x", x), ("w", w)], [], F.linear(t64(x), t64(w)))
    for ta in (0, 1):
        for tb in (0, 1):
            a = randn(*((6, 4) if ta else (4, 6)))
            b = randn(*((5, 6) if tb else (6, 5)))
            ea, eb = t64(a), t64(b)
            y = (ea.T if ta else ea) @ (eb.T if tb else eb)
            attrs = ([("trans_a", 1)] if ta else []) + ([("trans_b", 1)] if tb else [])
            one_op("matmul_ta%d_tb%d" % (ta, tb), "matmul", [("a", a), ("b", b)], attrs, y,
                   kinds=["input", "param"])


def shape_cases():
    xs = [randn(1, 2, 3, 3), randn(1, 3, 3, 3), randn(1, 1, 3, 3)]
    one_op("concat_axis1", "concat", [("a", xs[0]), ("b", xs[1]), ("c", xs[2])], [],
           torch.cat([t64(x) for x in xs], 1), kinds=["input"] * 3)
    ys = [randn(2, 3, 2), randn(2, 3, 4)]
    one_op("concat_last", "concat", [("a", ys[0]), ("b", ys[1])], [("axis", -1)],
           torch.cat([t64(y) for y in ys], -1), kinds=["input"] * 2)
    zs = [randn(1, 4), randn(3, 4)]
    one_op("concat_axis0", "concat", [("a", zs[0]), ("b", zs[1])], [("axis", 0)],
           torch.cat([t64(z) for z in zs], 0), kinds=["input"] * 2)
    x = randn(2, 3, 4, 5)
    one_op("flatten_axis1", "flatten", [("x", x)], [], torch.flatten(t64(x), 1))
    one_op("flatten_axis2", "flatten", [("x", x)], [("axis", 2)],
           t64(x).reshape(6, 20))
    one_op("reshape_zero_minus1", "reshape", [("x", x)], [("shape", [0, -1])],
           t64(x).reshape(2, -1))
    one_op("reshape_minus1_mid", "reshape", [("x", x)], [("shape", [4, -1, 3, 5])],
           t64(x).reshape(4, -1, 3, 5))


def softmax_cases():
    x = randn(2, 5, 3, scale=3.0)
    big = randn(3, 6, scale=60.0)  # exp would overflow without the max shift
    for op, fn in (("softmax", F.softmax), ("log_softmax", F.log_softmax)):
        one_op(op + "_axis1", op, [("x", x)], [], fn(t64(x), 1))
        one_op(op + "_last", op, [("x", x)], [("axis", -1)], fn(t64(x), -1))
        one_op(op + "_large", op, [("x", big)], [], fn(t64(big), 1))


def norm_cases():
    def bn(name, x, eps=None):
        C = x.shape[1]
        scale, bias, mean = randn(C), randn(C), randn(C)
        var = uniform(0.2, 3.0, C)
        y = F.batch_norm(t64(x), t64(mean), t64(var), t64(scale), t64(bias), training=False,
                         eps=1e-5 if eps is None else eps)
        ops = [("x", x), ("bn.scale", scale), ("bn.bias", bias), ("bn.mean", mean), ("bn.var", var)]
        one_op(name, "batchnorm", ops, [] if eps is None else [("epsilon", eps)], y)

    bn("batchnorm", randn(2, 3, 4, 4))
    bn("batchnorm_eps", randn(2, 4, 3, 3), eps=0.001)
    bn("batchnorm_2d", randn(5, 3))
    x = randn(3, 4, 5, 5) + 2.0
    var, mean = torch.var_mean(t64(x), dim=(0, 2, 3), unbiased=False)
    one_op("bn_mean", "bn_mean", [("x", x)], [], mean)
    m32 = mean.numpy().astype(np.float32)
    var_at_m32 = torch.mean((t64(x) - t64(m32)[None, :, None, None]) ** 2, dim=(0, 2, 3))
    assert torch.allclose(var_at_m32, var, rtol=1e-6)  # torch's batch variance
    one_op("bn_var", "bn_var", [("x", x), ("m", m32)], [], var_at_m32, kinds=["input", "input"])


def loss_cases():
    logits = randn(5, 7, scale=2.0)
    labels = np.array([0, 6, 3, 3, 1], dtype=np.int32)
    one_op("softmax_xent", "softmax_xent", [("logits", logits), ("labels", labels)], [],
           F.cross_entropy(t64(logits), torch.from_numpy(labels).long()),
           kinds=["input", "input"])
    pred, target = randn(4, 6), randn(4, 6)
    one_op("l2_loss", "l2_loss", [("pred", pred), ("target", target)], [],
           0.5 * F.mse_loss(t64(pred), t64(target), reduction="sum") / 4,
           kinds=["input", "input"])
    p4, t4 = randn(3, 2, 2, 2), randn(3, 2, 2, 2)
    one_op("l2_loss_4d", "l2_loss", [("pred", p4), ("target", t4)], [],
           0.5 * ((t64(t4) - t64(p4)) ** 2).sum() / 3, kinds=["input", "input"])


def chain_cases():
    """A small CNN end to end (several nodes): conv, relu, maxpool, flatten, fc, loss."""
    x, w, b = randn(2, 1, 6, 6), randn(3, 1, 3, 3, scale=0.5), randn(3)
    fw, fb = randn(4, 12, scale=0.3), randn(4)
    labels = np.array([2, 0], dtype=np.int32)
    h = F.max_pool2d(F.relu(F.conv2d(t64(x), t64(w), t64(b))), 2, 2)
    logits = F.linear(torch.flatten(h, 1), t64(fw), t64(fb))
    loss = F.cross_entropy(logits, torch.from_numpy(labels).long())
    sources = [("data", "input", x), ("label", "input", labels), ("conv1.w", "param", w),
               ("conv1.b", "param", b), ("fc1.w", "param", fw), ("fc1.b", "param", fb)]
    body = ["%conv1 = conv2d(%data, %conv1.w, %conv1.b) : f32[2,3,4,4]",
            "%relu1 = relu(%conv1) : f32[2,3,4,4]",
            "%pool1 = maxpool(%relu1) {kernel=[2,2], stride=[2,2]} : f32[2,3,2,2]",
            "%flat = flatten(%pool1) : f32[2,12]",
            "%fc1 = fc(%flat, %fc1.w, %fc1.b) : f32[2,4]",
            "%loss = softmax_xent(%fc1, %label) : f32[]"]
    write_case("chain_small_cnn", sources, body, "loss", loss)


# ---------------------------------------------------------------- autodiff and training --
# Appended after the forward cases so that the random stream, hence every earlier case's
# data, is unchanged. The vector-Jacobian products are PyTorch's autograd of the forward
# formula, applied to a given dy (never cnnc's rule re-typed in numpy).
def ir_str(s):
    return '"%s"' % s


def vjp(fn, inputs, dy):
    """Autograd of fn(*inputs) (float64 leaves made from the given arrays) applied to dy:
    the gradient wrt every input, in order."""
    leaves = [t64(a).requires_grad_(True) for a in inputs]
    y = fn(*leaves)
    return torch.autograd.grad(y, leaves, t64(dy))


def tensor_op_cases():
    x = randn(2, 3, 4, 5)
    one_op("transpose_4d", "transpose", [("x", x)], [("perm", [0, 2, 3, 1])],
           t64(x).permute(0, 2, 3, 1))
    x3 = randn(2, 3, 4)
    one_op("transpose_3d", "transpose", [("x", x3)], [("perm", [2, 0, 1])], t64(x3).permute(2, 0, 1))
    c = randn(3, 1, 1)
    one_op("expand_channel", "expand", [("x", c)], [("shape", [2, 3, 4, 5])],
           t64(c).expand(2, 3, 4, 5))
    r = randn(1, 4)
    one_op("expand_rank_up", "expand", [("x", r)], [("shape", [3, 2, 4])], t64(r).expand(3, 2, 4))
    one_op("reduce_sum_bias", "reduce_sum", [("x", x)], [("axes", [0, 2, 3])],
           t64(x).sum(dim=(0, 2, 3)))
    one_op("reduce_sum_keepdims", "reduce_sum", [("x", x)], [("axes", [1, -1]), ("keepdims", 1)],
           t64(x).sum(dim=(1, 3), keepdim=True))
    one_op("reduce_sum_all", "reduce_sum", [("x", x3)], [("axes", [0, 1, 2])], t64(x3).sum())
    xs = randn(2, 5, 3)
    one_op("slice_axis1", "slice", [("x", xs)], [("axis", 1), ("start", 1), ("end", 4)],
           t64(xs)[:, 1:4, :])
    one_op("slice_last", "slice", [("x", xs)], [("axis", -1), ("start", 0), ("end", 2)],
           t64(xs)[..., 0:2])

    # count_correct: rows 2 and 4 tie; the first maximum decides (torch.argmax returns the
    # first maximal index). Row 2's label is its first maximum (counts), row 4's its second
    # (does not count).
    logits = randn(6, 5)
    logits[2] = [1.0, 3.0, 3.0, 0.0, 2.0]
    logits[4] = [3.0, 0.0, 3.0, -1.0, 3.0]
    labels = np.array([0, 0, 1, 0, 2, 0], dtype=np.int32)
    labels[0] = int(np.argmax(logits[0]))
    labels[5] = (int(np.argmax(logits[5])) + 1) % 5
    am = torch.argmax(t64(logits), dim=1)
    assert am[2] == 1 and am[4] == 0
    count = (am == torch.from_numpy(labels).long()).sum().double()
    assert count == 2
    write_case("count_correct_ties", [("logits", "input", logits), ("labels", "input", labels)],
               ["%y = count_correct(%logits, %labels) : i32[]"], "y", count)


def conv_attrs(kernel, stride, pads, dilation, groups, input_shape=None):
    attrs = [] if input_shape is None else [("input_shape", list(input_shape))]
    attrs.append(("kernel", list(kernel)))
    if tuple(stride) != (1, 1):
        attrs.append(("stride", list(stride)))
    if tuple(pads) != (0, 0, 0, 0):
        attrs.append(("pads", list(pads)))
    if tuple(dilation) != (1, 1):
        attrs.append(("dilation", list(dilation)))
    if groups != 1:
        attrs.append(("groups", groups))
    return attrs


def im2row_cases():
    """im2row = F.unfold of the zero-padded input, rearranged from torch's [N, C*kh*kw, L]
    (column (c*kh+i)*kw+j, L = Ho*Wo row-major) to cnnc's [G, N*L, C/G*kh*kw]; row2im = F.fold
    of the same layout onto the padded input, cropped (the padding is dropped)."""
    cases = [("basic", (2, 2, 5, 5), (3, 3), (1, 1), (0, 0, 0, 0), (1, 1), 1),
             ("stride2_asym_pads", (1, 3, 6, 7), (3, 3), (2, 2), (0, 1, 1, 2), (1, 1), 1),
             ("dilation2", (1, 2, 7, 6), (3, 2), (1, 1), (1, 1, 1, 1), (2, 2), 1),
             ("groups2_nonsquare", (2, 4, 5, 6), (2, 3), (1, 2), (1, 0, 0, 1), (1, 1), 2)]
    for name, xs, k, s, pads, d, g in cases:
        N, C, H, W = xs
        top, left, bottom, right = pads
        x = randn(*xs)
        xp = F.pad(t64(x), (left, right, top, bottom))
        u = F.unfold(xp, k, dilation=d, stride=s)  # [N, C*kh*kw, L]
        L = u.shape[2]
        rows = u.reshape(N, g, C // g * k[0] * k[1], L).permute(1, 0, 3, 2)
        rows = rows.reshape(g, N * L, C // g * k[0] * k[1])
        one_op("im2row_" + name, "im2row", [("x", x)], conv_attrs(k, s, pads, d, g), rows)

        r = randn(*rows.shape)
        cols = t64(r).reshape(g, N, L, C // g * k[0] * k[1]).permute(1, 0, 3, 2)
        cols = cols.reshape(N, C * k[0] * k[1], L)
        full = F.fold(cols, (H + top + bottom, W + left + right), k, dilation=d, stride=s)
        dx = full[:, :, top:top + H, left:left + W]
        one_op("row2im_" + name, "row2im", [("rows", r)], conv_attrs(k, s, pads, d, g, xs), dx)


def activation_grad_cases():
    x = uniform(-3, 3, 2, 3, 4, 5)
    x[np.abs(x) < 1e-3] = 0.5  # keep away from relu's kink
    dy = randn(2, 3, 4, 5)
    (dx,) = vjp(F.relu, [x], dy)
    one_op("relu_grad", "relu_grad", [("dy", dy), ("x", x)], [], dx, kinds=["input", "input"])
    # sigmoid_grad/tanh_grad take y = f(x); autograd runs at the x whose f is exactly the f32 y.
    y = torch.sigmoid(t64(x)).numpy().astype(np.float32)
    (dx,) = vjp(torch.sigmoid, [torch.logit(t64(y)).numpy()], dy)
    one_op("sigmoid_grad", "sigmoid_grad", [("dy", dy), ("out", y)], [], dx, kinds=["input", "input"])
    y = torch.tanh(t64(x)).numpy().astype(np.float32)
    (dx,) = vjp(torch.tanh, [torch.atanh(t64(y)).numpy()], dy)
    one_op("tanh_grad", "tanh_grad", [("dy", dy), ("out", y)], [], dx, kinds=["input", "input"])


def pool_grad_cases():
    """Inputs are continuous random values: no ties (PyTorch's tie rule may differ from cnnc's,
    which tests/interp checks directly)."""
    def maxpool_grad(name, x, kernel, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1),
                     ceil=False):
        top, left, bottom, right = pads
        if top == bottom and left == right:
            fn = lambda t: F.max_pool2d(t, kernel, stride, (top, left), dilation, ceil_mode=ceil)
        else:
            assert not ceil
            fn = lambda t: F.max_pool2d(F.pad(t, (left, right, top, bottom), value=-np.inf),
                                        kernel, stride, 0, dilation)
        dy = randn(*fn(t64(x)).shape)
        (dx,) = vjp(fn, [x], dy)
        attrs = [("kernel", list(kernel))]
        if tuple(stride) != (1, 1):
            attrs.append(("stride", list(stride)))
        if tuple(pads) != (0, 0, 0, 0):
            attrs.append(("pads", list(pads)))
        if tuple(dilation) != (1, 1):
            attrs.append(("dilation", list(dilation)))
        if ceil:
            attrs.append(("ceil_mode", 1))
        one_op(name, "maxpool_grad", [("dy", dy), ("x", x)], attrs, dx, kinds=["input", "input"])

    def avgpool_grad(name, xs, kernel, stride=(1, 1), pads=(0, 0, 0, 0), ceil=False,
                     include=False):
        top, left, bottom, right = pads
        if top == bottom and left == right:
            fn = lambda t: F.avg_pool2d(t, kernel, stride, (top, left), ceil_mode=ceil,
                                        count_include_pad=include)
        else:
            assert include and not ceil
            fn = lambda t: F.avg_pool2d(F.pad(t, (left, right, top, bottom)), kernel, stride)
        x = np.zeros(xs, np.float32)  # avgpool is linear: only the shape matters
        dy = randn(*fn(t64(x)).shape)
        (dx,) = vjp(fn, [x], dy)
        attrs = [("input_shape", list(xs)), ("kernel", list(kernel))]
        if tuple(stride) != (1, 1):
            attrs.append(("stride", list(stride)))
        if tuple(pads) != (0, 0, 0, 0):
            attrs.append(("pads", list(pads)))
        if ceil:
            attrs.append(("ceil_mode", 1))
        if include:
            attrs.append(("count_include_pad", 1))
        one_op(name, "avgpool_grad", [("dy", dy)], attrs, dx)

    maxpool_grad("maxpool_grad_2x2_s2", randn(2, 2, 6, 6), (2, 2), (2, 2))
    maxpool_grad("maxpool_grad_3x3_s2_overlap_pad", randn(1, 2, 7, 7), (3, 3), (2, 2),
                 (1, 1, 1, 1))
    maxpool_grad("maxpool_grad_2x2_s1_overlap", randn(1, 2, 5, 6), (2, 2))
    maxpool_grad("maxpool_grad_pad_negative", uniform(-9, -1, 1, 2, 6, 5), (3, 3), (2, 2),
                 (0, 1, 2, 1))
    maxpool_grad("maxpool_grad_dilation2", randn(1, 2, 7, 7), (2, 2), (1, 1), dilation=(2, 2))
    maxpool_grad("maxpool_grad_ceil", randn(1, 2, 8, 8), (3, 3), (2, 2), ceil=True)
    maxpool_grad("maxpool_grad_ceil_pad", randn(1, 1, 6, 6), (3, 3), (2, 2), (1, 1, 1, 1),
                 ceil=True)
    avgpool_grad("avgpool_grad_2x2_s2", (2, 2, 6, 6), (2, 2), (2, 2))
    avgpool_grad("avgpool_grad_overlap_include", (1, 2, 5, 5), (3, 3), (1, 1), (1, 1, 1, 1),
                 include=True)
    avgpool_grad("avgpool_grad_overlap_exclude", (1, 2, 5, 5), (3, 3), (1, 1), (1, 1, 1, 1))
    avgpool_grad("avgpool_grad_ceil_include", (1, 2, 6, 6), (3, 3), (2, 2), (1, 1, 1, 1),
                 ceil=True, include=True)
    avgpool_grad("avgpool_grad_ceil_exclude", (1, 2, 6, 6), (3, 3), (2, 2), (1, 1, 1, 1),
                 ceil=True)
    avgpool_grad("avgpool_grad_ceil_nopad", (1, 2, 7, 7), (2, 2), (2, 2), ceil=True)
    avgpool_grad("avgpool_grad_asym_pads_include", (1, 2, 5, 6), (3, 3), (1, 1), (1, 0, 0, 2),
                 include=True)


def softmax_grad_cases():
    x = randn(2, 5, 3, scale=2.0)
    dy = randn(2, 5, 3)
    for op, fn in (("softmax_grad", F.softmax), ("log_softmax_grad", F.log_softmax)):
        for axis, suffix in ((1, "axis1"), (-1, "last")):
            y = fn(t64(x), axis).numpy().astype(np.float32)
            (dx,) = vjp(lambda t: fn(t, axis), [x], dy)
            one_op("%s_%s" % (op, suffix), op, [("dy", dy), ("out", y)],
                   [] if axis == 1 else [("axis", axis)], dx, kinds=["input", "input"])


def bn_grad_cases():
    def bn(x, scale, mean, var, eps):
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return ((x - mean.reshape(shape)) / torch.sqrt(var.reshape(shape) + eps)
                * scale.reshape(shape))

    for name, xs, eps in (("", (2, 3, 4, 4), None), ("_2d_eps", (6, 4), 0.01)):
        C = xs[1]
        x, dy = randn(*xs), randn(*xs)
        scale, mean, var = randn(C), randn(C), uniform(0.2, 3.0, C)
        grads = vjp(lambda *t: bn(*t, 1e-5 if eps is None else eps), [x, scale, mean, var], dy)
        ops = [("dy", dy), ("x", x), ("scale", scale), ("mean", mean), ("var", var)]
        for wrt, g in zip(("x", "scale", "mean", "var"), grads):
            attrs = [("wrt", ir_str(wrt))] + ([] if eps is None else [("epsilon", eps)])
            one_op("batchnorm_grad_%s%s" % (wrt, name), "batchnorm_grad", ops, attrs, g,
                   kinds=["input"] * 5)

    for name, xs in (("", (3, 4, 5, 5)), ("_2d", (7, 3))):
        C = xs[1]
        dims = (0,) + tuple(range(2, len(xs)))
        x = randn(*xs) + 1.0
        dmean = randn(C)
        (dx,) = vjp(lambda t: t.mean(dim=dims), [x], dmean)
        one_op("bn_mean_grad" + name, "bn_mean_grad", [("dmean", dmean), ("x", x)], [], dx,
               kinds=["input", "input"])
        # An arbitrary mean operand (not x's own), so that the mean gradient is not ~0.
        mean, dvar = randn(C), randn(C)
        shape = (1, -1) + (1,) * (len(xs) - 2)
        dx, dm = vjp(lambda t, m: ((t - m.reshape(shape)) ** 2).mean(dim=dims), [x, mean], dvar)
        ops = [("dvar", dvar), ("x", x), ("mean", mean)]
        one_op("bn_var_grad_x" + name, "bn_var_grad", ops, [("wrt", ir_str("x"))], dx,
               kinds=["input"] * 3)
        one_op("bn_var_grad_mean" + name, "bn_var_grad", ops, [("wrt", ir_str("mean"))], dm,
               kinds=["input"] * 3)


def loss_grad_cases():
    logits = randn(5, 7, scale=2.0)
    labels = np.array([0, 6, 3, 3, 1], dtype=np.int32)
    dz = np.array(0.75, dtype=np.float32)
    (dl,) = vjp(lambda t: F.cross_entropy(t, torch.from_numpy(labels).long()), [logits], dz)
    one_op("softmax_xent_grad", "softmax_xent_grad",
           [("dz", dz), ("logits", logits), ("labels", labels)], [], dl, kinds=["input"] * 3)
    big = randn(3, 6, scale=60.0)  # exp would overflow without the max shift
    lb = np.array([2, 0, 5], dtype=np.int32)
    one = np.array(1.0, dtype=np.float32)
    (dl,) = vjp(lambda t: F.cross_entropy(t, torch.from_numpy(lb).long()), [big], one)
    one_op("softmax_xent_grad_large", "softmax_xent_grad",
           [("dz", one), ("logits", big), ("labels", lb)], [], dl, kinds=["input"] * 3)
    for name, shape in (("", (4, 6)), ("_4d", (3, 2, 2, 2))):
        pred, target = randn(*shape), randn(*shape)
        dz = np.array(-1.5, dtype=np.float32)
        (dp,) = vjp(lambda p: 0.5 * F.mse_loss(p, t64(target), reduction="sum") / shape[0],
                    [pred], dz)
        one_op("l2_loss_grad" + name, "l2_loss_grad",
               [("dz", dz), ("pred", pred), ("target", target)], [], dp, kinds=["input"] * 3)


def update_cases():
    """update's value is its second operand: here one SGD step w - lr*g, checked against
    torch.optim.SGD."""
    w, g = randn(3, 4), randn(3, 4)
    lr = np.array(0.1, dtype=np.float32)
    wt = t64(w).requires_grad_(True)
    wt.grad = t64(g)
    torch.optim.SGD([wt], lr=float(lr)).step()
    sources = [("w", "param", w), ("g", "input", g), ("lr", "input", lr)]
    body = ["%step = mul(%g, %lr) : f32[3,4]",
            "%w.new = sub(%w, %step) : f32[3,4]",
            "%w.next = update(%w, %w.new) : f32[3,4]"]
    write_case("update_sgd", sources, body, "w.next", wt.detach())


def batched_matmul_cases():
    """matmul of 3-D operands (a batch of matrices, as the conv2d gradient's per-group
    products): torch.bmm."""
    for ta, tb in ((0, 0), (1, 0), (0, 1)):
        a = randn(*((3, 6, 4) if ta else (3, 4, 6)))
        b = randn(*((3, 5, 6) if tb else (3, 6, 5)))
        ea, eb = t64(a), t64(b)
        y = torch.bmm(ea.transpose(1, 2) if ta else ea, eb.transpose(1, 2) if tb else eb)
        attrs = ([("trans_a", 1)] if ta else []) + ([("trans_b", 1)] if tb else [])
        one_op("matmul_batch_ta%d_tb%d" % (ta, tb), "matmul", [("a", a), ("b", b)], attrs, y,
               kinds=["input", "input"])


def onnx_op_cases():
    """The N-D ops that ONNX models bring: batch_matmul (torch.matmul, batch dims broadcast)
    and softmax_xent_nd (F.cross_entropy with class weights, ignore_index, reduction)."""
    a, b = randn(2, 1, 3, 4), randn(3, 4, 5)
    one_op("batch_matmul_bcast", "batch_matmul", [("a", a), ("b", b)], [],
           torch.matmul(t64(a), t64(b)), kinds=["input", "input"])
    logits = randn(3, 4, 5, scale=2.0)
    labels = rng.integers(0, 4, (3, 5)).astype(np.int32)
    labels[0, 1] = labels[2, 3] = 2  # the ignored class, at least twice
    w = uniform(0.5, 2.0, 4)
    lt = torch.from_numpy(labels).long()
    one_op("softmax_xent_nd_weighted_ignore", "softmax_xent_nd",
           [("logits", logits), ("labels", labels), ("w", w)], [("ignore_index", [2])],
           F.cross_entropy(t64(logits), lt, weight=t64(w), ignore_index=2),
           kinds=["input", "input", "param"])
    one_op("softmax_xent_nd_sum", "softmax_xent_nd", [("logits", logits), ("labels", labels)],
           [("reduction", ir_str("sum"))], F.cross_entropy(t64(logits), lt, reduction="sum"),
           kinds=["input", "input"])
    one_op("softmax_xent_nd_none", "softmax_xent_nd", [("logits", logits), ("labels", labels)],
           [("reduction", ir_str("none"))], F.cross_entropy(t64(logits), lt, reduction="none"),
           kinds=["input", "input"])


def conv_grad_cases():
    """The fused conv2d gradients (fuse-conv-grad): PyTorch's autograd of F.conv2d (on the
    zero-padded input, so asymmetric pads work) wrt the weight (conv2d_grad_filter, seed eq.
    35) and wrt the input (conv2d_grad_input, eqs. 45-46)."""
    cases = [("basic", (2, 3, 6, 6), (4, 3, 3, 3), (1, 1), (0, 0, 0, 0), (1, 1), 1),
             ("stride2_asym_pads", (1, 3, 7, 6), (5, 3, 3, 2), (2, 2), (0, 1, 1, 2), (1, 1), 1),
             ("dilation2", (2, 2, 8, 7), (3, 2, 3, 3), (1, 2), (1, 1, 1, 1), (2, 2), 1),
             ("groups2_nonsquare", (2, 4, 5, 7), (6, 2, 2, 3), (1, 2), (1, 0, 0, 1), (1, 1), 2)]
    for name, xs, ws, s, pads, d, g in cases:
        top, left, bottom, right = pads
        x, w = randn(*xs), randn(*ws)

        def fn(xx, ww):
            return F.conv2d(F.pad(xx, (left, right, top, bottom)), ww, stride=s, dilation=d,
                            groups=g)
        y = fn(t64(x), t64(w))
        dy = randn(*y.shape)
        dx, dw = vjp(fn, [x, w], dy)
        one_op("conv2d_grad_filter_" + name, "conv2d_grad_filter", [("x", x), ("dy", dy)],
               conv_attrs(ws[2:], s, pads, d, g), dw, kinds=["input", "input"])
        attrs = [a for a in conv_attrs(ws[2:], s, pads, d, g, xs) if a[0] != "kernel"]
        one_op("conv2d_grad_input_" + name, "conv2d_grad_input", [("dy", dy), ("w", w)], attrs,
               dx)


def bn_unbias_cases():
    # Bessel's factor n/(n-1) over N*H*W, as torch's unbiased/biased batch variance ratio
    # (last, so that the random draws of every earlier case stay as they were)
    x = randn(3, 2, 4, 5)
    ratio = torch.var(t64(x), dim=(0, 2, 3), unbiased=True) / torch.var(t64(x), dim=(0, 2, 3),
                                                                         unbiased=False)
    one_op("bn_unbias", "bn_unbias", [("x", x)], [], ratio[0])
    # one value per channel: nothing to unbias (torch's unbiased variance would be NaN)
    one_op("bn_unbias_single", "bn_unbias", [("x", randn(1, 3))], [], torch.tensor(1.0, dtype=torch.float64))


# Last, so that adding it left every earlier case's random inputs unchanged.
def softplus_cases():
    x = uniform(-30, 30, 2, 3, 4, 5)  # beyond where exp(x) is exact in float32
    one_op("softplus", "softplus", [("x", x)], [], F.softplus(t64(x)))


# Last, so that adding it left every earlier case's random inputs unchanged.
def filter_flip_cases():
    """filter_flip (grad-input-as-conv): the filter of a stride-1 input gradient as a
    convolution, by torch's own view/transpose/flip."""
    for name, ws, g in [("basic", (4, 3, 3, 3), 1), ("groups2_nonsquare", (6, 2, 2, 3), 2)]:
        w = randn(*ws)
        m, cg, kh, kw = ws
        want = t64(w).reshape(g, m // g, cg, kh, kw).transpose(1, 2).flip(-1, -2)
        one_op("filter_flip_" + name, "filter_flip", [("w", w)],
               [("groups", g)] if g != 1 else [], want.reshape(g * cg, m // g, kh, kw))


# Issue 14's activations and padding. Last, so that every earlier case's inputs stay.
def model_op_cases():
    x = uniform(-8, 8, 2, 3, 4, 5)  # both sides of every bend (0 and 6, +-3)
    one_op("clip_relu6", "clip", [("x", x)], [("min", 0.0), ("max", 6.0)], torch.clamp(t64(x), 0, 6))
    one_op("clip_min_only", "clip", [("x", x)], [("min", -0.5)], torch.clamp(t64(x), min=-0.5))
    one_op("hard_sigmoid_torch", "hard_sigmoid", [("x", x)], [("alpha", 1 / 6)], F.hardsigmoid(t64(x)))
    one_op("hard_sigmoid_onnx", "hard_sigmoid", [("x", x)], [],
           torch.clamp(0.2 * t64(x) + 0.5, 0, 1))
    one_op("hard_swish", "hard_swish", [("x", x)], [], F.hardswish(t64(x)))
    one_op("leaky_relu", "leaky_relu", [("x", x)], [("alpha", 0.1)], F.leaky_relu(t64(x), 0.1))
    dy = randn(2, 3, 4, 5)
    (dx,) = vjp(lambda v: F.hardtanh(v, 0.0, 6.0), [x], dy)  # strict: 0 at the bounds
    one_op("clip_grad", "clip_grad", [("dy", dy), ("x", x)], [("min", 0.0), ("max", 6.0)], dx,
           kinds=["input", "input"])
    # pads [0,0,1,2, 0,0,2,1]: rows 1 above and 2 below, columns 2 left and 1 right (PyTorch's
    # F.pad lists the last dim first); channels padded too in the constant case
    pads = [0, 0, 1, 2, 0, 0, 2, 1]
    y = randn(2, 3, 7, 8)
    for mode, tmode in (("constant", "constant"), ("reflect", "reflect"), ("edge", "replicate")):
        attrs = [("pads", pads)] + ([("mode", ir_str(mode))] if mode != "constant" else [("value", 0.5)])
        kw = {"value": 0.5} if mode == "constant" else {}
        fn = lambda v, tmode=tmode, kw=kw: F.pad(v, (2, 1, 1, 2), mode=tmode, **kw)
        one_op("pad_" + mode, "pad", [("x", x[:, :, :4, :5])], attrs, fn(t64(x)))
        (dx,) = vjp(fn, [x], y)
        gattrs = [("pads", pads)] + ([("mode", ir_str(mode))] if mode != "constant" else [])
        one_op("pad_grad_" + mode, "pad_grad", [("dy", y)], gattrs, dx)
    one_op("pad_channels", "pad", [("x", x)], [("pads", [0, 1, 0, 0, 0, 2, 0, 0])],
           F.pad(t64(x), (0, 0, 0, 0, 1, 2)))


# Issue 14's smooth activations and elementwise math (after model_op_cases: earlier inputs stay).
def math_op_cases():
    x = uniform(-3, 3, 2, 3, 4, 5)
    pos = uniform(0.2, 3, 2, 3, 4, 5)
    one_op("elu", "elu", [("x", x)], [("alpha", 0.5)], F.elu(t64(x), 0.5))
    a, g = 1.67326319217681884765625, 1.05070102214813232421875  # ONNX's f32 defaults
    one_op("selu", "selu", [("x", x)], [], g * torch.where(t64(x) > 0, t64(x), a * torch.expm1(t64(x))))
    slope = uniform(-0.5, 0.5, 3, 1, 1)
    one_op("prelu", "prelu", [("x", x), ("slope", slope)], [], F.prelu(t64(x), t64(slope).reshape(3)))
    for op, fn in (("erf", torch.erf), ("exp", torch.exp), ("neg", torch.neg), ("abs", torch.abs)):
        one_op(op, op, [("x", x)], [], fn(t64(x)))
    for op, fn in (("log", torch.log), ("sqrt", torch.sqrt), ("reciprocal", torch.reciprocal)):
        one_op(op, op, [("x", pos)], [], fn(t64(pos)))
    e = uniform(-2, 2, 5)
    one_op("pow", "pow", [("a", pos), ("b", e)], [], torch.pow(t64(pos), t64(e)))
    b = randn(4, 1)
    one_op("max", "max", [("a", x), ("b", b)], [], torch.maximum(t64(x), t64(b)))
    one_op("min", "min", [("a", x), ("b", b)], [], torch.minimum(t64(x), t64(b)))


def bn_train_grad_cases():
    """bn_train_grad: x's whole gradient through F.batch_norm with batch statistics, by
    autograd; mean, var (biased), dscale and dbias are the batch's, as the pass wires them."""
    for name, xs, eps in (("", (3, 4, 5, 5), None), ("_2d_eps", (7, 3), 0.01)):
        C = xs[1]
        dims = (0,) + tuple(range(2, len(xs)))
        shape = (1, -1) + (1,) * (len(xs) - 2)
        e = 1e-5 if eps is None else eps
        x, dy, scale, bias = randn(*xs) + 0.5, randn(*xs), randn(C), randn(C)
        (dx,) = vjp(lambda t: F.batch_norm(t, None, None, t64(scale), t64(bias), True, 0.0, e),
                    [x], dy)
        xt, dyt = t64(x), t64(dy)
        mean = xt.mean(dim=dims)
        var = ((xt - mean.reshape(shape)) ** 2).mean(dim=dims)
        dscale = (dyt * (xt - mean.reshape(shape))).sum(dim=dims) / torch.sqrt(var + e)
        dbias = dyt.sum(dim=dims)
        f32 = lambda t: t.numpy().astype(np.float32)
        ops = [("dy", dy), ("x", x), ("scale", scale), ("mean", f32(mean)), ("var", f32(var)),
               ("dscale", f32(dscale)), ("dbias", f32(dbias))]
        one_op("bn_train_grad" + name, "bn_train_grad", ops,
               [] if eps is None else [("epsilon", eps)], dx, kinds=["input"] * 7)


def main():
    torch.manual_seed(0)
    if os.path.isdir(ROOT):
        shutil.rmtree(ROOT)
    os.makedirs(ROOT)
    for make in (conv_cases, pool_cases, elementwise_cases, dense_cases, shape_cases,
                 softmax_cases, norm_cases, loss_cases, chain_cases, tensor_op_cases,
                 im2row_cases, activation_grad_cases, pool_grad_cases, softmax_grad_cases,
                 bn_grad_cases, loss_grad_cases, update_cases, batched_matmul_cases,
                 onnx_op_cases, conv_grad_cases, bn_unbias_cases, softplus_cases,
                 filter_flip_cases, model_op_cases, math_op_cases, bn_train_grad_cases):
        make()
    cases = sorted(os.listdir(ROOT))
    size = sum(os.path.getsize(os.path.join(ROOT, c, f)) for c in cases
               for f in os.listdir(os.path.join(ROOT, c)))
    print("%d cases, %d bytes in %s" % (len(cases), size, ROOT))


if __name__ == "__main__":
    main()
