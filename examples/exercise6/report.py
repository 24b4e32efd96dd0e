"""report.md, runs.csv and the plots of an Exercise 6 plan (examples/exercise6/run.py).

Every number in report.md is a value of runs.csv formatted once here (FMT), or the mean and
standard deviation of such values; the comments quote table cells only, so each claim has its
figure in the table above it (tests/exercise6 checks both).
"""
import os
import statistics
import subprocess

import accuracy_parity as ap
import plan as P

ENGINES = ("cnnc", "torch")
CSV_COLUMNS = ("data,run,network,width,train_size,train_offset,seed,items,engine,epoch,"
               "train_loss,train_error,test_loss,test_error,seconds")
COLUMNS = ["run", "network", "examples", "seed", "cnnc error", "cnnc best (epoch)", "PyTorch error",
           "PyTorch best (epoch)", "cnnc − PyTorch (pp)", "cnnc train loss", "PyTorch train loss",
           "cnnc s/epoch", "PyTorch s/epoch", "gap"]


def pct(x):
    return f"{100 * x:.2f}"


def summary(rows):
    """Final and best test error (fractions), the best's epoch, final training loss, s/epoch."""
    best = min(rows, key=lambda r: (r[4], r[0]))
    return {"error": rows[-1][4], "best": best[4], "best_epoch": int(best[0]), "loss": rows[-1][1],
            "sec": statistics.median(r[5] for r in rows)}


def load(args, runs):
    logs = {}
    for r in runs:
        d = os.path.join(args.out, "runs", P.run_id(r))
        logs[r] = {"cnnc": ap.read_log(os.path.join(d, "cnnc/log.csv")),
                   "torch": ap.read_log(os.path.join(d, "torch.csv"))}
    return logs


def write_csv(path, per_item, runs, logs):
    items = {}
    for data, item, rs in per_item:
        for r in rs:
            items.setdefault(r, []).append(item)
    with open(path, "w") as f:
        f.write(CSV_COLUMNS + "\n")
        for r in runs:
            for e in ENGINES:
                for row in logs[r][e]:
                    f.write(f"{r.data},{P.run_id(r)},{P.label(r)},{r.width:g},{r.size},{r.offset},{r.seed},"
                            f"{''.join(items[r])},{e},{int(row[0])},{row[1]:.6f},{row[2]:.6f},{row[3]:.6f},"
                            f"{row[4]:.6f},{row[5]:.3f}\n")


def mean_std(xs):
    return statistics.mean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def gap_threshold(per_item, logs, data):
    """max(0.3 points, 2 standard deviations of item (i)'s cnnc final errors), in points."""
    seeds = [rs for d, item, rs in per_item if d == data and item == "i"]
    if not seeds:
        return 0.3, "item (i) not in this plan: 0.3 points"
    sd = 100 * mean_std([summary(logs[r]["cnnc"])["error"] for r in seeds[0]])[1]
    thr = max(0.3, 2 * sd)
    return thr, f"max(0.3, 2 × σ(i)) with σ(i) = {sd:.2f} (cnnc's seeds): {thr:.2f} points"


def table(rs, logs, thr):
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * 3 + "---:|" * (len(COLUMNS) - 3)]
    flagged = []
    for r in rs:
        c, t = summary(logs[r]["cnnc"]), summary(logs[r]["torch"])
        diff = 100 * (c["error"] - t["error"])
        gap = abs(diff) > thr
        if gap:
            flagged.append(r)
        examples = f"{r.size}" if not r.offset else f"{r.offset + 1}..{r.offset + r.size}"
        lines.append(f"| {P.run_id(r)} | {P.label(r)} | {examples} | {r.seed} | {pct(c['error'])} | "
                     f"{pct(c['best'])} ({c['best_epoch']}) | {pct(t['error'])} | {pct(t['best'])} ({t['best_epoch']}) | "
                     f"{diff:+.2f} | {c['loss']:.4f} | {t['loss']:.4f} | {c['sec']:.2f} | {t['sec']:.2f} | "
                     f"{'GAP' if gap else 'ok'} |")
    return lines, flagged


def spread_row(rs, logs):
    """The mean ± std row of (h) and (i), cnnc and PyTorch final errors (points)."""
    out = []
    for e in ENGINES:
        m, s = mean_std([100 * summary(logs[r][e])["error"] for r in rs])
        out.append(f"{m:.2f} ± {s:.2f}")
    return out


def comment(item, rs, logs):
    """One short comment from the numbers of the table (cnnc's errors; PyTorch's agree or are
    flagged). Quotes only cells of the table, formatted as there."""
    err = {r: pct(summary(logs[r]["cnnc"])["error"]) for r in rs}
    loss = {r: f"{summary(logs[r]['cnnc'])['loss']:.4f}" for r in rs}
    e = {r: summary(logs[r]["cnnc"])["error"] for r in rs}
    by = {P.label(r): r for r in rs}
    cmp = lambda a, b: "lower than" if e[a] < e[b] else "higher than" if e[a] > e[b] else "equal to"
    if item == "b":
        r = rs[0]
        s = summary(logs[r]["cnnc"])
        return (f"BASE ends at {err[r]}% test error (best {pct(s['best'])}% at epoch {s['best_epoch']}); "
                f"PyTorch from the same start ends at {pct(summary(logs[r]['torch'])['error'])}%.")
    if item == "c":
        b, n = by["BASE"], by["BN"]
        return (f"BN's error ({err[n]}%) is {cmp(n, b)} BASE's ({err[b]}%); its training loss after the last "
                f"epoch is {loss[n]} against BASE's {loss[b]}.")
    if item == "d":
        parts = []
        for a, dr in (("BASE", "BASE+dropout"), ("BN", "BN+dropout")):
            x, y = by[a], by[dr]
            parts.append(f"{a}: {err[x]}% → {err[y]}% with dropout ({cmp(y, x)} without), training loss "
                         f"{loss[x]} → {loss[y]}")
        return "Dropout after the classifier: " + "; ".join(parts) + "."
    if item == "e":
        n, k = by["BN"], by["SK-1"]
        return (f"SK (two 3×3 convolutions for block 1's 5×5, BN + ReLU after each) ends at {err[k]}%, "
                f"{cmp(k, n)} BN's {err[n]}%; training loss {loss[k]} against {loss[n]}.")
    if item in "fgj" and len(rs) > 1:
        if item == "j":
            rl, sg = rs[0], rs[1]
            return (f"Sigmoid's error ({err[sg]}%) is {cmp(sg, rl)} ReLU's ({err[rl]}%); its training loss "
                    f"after the last epoch is {loss[sg]} against ReLU's {loss[rl]}.")
        key = (lambda r: r.width) if item == "f" else (lambda r: r.size)
        name = (lambda r: P.label(r)) if item == "f" else (lambda r: f"{r.size} examples")
        order = sorted(rs, key=key)
        lo, hi = min(rs, key=lambda r: e[r]), max(rs, key=lambda r: e[r])
        steps = [e[b] - e[a] for a, b in zip(order, order[1:])]
        trend = ("does not change" if all(x == 0 for x in steps) else
                 "falls at every step" if all(x < 0 for x in steps) else
                 "rises at every step" if all(x > 0 for x in steps) else "does not change monotonically")
        what = "width" if item == "f" else "training-set size"
        return (f"With growing {what} the error {trend}: {' → '.join(err[r] + '%' for r in order)}; "
                f"lowest {err[lo]}% ({name(lo)}), highest {err[hi]}% ({name(hi)}).")
    if item in "hi" and len(rs) > 1:
        m, s = spread_row(rs, logs)[0].split(" ± ")
        lo, hi = min(rs, key=lambda r: e[r]), max(rs, key=lambda r: e[r])
        what = "disjoint training sets" if item == "h" else "seeds"
        return f"Across the {what}: {m} ± {s}% (from {err[lo]}% to {err[hi]}%)."
    return f"One run: {err[rs[0]]}%."


def gnuplot(path, script):
    """A PNG drawn by gnuplot's pngcairo terminal, as `cnnc train` draws plot.png."""
    gp = path[:-4] + ".gp"
    with open(gp, "w") as f:
        f.write(f"set terminal pngcairo size 900,500 font ',10'\nset output '{os.path.basename(path)}'\n"
                "set termoption noenhanced\nset grid\nset key outside right\n" + script)
    res = subprocess.run(["gnuplot", os.path.basename(gp)], cwd=os.path.dirname(path), capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(f"exercise6: gnuplot failed on {gp}:\n{res.stderr}")


def write_dat(path, rows):
    with open(path, "w") as f:
        for row in rows:
            f.write(" ".join(str(x) for x in row) + "\n")


def plots(out, per_item, logs):
    """plots/<data>-<what>.png: per-epoch curves (b)-(e) and (j), error against width (f) and
    size (g, log axis), the spread of (h) and (i). Returns [(data, item, file)]."""
    pdir = os.path.join(out, "plots")
    os.makedirs(pdir, exist_ok=True)
    made = []

    def curves(data, rs, name, title):
        cmds = []
        for i, r in enumerate(rs):
            for e, dash in (("cnnc", 1), ("torch", 2)):
                dat = f"{name}-{i}-{e}.dat"
                write_dat(os.path.join(pdir, dat), [(int(x[0]), 100 * x[4]) for x in logs[r][e]])
                cmds.append(f"'{dat}' using 1:2 with linespoints lc {i + 1} dt {dash} "
                            f"title '{P.label(r)} ({'cnnc' if e == 'cnnc' else 'PyTorch'})'")
        gnuplot(os.path.join(pdir, name + ".png"), f"set title '{title}'\nset xlabel 'epoch'\n"
                f"set ylabel 'test error (%)'\nplot " + ", ".join(cmds) + "\n")
        return name + ".png"

    def against(data, rs, name, title, key, xlabel, logx=False):
        cmds = []
        for e, pt in (("cnnc", 7), ("torch", 5)):
            dat = f"{name}-{e}.dat"
            write_dat(os.path.join(pdir, dat), sorted((key(r), 100 * summary(logs[r][e])["error"]) for r in rs))
            cmds.append(f"'{dat}' using 1:2 with linespoints pt {pt} title '{'cnnc' if e == 'cnnc' else 'PyTorch'}'")
        gnuplot(os.path.join(pdir, name + ".png"), f"set title '{title}'\nset xlabel '{xlabel}'\n"
                + ("set logscale x\n" if logx else "") + "set ylabel 'final test error (%)'\nplot "
                + ", ".join(cmds) + "\n")
        return name + ".png"

    by = {}
    for data, item, rs in per_item:
        by.setdefault(data, {})[item] = rs
    for data, items in by.items():
        curve_runs = list(dict.fromkeys(r for it in "bcde" if it in items for r in items[it]))
        if curve_runs:
            made.append((data, "bcde", curves(data, curve_runs, f"{data}-bcde", f"(b)-(e) on {data}")))
        if "f" in items:
            made.append((data, "f", against(data, items["f"], f"{data}-f", f"(f) SK-s on {data}", lambda r: r.width,
                                            "width multiplier s")))
        if "g" in items:
            made.append((data, "g", against(data, items["g"], f"{data}-g", f"(g) SK-0.2 on {data}",
                                            lambda r: r.size, "training examples (log scale)", True)))
        for it, key, xl in (("h", lambda r: r.offset // max(r.size, 1) + 1, "block i"), ("i", lambda r: r.seed, "seed")):
            if it in items:
                rs = items[it]
                idx = {r: n + 1 for n, r in enumerate(rs)}
                made.append((data, it, against(data, rs, f"{data}-{it}", f"({it}) SK-0.2 on {data}: one point per run",
                                               lambda r: idx[r], f"run ({xl}: " + ", ".join(str(key(r)) for r in rs) + ")")))
        if "j" in items:
            made.append((data, "j", curves(data, items["j"], f"{data}-j", f"(j) ReLU vs sigmoid on {data}")))
    for f in os.listdir(pdir):  # the data and scripts are reproducible from runs.csv
        if f.endswith((".dat", ".gp")):
            os.remove(os.path.join(pdir, f))
    return made


def total_seconds(args, runs):
    tot = {e: 0.0 for e in ENGINES}
    for r in runs:
        d = os.path.join(args.out, "runs", P.run_id(r))
        for e in ENGINES:
            p = os.path.join(d, e + ".seconds")
            tot[e] += float(open(p).read()) if os.path.exists(p) else 0.0
    return tot


def write(args, per_item, runs, wall):
    logs = load(args, runs)
    write_csv(os.path.join(args.out, "runs.csv"), per_item, runs, logs)
    made = plots(args.out, per_item, logs)
    tot = total_seconds(args, runs)
    import torch
    git = lambda *a: subprocess.run(["git", "-C", ap.ROOT, *a], capture_output=True, text=True).stdout.strip()
    commit = (git("rev-parse", "--short=12", "HEAD") or "unknown") + (" with local changes" if git("status", "--porcelain", "--untracked-files=no") else "")
    lines = ["# The seed's Exercise 6, measured: cnnc and PyTorch side by side", "",
             f"Generated by `examples/exercise6/run.py --items {args.items} --data {args.data} --epochs {args.epochs}"
             + (f" --train-size {args.train_size}" if args.train_size else "")
             + (f" --test-size {args.test_size}" if args.test_size else "") + f"` at commit {commit}.",
             "", "Settings (the seed's, MatConvNet beta20's cnn_mnist as `cnnc train` uses them): SGD with "
             "momentum 0.9, learning rate 0.001, weight decay 0.0005 (on every trainable parameter), batch 100 "
             "(a partial last batch is a step of its own), Gaussian 0.01 initial weights and zero biases "
             "(`cnnc init`), raw 0-255 pixels minus the per-pixel mean of the training examples used, "
             f"the training examples in file order (`--train-subset first`), {args.epochs} epochs, "
             + (f"the first {args.test_size} test images." if args.test_size else "every test image.")
             + " PyTorch (" + torch.__version__ + ") trains each configuration from cnnc's own initial "
             "weights on the same examples in the same order with the same update and the same dropout masks "
             "(bench/accuracy_parity.py).", "",
             f"Training time of the runs in this plan (summed over runs, as recorded when each was trained): cnnc "
             f"{tot['cnnc']:.0f} s, PyTorch {tot['torch']:.0f} s; wall time of the plan's invocations that "
             f"trained, summed: {wall:.0f} s.", "",
             "Errors are test errors in percent after the last epoch; best = the lowest over the epochs (its "
             "epoch); train loss = the last epoch's mean training loss; s/epoch = the median wall time of an "
             "epoch (training and test evaluation; the median, since a shared or paused machine stretches some "
             "epochs). 'cnnc − PyTorch' is the difference of final errors in points; 'GAP' marks a difference "
             "above the threshold given per data set.", ""]
    flagged_all = []
    for data in args.data.split(","):
        items = [(it, rs) for d, it, rs in per_item if d == data]
        if not items:
            continue
        thr, thr_text = gap_threshold(per_item, logs, data)
        lines += [f"## {data}", "", f"Gap threshold: {thr_text}.", ""]
        for it, rs in items:
            tab, flagged = table(rs, logs, thr)
            flagged_all += [(data, r, thr) for r in flagged if (data, r, thr) not in flagged_all]
            lines += [f"### ({it})", ""] + tab
            if it in "hi" and len(rs) > 1:
                m = spread_row(rs, logs)
                lines += [f"| mean ± std | | | | {m[0]} | | {m[1]} | | | | | | | |"]
            lines += ["", comment(it, rs, logs), ""]
            for d, its, png in plots_for(data, it, made, [x for x, _ in items]):
                lines += [f"![({its}) on {data}](plots/{png})", ""]
    lines += ["## Gaps between cnnc and PyTorch", ""]
    if not flagged_all:
        lines += ["No run's final errors differ by more than its data set's threshold.", ""]
    for data, r, thr in flagged_all:
        c, t = logs[r]["cnnc"], logs[r]["torch"]
        first = next((int(a[0]) for a, b in zip(c, t) if abs(100 * (a[4] - b[4])) > thr), None)
        lines += [f"- {P.run_id(r)} (cnnc vs PyTorch): epoch 1 training loss {c[0][1]:.4f} vs {t[0][1]:.4f}, test "
                  f"error {pct(c[0][4])}% vs {pct(t[0][4])}%; epoch {int(c[-1][0])} {pct(c[-1][4])}% vs "
                  f"{pct(t[-1][4])}%; the test errors first differ by more than {thr:.2f} points at epoch {first}. "
                  + ("The epoch-1 losses agree within 0.1%, so the start, data and order are the same; "
                     if abs(c[0][1] - t[0][1]) <= 1e-3 * abs(t[0][1]) else
                     "The epoch-1 losses differ by more than 0.1%: check the start, data and order first; ")
                  + "the cause is not established by this script (to investigate)."]
    open(os.path.join(args.out, "report.md"), "w").write("\n".join(lines) + "\n")


def plots_for(data, item, made, items):
    """The plots to show under an item; (b)-(e)'s curves under the last of them in the plan."""
    last = [x for x in "bcde" if x in items][-1:]
    return [m for m in made if m[0] == data and (m[1] == item or (m[1] == "bcde" and [item] == last))]
