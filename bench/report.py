#!/usr/bin/python3
"""Prints tapegrad's and PyTorch's benchmark results side by side; optionally writes
docs/performance.md. Usage: report.py tapegrad.json torch.json [--write docs/performance.md]"""
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


def table(tg, pt):
    rows = []
    rows.append("### Training step (forward + backward + SGD), median ms\n")
    rows.append("| batch | tapegrad ms | PyTorch ms | tapegrad / PyTorch |")
    rows.append("|---:|---:|---:|---:|")
    for b in sorted(pt["step_ms"], key=int):
        a, p = tg["step_ms"].get(b), pt["step_ms"][b]
        ratio = f"{a / p:.2f}" if a else "—"
        rows.append(f"| {b} | {a:.3f} | {p:.3f} | {ratio} |" if a else f"| {b} | — | {p:.3f} | — |")
    if "epoch" in tg and "epoch" in pt:
        rows.append("\n### One epoch at batch 64\n")
        rows.append("| | tapegrad | PyTorch | ratio |")
        rows.append("|---|---:|---:|---:|")
        e, f = tg["epoch"], pt["epoch"]
        rows.append(f"| images | {e['images']} | {f['images']} | |")
        rows.append(f"| seconds | {e['seconds']:.2f} | {f['seconds']:.2f} | {e['seconds'] / f['seconds']:.2f} |")
        rows.append(f"| images / s | {e['images_per_second']:.0f} | {f['images_per_second']:.0f} | {e['images_per_second'] / f['images_per_second']:.2f} |")
        def accs(a):
            a = a if isinstance(a, list) else [a]
            mean = 100 * sum(a) / len(a)
            return f"{mean:.2f}% (" + ", ".join(f"{100 * v:.1f}" for v in a) + ")"
        n = len(e["test_accuracy"]) if isinstance(e["test_accuracy"], list) else 1
        rows.append(f"| test accuracy after the epoch, mean (seeds 0..{n - 1}) | {accs(e['test_accuracy'])} | {accs(f['test_accuracy'])} | |")
    rows.append(f"| peak RSS (MB, whole process) | {tg['peak_rss_mb']:.0f} | {pt['peak_rss_mb']:.0f} | {tg['peak_rss_mb'] / pt['peak_rss_mb']:.2f} |")
    rows.append("\n### Achieved GFLOP/s at batch 64 (forward + backward of the layer alone)\n")
    rows.append("| | tapegrad | PyTorch |")
    rows.append("|---|---:|---:|")
    for k in ["conv1", "conv2", "linear", "sgemm_1024"]:
        label = "sgemm 1024x1024 (the ceiling)" if k == "sgemm_1024" else k
        rows.append(f"| {label} | {tg['gflops'].get(k, 0):.1f} | {pt['gflops'].get(k, 0):.1f} |")
    rows.append("\n### The targets, in this run\n")
    ratios = {b: tg["step_ms"][b] / pt["step_ms"][b] for b in pt["step_ms"] if b in tg["step_ms"]}
    worst = max(ratios, key=ratios.get)
    rows.append(f"- step time at or below PyTorch's at every batch size: "
                f"{'met' if ratios[worst] <= 1.0 else 'NOT met'} (worst ratio {ratios[worst]:.2f}, batch {worst})")
    if "8" in ratios:
        rows.append(f"- at batch 8, at most half of PyTorch's: "
                    f"{'met' if ratios['8'] <= 0.5 else 'NOT met'} (ratio {ratios['8']:.2f})")
    mem = tg["peak_rss_mb"] / pt["peak_rss_mb"]
    rows.append(f"- peak memory at most PyTorch's: {'met' if mem <= 1.0 else 'NOT met'} (ratio {mem:.2f})")
    if "epoch" in tg and "epoch" in pt and isinstance(tg["epoch"]["test_accuracy"], list):
        a, b = tg["epoch"]["test_accuracy"], pt["epoch"]["test_accuracy"]
        ma, mb = sum(a) / len(a), sum(b) / len(b)
        spread = max(max(a) - min(a), max(b) - min(b))
        rows.append(f"- same accuracy after one epoch, within noise: "
                    f"{'met' if abs(ma - mb) <= spread else 'NOT met'} (means {100 * ma:.2f}% vs "
                    f"{100 * mb:.2f}%; seed-to-seed spread up to {100 * spread:.1f} points)")
    if "profile" in tg:
        rows.append(f"\n### Where one tapegrad step goes (batch {tg.get('profile_batch', 64)})\n")
        rows.append("```")
        rows.append(tg["profile"].rstrip())
        rows.append("```")
    return "\n".join(rows)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tapegrad")
    ap.add_argument("torch")
    ap.add_argument("--write", help="also write this markdown file")
    ap.add_argument("--command", default="bash scripts/bench.sh")
    args = ap.parse_args()
    with open(args.tapegrad) as f:
        tg = json.load(f)
    with open(args.torch) as f:
        pt = json.load(f)
    head = (f"Machine: {cpu_model()}, {os.cpu_count()} cores; {tg.get('threads', '?')} threads "
            f"each ({pt['framework']}); OpenBLAS kernels {tg.get('blas_core', '?')} "
            f"(OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}); "
            f"dataset {pt['dataset']}; "
            f"{time.strftime('%Y-%m-%d')}.")
    body = table(tg, pt)
    print(head)
    print()
    print(body)
    if args.write:
        text = ("# Performance\n\nThe latest run of `" + args.command + "`: tapegrad and PyTorch "
                "train the same network (Conv2d(1,8,3)-BN-ReLU-MaxPool-Conv2d(8,16,3)-BN-ReLU-"
                "MaxPool-Flatten-Linear(400,10), cross-entropy, SGD lr 0.05) on the same data, "
                "back to back on one machine.\n\n" + head + "\n\n" + body + "\n")
        tmp = args.write + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, args.write)


if __name__ == "__main__":
    main()
