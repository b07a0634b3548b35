#!/usr/bin/python3
"""PyTorch reference data for linear, conv2d, max_pool2d and avg_pool2d (tests/test_conv_*.cpp).

Every case stores, for float32 and float64 (inputs drawn in float64, then cast):
inputs (x, w, b), gy = an upstream gradient dL/dy, and PyTorch's y, dx, dw, db for
L = sum(y * gy). Run: /usr/bin/python3 tests/reference/gen_conv.py
"""
import zlib

import torch
import torch.nn.functional as F

from refio import RefWriter, both_dtypes

ref = RefWriter("conv")


def randn(*shape, gen):
    return torch.randn(*shape, generator=gen, dtype=torch.float64)


def record(dtype, case, inputs, fn):
    """inputs: dict name -> float64 tensor or None. Stores inputs, y, gy and the gradients."""
    gen = torch.Generator().manual_seed(zlib.crc32(case.encode()))  # same gy in f32 and f64
    # A fresh leaf per case (.to(float64) of a float64 tensor would share it, and its .grad).
    ts = {k: (None if v is None else v.to(dtype).clone().requires_grad_())
          for k, v in inputs.items()}
    y = fn(**ts)
    gy = randn(*y.shape, gen=gen).to(dtype)
    (y * gy).sum().backward()
    for k, t in ts.items():
        if t is None:
            continue
        ref.add(dtype, f"{case}/{k}", t)
        ref.add(dtype, f"{case}/d{k}", t.grad)
    ref.add(dtype, f"{case}/y", y)
    ref.add(dtype, f"{case}/gy", gy)


# linear: x [*, in], w [out, in], b [out] or none
LINEAR = {
    "linear_bias": ((4, 5), 3, True),
    "linear_nobias": ((7, 6), 2, False),
    "linear_3d": ((2, 3, 4), 5, True),
}

# conv2d: (N, C, H, W), (O, kH, kW), stride, padding, bias
CONV = {
    "conv_s1_p0": ((2, 1, 6, 6), (3, 3, 3), 1, 0, True),
    "conv_s2_p1_nonsquare": ((3, 2, 7, 5), (4, 3, 3), 2, 1, True),
    "conv_s1_p1_nobias_rect_kernel": ((2, 3, 8, 9), (2, 2, 3), 1, 1, False),
    "conv_s2_p0": ((4, 2, 9, 9), (5, 3, 3), 2, 0, True),
    "conv_s3_p2_k5": ((2, 3, 10, 11), (4, 5, 5), 3, 2, True),
    "conv_8to16": ((3, 8, 12, 12), (16, 3, 3), 1, 0, True),
    # padding 2 around a 1x2 image: some kernel taps see nothing but padding
    "conv_pad_exceeds_input": ((2, 2, 1, 2), (3, 3, 3), 1, 2, True),
}

# pooling: (N, C, H, W), kernel, stride (None = kernel), padding
POOL = {
    "k2": ((2, 3, 6, 6), 2, None, 0),
    "k3_s2_p1_nonsquare": ((2, 2, 7, 5), 3, 2, 1),
    "k3_s1": ((1, 2, 9, 8), 3, 1, 0),
    "k2_s1_p1": ((2, 1, 5, 7), 2, 1, 1),
    "k4_s3_p2_odd": ((1, 2, 7, 7), 4, 3, 2),
    "k2_odd_size": ((2, 2, 7, 9), 2, None, 0),
}

def fan_in(*sizes):
    """sqrt(fan in): weights are N(0, 1/fan_in), the scale of a trained layer, so outputs are
    O(1) and float32 rounding stays at PyTorch's own level (with N(0, 1) weights a conv output is
    a sum of ~100 O(1) products, and the small ones lose relative precision to cancellation)."""
    n = 1
    for s in sizes:
        n *= s
    return n ** 0.5


gen = torch.Generator().manual_seed(2024)
data = {}
for case, (xs, out_f, bias) in LINEAR.items():
    data[case] = dict(x=randn(*xs, gen=gen), w=randn(out_f, xs[-1], gen=gen) / fan_in(xs[-1]),
                      b=randn(out_f, gen=gen) if bias else None)
for case, (xs, (o, kh, kw), stride, pad, bias) in CONV.items():
    data[case] = dict(x=randn(*xs, gen=gen),
                      w=randn(o, xs[1], kh, kw, gen=gen) / fan_in(xs[1], kh, kw),
                      b=randn(o, gen=gen) if bias else None)
for case, (xs, *_rest) in POOL.items():
    data[case] = dict(x=randn(*xs, gen=gen))

for dtype in both_dtypes():
    for case in LINEAR:
        record(dtype, case, data[case], lambda x, w, b: F.linear(x, w, b))
    for case, (_, _, stride, pad, _) in CONV.items():
        record(dtype, case, data[case],
               lambda x, w, b, s=stride, p=pad: F.conv2d(x, w, b, stride=s, padding=p))
    for case, (_, k, stride, pad) in POOL.items():
        record(dtype, "max_" + case, data[case],
               lambda x, k=k, s=stride, p=pad: F.max_pool2d(x, k, s, p))
        record(dtype, "avg_" + case, data[case],
               lambda x, k=k, s=stride, p=pad: F.avg_pool2d(x, k, s, p, count_include_pad=True))

ref.save()
