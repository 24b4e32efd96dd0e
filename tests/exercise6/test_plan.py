#!/usr/bin/python3
"""Exercise 6's item definitions (examples/exercise6/plan.py) against the seed's words: (g)
the first 500..60000 examples in file order, (h) block i = examples 10000(i-1)+1..10000i,
disjoint and covering the 60,000, (i) the seeds 1..123456, (f) the widths, (j) sigmoid SK-0.2;
the real digits get (b)-(f), (i), (j); items share runs. The examples these runs select are
checked in tests/train (--train-offset) and the networks in tests/frontend (SK-s, sigmoid).
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../examples/exercise6"))
import plan as P  # noqa: E402

N = {"fashion-mnist": 60000, "mnist": 7996}


def check(cond, msg):
    if not cond:
        sys.exit(f"FAIL: {msg}")


def runs(item, data="fashion-mnist", cap=0):
    return P.item_runs(item, data, N[data], cap)


g = runs("g")
check([(r.size, r.offset, r.seed, r.net, r.width) for r in g] ==
      [(n, 0, 0, "sk", 0.2) for n in (500, 1000, 2000, 5000, 10000, 20000, 60000)], f"(g): {g}")
h = runs("h")
check([(r.offset + 1, r.offset + r.size) for r in h] == [(10000 * (i - 1) + 1, 10000 * i) for i in range(1, 7)],
      f"(h): {h}")
check(all((r.net, r.width, r.seed) == ("sk", 0.2, 0) for r in h), "(h) is SK-0.2, seed 0")
covered = sorted(x for r in h for x in range(r.offset, r.offset + r.size))
check(covered == list(range(60000)), "(h)'s blocks are disjoint and cover the 60,000")
i = runs("i")
check([r.seed for r in i] == [1, 12, 123, 1234, 12345, 123456], f"(i): {i}")
check(all((r.size, r.offset, r.width) == (10000, 0, 0.2) for r in i), "(i) is SK-0.2 on the first 10,000")
check([r.width for r in runs("f")] == [2, 1.5, 1, 0.5, 0.2] and all(r.net == "sk" for r in runs("f")), "(f)")
check([(r.net, r.width) for r in runs("j")] == [("sk", 0.2), ("sk_sigmoid", 0.2)], "(j)")
check([r.net for r in runs("d")] == ["base", "bn", "base_dropout", "bn_dropout"], "(d)")
check(all(r.size == 10000 and r.offset == 0 and r.seed == 0 for it in "bcde" for r in runs(it)), "(b)-(e)")
check(all(r.size == 7996 for it in "bcdefij" for r in runs(it, "mnist")), "the digits: all 7,996 (< 10,000)")
check(all(os.path.exists(os.path.join(os.path.dirname(P.__file__), "..", f + ".cnn")) for f in P.NETS.values()),
      "every network file exists")

per_item, distinct = P.plan(P.ITEMS, ["fashion-mnist", "mnist"], N)
check([(d, it) for d, it, _ in per_item] == [("fashion-mnist", x) for x in "bcdefghij"] +
      [("mnist", x) for x in "bcdefij"], "items per data set")
check(len(distinct) == len(set(distinct)) == len({P.run_id(r) for r in distinct}), "run ids are unique")
check(sum(r.data == "fashion-mnist" for r in distinct) == 27, "Fashion-MNIST: 27 distinct runs")
check(sum(r.data == "mnist" for r in distinct) == 16, "digits: 16 distinct runs")

# a capped plan (smoke runs): sizes capped and merged, blocks of the capped size
check([r.size for r in runs("g", cap=300)] == [300], "(g) capped at 300")
check([r.offset for r in runs("h", cap=300)] == [0, 300, 600, 900, 1200, 1500], "(h) capped at 300")
try:
    P.item_runs("k", "mnist", 100)
    check(False, "item (k) accepted")
except ValueError as e:
    check("no item (k)" in str(e), str(e))
print("ok: Exercise 6's items are the seed's runs")
