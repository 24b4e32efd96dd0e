"""The seed's Exercise 6 (b)-(j) as a list of training runs (the seed's text: its lines 767-790).

A run is one configuration (data set, network, width multiplier, training examples, seed);
items share runs (the BASE of (b) is (c)'s baseline, SK-0.2 on the first 10,000 is in (f),
(g), (h) and (j)), so each is trained once. Defaults are the seed's: the first 10,000
training examples in file order, all 10,000 test images, seed 0, 20 epochs.
"""
from collections import namedtuple

# Every item the seed asks (Exercise 6), in its order.
ITEMS = "bcdefghij"
# The shipped real digits (7,996 + 2,004) are too few for (g) (60,000) and (h) (6 blocks).
ITEMS_BY_DATA = {"fashion-mnist": "bcdefghij", "mnist": "bcdefij"}

Run = namedtuple("Run", "data net width size offset seed")
# net -> the .cnn file under examples/
NETS = {"base": "mnist_base", "bn": "mnist_bn", "base_dropout": "mnist_base_dropout",
        "bn_dropout": "mnist_bn_dropout", "sk": "mnist_sk", "sk_sigmoid": "mnist_sk_sigmoid"}
WIDTHS = [2, 1.5, 1, 0.5, 0.2]                          # (f)
SIZES = [500, 1000, 2000, 5000, 10000, 20000, 60000]   # (g)
BLOCKS = 6                                             # (h)
SEEDS = [1, 12, 123, 1234, 12345, 123456]              # (i)


def run_id(r):
    """A run's directory name: data set, network (SK-s as sk-s), examples, seed."""
    net = f"{r.net.replace('_', '-')}-{r.width:g}" if r.net.startswith("sk") else r.net.replace("_", "-")
    return f"{r.data}/{net}_n{r.size}_o{r.offset}_s{r.seed}"


def label(r):
    """How the report names a run's network: BASE, BN, BASE+dropout, SK-0.2, SK-0.2 sigmoid."""
    names = {"base": "BASE", "bn": "BN", "base_dropout": "BASE+dropout", "bn_dropout": "BN+dropout",
             "sk": "SK", "sk_sigmoid": "SK"}
    name = names[r.net] + (f"-{r.width:g}" if r.net.startswith("sk") else "")
    return name + (" sigmoid" if r.net == "sk_sigmoid" else "")


def item_runs(item, data, n_train, cap=0):
    """The runs of one item on a data set holding n_train training examples. `cap` > 0 limits
    every training set to that many examples (a quick look): (g)'s sizes are capped (equal ones
    merge) and (h)'s blocks become consecutive blocks of the capped size."""
    size = lambda n: min(n, n_train, cap) if cap else min(n, n_train)
    first = size(10000)
    run = lambda net, width=1, n=first, offset=0, seed=0: Run(data, net, width, n, offset, seed)
    if item == "b":
        return [run("base")]
    if item == "c":
        return [run("base"), run("bn")]
    if item == "d":
        return [run("base"), run("bn"), run("base_dropout"), run("bn_dropout")]
    if item == "e":
        return [run("bn"), run("sk")]
    if item == "f":
        return [run("sk", w) for w in WIDTHS]
    if item == "g":
        return list(dict.fromkeys(run("sk", 0.2, size(n)) for n in SIZES))
    if item == "h":  # block i: examples 10000(i-1)+1 .. 10000i (1-based)
        return [run("sk", 0.2, first, first * i) for i in range(BLOCKS) if first * (i + 1) <= n_train]
    if item == "i":
        return [run("sk", 0.2, seed=s) for s in SEEDS]
    if item == "j":
        return [run("sk", 0.2), run("sk_sigmoid", 0.2)]
    raise ValueError(f"no item ({item}) in Exercise 6; the items are {', '.join(ITEMS)}")


def plan(items, datas, n_train, cap=0):
    """[(data, item, [runs])] for the items asked, and the distinct runs in plan order."""
    per_item, runs = [], {}
    for data in datas:
        for item in items:
            if item in ITEMS_BY_DATA[data]:
                rs = item_runs(item, data, n_train[data], cap)
                per_item.append((data, item, rs))
                runs.update(dict.fromkeys(rs))
    return per_item, list(runs)
