#!/usr/bin/python3
"""Checks an Exercise 6 report against its CSV (examples/exercise6/report.py): every cell of
every run row of report.md equals the value recomputed from runs.csv, each mean ± std row
equals the mean and standard deviation of its rows, every number in a comment is a cell of
its item's table, and every plot the report shows is a valid PNG.

    /usr/bin/python3 tests/exercise6/check_report.py OUT_DIR
"""
import csv
import os
import re
import statistics
import sys
import zlib

NUM = re.compile(r"[-+]?\d+(?:\.\d+)?")


def fail(msg):
    sys.exit(f"FAIL: {msg}")


def png_ok(path):
    """PNG signature, then chunks with valid CRCs from IHDR to IEND."""
    raw = open(path, "rb").read()
    if raw[:8] != b"\x89PNG\r\n\x1a\n":
        return False
    pos, names = 8, []
    while pos + 12 <= len(raw):
        n = int.from_bytes(raw[pos:pos + 4], "big")
        name, body = raw[pos + 4:pos + 8], raw[pos + 8:pos + 8 + n]
        if zlib.crc32(name + body) != int.from_bytes(raw[pos + 8 + n:pos + 12 + n], "big"):
            return False
        names.append(name)
        pos += 12 + n
    return names[:1] == [b"IHDR"] and names[-1:] == [b"IEND"] and b"IDAT" in names and pos == len(raw)


def main():
    out = sys.argv[1]
    rows = list(csv.DictReader(open(os.path.join(out, "runs.csv"))))
    runs = {}
    for r in rows:
        runs.setdefault(r["run"], {}).setdefault(r["engine"], []).append(r)

    def expect(run):
        got = {}
        for e, name in (("cnnc", "cnnc"), ("torch", "PyTorch")):
            ep = sorted(runs[run][e], key=lambda r: int(r["epoch"]))
            err = [float(r["test_error"]) for r in ep]
            b = min(range(len(err)), key=lambda i: (err[i], i))
            got[f"{name} error"] = f"{100 * err[-1]:.2f}"
            got[f"{name} best (epoch)"] = f"{100 * err[b]:.2f} ({ep[b]['epoch']})"
            got[f"{name} train loss"] = f"{float(ep[-1]['train_loss']):.4f}"
            got[f"{name} s/epoch"] = f"{statistics.median(float(r['seconds']) for r in ep):.2f}"
            got["_" + e] = 100 * err[-1]
        got["cnnc − PyTorch (pp)"] = f"{100 * (float(runs[run]['cnnc'][-1]['test_error']) - float(runs[run]['torch'][-1]['test_error'])):+.2f}"
        r0 = runs[run]["cnnc"][0]
        got["seed"] = r0["seed"]
        got["network"] = r0["network"]
        return got

    lines = open(os.path.join(out, "report.md")).read().split("\n")
    header, table_nums, checked, means, pngs = None, set(), 0, 0, 0
    item_rows = []
    for line in lines:
        if line.startswith("### ") or line.startswith("## "):
            header, table_nums, item_rows = None, set(), []
        if line.startswith("| run |"):
            header = [c.strip() for c in line.strip("|").split("|")]
            continue
        if header and line.startswith("| ") and not line.startswith("|---"):
            cells = dict(zip(header, (c.strip() for c in line.strip("|").split("|"))))
            table_nums.update(NUM.findall(line))
            if cells["run"] == "mean ± std":
                for e, name in (("cnnc", "cnnc error"), ("torch", "PyTorch error")):
                    xs = [expect(r)["_" + e] for r in item_rows]
                    want = f"{statistics.mean(xs):.2f} ± {statistics.stdev(xs):.2f}"
                    if cells[name] != want:
                        fail(f"mean ± std {name}: report {cells[name]}, CSV {want}")
                means += 1
                continue
            if cells["run"] not in runs:
                fail(f"report row {cells['run']} is not in runs.csv")
            item_rows.append(cells["run"])
            for k, v in expect(cells["run"]).items():
                if not k.startswith("_") and cells[k] != v:
                    fail(f"{cells['run']} {k}: report {cells[k]}, CSV {v}")
                checked += not k.startswith("_")
            continue
        if header and line and not line.startswith("|") and not line.startswith("!"):  # the comment
            for n in NUM.findall(line.replace("(b)", "").replace("3×3", "").replace("5×5", "")):
                if n not in table_nums and n.lstrip("+") not in table_nums:
                    fail(f"comment number {n} is not in its table: {line}")
        for png in re.findall(r"\]\((plots/[^)]+\.png)\)", line):
            if not png_ok(os.path.join(out, png)):
                fail(f"{png} is not a valid PNG")
            pngs += 1
    if not checked or not pngs:
        fail(f"nothing checked ({checked} cells, {pngs} plots)")
    print(f"ok: {checked} cells and {means} mean ± std rows equal runs.csv; comments quote their tables; "
          f"{pngs} valid PNGs")


if __name__ == "__main__":
    main()
