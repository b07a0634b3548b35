#!/usr/bin/python3
"""PyTorch 1.13 references for tg::nn::update_bn and tg::checkpoint with BatchNorm.

Writes tests/reference/bn_utils.txt:
  update_bn/   a Conv2d -> BatchNorm2d -> ReLU -> Conv2d -> BatchNorm2d model with non-default
               running statistics, momenta (0.3 and None) and num_batches_tracked, in eval
               mode; torch.optim.swa_utils.update_bn over 4 batches of unequal size (4, 4, 4,
               3); the statistics afterwards and the eval output on a fixed input.
  checkpoint/  the same first block (Conv2d -> BatchNorm2d -> ReLU) in training mode, run
               once through torch.utils.checkpoint.checkpoint (the reentrant version, 1.13's
               default) and once plainly: gradients and running statistics of both, showing
               that the recomputation updates the statistics a second time.

Run with Debian's PyTorch: /usr/bin/python3 tests/reference/gen_bn_utils.py
Every case is made in float64 and cast, so both dtypes see the same inputs.
"""
import torch
import torch.nn as nn
from torch.optim.swa_utils import update_bn
from torch.utils.checkpoint import checkpoint

from refio import RefWriter, both_dtypes


def rand(gen, *shape):
    return torch.randn(*shape, generator=gen, dtype=torch.float64)


def make_model(gen):
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3, momentum=0.3), nn.ReLU(),
                          nn.Conv2d(3, 2, 1), nn.BatchNorm2d(2, momentum=None)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.5 * rand(gen, *p.shape))
        for i in (1, 4):  # statistics that update_bn must throw away
            model[i].running_mean.copy_(rand(gen, model[i].num_features))
            model[i].running_var.copy_(1 + rand(gen, model[i].num_features).abs())
            model[i].num_batches_tracked.fill_(7)
    return model


def update_bn_case(w):
    gen = torch.Generator().manual_seed(12)
    model = make_model(gen)
    # Unequal sizes: update_bn weighs every batch the same (cumulative average over batches).
    batches = [3.0 + 2.0 * rand(gen, n, 2, 6, 6) for n in (4, 4, 4, 3)]
    x_eval = 3.0 + 2.0 * rand(gen, 2, 2, 6, 6)
    for dtype in both_dtypes():
        m = make_model(torch.Generator().manual_seed(12)).to(dtype)
        m.eval()
        for key, t in m.state_dict().items():
            w.add(dtype, f"update_bn/init/{key}", t)
        for k, b in enumerate(batches):
            w.add(dtype, f"update_bn/batch{k}", b.to(dtype))
        update_bn([b.to(dtype) for b in batches], m)
        assert not m.training and m[1].momentum == 0.3 and m[4].momentum is None
        for key in ("1.running_mean", "1.running_var", "1.num_batches_tracked",
                    "4.running_mean", "4.running_var", "4.num_batches_tracked"):
            w.add(dtype, f"update_bn/after/{key}", m.state_dict()[key])
        w.add(dtype, "update_bn/x_eval", x_eval.to(dtype))
        with torch.no_grad():
            w.add(dtype, "update_bn/y_eval", m(x_eval.to(dtype)))


def checkpoint_case(w):
    gen = torch.Generator().manual_seed(13)
    block = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU()).double()
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(0.5 * rand(gen, *p.shape))
    init = {k: v.clone() for k, v in block.state_dict().items()}
    x = rand(gen, 4, 2, 6, 6)
    g = rand(gen, 4, 3, 4, 4)  # dL/dy: L = sum(y * g)
    for dtype in both_dtypes():
        for key, t in init.items():
            w.add(dtype, f"checkpoint/init/{key}", t.to(dtype) if t.is_floating_point() else t)
        w.add(dtype, "checkpoint/x", x.to(dtype))
        w.add(dtype, "checkpoint/g", g.to(dtype))
        for run in ("plain", "checkpointed"):
            b = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU()).to(dtype)
            b.load_state_dict(init)
            xi = x.to(dtype).clone().requires_grad_()
            y = checkpoint(b, xi, use_reentrant=True) if run == "checkpointed" else b(xi)
            (y * g.to(dtype)).sum().backward()
            w.add(dtype, f"checkpoint/{run}/dx", xi.grad)
            for name, p in b.named_parameters():
                w.add(dtype, f"checkpoint/{run}/d{name}", p.grad)
            for key in ("1.running_mean", "1.running_var", "1.num_batches_tracked"):
                w.add(dtype, f"checkpoint/{run}/{key}", b.state_dict()[key])


if __name__ == "__main__":
    torch.use_deterministic_algorithms(True)
    w = RefWriter("bn_utils")
    update_bn_case(w)
    checkpoint_case(w)
    w.save()
