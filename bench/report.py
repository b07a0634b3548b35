#!/usr/bin/python3
"""Prints tapegrad's and PyTorch's benchmark results side by side as markdown; optionally
writes them to files. Usage:
  report.py tapegrad.json torch.json [tapegrad2.json torch2.json ...]
            [--reference reference1.json ...] [--write out/bench/latest.md ...]
--reference: tapegrad runs with the reference kernels (the readable path), one per pair."""
import argparse
import json
import os
import platform
import subprocess
import time


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# Everything from this line on in a page being rewritten is hand-written and kept as it is.
KEEP_MARKER = "<!-- Written by hand from here on: bench/report.py keeps it when it rewrites the page. -->"


def load():
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[0]
    except OSError:
        return "?"


def median(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


def quantile(v, q):
    """The q-quantile of v, interpolating linearly between the sorted values (numpy's default)."""
    v = sorted(v)
    at = q * (len(v) - 1)
    lo = int(at)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (at - lo) * (v[hi] - v[lo])


def with_iqr(v, fmt="{:.2f}"):
    """The median of v in bold, then its interquartile range: one noisy pair moves neither."""
    return ("**" + fmt.format(median(v)) + "** (IQR " + fmt.format(quantile(v, 0.25)) + "–" +
            fmt.format(quantile(v, 0.75)) + ")")


def ceiling_shares(pairs):
    """Per batch size: each pair's whole-step GFLOP/s as a share of the sgemm rate its own
    tapegrad process measured right after the steps (same run, same threads), or None when the
    results predate the measurement."""
    out = {}
    for b in pairs[0][0]["step_ms"]:
        shares = []
        for t, _ in pairs:
            if "sgemm_gflops" not in t or b not in t.get("step_flops", {}):
                return None
            gflops = t["step_flops"][b] / (t["step_ms"][b] * 1e-3) / 1e9
            shares.append(gflops / t["sgemm_gflops"])
        out[b] = shares
    return out


def step_ratios(pairs):
    """Per batch size: the median over the pairs of tapegrad's and PyTorch's median step ms,
    and the pairs' ratios (each pair ran back to back)."""
    out = {}
    for b in sorted(pairs[0][1]["step_ms"], key=int):
        a = [t["step_ms"][b] for t, _ in pairs]
        p = [q["step_ms"][b] for _, q in pairs]
        out[b] = (median(a), median(p), [x / y for x, y in zip(a, p)])
    return out


def epoch_ratios(pairs):
    """The epoch's seconds: tapegrad's and PyTorch's medians over the pairs that ran one (the
    first pair runs it for every accuracy seed, the others for seed 0 only; the time is always
    seed 0's), and each such pair's ratio."""
    both = [(t["epoch"]["seconds"], q["epoch"]["seconds"]) for t, q in pairs
            if "epoch" in t and "epoch" in q]
    return (median([a for a, _ in both]), median([b for _, b in both]),
            [a / b for a, b in both])


def table(tg, pt, pairs, refs=()):
    rows = []
    steps = step_ratios(pairs)
    shares = ceiling_shares(pairs)
    rows.append(f"### Training step (forward + backward + SGD), median ms, {len(pairs)} back-to-back pairs\n")
    rows.append("Ratios and shares: the median over the pairs, then the interquartile range (IQR) "
                "over the pairs. Share of the ceiling: the step's FLOPs (convolutions and linear "
                "layer, forward and gradients) per second over the sgemm rate tapegrad measured "
                "in the same process at the same thread count.\n")
    share_head, share_rule = (" | tapegrad step GFLOP/s | share of the sgemm ceiling", "|---:|---:") \
        if shares else ("", "")
    if refs:  # the reference kernels as a third column, beside fast and PyTorch
        rows.append("| batch | tapegrad fast ms | tapegrad reference ms | PyTorch ms "
                    "| fast / PyTorch | reference / PyTorch "
                    "| reference / fast" + share_head + " |")
        rows.append("|---:|---:|---:|---:|---:|---:|---:" + share_rule + "|")
    else:
        rows.append("| batch | tapegrad ms | PyTorch ms | tapegrad / PyTorch" + share_head + " |")
        rows.append("|---:|---:|---:|---:" + share_rule + "|")
    for b, (a, p, r) in steps.items():
        ratio = with_iqr(r)
        share = ""
        if shares:
            gflops = median([t["step_flops"][b] / (t["step_ms"][b] * 1e-3) / 1e9 for t, _ in pairs])
            share = f" | {gflops:.1f} | " + with_iqr([100 * v for v in shares[b]], "{:.0f}%")
        if refs:
            ref = median([x["step_ms"][b] for x in refs if b in x["step_ms"]])
            rows.append(f"| {b} | {a:.3f} | {ref:.3f} | {p:.3f} | {ratio} | {ref / p:.2f} "
                        f"| {ref / a:.2f}{share} |")
        else:
            rows.append(f"| {b} | {a:.3f} | {p:.3f} | {ratio}{share} |")
    if "epoch" in tg and "epoch" in pt:
        rows.append("\n### One epoch at batch 64\n")
        rows.append("| | tapegrad | PyTorch | ratio |")
        rows.append("|---|---:|---:|---:|")
        e, f = tg["epoch"], pt["epoch"]
        es, fs, er = epoch_ratios(pairs)
        rows.append(f"| images | {e['images']} | {f['images']} | |")
        rows.append(f"| seconds (median of {len(er)} pair(s); ratio: median of the pairs' ratios, IQR) "
                    f"| {es:.2f} | {fs:.2f} | {with_iqr(er)} |")
        rows.append(f"| images / s | {e['images'] / es:.0f} | {f['images'] / fs:.0f} | {fs / es:.2f} |")
        def accs(a):
            a = a if isinstance(a, list) else [a]
            mean = 100 * sum(a) / len(a)
            return f"{mean:.2f}% (" + ", ".join(f"{100 * v:.1f}" for v in a) + ")"
        n = len(e["test_accuracy"]) if isinstance(e["test_accuracy"], list) else 1
        rows.append(f"| test accuracy after the epoch, mean (seeds 0..{n - 1}) | {accs(e['test_accuracy'])} | {accs(f['test_accuracy'])} | |")
    rows.append(f"| peak RSS (MB, whole process) | {tg['peak_rss_mb']:.0f} | {pt['peak_rss_mb']:.0f} | {tg['peak_rss_mb'] / pt['peak_rss_mb']:.2f} |")
    rows.append("\n### Achieved GFLOP/s at batch 64 (each layer alone; backward = weight gradient, "
                "and input gradient where the layer has one)\n")
    rows.append("| layer | tapegrad forward | PyTorch forward | tapegrad backward | PyTorch backward "
                "| tapegrad both | PyTorch both |")
    rows.append("|---|---:|---:|---:|---:|---:|---:|")
    def g(side, key, layer):
        v = side.get(key, {}).get(layer)
        return f"{v:.1f}" if v is not None else "–"
    for k in ["conv1", "conv2", "linear"]:
        rows.append(f"| {k} | {g(tg, 'gflops_forward', k)} | {g(pt, 'gflops_forward', k)} "
                    f"| {g(tg, 'gflops_backward', k)} | {g(pt, 'gflops_backward', k)} "
                    f"| {g(tg, 'gflops', k)} | {g(pt, 'gflops', k)} |")
    rows.append(f"| sgemm 1024x1024 (the ceiling) | | | | | {g(tg, 'gflops', 'sgemm_1024')} "
                f"| {g(pt, 'gflops', 'sgemm_1024')} |")
    rows.append("\n### The targets (issue 28), in this run\n")
    ratios = {b: median(r) for b, (_, _, r) in steps.items()}
    met = lambda ok: "met" if ok else "NOT met"
    for limit, sizes in [(0.25, ["8"]), (0.35, ["32", "64", "128"]), (0.3, ["256", "512"])]:
        here = [b for b in sizes if b in ratios]
        if here:
            worst = max(here, key=ratios.get)
            rows.append(f"- step time at most {limit}x PyTorch's at batch {', '.join(here)} "
                        f"(median ratio of the pairs): {met(ratios[worst] <= limit)} (worst "
                        f"{ratios[worst]:.2f}, batch {worst})")
    if shares and "512" in shares:
        s512 = median(shares["512"])
        rows.append(f"- the batch-512 step at 30% or more of the sgemm ceiling: {met(s512 >= 0.3)} "
                    f"({100 * s512:.0f}%)")
    if "epoch" in tg and "epoch" in pt:
        er = epoch_ratios(pairs)[2]
        e = median(er)
        rows.append(f"- one epoch at batch 64 in at most 0.35x PyTorch's time: {met(e <= 0.35)} "
                    f"(median ratio {e:.2f} of {len(er)} pair(s))")
    mem = tg["peak_rss_mb"] / pt["peak_rss_mb"]
    rows.append(f"- peak memory at most 0.4x PyTorch's: {met(mem <= 0.4)} (ratio {mem:.2f})")
    if "epoch" in tg and "epoch" in pt and isinstance(tg["epoch"]["test_accuracy"], list):
        a, b = tg["epoch"]["test_accuracy"], pt["epoch"]["test_accuracy"]
        ma, mb = sum(a) / len(a), sum(b) / len(b)
        spread = max(max(a) - min(a), max(b) - min(b))
        rows.append(f"- same accuracy after one epoch, within the seed spread: "
                    f"{met(abs(ma - mb) <= spread)} (means {100 * ma:.2f}% vs "
                    f"{100 * mb:.2f}%; seed-to-seed spread up to {100 * spread:.1f} points)")
    if "profile" in tg:
        rows.append(f"\n### Where one tapegrad step goes (batch {tg.get('profile_batch', 64)})\n")
        rows.append("```")
        rows.append(tg["profile"].rstrip())
        rows.append("```")
    return "\n".join(rows)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results", nargs="+",
                    help="tapegrad.json torch.json [tapegrad2.json torch2.json ...]: pairs run "
                         "back to back; the first pair also holds the epoch's accuracy seeds, "
                         "GFLOP/s and profile")
    ap.add_argument("--reference", nargs="*", default=[],
                    help="tapegrad runs with the reference kernels (a third column)")
    ap.add_argument("--write", action="append", default=[],
                    help="also write the page to this markdown file (repeatable)")
    ap.add_argument("--command", default="bash scripts/bench.sh")
    args = ap.parse_args()
    if len(args.results) % 2:
        ap.error("results come in pairs: tapegrad.json torch.json")
    loaded = []
    for path in args.results:
        with open(path) as f:
            loaded.append(json.load(f))
    pairs = list(zip(loaded[0::2], loaded[1::2]))
    refs = []
    for path in args.reference:
        with open(path) as f:
            refs.append(json.load(f))
    tg, pt = pairs[0]
    loads = [v for run in loaded + refs for v in run.get("load_average", []) if v >= 0]
    during = f"load average {min(loads):.1f}–{max(loads):.1f} during the runs, " if loads else ""
    ceiling = ""
    if "sgemm_gflops" in tg:
        ceilings = [t["sgemm_gflops"] for t, _ in pairs]
        ceiling = (f"The sgemm ceiling (1024³, tapegrad's threads, OpenBLAS inside): median "
                   f"{median(ceilings):.1f} GFLOP/s over the pairs "
                   f"({min(ceilings):.1f}–{max(ceilings):.1f}). ")
    head = (f"Machine: {cpu_model()}, {os.cpu_count()} cores, {during}load average {load()} when "
            f"the report was written; {tg.get('threads', '?')} thread(s) each; step and layer "
            f"times in {'process CPU' if tg.get('clock') == 'cpu' else 'wall-clock'} time "
            f"(the epoch in wall-clock time). "
            f"tapegrad: {tg.get('conv_kernels', 'OpenBLAS ' + tg.get('blas_core', '?'))} (OpenBLAS "
            f"kernels chosen by scripts/env.sh). {pt['framework']}: {pt.get('kernels', '?')}. "
            f"{ceiling}Dataset {pt['dataset']}; {time.strftime('%Y-%m-%d %H:%M %Z')}.")
    body = table(tg, pt, pairs, refs)
    print(head)
    print()
    print(body)
    if args.write:
        text = ("# Performance\n\nThe latest run of `" + args.command + "`: tapegrad and PyTorch "
                "train the same network (Conv2d(1,8,3)-BN-ReLU-MaxPool-Conv2d(8,16,3)-BN-ReLU-"
                "MaxPool-Flatten-Linear(400,10), cross-entropy, SGD lr 0.05) on the same data, "
                "back to back on one machine.\n\n" + head + "\n\n"
                "How: each step time is the median of 50 steps after 10 warm-up steps, on "
                "batches of real images; tapegrad and PyTorch alternate as whole processes, and "
                "each row's ratio is the median of the pairs' ratios. The epoch (shuffled, "
                "seed 0) includes data loading and runs in every pair; its accuracy is repeated "
                "for seeds 0, 1, 2 in the first pair because "
                "one epoch's accuracy moves by several points with the seed. This machine is a "
                "shared VM: single runs swing by up to a third, which is why pairs are repeated "
                "(5 pairs by default, `RUNS=9 bash scripts/bench.sh` for more). The reference-kernel column, when present, "
                "is the same step with the readable kernels (`--kernels reference`).\n\n" + body + "\n")
        for path in args.write:
            page = text
            try:  # keep the hand-written part of an existing page (below the marker)
                with open(path) as f:
                    old = f.read()
                if KEEP_MARKER in old:
                    page += "\n" + old[old.index(KEEP_MARKER):]
            except OSError:
                pass
            tmp = path + ".tmp"
            with open(tmp, "w") as f:
                f.write(page)
            os.replace(tmp, path)


if __name__ == "__main__":
    main()
