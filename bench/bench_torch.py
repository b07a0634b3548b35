#!/usr/bin/python3
"""PyTorch side of the tapegrad benchmark: the same network, data and work as bench_tapegrad.

Prints one JSON object on stdout (bench/report.py turns both sides into one table).
Run with Debian's python3-torch: /usr/bin/python3 bench/bench_torch.py --threads 2
"""
import argparse
import gzip
import json
import os
import re
import resource
import statistics
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

BATCHES = [8, 32, 64, 128, 256, 512]


def load_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find(dirname, stem):
    for name in (stem + ".gz", stem):
        p = os.path.join(dirname, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(f"{stem}[.gz] not in {dirname}")


def load(dirname, split):
    prefix = "train" if split == "train" else "t10k"
    x = load_idx(find(dirname, f"{prefix}-images-idx3-ubyte"))
    y = load_idx(find(dirname, f"{prefix}-labels-idx1-ubyte"))
    # Kept as bytes, [N, 1, 28, 28], and each batch made float when it is used (as torchvision's
    # MNIST does, and as tapegrad's loader does): a float32 copy of the whole training set, and
    # the temporaries of making it, would add about 400 MB to this side's peak RSS.
    x = torch.from_numpy(x.copy()).unsqueeze(1)
    return x, torch.from_numpy(y.astype(np.int64))


def floats(xb):
    """A batch of image bytes as float32 in [0, 1]."""
    return xb.float().div_(255.0)


def make_model():
    # Conv2d(1,8,3) BN ReLU MaxPool(2) Conv2d(8,16,3) BN ReLU MaxPool(2) Flatten Linear(400,10)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 10))


def step(model, opt, x, y):
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return loss


# --clock cpu: step and layer times in process CPU time (time.process_time) instead of wall
# time, as bench_tapegrad's --clock cpu; meaningful with --threads 1 only.
now = time.perf_counter


def step_times(x, y, batch, warmup, steps):
    torch.manual_seed(0)
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    n = x.shape[0]
    times = []
    for i in range(warmup + steps):
        s = (i * batch) % (n - batch)
        xb, yb = floats(x[s:s + batch]), y[s:s + batch]
        t0 = now()
        step(model, opt, xb, yb)
        t1 = now()
        if i >= warmup:
            times.append(t1 - t0)
    return statistics.median(times)


def epoch(x, y, xt, yt, batch, seed):
    torch.manual_seed(seed)
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    perm = torch.randperm(x.shape[0], generator=g)
    for s in range(0, x.shape[0], batch):
        idx = perm[s:s + batch]
        step(model, opt, floats(x[idx]), y[idx])
    seconds = time.perf_counter() - t0
    model.eval()
    with torch.no_grad():
        correct = sum(int((model(floats(xt[s:s + 1000])).argmax(1) == yt[s:s + 1000]).sum())
                      for s in range(0, xt.shape[0], 1000))
    return seconds, correct / xt.shape[0]


def layer_gflops(batch, reps):
    """GFLOP/s of each conv/linear layer in isolation: forward alone, backward alone (forward +
    backward minus forward, medians), both; and of a plain sgemm (the ceiling)."""
    out = {"forward": {}, "backward": {}, "both": {}}
    torch.manual_seed(0)
    cases = {
        "conv1": (nn.Conv2d(1, 8, 3), torch.rand(batch, 1, 28, 28), False),
        "conv2": (nn.Conv2d(8, 16, 3), torch.rand(batch, 8, 13, 13, requires_grad=True), True),
        "linear": (nn.Linear(400, 10), torch.rand(batch, 400, requires_grad=True), True),
    }
    for name, (layer, x, input_grad) in cases.items():
        if name.startswith("conv"):
            o, c, k = layer.out_channels, layer.in_channels, layer.kernel_size[0]
            oh = x.shape[2] - k + 1
            fwd = 2.0 * batch * o * oh * oh * c * k * k
        else:
            fwd = 2.0 * batch * layer.in_features * layer.out_features
        bwd = fwd * (2 if input_grad else 1)  # weight grad, and input grad if wanted
        fwd_times, both_times = [], []
        ones = None  # dL/dy, given (as tapegrad's side gives it), not from y.sum()
        for i in range(reps + 3):
            layer.zero_grad()
            if x.grad is not None:
                x.grad = None
            t0 = now()
            y = layer(x)
            t1 = now()
            if ones is None:
                ones = torch.ones_like(y)
            y.backward(ones)
            t2 = now()
            if i >= 3:
                fwd_times.append(t1 - t0)
                both_times.append(t2 - t0)
        f, b = statistics.median(fwd_times), statistics.median(both_times)
        out["forward"][name] = fwd / f / 1e9
        out["backward"][name] = bwd / max(b - f, 1e-9) / 1e9
        out["both"][name] = (fwd + bwd) / b / 1e9
    a, b = torch.rand(1024, 1024), torch.rand(1024, 1024)
    times = []
    for i in range(8):
        t0 = time.perf_counter()
        torch.mm(a, b)
        if i >= 2:
            times.append(time.perf_counter() - t0)
    out["sgemm_1024"] = 2.0 * 1024 ** 3 / statistics.median(times) / 1e9
    return out


def kernels():
    """What computes PyTorch's convolutions and products, from its build configuration."""
    config = torch.__config__.show()
    parts = []
    for line in config.splitlines():
        line = line.strip(" -")
        if line.startswith("Intel(R) MKL-DNN") or line.startswith("oneDNN"):
            parts.append(line.split(" (")[0] + (" (convolutions)" if torch.backends.mkldnn.is_available() else ""))
            if os.environ.get("ONEDNN_MAX_CPU_ISA"):
                parts.append("oneDNN capped at " + os.environ["ONEDNN_MAX_CPU_ISA"] + " by ONEDNN_MAX_CPU_ISA")
        elif line.startswith("CPU capability usage"):
            parts.append(line.replace("CPU capability usage:", "ATen kernels"))
    blas = re.search(r"BLAS_INFO=([^,\s]+)", config)
    if blas:
        parts.append("BLAS " + blas.group(1))
    return "; ".join(parts)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--fallback-dir", default=os.path.join(os.path.dirname(__file__), "..", "data"))
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--no-epoch", action="store_true")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=BATCHES)
    ap.add_argument("--epoch-seeds", type=int, default=3,
                    help="epochs run, with seeds 0, 1, ...; the time is the first one's")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="cpu: step and layer times in process CPU time (loaded machines; "
                         "with --threads 1 only)")
    args = ap.parse_args()
    global now
    if args.clock == "cpu":
        now = time.process_time
    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()[0]

    dataset = "fashion-mnist"
    try:
        x, y = load(args.data_dir, "train")
        xt, yt = load(args.data_dir, "test")
    except FileNotFoundError:
        dataset = "bundled-mnist"
        x, y = load(args.fallback_dir, "train")
        xt, yt = load(args.fallback_dir, "test")

    result = {"framework": f"pytorch {torch.__version__}", "threads": torch.get_num_threads(),
              "kernels": kernels(), "dataset": dataset, "clock": args.clock, "step_ms": {}}
    for b in args.batch_sizes:
        result["step_ms"][str(b)] = 1000 * step_times(x, y, b, args.warmup, args.steps)
    if not args.no_epoch:
        runs = [epoch(x, y, xt, yt, 64, seed=k) for k in range(args.epoch_seeds)]
        seconds = runs[0][0]
        result["epoch"] = {"batch": 64, "images": int(x.shape[0]), "seconds": seconds,
                           "images_per_second": x.shape[0] / seconds,
                           "test_accuracy": [acc for _, acc in runs]}
    g = layer_gflops(64, 20)
    result["gflops"] = dict(g["both"], sgemm_1024=g["sgemm_1024"])
    result["gflops_forward"], result["gflops_backward"] = g["forward"], g["backward"]
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    result["load_average"] = [load_start, os.getloadavg()[0]]  # 1-minute, at start and end
    print(json.dumps(result))


if __name__ == "__main__":
    main()
