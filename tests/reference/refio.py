"""Writes PyTorch reference tensors in the text format tests/testing.hpp reads.

One file per group, tests/reference/<group>.txt, one tensor per line:

    <dtype>/<case>/<tensor> <ndim> <d0> ... <d(n-1)> <v0> <v1> ...

dtype is f32 or f64: the float build of the tests reads the f32 lines, the float64 build the
f64 lines. Values are printed with enough digits to round-trip (9 for f32, 17 for f64).
"""
import os
import torch

HERE = os.path.dirname(os.path.abspath(__file__))


class RefWriter:
    def __init__(self, group):
        self.group = group
        self.lines = []
        self.keys = set()

    def add(self, dtype, key, t):
        """Adds tensor `t` (any dtype; integer tensors are written as numbers) under key."""
        prefix = {torch.float32: "f32", torch.float64: "f64"}[dtype]
        full = f"{prefix}/{key}"
        assert full not in self.keys, f"duplicate key {full}"
        self.keys.add(full)
        t = torch.as_tensor(t).detach().cpu()
        fmt = "%.9g" if prefix == "f32" else "%.17g"
        vals = " ".join(fmt % float(v) for v in t.reshape(-1).tolist())
        dims = " ".join(str(d) for d in t.shape)
        self.lines.append(f"{full} {t.dim()} {dims} {vals}".replace("  ", " ").strip())

    def comment(self, line):
        """Adds a line that is not a tensor (it starts with '#'; the tests' reader skips it)."""
        assert line.startswith("#"), line
        self.lines.append(line)

    def save(self):
        path = os.path.join(HERE, f"{self.group}.txt")
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write("\n".join(self.lines) + "\n")
        os.replace(tmp, path)
        tensors = sum(1 for line in self.lines if not line.startswith("#"))
        print(f"wrote {tensors} tensors to {path}")


def both_dtypes():
    """The two dtypes every case is generated in."""
    return (torch.float32, torch.float64)


def rand_input(shape, gen):
    """A batch whose channels (axis 1) have different means and spreads: μ ≠ 0, σ ≠ 1."""
    x = torch.randn(shape, generator=gen, dtype=torch.float64)
    if len(shape) >= 2:
        view = [1, shape[1]] + [1] * (len(shape) - 2)
        scale = torch.rand(shape[1], generator=gen, dtype=torch.float64).add(0.5).mul(2).view(view)
        shift = torch.randn(shape[1], generator=gen, dtype=torch.float64).mul(3).view(view)
        x = x * scale + shift
    return x
