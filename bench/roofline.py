#!/usr/bin/env python3
"""Per-op roofline of the benchmark's training step (docs/performance.md, "Per-op roofline").

For each batch size it runs bench_tapegrad once (the step profiled --steps times, each op's
forward and backward time the fastest of those steps: on a shared machine the minimum is the
run least interrupted by other processes; and the sgemm ceiling measured in the same process,
in process CPU time with one thread) and bench_bandwidth once (the copy rate, best of 20, on
arrays the size of conv1's output at that batch), then computes each op's FLOPs and bytes from the shapes
in the profile and places the op under its roof:

    roof time = max(FLOPs / ceiling, bytes / bandwidth)
    bound     = compute if FLOPs / ceiling is the larger, memory otherwise
    % of roof = roof time / measured time

    /usr/bin/python3 bench/roofline.py --build build/release --threads 1
    /usr/bin/python3 bench/roofline.py --build build/release --write docs/performance.md

(`bash scripts/bench.sh --roofline` runs it on the release build.) The FLOP and byte counts
are the model below, not counters: FLOPs count a multiply-add as 2 and every other arithmetic
operation as 1 (comparisons for max included, exp as 1); bytes count each array every time one
of the op's passes reads or writes it, as the fast kernels are written (float32 values, the
fused pool's 1-byte window positions, the unfused pool's 8-byte argmax), with nothing kept in
cache between passes. Weights and statistics are counted, tapegrad's bookkeeping is not.
"""
import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time

S = 4  # bytes per float32
BEGIN = "<!-- roofline: written by bench/roofline.py (bash scripts/bench.sh --roofline --update-docs); do not edit by hand -->"
END = "<!-- end of bench/roofline.py's section -->"
ROW = re.compile(r"^\s+(\d+)\s+(\S+)\s+(\[[^\]]*\])\s+([\d.]+)\s+([\d.]+)\s+[\d.]+%\s*$")


def shape(text):
    return [int(v) for v in text.strip("[]").split(",") if v.strip()]


def prod(v):
    return math.prod(v)


def parse_profile(text):
    """[(op, output shape, fwd ms, bwd ms)] of one profiled step, in tape order."""
    rows = []
    for line in text.splitlines():
        m = ROW.match(line)
        if m:
            rows.append((m.group(2), shape(m.group(3)), float(m.group(4)), float(m.group(5))))
    return rows


def model(op, x, y, first):
    """(forward FLOPs, forward bytes, backward FLOPs, backward bytes, note) of one op with input
    shape x and output shape y; `first` = its input is the images (no input gradient)."""
    E, Y = prod(x), prod(y)
    if op == "conv2d":
        N, C, H, W = x
        _, K, Ho, Wo = y
        k = H - Ho + 1  # stride 1, no padding: the benchmark's 3x3 convolutions
        macs = N * K * Ho * Wo * C * k * k
        w = K * C * k * k
        fwd = (2 * macs + Y, S * (E + w + K + Y))
        bwd_f = 2 * macs + Y + (0 if first else 2 * macs)  # dW, db, dx
        bwd_b = S * (Y + E + w + K) + (0 if first else S * (Y + w + E))
        return fwd + (bwd_f, bwd_b, f"k {k}, {'no dx' if first else 'dW, db, dx'}")
    if op == "batch_norm":
        # forward: moments pass (3 per value) reading x; normalise pass (4) reading x writing y
        # backward: sums pass (5) reading dy, x; dx pass (8) reading dy, x writing dx
        return (7 * E, S * 3 * E, 13 * E, S * 5 * E, "2 passes each way")
    if op == "relu_max_pool2d":
        # forward: read x, write y and an 8-byte argmax per output (max of 4 + relu: 1 per x)
        # backward: zero dx, read g, y, argmax, scatter g into dx
        return (E, S * (E + Y) + 8 * Y, Y, S * (E + 2 * Y) + 8 * Y, "argmax 8 B")
    if op == "batch_norm_relu_max_pool2d":
        # forward: moments pass reading x; one pass reading x, writing y and 1-byte windows
        # backward: pass 1 makes each plane's dz from g and the window bytes (which also hold
        # relu's mask) and reads x for the sums; pass 2 makes dz again from g and the bytes,
        # reads x and writes dx
        return (8 * E, S * (2 * E + Y) + Y, 13 * E, S * (3 * E + 2 * Y) + 2 * Y,
                "fused, windows 1 B")
    if op in ("flatten", "reshape"):
        return (0, S * 2 * E, 0, S * 2 * E, "a copy")
    if op == "linear":
        N, I = x
        O = y[1]
        macs = N * I * O
        return (2 * macs + Y, S * (E + I * O + O + Y), 4 * macs + Y,
                S * (Y + E + 2 * I * O + O + E), "dW, db, dx")
    if op == "cross_entropy":
        N, C = x
        # forward: max, subtract, exp, sum per logit; backward: softmax - onehot, / N
        return (4 * N * C, S * N * C + 8 * N, 3 * N * C, S * 2 * N * C + 8 * N, "")
    return (0, S * (E + Y), 0, S * (E + Y), "not modelled: input and output once")


def copy_rate(build, threads, megabytes):
    """GB/s of bench_bandwidth's copy on arrays of `megabytes`, the best of 20."""
    text = subprocess.run(
        [os.path.join(build, "bench", "bench_bandwidth"), "--threads", str(threads),
         "--megabytes", str(megabytes), "--reps", "20"],
        check=True, capture_output=True, text=True).stdout
    m = re.search(r"copy\s+\(c\[i\] = a\[i\]\)\s+([\d.]+) GB/s", text)
    if not m:
        sys.exit(f"roofline.py: no copy rate in bench_bandwidth's output:\n{text}")
    return float(m.group(1))


def run_batch(build, threads, batch, steps):
    cmd = [os.path.join(build, "bench", "bench_tapegrad"), "--threads", str(threads),
           "--no-epoch", "--no-layers", "--batch-sizes", str(batch), "--warmup", "2", "--steps",
           "5", "--profile-batch", str(batch), "--profile-steps", str(steps)]
    if threads == 1:
        cmd += ["--clock", "cpu"]  # the steps and the sgemm ceiling in process CPU time
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads))
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True,
                                     env=env).stdout)


def section(results, threads, steps, machine):
    out = [BEGIN, "",
           f"Per op, one training step of the benchmark network, at batch 64 and 512. {machine}; "
           f"{threads} thread(s). Times: each op's fastest of {steps} profiled steps (the tape's "
           "per-op wall-clock timer, after 10 warm-up steps; on a shared machine the fastest is "
           "the least interrupted). FLOPs and bytes: computed from "
           "the shapes by bench/roofline.py's model (a multiply-add is 2 FLOPs; every pass of "
           "the fast kernel reads and writes its arrays once, nothing kept in cache between "
           "passes). Roofs: the sgemm ceiling measured in the same process (process CPU time "
           "with one thread), and the copy rate of bench_bandwidth on arrays the size of "
           "conv1's output at that batch (best of 20; a cache-sized roof, above main memory's "
           "rate). `bound` names the roof whose time "
           "is the larger; `% of roof` = that roof's time / the measured time. SGD's update "
           "is not a tape op and is not listed.", ""]
    for r in results:
        b = r["batch"]
        out.append(f"**Batch {b}**: sgemm ceiling {r['ceiling']:.1f} GFLOP/s ({r['clock']} "
                   f"clock), copy {r['bw']:.1f} GB/s on {r['mb']} MB arrays; ridge "
                   f"{r['ceiling'] / r['bw']:.1f} FLOP/byte; load average {r['load'][0]:.2f} at "
                   f"the start, {r['load'][1]:.2f} at the end; the profiled steps' tape time "
                   f"{r['step_min']:.2f} ms fastest, {r['step_median']:.2f} ms median.")
        out.append("")
        out.append("| # | op | pass | MFLOP | MB | FLOP/byte | measured ms | GFLOP/s | GB/s "
                   "| roof ms | bound | % of roof |")
        out.append("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|")
        tot_ms = tot_roof = 0.0
        for row in r["rows"]:
            for pas in ("fwd", "bwd"):
                f, by, ms = row[pas]
                roof_c, roof_m = f / (r["ceiling"] * 1e9), by / (r["bw"] * 1e9)
                roof = max(roof_c, roof_m) * 1e3
                tot_ms += ms
                tot_roof += roof
                bound = "compute" if roof_c > roof_m else "memory"
                pct = f"{100 * roof / ms:.0f}%" if ms > 0 else "–"
                gf = f"{f / ms / 1e6:.1f}" if ms > 0 else "–"
                gb = f"{by / ms / 1e6:.1f}" if ms > 0 else "–"
                out.append(f"| {row['i']} | {row['op']} | {pas} | {f / 1e6:.2f} | {by / 1e6:.2f} "
                           f"| {f / by if by else 0:.2f} | {ms:.3f} | {gf} | {gb} | {roof:.3f} "
                           f"| {bound} | {pct} |")
        out.append(f"| | all ops | | | | | {tot_ms:.3f} | | | {tot_roof:.3f} | | "
                   f"{100 * tot_roof / tot_ms:.0f}% |")
        out.append("")
    out.append(END)
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build/release")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--steps", type=int, default=21, help="profiled steps per batch size")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 512])
    ap.add_argument("--write", action="append", default=[],
                    help="file to write the section to (a page holding the markers gets its "
                         "section replaced; any other file is overwritten)")
    a = ap.parse_args()
    results = []
    runtime = ""
    for batch in a.batch_sizes:
        print(f"roofline: batch {batch}...", file=sys.stderr)
        j = run_batch(a.build, a.threads, batch, a.steps)
        runtime = j["conv_kernels"]  # "OpenBLAS <core>; direct convolution <SIMD>"
        profiles = [parse_profile(p) for p in j["profiles"]]
        first = profiles[0]
        if not first or any([p[0] for p in q] != [p[0] for p in first] for q in profiles):
            sys.exit("roofline.py: the profiled steps do not list the same ops")
        mb = max(1, math.ceil(S * batch * 8 * 26 * 26 / 2**20))  # conv1's output
        bw = copy_rate(a.build, a.threads, mb)
        rows = []
        x = [batch, 1, 28, 28]
        for i, (op, y, _, _) in enumerate(first):
            ff, fb, bf, bb, _note = model(op, x, y, i == 0)
            fwd_ms = min(q[i][2] for q in profiles)
            bwd_ms = min(q[i][3] for q in profiles)
            rows.append({"i": i, "op": op, "fwd": (ff, fb, fwd_ms), "bwd": (bf, bb, bwd_ms)})
            x = y
        step_ms = [sum(r[2] + r[3] for r in q) for q in profiles]
        results.append({"batch": batch, "rows": rows, "ceiling": j["sgemm_gflops"], "bw": bw,
                        "mb": mb, "load": j["load_average"], "clock": j["clock"],
                        "step_min": min(step_ms), "step_median": statistics.median(step_ms)})
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    machine = (f"{cpu}, {os.cpu_count()} cores, {runtime}, "
               f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    text = section(results, a.threads, a.steps, machine)
    print(text)
    for path in a.write:
        old = open(path).read() if os.path.exists(path) else ""
        if BEGIN in old and END in old:
            head, rest = old.split(BEGIN, 1)
            new = head + text + rest.split(END, 1)[1]
        else:
            new = text + "\n"
        with open(path, "w") as f:
            f.write(new)


if __name__ == "__main__":
    main()
