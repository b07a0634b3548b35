"""PyTorch's side of bench_activations: forward + backward of each activation on x [64, 8, 26, 26]
(float32), from a fixed dL/dy, the minimum wall time over --reps repetitions after one warm-up.

Run with Debian's python3-torch: /usr/bin/python3 bench/bench_activations_torch.py --threads 2
"""
import argparse
import time

import torch
import torch.nn.functional as F


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--reps", type=int, default=30)
    p.add_argument("--shape", type=int, nargs="+", default=[64, 8, 26, 26])
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(a.shape, generator=gen).requires_grad_()
    g = torch.randn(a.shape, generator=gen)
    ops = {
        "relu": F.relu,
        "tanh": torch.tanh,
        "sigmoid": torch.sigmoid,
        "leaky_relu": F.leaky_relu,
        "gelu": F.gelu,
        "gelu tanh": lambda t: F.gelu(t, approximate="tanh"),
    }
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    print(f"# torch {torch.__version__}, {a.threads} threads, shape {a.shape}, min of {a.reps}, "
          f"load average {load}")
    print("| op | PyTorch ms |\n|---|---:|")
    for name, op in ops.items():
        best = float("inf")
        for i in range(a.reps + 1):
            x.grad = None
            t0 = time.perf_counter()
            op(x).backward(g)
            dt = time.perf_counter() - t0
            if i > 0:
                best = min(best, dt)
        print(f"| {name} | {1e3 * best:.3f} |")


if __name__ == "__main__":
    main()
