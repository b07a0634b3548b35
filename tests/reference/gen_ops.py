#!/usr/bin/python3
"""PyTorch reference values for the functional ops (tests/op_checks.hpp, used by
tests/test_{elementwise,reduce,shape,linalg,loss,activation}.cpp).

For every case: the inputs, the output, the fixed weights w, and the gradient of
sum(out * w) with respect to every input, in float32 and float64 (the same float64 inputs,
cast). Run with /usr/bin/python3 (Debian's PyTorch); writes tests/reference/ops.txt.
"""
import torch
import torch.nn.functional as F

from refio import RefWriter, both_dtypes

gen = torch.Generator().manual_seed(1234)


def randn(*shape):
    return torch.randn(tuple(shape), generator=gen, dtype=torch.float64)


def uniform(lo, hi, *shape):
    return lo + (hi - lo) * torch.rand(tuple(shape), generator=gen, dtype=torch.float64)


def away_from_zero(*shape):
    """Values with |v| in [0.5, 2] and a random sign (divisors, relu inputs)."""
    sign = torch.where(torch.rand(tuple(shape), generator=gen, dtype=torch.float64) < 0.5, -1.0, 1.0)
    return sign * uniform(0.5, 2.0, *shape)


# name -> (inputs {name: float64 tensor}, function of the inputs (in that order), extras)
CASES = {}


def case(name, inputs, fn, extras=None):
    CASES[name] = (inputs, fn, extras or {})


# --- elementwise, tensor (op) tensor with broadcasting
case("add_same", {"a": randn(2, 3), "b": randn(2, 3)}, lambda a, b: a + b)
case("add_bcast_col", {"a": randn(2, 3, 4), "b": randn(3, 1)}, lambda a, b: a + b)
case("add_bcast_row", {"a": randn(2, 3, 4), "b": randn(4)}, lambda a, b: a + b)
case("add_bcast_scalar", {"a": randn(2, 3, 4), "b": randn()}, lambda a, b: a + b)
case("add_bcast_both", {"a": randn(2, 1, 4), "b": randn(3, 1)}, lambda a, b: a + b)
case("sub_bcast_col", {"a": randn(2, 3, 4), "b": randn(3, 1)}, lambda a, b: a - b)
case("sub_bcast_rev", {"a": randn(4), "b": randn(2, 3, 4)}, lambda a, b: a - b)
case("mul_bcast_col", {"a": randn(2, 3, 4), "b": randn(3, 1)}, lambda a, b: a * b)
case("mul_bcast_scalar", {"a": randn(), "b": randn(2, 3, 4)}, lambda a, b: a * b)
case("div_bcast_row", {"a": randn(2, 3, 4), "b": away_from_zero(4)}, lambda a, b: a / b)
case("div_bcast_rev", {"a": randn(3, 1), "b": away_from_zero(2, 3, 4)}, lambda a, b: a / b)
case("pow_tensor", {"a": uniform(0.5, 2.0, 2, 3, 4), "b": uniform(-2.0, 2.0, 4)},
     lambda a, b: torch.pow(a, b))

# --- elementwise with a number (exactly representable, so float32 sees the same number)
case("add_scalar", {"x": randn(2, 3)}, lambda x: x + 1.5)
case("sub_scalar", {"x": randn(2, 3)}, lambda x: x - 1.5)
case("rsub_scalar", {"x": randn(2, 3)}, lambda x: 1.5 - x)
case("mul_scalar", {"x": randn(2, 3)}, lambda x: x * -2.5)
case("div_scalar", {"x": randn(2, 3)}, lambda x: x / 4.0)
case("rdiv_scalar", {"x": away_from_zero(2, 3)}, lambda x: 2.0 / x)

# --- unary
case("neg", {"x": randn(2, 3)}, lambda x: -x)
case("exp", {"x": randn(2, 3)}, lambda x: torch.exp(x))
case("log", {"x": uniform(0.1, 3.0, 2, 3)}, lambda x: torch.log(x))
case("sqrt", {"x": uniform(0.1, 3.0, 2, 3)}, lambda x: torch.sqrt(x))
case("pow_2_5", {"x": uniform(0.1, 3.0, 2, 3)}, lambda x: torch.pow(x, 2.5))
case("pow_3", {"x": randn(2, 3)}, lambda x: torch.pow(x, 3.0))
case("pow_neg_1_5", {"x": uniform(0.5, 3.0, 2, 3)}, lambda x: torch.pow(x, -1.5))
case("relu", {"x": away_from_zero(3, 4)}, lambda x: F.relu(x))
# The edges PyTorch defines: relu'(0) = 0; d(x^0)/dx = 0 even at x = 0; d(a^b)/da = 0 where
# b = 0 and d(a^b)/db = 0 where a = 0 and b >= 0 (no nan from 0 * log 0).
T = lambda *v: torch.tensor(v, dtype=torch.float64)
case("relu_at_zero", {"x": T(-1.0, 0.0, 2.0)}, lambda x: F.relu(x))
case("pow_0", {"x": T(0.0, 1.5, -2.0)}, lambda x: torch.pow(x, 0.0))
case("pow_tensor_zero_base", {"a": T(0.0, 0.0, 1.5, 2.0), "b": T(0.0, 2.0, 0.0, 3.0)},
     lambda a, b: torch.pow(a, b))

# --- reductions
case("sum_all", {"x": randn(2, 3, 4)}, lambda x: x.sum())
case("sum_dims", {"x": randn(2, 3, 4)}, lambda x: x.sum(dim=[0, 2]))
case("sum_keepdim", {"x": randn(2, 3, 4)}, lambda x: x.sum(dim=[-1], keepdim=True))
case("mean_all", {"x": randn(2, 3, 4)}, lambda x: x.mean())
case("mean_dims", {"x": randn(2, 3, 4)}, lambda x: x.mean(dim=[1]))
case("mean_keepdim", {"x": randn(2, 3, 4)}, lambda x: x.mean(dim=[0, -1], keepdim=True))

# --- shape
case("reshape", {"x": randn(2, 3, 4)}, lambda x: x.reshape(4, 6))
case("flatten", {"x": randn(2, 3, 4, 5)}, lambda x: torch.flatten(x, 1))
case("flatten_mid", {"x": randn(2, 3, 4, 5)}, lambda x: torch.flatten(x, 1, 2))
case("transpose", {"x": randn(2, 3, 4)}, lambda x: x.transpose(0, 2))
case("transpose_neg", {"x": randn(2, 3, 4)}, lambda x: x.transpose(-1, -2))
case("permute", {"x": randn(2, 3, 4)}, lambda x: x.permute(2, 0, 1))

# --- linear algebra
case("matmul", {"a": randn(3, 4), "b": randn(4, 5)}, lambda a, b: a @ b)

# --- softmax and losses
case("log_softmax_last", {"x": randn(4, 5)}, lambda x: F.log_softmax(x, dim=-1))
case("log_softmax_dim1", {"x": randn(2, 3, 4)}, lambda x: F.log_softmax(x, dim=1))
case("log_softmax_large", {"x": 50 * randn(3, 4)}, lambda x: F.log_softmax(x, dim=-1))
case("softmax_last", {"x": randn(4, 5)}, lambda x: F.softmax(x, dim=-1))
case("softmax_dim0", {"x": randn(2, 3, 4)}, lambda x: F.softmax(x, dim=0))
targets = torch.randint(0, 5, (6,), generator=gen)
case("cross_entropy", {"x": randn(6, 5)}, lambda x: F.cross_entropy(x, targets),
     {"targets": targets})
targets_large = torch.randint(0, 4, (3,), generator=gen)
case("cross_entropy_large", {"x": 100 * randn(3, 4)}, lambda x: F.cross_entropy(x, targets_large),
     {"targets": targets_large})
case("mse_loss", {"a": randn(3, 4), "b": randn(3, 4)}, lambda a, b: F.mse_loss(a, b))
case("mse_loss_bcast", {"a": randn(3, 4), "b": randn(4)},
     lambda a, b: F.mse_loss(a, b.expand(3, 4)))

# --- added for issue 16, from their own generator (so the cases above keep their numbers;
# their weights w are drawn in main() after every earlier case's)
gen16 = torch.Generator().manual_seed(1616)
# Logits of magnitude 50-100. Rows 0 and 2 have a dominant logit (97.5 with the next at
# 90.5; 66 with the next at 61): the max's log-prob is about -1e-3 and -1e-2, which
# x - (m + log s) gets wrong by up to ulp(m)/2 (3.8e-6 at 97.5: 3.5 and 2.2 times the
# float32 tolerance) while (x - m) - log s keeps it. Row 1: all near -55.
magnitude = torch.tensor([[97.5, 90.5, -60.5, 71.0, -88.75, 55.5],
                          [-55.0, -62.0, -70.0, -61.5, -66.25, -58.0],
                          [66.0, 59.25, 61.0, -70.0, 52.5, 60.0]], dtype=torch.float64)
signs = torch.where(torch.rand((2, 6), generator=gen16, dtype=torch.float64) < 0.5, -1.0, 1.0)
magnitude = torch.cat([magnitude, signs * (50 + 50 * torch.rand((2, 6), generator=gen16,
                                                                 dtype=torch.float64))])
case("log_softmax_magnitude_50_100", {"x": magnitude}, lambda x: F.log_softmax(x, dim=-1))
# Without the max shift e^100 overflows float32 (inf/inf = nan) and e^-100... underflows.
case("softmax_no_shift", {"x": torch.tensor([[100.0, 0.0, -5.0], [-100.0, -101.0, -103.0]],
                                            dtype=torch.float64)},
     lambda x: F.softmax(x, dim=-1))

# --- added for issue 27 (tanh, sigmoid, leaky_relu, gelu), from their own generator so every
# case above keeps its numbers; their weights w are drawn in main() after every earlier case's.
gen27 = torch.Generator().manual_seed(2727)
x27 = lambda *shape: 2 * torch.randn(tuple(shape), generator=gen27, dtype=torch.float64)
# The awkward points: 0 (and -0), small |x|, and |x| large enough that tanh, sigmoid and GELU's
# Φ round to their limits (the gradients 1 - y², y (1 - y) and x φ(x) underflow or cancel),
# as far as 100 where e^100 overflows float32 (sigmoid's e^-x for x = -100).
edges = T(0.0, -0.0, 1e-3, -1e-3, 1.0, -1.0, 5.0, -5.0, 10.0, -10.0, 20.0, -20.0, 40.0, -40.0,
          100.0, -100.0)
case("tanh", {"x": x27(3, 4)}, lambda x: torch.tanh(x))
case("tanh_edges", {"x": edges.clone()}, lambda x: torch.tanh(x))
case("sigmoid", {"x": x27(3, 4)}, lambda x: torch.sigmoid(x))
case("sigmoid_edges", {"x": edges.clone()}, lambda x: torch.sigmoid(x))
case("leaky_relu", {"x": x27(3, 4)}, lambda x: F.leaky_relu(x))
case("leaky_relu_slope_0_2", {"x": x27(3, 4)}, lambda x: F.leaky_relu(x, 0.2))
case("leaky_relu_slope_neg_1_5", {"x": x27(3, 4)}, lambda x: F.leaky_relu(x, -1.5))
# The kink: PyTorch's leaky_relu_backward takes the slope at x = 0 (x > 0 ? g : g * slope).
case("leaky_relu_edges", {"x": edges.clone()}, lambda x: F.leaky_relu(x, 0.2))
case("gelu", {"x": x27(3, 4)}, lambda x: F.gelu(x))
case("gelu_edges", {"x": edges.clone()}, lambda x: F.gelu(x))
case("gelu_tanh", {"x": x27(3, 4)}, lambda x: F.gelu(x, approximate="tanh"))
case("gelu_tanh_edges", {"x": edges.clone()}, lambda x: F.gelu(x, approximate="tanh"))


def main():
    out = RefWriter("ops")
    for name, (inputs, fn, extras) in CASES.items():
        w64 = None
        for dtype in both_dtypes():
            xs = [t.to(dtype).requires_grad_() for t in inputs.values()]
            y = fn(*xs)
            if w64 is None:  # the same weights for both dtypes
                w64 = randn(*y.shape)
            w = w64.to(dtype)
            (y * w).sum().backward()
            for key, t in zip(inputs, xs):
                out.add(dtype, f"{name}/{key}", t)
                out.add(dtype, f"{name}/grad_{key}", t.grad)
            out.add(dtype, f"{name}/out", y)
            out.add(dtype, f"{name}/w", w)
            for key, t in extras.items():
                out.add(dtype, f"{name}/{key}", t)
    out.save()


if __name__ == "__main__":
    main()
