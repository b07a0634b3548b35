#include "tapegrad/ops/elementwise.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

#include <xtensor/xmath.hpp>
#include <xtensor/xoperation.hpp>

#include "tapegrad/ops/catalog.hpp"
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
    try {
        checked_numel(out);  // [2^33, 1] with [1, 2^31]
    } catch (const std::length_error& e) {
        throw std::length_error(std::string(op) + ": broadcasting " + shape_str(a) + " and " +
                                shape_str(b) + ": " + e.what());
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
//
// Each op's backward is a named struct (AddBackward, MulScalarBackward, ...; PyTorch's
// AddBackward0, ...) rather than a lambda: the tape calls it directly, so in gdb `bt` names it
// and `break tg::(anonymous namespace)::MulBackward::operator()` works.

namespace {

/// What the backward of a binary op a (op) b saves: the inputs a and b (handles; their values
/// are read at backward time).
struct BinaryBackward : BackwardClosure {
    BinaryBackward(const Tensor& lhs, const Tensor& rhs) : a(lhs), b(rhs) {}
    Tensor a, b;
};

/// add's backward: g to both inputs, each summed over the axes it was broadcast along.
struct AddBackward final : BinaryBackward {
    using BinaryBackward::BinaryBackward;
    void operator()(const Array& g) override {
        // d(a + b)/da = 1, d(a + b)/db = 1
        if (a.requires_grad()) accumulate_unbroadcast(a, g);
        if (b.requires_grad()) accumulate_unbroadcast(b, g);
    }
};

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
    broadcast_shape("add", a.shape(), b.shape());
    Tensor out(a.value() + b.value());
    if (Tape* tape = recording_tape(a, b)) {
        tape->record("add", {a, b}, out, AddBackward(a, b));
    }
    return out;
}

namespace {

/// sub's backward: g to a, -g to b, each summed over the axes it was broadcast along.
struct SubBackward final : BinaryBackward {
    using BinaryBackward::BinaryBackward;
    void operator()(const Array& g) override {
        // d(a - b)/da = 1, d(a - b)/db = -1
        if (a.requires_grad()) accumulate_unbroadcast(a, g);
        if (b.requires_grad()) b.accumulate_grad(unbroadcast(Array(-g), b.shape()));
    }
};

}  // namespace

Tensor sub(const Tensor& a, const Tensor& b) {
    broadcast_shape("sub", a.shape(), b.shape());
    Tensor out(a.value() - b.value());
    if (Tape* tape = recording_tape(a, b)) {
        tape->record("sub", {a, b}, out, SubBackward(a, b));
    }
    return out;
}

namespace {

/// mul's backward: g·b to a, g·a to b, each summed over the axes it was broadcast along.
struct MulBackward final : BinaryBackward {
    using BinaryBackward::BinaryBackward;
    void operator()(const Array& g) override {
        // d(a * b)/da = b, d(a * b)/db = a
        if (a.requires_grad()) a.accumulate_grad(unbroadcast(Array(g * b.value()), a.shape()));
        if (b.requires_grad()) b.accumulate_grad(unbroadcast(Array(g * a.value()), b.shape()));
    }
};

}  // namespace

Tensor mul(const Tensor& a, const Tensor& b) {
    broadcast_shape("mul", a.shape(), b.shape());
    Tensor out(a.value() * b.value());
    if (Tape* tape = recording_tape(a, b)) {
        tape->record("mul", {a, b}, out, MulBackward(a, b));
    }
    return out;
}

namespace {

/// div's backward: g/b to a, -g·(a/b)/b to b, each summed over the axes it was broadcast along.
struct DivBackward final : BinaryBackward {
    using BinaryBackward::BinaryBackward;
    void operator()(const Array& g) override {
        // d(a / b)/da = 1/b
        if (a.requires_grad()) a.accumulate_grad(unbroadcast(Array(g / b.value()), a.shape()));
        // d(a / b)/db = -a / b^2, computed as -(a/b)/b like PyTorch
        if (b.requires_grad()) {
            b.accumulate_grad(
                unbroadcast(Array(-g * (a.value() / b.value()) / b.value()), b.shape()));
        }
    }
};

}  // namespace

Tensor div(const Tensor& a, const Tensor& b) {
    broadcast_shape("div", a.shape(), b.shape());
    Tensor out(a.value() / b.value());
    if (Tape* tape = recording_tape(a, b)) {
        tape->record("div", {a, b}, out, DivBackward(a, b));
    }
    return out;
}

// --- tensor (op) number, number (op) tensor ---------------------------------------------------

namespace {

/// add_scalar's backward (a + s): g to a.
struct AddScalarBackward final : BackwardClosure {
    explicit AddScalarBackward(const Tensor& input) : a(input) {}
    Tensor a;
    // d(a + s)/da = 1
    void operator()(const Array& g) override { a.accumulate_grad(g); }
};

}  // namespace

Tensor add(const Tensor& a, real s) {
    Tensor out(a.value() + s);
    if (Tape* tape = recording_tape(a)) {
        tape->record("add_scalar", {a}, out, AddScalarBackward(a));
    }
    return out;
}

Tensor add(real s, const Tensor& b) {
    return add(b, s);
}

Tensor sub(const Tensor& a, real s) {
    return add(a, -s);
}

namespace {

/// rsub_scalar's backward (s - b): -g to b.
struct RsubScalarBackward final : BackwardClosure {
    explicit RsubScalarBackward(const Tensor& input) : b(input) {}
    Tensor b;
    // d(s - b)/db = -1
    void operator()(const Array& g) override { b.accumulate_grad(Array(-g)); }
};

}  // namespace

Tensor sub(real s, const Tensor& b) {
    Tensor out(s - b.value());
    if (Tape* tape = recording_tape(b)) {
        tape->record("rsub_scalar", {b}, out, RsubScalarBackward(b));
    }
    return out;
}

namespace {

/// mul_scalar's backward (a s): g·s to a.
struct MulScalarBackward final : BackwardClosure {
    MulScalarBackward(const Tensor& input, real scalar) : a(input), s(scalar) {}
    Tensor a;
    real s;
    // d(a s)/da = s
    void operator()(const Array& g) override { a.accumulate_grad(Array(g * s)); }
};

}  // namespace

Tensor mul(const Tensor& a, real s) {
    Tensor out(a.value() * s);
    if (Tape* tape = recording_tape(a)) {
        tape->record("mul_scalar", {a}, out, MulScalarBackward(a, s));
    }
    return out;
}

Tensor mul(real s, const Tensor& b) {
    return mul(b, s);
}

namespace {

/// div_scalar's backward (a / s): g/s to a.
struct DivScalarBackward final : BackwardClosure {
    DivScalarBackward(const Tensor& input, real scalar) : a(input), s(scalar) {}
    Tensor a;
    real s;
    // d(a / s)/da = 1/s
    void operator()(const Array& g) override { a.accumulate_grad(Array(g / s)); }
};

}  // namespace

Tensor div(const Tensor& a, real s) {
    Tensor out(a.value() / s);
    if (Tape* tape = recording_tape(a)) {
        tape->record("div_scalar", {a}, out, DivScalarBackward(a, s));
    }
    return out;
}

namespace {

/// rdiv_scalar's backward (s / b): -g·s/b² to b.
struct RdivScalarBackward final : BackwardClosure {
    RdivScalarBackward(const Tensor& input, real scalar) : b(input), s(scalar) {}
    Tensor b;
    real s;
    void operator()(const Array& g) override {
        // d(s / b)/db = -s / b^2
        b.accumulate_grad(Array(-g * s / (b.value() * b.value())));
    }
};

}  // namespace

Tensor div(real s, const Tensor& b) {
    Tensor out(s / b.value());
    if (Tape* tape = recording_tape(b)) {
        tape->record("rdiv_scalar", {b}, out, RdivScalarBackward(b, s));
    }
    return out;
}

// --- unary ------------------------------------------------------------------------------------

namespace {

/// neg's backward: -g to x.
struct NegBackward final : BackwardClosure {
    explicit NegBackward(const Tensor& input) : x(input) {}
    Tensor x;
    // d(-x)/dx = -1
    void operator()(const Array& g) override { x.accumulate_grad(Array(-g)); }
};

}  // namespace

Tensor neg(const Tensor& x) {
    Tensor out(-x.value());
    if (Tape* tape = recording_tape(x)) {
        tape->record("neg", {x}, out, NegBackward(x));
    }
    return out;
}

namespace {

/// exp's backward: g·y to x, with y = e^x the op's output.
struct ExpBackward final : BackwardClosure {
    ExpBackward(const Tensor& input, const Tensor& output) : x(input), y(output) {}
    Tensor x, y;
    // d(e^x)/dx = e^x = y, the op's output
    void operator()(const Array& g) override { x.accumulate_grad(Array(g * y.value())); }
};

}  // namespace

Tensor exp(const Tensor& x) {
    Tensor out(xt::exp(x.value()));
    if (Tape* tape = recording_tape(x)) {
        Tensor y = out;  // the output, for ExpBackward (a handle, no copy)
        tape->record("exp", {x}, out, ExpBackward(x, y));
    }
    return out;
}

namespace {

/// log's backward: g/x to x.
struct LogBackward final : BackwardClosure {
    explicit LogBackward(const Tensor& input) : x(input) {}
    Tensor x;
    // d(ln x)/dx = 1/x
    void operator()(const Array& g) override { x.accumulate_grad(Array(g / x.value())); }
};

}  // namespace

Tensor log(const Tensor& x) {
    Tensor out(xt::log(x.value()));
    if (Tape* tape = recording_tape(x)) {
        tape->record("log", {x}, out, LogBackward(x));
    }
    return out;
}

namespace {

/// sqrt's backward: g/(2y) to x, with y = √x the op's output.
struct SqrtBackward final : BackwardClosure {
    SqrtBackward(const Tensor& input, const Tensor& output) : x(input), y(output) {}
    Tensor x, y;
    void operator()(const Array& g) override {
        // d(sqrt x)/dx = 1 / (2 sqrt x) = 1 / (2y)
        x.accumulate_grad(Array(g / (real(2) * y.value())));
    }
};

}  // namespace

Tensor sqrt(const Tensor& x) {
    Tensor out(xt::sqrt(x.value()));
    if (Tape* tape = recording_tape(x)) {
        Tensor y = out;  // the output, for SqrtBackward (a handle, no copy)
        tape->record("sqrt", {x}, out, SqrtBackward(x, y));
    }
    return out;
}

namespace {

/// pow's backward for a number exponent p (x^p): g·p·x^(p-1) to x.
struct PowScalarBackward final : BackwardClosure {
    PowScalarBackward(const Tensor& input, real exponent) : x(input), p(exponent) {}
    Tensor x;
    real p;
    void operator()(const Array& g) override {
        // d(x^p)/dx = p x^(p-1); for p = 0 the derivative is 0 everywhere (PyTorch does not
        // evaluate 0 * 0^(-1) = nan at x = 0)
        if (p == real(0)) {
            x.accumulate_grad(Array(xt::zeros_like(x.value())));
        } else {
            x.accumulate_grad(Array(g * (p * xt::pow(x.value(), p - real(1)))));
        }
    }
};

}  // namespace

Tensor pow(const Tensor& x, real p) {
    Tensor out(xt::pow(x.value(), p));
    if (Tape* tape = recording_tape(x)) {
        tape->record("pow", {x}, out, PowScalarBackward(x, p));
    }
    return out;
}

namespace {

/// pow's backward for a tensor exponent (c = a^b): g·b·a^(b-1) to a, g·c·ln a to b, each summed
/// over the axes it was broadcast along.
struct PowBackward final : BinaryBackward {
    PowBackward(const Tensor& base, const Tensor& exponent, const Tensor& output)
        : BinaryBackward(base, exponent), c(output) {}
    Tensor c;  // the op's output a^b
    void operator()(const Array& g) override {
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
                unbroadcast(Array(g * xt::where(xt::equal(av, real(0)) && (bv >= real(0)), real(0),
                                                c.value() * xt::log(av))),
                            b.shape()));
        }
    }
};

}  // namespace

Tensor pow(const Tensor& a, const Tensor& b) {
    broadcast_shape("pow", a.shape(), b.shape());
    Tensor out(xt::pow(a.value(), b.value()));
    if (Tape* tape = recording_tape(a, b)) {
        Tensor c = out;
        tape->record("pow", {a, b}, out, PowBackward(a, b, c));
    }
    return out;
}

// ---- catalog -------------------------------------------------------------------------------

// This file's ops in tg::op_catalog() (tapegrad/ops/catalog.hpp): an example puts its op in every
// test that walks the catalog.
std::vector<OpExample> catalog::elementwise_examples() {
    return {
        op("add", "AddBackward", false, {rows, rows}, {rows0, {3}}, rows0,
           [](const In& v) { return add(v[0], v[1]); }),
        op("sub", "SubBackward", false, {rows, rows}, {rows0, {3}}, rows0,
           [](const In& v) { return sub(v[0], v[1]); }),
        op("mul", "MulBackward", false, {rows, rows}, {rows0, {3}}, rows0,
           [](const In& v) { return mul(v[0], v[1]); }),
        op("div", "DivBackward", false, {rows, rows}, {rows0, {3}}, rows0,
           [](const In& v) { return div(v[0], v[1]); }),
        op("add scalar", "AddScalarBackward", false, {rows}, {rows0}, rows0,
           [](const In& v) { return add(v[0], 2.0); }),
        op("sub from scalar", "RsubScalarBackward", false, {rows}, {rows0}, rows0,
           [](const In& v) { return sub(2.0, v[0]); }),
        op("mul scalar", "MulScalarBackward", false, {rows}, {rows0}, rows0,
           [](const In& v) { return mul(v[0], 2.0); }),
        op("div by scalar", "DivScalarBackward", false, {rows}, {rows0}, rows0,
           [](const In& v) { return div(v[0], 2.0); }),
        op("div scalar by", "RdivScalarBackward", false, {rows}, {rows0}, rows0,
           [](const In& v) { return div(2.0, v[0]); }),
        op("neg", "NegBackward", false, {rows}, {rows0}, rows0,
           [](const In& v) { return neg(v[0]); }),
        op("exp", "ExpBackward", false, {rows}, {rows0}, rows0,
           [](const In& v) { return exp(v[0]); }),
        op("log", "LogBackward", false, {rows}, {rows0}, rows0,
           [](const In& v) { return log(v[0]); }),
        op("sqrt", "SqrtBackward", false, {rows}, {rows0}, rows0,
           [](const In& v) { return sqrt(v[0]); }),
        op("pow scalar", "PowScalarBackward", false, {rows}, {rows0}, rows0,
           [](const In& v) { return pow(v[0], 2.0); }),
        op("pow", "PowBackward", false, {rows, rows}, {rows0, {3}}, rows0,
           [](const In& v) { return pow(v[0], v[1]); }),
    };
}

}  // namespace tg
