#include "tapegrad/ops/elementwise.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

#include <xtensor/xmath.hpp>
#include <xtensor/xoperation.hpp>

#include "tapegrad/ops/reduce.hpp"
#include "tapegrad/tape.hpp"

namespace tg {

Shape broadcast_shape(const char* op, const Shape& a, const Shape& b) {
    const std::size_t n = std::max(a.size(), b.size());
    Shape out(n);
    for (std::size_t i = 0; i < n; ++i) {
        // Align at the last axis; a missing leading axis counts as size 1.
        const std::size_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
        const std::size_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
        if (da != db && da != 1 && db != 1) {
            throw std::invalid_argument(std::string(op) + ": shapes " + shape_str(a) + " and " +
                                        shape_str(b) + " cannot be broadcast (axis " +
                                        std::to_string(i) + ": " + std::to_string(da) + " vs " +
                                        std::to_string(db) + ")");
        }
        out[i] = std::max(da, db);
    }
    return out;
}

namespace {

bool same_shape(const Array& a, const Shape& shape) {
    return std::equal(a.shape().begin(), a.shape().end(), shape.begin(), shape.end());
}

// The sum of `grad` over the broadcast axes, reshaped to `shape` (grad's shape differs).
Array sum_to_shape(const Array& grad, const Shape& shape) {
    // Axes to sum: the leading ones `shape` lacks, and those where `shape` has size 1.
    const std::size_t lead = grad.dimension() - shape.size();
    std::vector<bool> reduced(grad.dimension(), false);
    for (std::size_t i = 0; i < grad.dimension(); ++i) {
        reduced[i] = i < lead || (shape[i - lead] == 1 && grad.shape()[i] != 1);
    }
    Array summed = detail::sum_axes(grad, reduced);
    summed.reshape(shape);
    return summed;
}

// t.grad += unbroadcast(g): adds g straight into t.grad when no axis needs summing, so the
// common same-shape case costs no temporary.
void accumulate_unbroadcast(const Tensor& t, const Array& g) {
    const Shape shape = t.shape();
    if (same_shape(g, shape)) {
        t.accumulate_grad(g);
    } else {
        t.accumulate_grad(sum_to_shape(g, shape));
    }
}

}  // namespace

Array unbroadcast(const Array& grad, const Shape& shape) {
    if (same_shape(grad, shape)) return grad;
    return sum_to_shape(grad, shape);
}

Array unbroadcast(Array&& grad, const Shape& shape) {
    if (same_shape(grad, shape)) return std::move(grad);
    return sum_to_shape(grad, shape);
}

// --- tensor (op) tensor -----------------------------------------------------------------------

Tensor add(const Tensor& a, const Tensor& b) {
    broadcast_shape("add", a.shape(), b.shape());
    Tensor out(a.value() + b.value());
    if (Tape* tape = recording_tape(a, b)) {
        tape->record("add", {a, b}, out, [a, b](const Array& g) {
            // d(a + b)/da = 1, d(a + b)/db = 1
            if (a.requires_grad()) accumulate_unbroadcast(a, g);
            if (b.requires_grad()) accumulate_unbroadcast(b, g);
        });
    }
    return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
    broadcast_shape("sub", a.shape(), b.shape());
    Tensor out(a.value() - b.value());
    if (Tape* tape = recording_tape(a, b)) {
        tape->record("sub", {a, b}, out, [a, b](const Array& g) {
            // d(a - b)/da = 1, d(a - b)/db = -1
            if (a.requires_grad()) accumulate_unbroadcast(a, g);
            if (b.requires_grad()) b.accumulate_grad(unbroadcast(Array(-g), b.shape()));
        });
    }
    return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
    broadcast_shape("mul", a.shape(), b.shape());
    Tensor out(a.value() * b.value());
    if (Tape* tape = recording_tape(a, b)) {
        tape->record("mul", {a, b}, out, [a, b](const Array& g) {
            // d(a * b)/da = b, d(a * b)/db = a
            if (a.requires_grad()) a.accumulate_grad(unbroadcast(Array(g * b.value()), a.shape()));
            if (b.requires_grad()) b.accumulate_grad(unbroadcast(Array(g * a.value()), b.shape()));
        });
    }
    return out;
}

Tensor div(const Tensor& a, const Tensor& b) {
    broadcast_shape("div", a.shape(), b.shape());
    Tensor out(a.value() / b.value());
    if (Tape* tape = recording_tape(a, b)) {
        tape->record("div", {a, b}, out, [a, b](const Array& g) {
            // d(a / b)/da = 1/b
            if (a.requires_grad()) a.accumulate_grad(unbroadcast(Array(g / b.value()), a.shape()));
            // d(a / b)/db = -a / b^2, computed as -(a/b)/b like PyTorch
            if (b.requires_grad()) {
                b.accumulate_grad(
                    unbroadcast(Array(-g * (a.value() / b.value()) / b.value()), b.shape()));
            }
        });
    }
    return out;
}

// --- tensor (op) number, number (op) tensor ---------------------------------------------------

Tensor add(const Tensor& a, real s) {
    Tensor out(a.value() + s);
    if (Tape* tape = recording_tape(a)) {
        // d(a + s)/da = 1
        tape->record("add_scalar", {a}, out, [a](const Array& g) { a.accumulate_grad(g); });
    }
    return out;
}

Tensor add(real s, const Tensor& b) {
    return add(b, s);
}

Tensor sub(const Tensor& a, real s) {
    return add(a, -s);
}

Tensor sub(real s, const Tensor& b) {
    Tensor out(s - b.value());
    if (Tape* tape = recording_tape(b)) {
        // d(s - b)/db = -1
        tape->record("rsub_scalar", {b}, out,
                     [b](const Array& g) { b.accumulate_grad(Array(-g)); });
    }
    return out;
}

Tensor mul(const Tensor& a, real s) {
    Tensor out(a.value() * s);
    if (Tape* tape = recording_tape(a)) {
        // d(a s)/da = s
        tape->record("mul_scalar", {a}, out,
                     [a, s](const Array& g) { a.accumulate_grad(Array(g * s)); });
    }
    return out;
}

Tensor mul(real s, const Tensor& b) {
    return mul(b, s);
}

Tensor div(const Tensor& a, real s) {
    Tensor out(a.value() / s);
    if (Tape* tape = recording_tape(a)) {
        // d(a / s)/da = 1/s
        tape->record("div_scalar", {a}, out,
                     [a, s](const Array& g) { a.accumulate_grad(Array(g / s)); });
    }
    return out;
}

Tensor div(real s, const Tensor& b) {
    Tensor out(s / b.value());
    if (Tape* tape = recording_tape(b)) {
        // d(s / b)/db = -s / b^2
        tape->record("rdiv_scalar", {b}, out, [b, s](const Array& g) {
            b.accumulate_grad(Array(-g * s / (b.value() * b.value())));
        });
    }
    return out;
}

// --- unary ------------------------------------------------------------------------------------

Tensor neg(const Tensor& x) {
    Tensor out(-x.value());
    if (Tape* tape = recording_tape(x)) {
        // d(-x)/dx = -1
        tape->record("neg", {x}, out, [x](const Array& g) { x.accumulate_grad(Array(-g)); });
    }
    return out;
}

Tensor exp(const Tensor& x) {
    Tensor out(xt::exp(x.value()));
    if (Tape* tape = recording_tape(x)) {
        // d(e^x)/dx = e^x: reuse the output y (a handle, no copy)
        Tensor y = out;
        tape->record("exp", {x}, out,
                     [x, y](const Array& g) { x.accumulate_grad(Array(g * y.value())); });
    }
    return out;
}

Tensor log(const Tensor& x) {
    Tensor out(xt::log(x.value()));
    if (Tape* tape = recording_tape(x)) {
        // d(ln x)/dx = 1/x
        tape->record("log", {x}, out,
                     [x](const Array& g) { x.accumulate_grad(Array(g / x.value())); });
    }
    return out;
}

Tensor sqrt(const Tensor& x) {
    Tensor out(xt::sqrt(x.value()));
    if (Tape* tape = recording_tape(x)) {
        // d(sqrt x)/dx = 1 / (2 sqrt x) = 1 / (2y)
        Tensor y = out;
        tape->record("sqrt", {x}, out, [x, y](const Array& g) {
            x.accumulate_grad(Array(g / (real(2) * y.value())));
        });
    }
    return out;
}

Tensor pow(const Tensor& x, real p) {
    Tensor out(xt::pow(x.value(), p));
    if (Tape* tape = recording_tape(x)) {
        tape->record("pow", {x}, out, [x, p](const Array& g) {
            // d(x^p)/dx = p x^(p-1); for p = 0 the derivative is 0 everywhere (PyTorch does not
            // evaluate 0 * 0^(-1) = nan at x = 0)
            if (p == real(0)) {
                x.accumulate_grad(Array(xt::zeros_like(x.value())));
            } else {
                x.accumulate_grad(Array(g * (p * xt::pow(x.value(), p - real(1)))));
            }
        });
    }
    return out;
}

Tensor pow(const Tensor& a, const Tensor& b) {
    broadcast_shape("pow", a.shape(), b.shape());
    Tensor out(xt::pow(a.value(), b.value()));
    if (Tape* tape = recording_tape(a, b)) {
        Tensor c = out;
        tape->record("pow", {a, b}, out, [a, b, c](const Array& g) {
            const Array& av = a.value();
            const Array& bv = b.value();
            if (a.requires_grad()) {
                // d(a^b)/da = b a^(b-1), taken as 0 where b = 0 (as PyTorch)
                a.accumulate_grad(unbroadcast(Array(g * xt::where(xt::equal(bv, real(0)), real(0),
                                                                  bv * xt::pow(av, bv - real(1)))),
                                              a.shape()));
            }
            if (b.requires_grad()) {
                // d(a^b)/db = a^b ln a, taken as 0 where a = 0 and b >= 0 (as PyTorch)
                b.accumulate_grad(
                    unbroadcast(Array(g * xt::where(xt::equal(av, real(0)) && (bv >= real(0)),
                                                    real(0), c.value() * xt::log(av))),
                                b.shape()));
            }
        });
    }
    return out;
}

}  // namespace tg
