#!/usr/bin/python3
"""Compile time and peak memory against model depth (docs/performance.md, "Compile time").

  bash bench/compile_scale.sh [--quick] [--cases relu,convrelu,ir] [--repeat R] [--out DIR]

Generates chains of n layers, `n` from 100 to 20,000: `relu` (ReLUs on 1x8x8), `convrelu`
(conv 4 3x3 pad 1 + relu on 4x8x8: a conv+relu pair counts as two layers), and textual-IR
files of 10k to 200k relu nodes for the parser (`cnnc info`, which parses, verifies and runs
the pipeline, without LLVM). Each point runs `cnnc compile <model> -o x.so` (or `cnnc info`)
R times; the table gives the minimum wall time, the CPU time (user + sys) of that run, and
the peak resident memory (max over runs), from wait4()'s rusage. Writes compile_scale.md and
compile_scale.csv (and compile_scale.png with gnuplot) into DIR (default bench/results/).
The machine must be quiet for wall times to mean anything; CPU times are less sensitive.
"""
import argparse, csv, os, resource, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEPTHS = [100, 300, 1000, 3000, 10000, 20000]
QUICK = [100, 300, 1000, 3000]
IR_NODES = [10000, 50000, 100000, 200000]


def relu_chain(n):
    return "network relu%d\ninput data 1x8x8\n" % n + "relu\n" * n


def convrelu_chain(n):
    return "network convrelu%d\ninput data 4x8x8\n" % n + "conv 4 3x3 pad 1\nrelu\n" * (n // 2)


def ir_chain(n):
    lines = ["func @p {", "  %data = input : f32[1,1,8,8]"]
    prev = "data"
    for i in range(1, n + 1):
        lines.append("  %%r%d = relu(%%%s) : f32[1,1,8,8]" % (i, prev))
        prev = "r%d" % i
    lines += ["  return %" + prev, "}", ""]
    return "\n".join(lines)


def run(cmd, errpath):
    """wall seconds, CPU seconds (user + sys), peak RSS in MiB, exit code, stderr of one run."""
    t0 = time.monotonic()
    with open(errpath, "w") as err:
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    p.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    with open(errpath) as f:
        text = f.read()
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024.0, p.returncode, text


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="depths up to 3,000 and IR up to 50k nodes")
    ap.add_argument("--cases", default="relu,convrelu,ir")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--cnnc", default=os.path.join(ROOT, "build/tools/cnnc"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench/results"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rows = []
    tmp = tempfile.mkdtemp(prefix="cnnc-scale-")
    gens = {"relu": (relu_chain, ".cnn"), "convrelu": (convrelu_chain, ".cnn"), "ir": (ir_chain, ".ir")}
    for case in a.cases.split(","):
        gen, ext = gens[case]
        sizes = (IR_NODES[:2] if a.quick else IR_NODES) if case == "ir" else (QUICK if a.quick else DEPTHS)
        for n in sizes:
            src = os.path.join(tmp, "%s%d%s" % (case, n, ext))
            with open(src, "w") as f:
                f.write(gen(n))
            cmd = [a.cnnc, "info", src] if case == "ir" else [a.cnnc, "compile", src, "-o", os.path.join(tmp, "m.so")]
            best = None
            peak = 0.0
            for _ in range(a.repeat):
                wall, cpu, rss, code, err = run(cmd, os.path.join(tmp, "stderr"))
                peak = max(peak, rss)
                if best is None or wall < best[0]:
                    best = (wall, cpu)
            ok = code == 0
            rows.append({"case": case, "n": n, "wall_s": round(best[0], 3), "cpu_s": round(best[1], 3),
                         "peak_mib": round(peak, 1), "ok": int(ok)})
            print("%-9s %7d  wall %8.2f s  cpu %8.2f s  peak %8.1f MiB%s" % (
                case, n, best[0], best[1], peak, "" if ok else "  (FAILED: " + err.strip()[-200:] + ")"),
                  flush=True)
            if os.path.exists(os.path.join(tmp, "m.so")):
                os.remove(os.path.join(tmp, "m.so"))
            os.remove(src)
    with open(os.path.join(a.out, "compile_scale.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
    md = ["| case | n | wall (s, min of %d) | CPU (s) | peak RSS (MiB) | CPU / n (ms) |" % a.repeat,
          "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        md.append("| %s | %d | %.2f | %.2f | %.0f | %.3f |" % (r["case"] + ("" if r["ok"] else " (failed)"), r["n"], r["wall_s"], r["cpu_s"],
                                                               r["peak_mib"], 1000 * r["cpu_s"] / r["n"]))
    with open(os.path.join(a.out, "compile_scale.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))
    plot(a.out, rows)


def plot(out, rows):
    if subprocess.call(["sh", "-c", "command -v gnuplot >/dev/null"]) != 0:
        return
    cases = sorted({r["case"] for r in rows})
    data = os.path.join(out, "compile_scale.dat")
    with open(data, "w") as f:
        for c in cases:
            f.write("# %s\n" % c)
            for r in rows:
                if r["case"] == c:
                    f.write("%d %f\n" % (r["n"], r["cpu_s"]))
            f.write("\n\n")
    plots = ", ".join("'%s' index %d with linespoints title '%s'" % (data, i, c) for i, c in enumerate(cases))
    script = ("set terminal pngcairo size 800,500; set output '%s'; set logscale xy; "
              "set xlabel 'layers (ir: nodes)'; set ylabel 'CPU seconds'; set key left top; "
              "set title 'cnnc compile time against depth'; plot %s\n") % (os.path.join(out, "compile_scale.png"), plots)
    subprocess.run(["gnuplot"], input=script.encode(), check=False)
    os.remove(data)


if __name__ == "__main__":
    sys.exit(main())
