"""The worked convolution of a `cnnc explain` page against numpy (an oracle independent of
cnnc's interpreter): reads x, f, G = dz/dY and the page's y, phi(x)F, dz/dF and dz/dX from
the KaTeX sources (data-tex) of its #conv section and recomputes each from x, f and G.
    python3 explain_conv_oracle.py PAGE.html"""
import html
import re
import sys

import numpy as np

page = open(sys.argv[1], encoding="utf-8").read()
section = page[page.index('<section id="conv">'):]
section = section[:section.index("</section>")]
values = {}
for tex in re.findall(r'data-tex="([^"]*)"', section):
    tex = html.unescape(tex)
    name, rhs = tex.split(" = ")[0], tex.rpartition(" = ")[2]
    mats = []
    for body in re.findall(r"\\begin\{bmatrix\}(.*?)\\end\{bmatrix\}", rhs):
        mats.append([[float(v) for v in row.split("&")] for row in body.split("\\\\")])
    values[name] = np.array(mats)

x, f, g = values["x"], values["f"], values["\\frac{\\partial z}{\\partial Y}"]
C, H, W = x.shape
M = f.shape[0] // C
f = f.reshape(M, C, *f.shape[1:])
kh, kw = f.shape[2:]
Ho, Wo = g.shape[1:]
assert (Ho, Wo) == (H - kh + 1, W - kw + 1), "the oracle handles stride 1, no padding (MNIST BASE's conv1)"
y = np.zeros((M, Ho, Wo))
dF = np.zeros((M, C, kh, kw))
dX = np.zeros((C, H, W))
for m in range(M):
    for oh in range(Ho):
        for ow in range(Wo):
            win = x[:, oh:oh + kh, ow:ow + kw]
            y[m, oh, ow] = (f[m] * win).sum()
            dF[m] += g[m, oh, ow] * win
            dX[:, oh:oh + kh, ow:ow + kw] += g[m, oh, ow] * f[m]
checks = {
    "y": (values["y"], y),
    "phi(x)F": (values["\\phi(x)F"][0], y.reshape(M, -1).T),
    "dz/dF": (values["\\frac{\\partial z}{\\partial F}"][0], dF.reshape(M, -1)),
    "dz/dX": (values["\\frac{\\partial z}{\\partial X}"], dX),
}
for name, (got, want) in checks.items():
    got = np.asarray(got).reshape(want.shape)
    assert np.array_equal(got, want), (name, got, want)
print("explain's worked convolution matches numpy:", ", ".join(checks))
