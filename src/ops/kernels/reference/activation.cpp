// tanh, sigmoid, leaky_relu and GELU, one value at a time: each kernel is the formula as a loop
// over the n values, the derivative written as the chapter (and PyTorch's *_backward) writes it.
#include "../activation.hpp"

#include <cmath>

namespace tg::kernels::reference {

// ---- tanh: y = tanh(x) = (e^x - e^-x) / (e^x + e^-x), dy/dx = 1 - y² (with y, as PyTorch's
// tanh_backward)

void tanh_forward(real* y, const real* x, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
        y[i] = std::tanh(x[i]);
}

void tanh_backward(real* dx, const real* dy, const real* y, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
        dx[i] = dy[i] * (real(1) - y[i] * y[i]);
}

// ---- sigmoid: y = σ(x) = 1 / (1 + e^-x), dy/dx = y (1 - y)

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

// ---- leaky_relu: y = x if x > 0, else a·x; dy/dx = 1 if x > 0, else a (a at x = 0)

void leaky_relu_forward(real* y, const real* x, std::size_t n, real a) {
    for (std::size_t i = 0; i < n; ++i)
        y[i] = x[i] > 0 ? x[i] : x[i] * a;  // NaN takes the second branch and stays NaN
}

void leaky_relu_backward(real* dx, const real* dy, const real* x, std::size_t n, real a) {
    for (std::size_t i = 0; i < n; ++i)
        dx[i] = x[i] > 0 ? dy[i] : dy[i] * a;  // the kink x = 0 takes the slope a, as PyTorch
}

// ---- gelu: y = x · Φ(x)
//
// approximate "none":  Φ(x) = ½ (1 + erf(x / √2)),
//                      dy/dx = Φ(x) + x · φ(x),  φ(x) = e^(-x²/2) / √(2π);
// approximate "tanh":  Φ(x) ≈ ½ (1 + t),  t = tanh(u),  u = √(2/π) (x + κ x³),  κ = 0.044715,
//                      dy/dx = ½ (1 + t)                       term 1: d(x)/dx · Φ
//                            + ½ x (1 - t²) √(2/π) (1 + 3κ x²)  term 2: x · dΦ/dx.

// The constants 1/√2, 1/√(2π), √(2/π) and κ: ../activation.hpp (the fast kernels read them too).
using namespace gelu_constants;

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

}  // namespace tg::kernels::reference
