#!/usr/bin/python3
"""PyTorch references for the normalisation ops' own tests (tests/test_normalization.cpp). The
op and layer catalogs' examples have theirs in catalog.txt (gen_catalog.py).

Every case is made in float64 with a fixed seed and cast, so the f32 and f64 lines hold the
same inputs. For each forward pass the gradients are those of loss = sum(out * dy), dy a fixed
random tensor; stored per case:

    x, dy, weight, bias        the inputs (weight/bias only when affine)
    out, dx, dweight, dbias    PyTorch's output and gradients

batch_norm / instance_norm cases run three training steps on three different batches
(step0/, step1/, step2/, each also storing running_mean/running_var after the step, and
the initial running stats as rm_init/rv_init) and then one eval step (eval/).

Run: /usr/bin/python3 tests/reference/gen_norm.py
"""
import torch
import torch.nn.functional as F

from refio import RefWriter, both_dtypes, rand_input

W = RefWriter("norm")


def params(shape, gen):
    """γ around 1 and β around 0, as after a little training."""
    w = torch.rand(shape, generator=gen, dtype=torch.float64) + 0.5
    b = torch.randn(shape, generator=gen, dtype=torch.float64) * 0.5
    return w, b


def as_dtype(t64, dtype, compute):
    """t64 rounded to dtype, held in the compute dtype (a copy: never t64 itself)."""
    return t64.to(dtype).to(compute).clone() if t64 is not None else None


def run(dtype, key, fn, x64, dy64, w64, b64, compute=None):
    """out = fn(x, w, b), backward of sum(out * dy); writes inputs, out and grads under key.

    compute: the dtype PyTorch computes in (default: dtype). float64 on the float32 inputs
    gives the exact answer where PyTorch's own float32 kernel loses digits.
    """
    compute = compute or dtype
    x = as_dtype(x64, dtype, compute).requires_grad_()
    dy = as_dtype(dy64, dtype, compute)
    w = as_dtype(w64, dtype, compute)
    b = as_dtype(b64, dtype, compute)
    for p in (w, b):
        if p is not None:
            p.requires_grad_()
    out = fn(x, w, b)
    (out * dy).sum().backward()
    W.add(dtype, f"{key}/x", x.to(dtype))
    W.add(dtype, f"{key}/dy", dy.to(dtype))
    W.add(dtype, f"{key}/out", out.to(dtype))
    W.add(dtype, f"{key}/dx", x.grad.to(dtype))
    if w is not None:
        W.add(dtype, f"{key}/weight", w.to(dtype))
        W.add(dtype, f"{key}/dweight", w.grad.to(dtype))
    if b is not None:
        W.add(dtype, f"{key}/bias", b.to(dtype))
        W.add(dtype, f"{key}/dbias", b.grad.to(dtype))


def stateful_case(name, fn, shape, seed, affine=True, running=True, momenta=(0.1, 0.1, 0.1),
                  eps=1e-5, random_init=False, transform=None, exact=False):
    """Three training steps of fn (batch_norm or instance_norm), then one eval step.

    momenta: the momentum of each step (1/k for k = 1, 2, 3 is the cumulative average that
    nn.BatchNorm uses with momentum=None).
    exact: compute the float32 case in float64 (on the same float32 inputs).
    """
    gen = torch.Generator().manual_seed(seed)
    C = shape[1]
    w64, b64 = params(C, gen) if affine else (None, None)
    if random_init:
        rm64 = torch.randn(C, generator=gen, dtype=torch.float64)
        rv64 = torch.rand(C, generator=gen, dtype=torch.float64) + 0.5
    else:
        rm64, rv64 = torch.zeros(C, dtype=torch.float64), torch.ones(C, dtype=torch.float64)
    xs = [rand_input(shape, gen) for _ in range(4)]
    if transform is not None:
        xs = [transform(x) for x in xs]
    dys = [torch.randn(shape, generator=gen, dtype=torch.float64) for _ in range(4)]
    for dtype in both_dtypes():
        compute = torch.float64 if exact else dtype
        rm = as_dtype(rm64, dtype, compute) if running else None
        rv = as_dtype(rv64, dtype, compute) if running else None
        if running:
            W.add(dtype, f"{name}/rm_init", rm.to(dtype))
            W.add(dtype, f"{name}/rv_init", rv.to(dtype))
        for k in range(3):
            run(dtype, f"{name}/step{k}",
                lambda x, w, b: fn(x, rm, rv, w, b, True, momenta[k], eps), xs[k], dys[k], w64, b64,
                compute)
            if running:
                W.add(dtype, f"{name}/step{k}/running_mean", rm.to(dtype))
                W.add(dtype, f"{name}/step{k}/running_var", rv.to(dtype))
        run(dtype, f"{name}/eval", lambda x, w, b: fn(x, rm, rv, w, b, False, 0.1, eps), xs[3],
            dys[3], w64, b64, compute)


def batch_norm(x, rm, rv, w, b, training, momentum, eps):
    # nn.BatchNorm's rule: without running stats, eval uses batch statistics (training=True).
    return F.batch_norm(x, rm, rv, w, b, training or rm is None, momentum, eps)


def instance_norm(x, rm, rv, w, b, training, momentum, eps):
    # use_input_stats = training, or no running stats to use (nn.InstanceNorm's rule).
    return F.instance_norm(x, rm, rv, w, b, training or rm is None, momentum, eps)


def stateless_case(name, fn, shape, seed, param_shape=None, affine=(True, True), transform=None,
                   exact=False):
    """exact: compute the float32 case in float64 (on the same float32 inputs)."""
    gen = torch.Generator().manual_seed(seed)
    w64, b64 = params(param_shape, gen) if param_shape is not None else (None, None)
    w64 = w64 if affine[0] else None
    b64 = b64 if affine[1] else None
    x64 = rand_input(shape, gen)
    if transform is not None:
        x64 = transform(x64)
    dy64 = torch.randn(shape, generator=gen, dtype=torch.float64)
    for dtype in both_dtypes():
        run(dtype, name, fn, x64, dy64, w64, b64, torch.float64 if exact else None)


cumulative = (1.0, 1.0 / 2, 1.0 / 3)

# batch_norm: ranks 2, 3, 4; momentum 0.1 and cumulative; affine off; no running stats; eps.
stateful_case("bn4d", batch_norm, [4, 3, 5, 6], 1)
stateful_case("bn3d_cumulative", batch_norm, [5, 4, 7], 2, momenta=cumulative, random_init=True)
stateful_case("bn2d", batch_norm, [8, 5], 3, random_init=True)
# Two values per channel: x̂ = ±1 whatever x is (up to ε), so dx would be pure rounding noise
# with ε = 1e-5; a large ε makes it a real number.
stateful_case("bn2d_batch2", batch_norm, [2, 3], 4, eps=0.5)
stateful_case("bn4d_noaffine", batch_norm, [3, 2, 4, 4], 5, affine=False)
stateful_case("bn3d_norunning", batch_norm, [4, 3, 6], 6, running=False)
# |μ| ≫ σ: a one-pass Σx² − (Σx)²/B variance would cancel catastrophically in float, and so
# does PyTorch's own float32 kernel (y = x·γ/σ + (β − μγ/σ)): it is ~1e-5 off here. The
# reference is the exact answer: float64 on the float32 inputs.
stateful_case("bn3d_large_mean", batch_norm, [4, 3, 6], 8, transform=lambda x: 100 + 0.05 * x,
              exact=True)
stateful_case("bn4d_eps", batch_norm, [2, 3, 3, 3], 7, eps=1e-1, momenta=cumulative)

# instance_norm: running stats updated from the per-instance statistics, eval with them.
stateful_case("in4d", instance_norm, [3, 4, 5, 5], 11, random_init=True)
stateful_case("in3d_noaffine", instance_norm, [4, 3, 7], 12, affine=False, momenta=cumulative)
stateful_case("in3d_norunning", instance_norm, [2, 3, 6], 13, running=False)
# |μ| ≫ σ (as bn3d_large_mean): per-instance statistics of x ≈ 100 ± 0.15, exact reference.
stateful_case("in3d_large_mean", instance_norm, [2, 3, 16], 14,
              transform=lambda x: 100 + 0.05 * x, exact=True)

# layer_norm
stateless_case("ln2d", lambda x, w, b: F.layer_norm(x, [10], w, b), [6, 10], 21, [10])
stateless_case("ln4d", lambda x, w, b: F.layer_norm(x, [5, 6], w, b), [3, 4, 5, 6], 22, [5, 6])
stateless_case("ln3d_noaffine", lambda x, w, b: F.layer_norm(x, [8], w, b), [4, 3, 8], 23)
stateless_case("ln_whole", lambda x, w, b: F.layer_norm(x, [2, 3, 4], w, b), [2, 3, 4], 24,
               [2, 3, 4])
stateless_case("ln_weight_only_eps", lambda x, w, b: F.layer_norm(x, [7], w, b, eps=1e-2),
               [5, 7], 25, [7], affine=(True, False))
stateless_case("ln1d", lambda x, w, b: F.layer_norm(x, [9], w, b), [9], 26, [9])
# |μ| ≫ σ: x ≈ 100 ± 0.15; without the centring (E[x²] − μ²) float32 loses ~1e-4.
stateless_case("ln_large_mean", lambda x, w, b: F.layer_norm(x, [16], w, b), [4, 16], 27, [16],
               transform=lambda x: 100 + 0.05 * x, exact=True)

# group_norm
stateless_case("gn4d", lambda x, w, b: F.group_norm(x, 3, w, b), [3, 6, 4, 5], 31, [6])
stateless_case("gn3d_noaffine", lambda x, w, b: F.group_norm(x, 2, w, b), [4, 8, 5], 32)
stateless_case("gn2d", lambda x, w, b: F.group_norm(x, 2, w, b), [5, 6], 33, [6])
stateless_case("gn_one_group", lambda x, w, b: F.group_norm(x, 1, w, b), [2, 4, 3, 3], 34, [4])
stateless_case("gn_group_per_channel_eps",
               lambda x, w, b: F.group_norm(x, 4, w, b, eps=1e-1), [2, 4, 6], 35, [4])
stateless_case("gn_large_mean", lambda x, w, b: F.group_norm(x, 2, w, b), [2, 4, 8], 36, [4],
               transform=lambda x: 100 + 0.05 * x, exact=True)

W.save()
