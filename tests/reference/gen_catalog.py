#!/usr/bin/python3
"""PyTorch's numbers for the op and layer catalogs' examples (tests/test_catalog.cpp,
tests/test_nn_layers.cpp): one generator for every op, which reads each case from a line of
tests/reference/catalog.txt and writes its numbers below those lines.

A case is a comment line at the top of catalog.txt, written by hand beside the C++ example that
names it (vs_pytorch("catalog/<name>", ...) at the end of src/ops/<file>.cpp or src/nn/<file>.cpp):

    # case <name>: inputs <shape> <shape> ...; seed <n>[; scale <s>]; out = <expression>

The expression is the op as PyTorch computes it, or its formula in torch operations where
PyTorch 1.13 (this machine's) has no such function, on the inputs in0, in1, ...; it may name torch,
F (torch.nn.functional) and eps (the stored dtype's machine epsilon, torch.finfo(dtype).eps).
Torch's autograd differentiates it. The inputs are drawn from the seed: in0 as a batch whose
channels have different means and spreads (refio.rand_input, then times scale), the others
uniform in [0.5, 1.5); dy from seed + 1. For each dtype (f32, f64) the inputs are rounded to it
and the output and gradients computed in float64 on them (the exact answer), then stored
rounded: in0, din0, in1, din1, ..., dy, out, under "<dtype>/<name>/".

Run: /usr/bin/python3 tests/reference/gen_catalog.py
"""
import os
import re
import sys

import torch
import torch.nn.functional as F

from refio import HERE, RefWriter, both_dtypes, rand_input

CASE = re.compile(r"# case (\w+): inputs ((?:\[[\d, ]*\] ?)+); seed (\d+)(?:; scale ([-+.\deE]+))?"
                  r"; out = (.+)$")


def catalog_case(name, expression, shapes, seed, scale):
    """One case's numbers: out = expression(in0, in1, ...), backward of sum(out * dy)."""
    gen = torch.Generator().manual_seed(seed)
    ins64 = [rand_input(shapes[0], gen)] + [
        torch.rand(s, generator=gen, dtype=torch.float64) + 0.5 for s in shapes[1:]]
    if scale is not None:
        ins64[0] = scale * ins64[0]
    for dtype in both_dtypes():
        ins = [t.to(dtype).to(torch.float64).requires_grad_() for t in ins64]
        names = {"torch": torch, "F": F, "eps": torch.finfo(dtype).eps}
        names.update({f"in{i}": t for i, t in enumerate(ins)})
        out = eval(expression, names)  # noqa: S307 (the repository's own file)
        dy = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed + 1),
                         dtype=torch.float64).to(dtype).to(torch.float64)
        (out * dy).sum().backward()
        for i, t in enumerate(ins):
            W.add(dtype, f"{name}/in{i}", t.to(dtype))
            W.add(dtype, f"{name}/din{i}", t.grad.to(dtype))
        W.add(dtype, f"{name}/dy", dy.to(dtype))
        W.add(dtype, f"{name}/out", out.to(dtype))


W = RefWriter("catalog")
path = os.path.join(HERE, "catalog.txt")
with open(path, encoding="utf-8") as f:
    lines = f.read().splitlines()
cases = []
for number, line in enumerate(lines, 1):
    if not line.startswith("#"):
        continue  # the numbers of the previous run: written anew below
    W.comment(line)
    if line.startswith("# case"):
        m = CASE.match(line)
        if not m:
            sys.exit(f"{path}:{number}: expected '# case <name>: inputs [d0, d1] ...; seed <n>"
                     f"[; scale <s>]; out = <expression>', got: {line}")
        shapes = [[int(d) for d in s.split(",") if d.strip()]
                  for s in re.findall(r"\[([\d, ]*)\]", m.group(2))]
        cases.append((m.group(1), m.group(5), shapes, int(m.group(3)),
                      float(m.group(4)) if m.group(4) else None))
for case in cases:
    catalog_case(*case)
W.save()
