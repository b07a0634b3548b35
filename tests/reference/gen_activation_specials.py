"""PyTorch's tanh, sigmoid, leaky_relu and gelu at the values ops.txt cannot hold (NaN, ±inf) and
at ±0, written to activation_specials.txt for tests/test_activation.cpp.

Run with /usr/bin/python3 (torch 1.13). One line per op, dtype and input value:

    <op> <dtype> <x> <y> <dx>

y = op(x) and dx = d op / dx · 1, printed with repr (so nan, inf and -0.0 round-trip through
strtod). The values are the scalar path's (a one-element tensor each): PyTorch's vectorised
float32 gelu gives +0.0 at x = -0.0 and at large negative x where its scalar path gives -0.0.
"""
import os

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))

OPS = {
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "leaky_relu_0.2": lambda x: F.leaky_relu(x, 0.2),
    "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
}
XS = [float("nan"), float("inf"), float("-inf"), 0.0, -0.0, 100.0, -100.0, 1e-30, -1e-30]


def main():
    lines = []
    for name, fn in OPS.items():
        for dtype, tag in ((torch.float32, "f32"), (torch.float64, "f64")):
            for v in XS:
                x = torch.tensor([v], dtype=dtype, requires_grad=True)
                y = fn(x)
                y.backward(torch.ones_like(y))
                lines.append(f"{name} {tag} {x.item()!r} {y.item()!r} {x.grad.item()!r}")
    path = os.path.join(HERE, "activation_specials.txt")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {len(lines)} lines to {path}")


if __name__ == "__main__":
    main()
