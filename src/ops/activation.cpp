// relu: y = max(x, 0), the loops in kernels/{reference,fast}/relu.cpp; tanh, sigmoid,
// leaky_relu and gelu, each one loop in this file.
#include "tapegrad/ops/activation.hpp"

#include <cmath>
#include <stdexcept>
#include <utility>

#include "kernels/kernel_set.hpp"
#include "tapegrad/kernels.hpp"
#include "tapegrad/ops/catalog.hpp"
#include "tapegrad/tape.hpp"

namespace tg {

namespace {

/// relu's backward, the closure tg::relu records on the tape: dx = dy where y > 0, else 0.
struct ReluBackward final : BackwardClosure {
    ReluBackward(const Tensor& input, const Tensor& output) : x(input), y_handle(output) {}

    Tensor x;
    Tensor y_handle;  // y = relu(x), read for its mask y > 0

    void operator()(const Array& dy) override {
        Array dx = new_array(dy.shape());
        kernels::in_use->relu_backward(dx.data(), dy.data(), y_handle.value().data(), dx.size());
        x.accumulate_grad(std::move(dx));
    }
};

}  // namespace

Tensor relu(const Tensor& x) {
    Array y = new_array(x.value().shape());
    kernels::in_use->relu_forward(y.data(), x.value().data(), y.size());
    Tensor out(std::move(y));

    if (Tape* tape = recording_tape(x)) {
        Tensor y_handle = out;  // the mask y > 0 is the mask x > 0; keep y, not a copy of x
        tape->record("relu", {x}, out, ReluBackward(x, y_handle));
    }
    return out;
}

// ---- tanh, sigmoid, leaky_relu, gelu ---------------------------------------------------------
//
// One kernel each, the formula as a loop over the n values, in this file, and no fast twin yet.
// They are slow where they would be used: forward + backward on [64, 8, 26, 26] (conv1's
// output in the chapter CNN), one thread, CPU time, -O3 -march=native (2026-12-07): relu 0.6 ms
// (either kernel), sigmoid 4.2, leaky_relu 5.0, tanh 8.8, gelu 11.9, gelu "tanh" 19.1, against
// 1.2 ms for conv1 itself. A fast set (vectorised tanh/exp/erf, threads) is issue 27's to do.

namespace {

// ---- tanh: y = tanh(x), dy/dx = 1 - y² (written with y, as PyTorch's tanh_backward)

void tanh_forward(real* y, const real* x, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
        y[i] = std::tanh(x[i]);
}

void tanh_backward(real* dx, const real* dy, const real* y, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
        dx[i] = dy[i] * (real(1) - y[i] * y[i]);
}

/// tanh's backward, the closure tg::tanh records: dx = dy · (1 - y²).
struct TanhBackward final : BackwardClosure {
    TanhBackward(const Tensor& input, const Tensor& output) : x(input), y(output) {}

    Tensor x;
    Tensor y;  // y = tanh(x), the op's output

    void operator()(const Array& dy) override {
        Array dx = new_array(dy.shape());
        tanh_backward(dx.data(), dy.data(), y.value().data(), dx.size());
        x.accumulate_grad(std::move(dx));
    }
};

// ---- sigmoid: y = 1 / (1 + e^-x), dy/dx = y (1 - y)

void sigmoid_forward(real* y, const real* x, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
        // For x < 0 the same number written as e^x / (1 + e^x): e^-x would overflow for
        // x < -88 (float), giving 0 where σ(x) is a small positive number, as PyTorch gives.
        if (x[i] >= 0) {
            y[i] = real(1) / (real(1) + std::exp(-x[i]));
        } else {
            const real e = std::exp(x[i]);
            y[i] = e / (real(1) + e);
        }
    }
}

void sigmoid_backward(real* dx, const real* dy, const real* y, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
        dx[i] = dy[i] * (real(1) - y[i]) * y[i];  // PyTorch's sigmoid_backward, in its order
}

/// sigmoid's backward, the closure tg::sigmoid records: dx = dy · (1 - y) · y.
struct SigmoidBackward final : BackwardClosure {
    SigmoidBackward(const Tensor& input, const Tensor& output) : x(input), y(output) {}

    Tensor x;
    Tensor y;  // y = σ(x), the op's output

    void operator()(const Array& dy) override {
        Array dx = new_array(dy.shape());
        sigmoid_backward(dx.data(), dy.data(), y.value().data(), dx.size());
        x.accumulate_grad(std::move(dx));
    }
};

// ---- leaky_relu: y = x if x > 0, else a·x; dy/dx = 1 if x > 0, else a (a at x = 0)

void leaky_relu_forward(real* y, const real* x, std::size_t n, real a) {
    for (std::size_t i = 0; i < n; ++i)
        y[i] = x[i] > 0 ? x[i] : x[i] * a;  // NaN takes the second branch and stays NaN
}

void leaky_relu_backward(real* dx, const real* dy, const real* x, std::size_t n, real a) {
    for (std::size_t i = 0; i < n; ++i)
        dx[i] = x[i] > 0 ? dy[i] : dy[i] * a;  // the kink x = 0 takes the slope a, as PyTorch
}

/// leaky_relu's backward, the closure tg::leaky_relu records: dx = dy where x > 0, else a·dy.
/// It keeps x, not y: with a negative slope the sign of y no longer tells the side of the kink.
struct LeakyReluBackward final : BackwardClosure {
    LeakyReluBackward(const Tensor& input, real slope) : x(input), a(slope) {}

    Tensor x;
    real a;  // negative_slope

    void operator()(const Array& dy) override {
        Array dx = new_array(dy.shape());
        leaky_relu_backward(dx.data(), dy.data(), x.value().data(), dx.size(), a);
        x.accumulate_grad(std::move(dx));
    }
};

// ---- gelu: y = x · Φ(x)
//
// approximate "none":  Φ(x) = ½ (1 + erf(x / √2)),
//                      dy/dx = Φ(x) + x · φ(x),  φ(x) = e^(-x²/2) / √(2π);
// approximate "tanh":  Φ(x) ≈ ½ (1 + t),  t = tanh(u),  u = √(2/π) (x + κ x³),  κ = 0.044715,
//                      dy/dx = ½ (1 + t)                       term 1: d(x)/dx · Φ
//                            + ½ x (1 - t²) √(2/π) (1 + 3κ x²)  term 2: x · dΦ/dx.

constexpr double inv_sqrt2 = 0.70710678118654752440;       // 1 / √2
constexpr double inv_sqrt_2pi = 0.39894228040143267794;    // 1 / √(2π)
constexpr double sqrt_2_over_pi = 0.79788456080286535588;  // √(2/π)
constexpr double kappa = 0.044715;

void gelu_forward(real* y, const real* x, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
        const real cdf = real(0.5) * (real(1) + std::erf(x[i] * real(inv_sqrt2)));  // Φ(x)
        y[i] = x[i] * cdf;
    }
}

void gelu_backward(real* dx, const real* dy, const real* x, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
        const real cdf = real(0.5) * (real(1) + std::erf(x[i] * real(inv_sqrt2)));  // Φ(x)
        const real pdf = real(inv_sqrt_2pi) * std::exp(real(-0.5) * x[i] * x[i]);   // φ(x)
        dx[i] = dy[i] * (cdf + x[i] * pdf);
    }
}

void gelu_tanh_forward(real* y, const real* x, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
        const real u = real(sqrt_2_over_pi) * (x[i] + real(kappa) * (x[i] * x[i] * x[i]));
        y[i] = real(0.5) * x[i] * (real(1) + std::tanh(u));
    }
}

void gelu_tanh_backward(real* dx, const real* dy, const real* x, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
        const real x2 = x[i] * x[i];
        const real t = std::tanh(real(sqrt_2_over_pi) * (x[i] + real(kappa) * (x2 * x[i])));
        const real term1 = real(0.5) * (real(1) + t);
        const real term2 = real(0.5) * x[i] * (real(1) - t * t) * real(sqrt_2_over_pi) *
                           (real(1) + real(3 * kappa) * x2);
        dx[i] = dy[i] * (term1 + term2);
    }
}

/// gelu's backward, the closure tg::gelu records: dx = dy · dy/dx above, for either choice.
struct GeluBackward final : BackwardClosure {
    GeluBackward(const Tensor& input, bool tanh_approximation)
        : x(input), use_tanh(tanh_approximation) {}

    Tensor x;
    bool use_tanh;  // approximate == "tanh"

    void operator()(const Array& dy) override {
        Array dx = new_array(dy.shape());
        if (use_tanh) {
            gelu_tanh_backward(dx.data(), dy.data(), x.value().data(), dx.size());
        } else {
            gelu_backward(dx.data(), dy.data(), x.value().data(), dx.size());
        }
        x.accumulate_grad(std::move(dx));
    }
};

}  // namespace

Tensor tanh(const Tensor& x) {
    Array y = new_array(x.value().shape());
    tanh_forward(y.data(), x.value().data(), y.size());
    Tensor out(std::move(y));
    if (Tape* tape = recording_tape(x)) {
        Tensor y_handle = out;  // 1 - y² needs the output: a handle, no copy
        tape->record("tanh", {x}, out, TanhBackward(x, y_handle));
    }
    return out;
}

Tensor sigmoid(const Tensor& x) {
    Array y = new_array(x.value().shape());
    sigmoid_forward(y.data(), x.value().data(), y.size());
    Tensor out(std::move(y));
    if (Tape* tape = recording_tape(x)) {
        Tensor y_handle = out;  // y (1 - y) needs the output: a handle, no copy
        tape->record("sigmoid", {x}, out, SigmoidBackward(x, y_handle));
    }
    return out;
}

Tensor leaky_relu(const Tensor& x, double negative_slope) {
    const auto a = static_cast<real>(negative_slope);
    Array y = new_array(x.value().shape());
    leaky_relu_forward(y.data(), x.value().data(), y.size(), a);
    Tensor out(std::move(y));
    if (Tape* tape = recording_tape(x)) {
        tape->record("leaky_relu", {x}, out, LeakyReluBackward(x, a));
    }
    return out;
}

Tensor gelu(const Tensor& x, const std::string& approximate) {
    if (approximate != "none" && approximate != "tanh") {
        throw std::invalid_argument("gelu: approximate '" + approximate +
                                    "', expected 'none' or 'tanh' (as torch.nn.functional.gelu)");
    }
    const bool use_tanh = approximate == "tanh";
    Array y = new_array(x.value().shape());
    if (use_tanh) {
        gelu_tanh_forward(y.data(), x.value().data(), y.size());
    } else {
        gelu_forward(y.data(), x.value().data(), y.size());
    }
    Tensor out(std::move(y));
    if (Tape* tape = recording_tape(x)) {
        tape->record("gelu", {x}, out, GeluBackward(x, use_tanh));
    }
    return out;
}

// ---- catalog -------------------------------------------------------------------------------

// This file's ops in tg::op_catalog() (tapegrad/ops/catalog.hpp): an example puts its op in every
// test that walks the catalog.
std::vector<OpExample> catalog::activation_examples() {
    return {
        op("relu", "ReluBackward", true, {rows}, {rows0}, rows0,
           [](const In& v) { return relu(v[0]); }),
        op("tanh", "TanhBackward", false, {rows}, {rows0}, rows0,
           [](const In& v) { return tanh(v[0]); }),
        op("sigmoid", "SigmoidBackward", false, {rows}, {rows0}, rows0,
           [](const In& v) { return sigmoid(v[0]); }),
        op("leaky_relu", "LeakyReluBackward", false, {rows}, {rows0}, rows0,
           [](const In& v) { return leaky_relu(v[0], 0.2); }),
        op("gelu", "GeluBackward", false, {rows}, {rows0}, rows0,
           [](const In& v) { return gelu(v[0]); }),
        op("gelu tanh", "GeluBackward", false, {rows}, {rows0}, rows0,
           [](const In& v) { return gelu(v[0], "tanh"); }),
    };
}

}  // namespace tg
