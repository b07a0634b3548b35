#!/usr/bin/python3
"""PyTorch 1.13 references for tapegrad's nn and optim layers.

Writes two groups:
  nn.txt      optimiser steps (SGD, Adam), normalisation modules (running statistics, eval
              outputs, options), the one-value-per-channel error.
  nn_cnn.txt  a 20-step training run of a small CNN: initial weights, 20 batches, 20 losses.

Run with Debian's PyTorch: /usr/bin/python3 tests/reference/gen_nn.py
Every case is made in float64 and cast, so both dtypes see the same inputs.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from refio import RefWriter, both_dtypes


def rand(gen, *shape):
    return torch.randn(*shape, generator=gen, dtype=torch.float64)


# ---- optimisers ---------------------------------------------------------------------------

def optimiser_cases(w):
    gen = torch.Generator().manual_seed(1)
    p0, p1 = rand(gen, 3, 4), rand(gen, 5)
    steps = 3
    grads = [(rand(gen, 3, 4), rand(gen, 5)) for _ in range(steps)]

    cases = {
        "sgd_plain": (torch.optim.SGD, dict(lr=0.1)),
        "sgd_momentum": (torch.optim.SGD, dict(lr=0.1, momentum=0.9)),
        "sgd_dampening": (torch.optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.3)),
        "sgd_nesterov": (torch.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
        "sgd_weight_decay": (torch.optim.SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.1)),
        "adam": (torch.optim.Adam, dict(lr=0.01)),
        "adam_weight_decay": (torch.optim.Adam,
                              dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
        # p1 has no gradient in step 1: it is skipped, and its own step count starts later.
        "adam_skip": (torch.optim.Adam, dict(lr=0.01)),
        "sgd_skip": (torch.optim.SGD, dict(lr=0.1, momentum=0.9)),
    }
    for dtype in both_dtypes():
        w.add(dtype, "optim/p0", p0)
        w.add(dtype, "optim/p1", p1)
        for s, (g0, g1) in enumerate(grads, 1):
            w.add(dtype, f"optim/grad{s}_p0", g0)
            w.add(dtype, f"optim/grad{s}_p1", g1)
        for name, (cls, kwargs) in cases.items():
            q0 = p0.to(dtype).clone().requires_grad_()
            q1 = p1.to(dtype).clone().requires_grad_()
            opt = cls([q0, q1], **kwargs)
            for s, (g0, g1) in enumerate(grads, 1):
                q0.grad = g0.to(dtype).clone()
                q1.grad = None if (name.endswith("_skip") and s == 1) else g1.to(dtype).clone()
                opt.step()
                w.add(dtype, f"{name}/step{s}_p0", q0)
                w.add(dtype, f"{name}/step{s}_p1", q1)


# ---- normalisation modules ----------------------------------------------------------------

def set_affine(m, gen):
    """Random gamma and beta, so the affine part is exercised (the defaults are 1 and 0)."""
    with torch.no_grad():
        m.weight.copy_(1 + 0.3 * rand(gen, *m.weight.shape))
        m.bias.copy_(0.3 * rand(gen, *m.bias.shape))


def norm_cases(w):
    gen = torch.Generator().manual_seed(2)
    # name: (constructor, input shape, affine values set)
    cases = {
        "bn2d": (lambda: nn.BatchNorm2d(3), (4, 3, 3, 3)),
        "bn2d_cumulative": (lambda: nn.BatchNorm2d(3, momentum=None), (4, 3, 3, 3)),
        "bn2d_no_affine": (lambda: nn.BatchNorm2d(3, affine=False), (4, 3, 3, 3)),
        "bn2d_no_stats": (lambda: nn.BatchNorm2d(3, track_running_stats=False), (4, 3, 3, 3)),
        "bn2d_eps": (lambda: nn.BatchNorm2d(3, eps=1e-2, momentum=0.3), (4, 3, 3, 3)),
        "bn1d": (lambda: nn.BatchNorm1d(6), (8, 6)),
        "bn1d_3d": (lambda: nn.BatchNorm1d(6, momentum=None), (4, 6, 7)),
        "in2d": (lambda: nn.InstanceNorm2d(3), (2, 3, 4, 4)),
        "in2d_stats": (lambda: nn.InstanceNorm2d(3, affine=True, track_running_stats=True),
                       (2, 3, 4, 4)),
        "ln": (lambda: nn.LayerNorm([4, 4]), (2, 3, 4, 4)),
        "gn": (lambda: nn.GroupNorm(2, 4), (3, 4, 3, 3)),
    }
    for name, (make, shape) in cases.items():
        m64 = make().double()
        if getattr(m64, "weight", None) is not None:
            set_affine(m64, gen)
        batches = [3 * rand(gen, *shape) + 1 for _ in range(3)]
        x_eval = 3 * rand(gen, *shape) + 1
        for dtype in both_dtypes():
            m = make().to(dtype)
            m.load_state_dict(m64.state_dict())
            for key, t in m.state_dict().items():
                w.add(dtype, f"{name}/init_{key}", t)
            m.train()
            for s, x in enumerate(batches, 1):
                x = x.to(dtype)
                w.add(dtype, f"{name}/x{s}", x)
                w.add(dtype, f"{name}/y{s}", m(x))
            for key, t in m.state_dict().items():
                w.add(dtype, f"{name}/after3_{key}", t)
            m.eval()
            w.add(dtype, f"{name}/x_eval", x_eval.to(dtype))
            w.add(dtype, f"{name}/y_eval", m(x_eval.to(dtype)))

    # One value per channel in training is an error, raised after num_batches_tracked += 1.
    for dtype in both_dtypes():
        m = nn.BatchNorm1d(3).to(dtype)
        try:
            m(torch.ones(1, 3, dtype=dtype))
            raise AssertionError("no error")
        except ValueError as e:
            assert "Expected more than 1 value per channel when training" in str(e)
        w.add(dtype, "bn_one_value/num_batches_tracked", m.num_batches_tracked)


# ---- the small CNN, 20 SGD steps ----------------------------------------------------------

def make_cnn():
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(4 * 13 * 13, 10))


def cnn_case(w):
    torch.manual_seed(3)
    init = make_cnn().double().state_dict()
    gen = torch.Generator().manual_seed(4)
    steps = 20
    # Small integer pixels (-2..2): exact in both dtypes and short in the text file.
    xs = [torch.randint(-2, 3, (8, 1, 28, 28), generator=gen).double() for _ in range(steps)]
    ys = [torch.randint(0, 10, (8,), generator=gen) for _ in range(steps)]
    for dtype in both_dtypes():
        model = make_cnn().to(dtype)
        model.load_state_dict(init)
        for key, t in model.state_dict().items():
            w.add(dtype, f"cnn/init/{key}", t)
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        losses = []
        for s in range(steps):
            w.add(dtype, f"cnn/x{s}", xs[s])
            w.add(dtype, f"cnn/y{s}", ys[s])
            loss = F.cross_entropy(model(xs[s].to(dtype)), ys[s])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        w.add(dtype, "cnn/losses", torch.tensor(losses, dtype=torch.float64))
        for key in ("0.weight", "1.running_mean", "1.running_var", "1.num_batches_tracked"):
            w.add(dtype, f"cnn/final/{key}", model.state_dict()[key])


if __name__ == "__main__":
    torch.use_deterministic_algorithms(True)
    w = RefWriter("nn")
    optimiser_cases(w)
    norm_cases(w)
    w.save()
    w = RefWriter("nn_cnn")
    cnn_case(w)
    w.save()
