// tanh, sigmoid, leaky_relu and GELU, fast: the reference formulas on xsimd batches of V
// numbers, xsimd's vectorised exp, tanh and erf in place of the C library's one-value calls
// (outputs and gradients within 2 float32 epsilons of the reference kernels', 52 in float64:
// docs/performance.md, "Activations"); leaky_relu picks with xsimd's select; tanh's and σ's
// derivatives are plain loops the compiler vectorises. Large arrays are split between threads
// in whole batches and every value is computed independently of the others, so the numbers do
// not depend on the thread count.
#include "../activation.hpp"

#include <algorithm>
#include <array>

#include <xsimd/xsimd.hpp>

#include "tapegrad/parallel.hpp"

namespace tg::kernels::fast {

namespace {

using Batch = xsimd::batch<real>;
constexpr std::size_t V = Batch::size;  // numbers per SIMD register

/// A kernel with exp, tanh or erf costs about this many relu's per value: the threads' share is
/// cut accordingly (grain_for).
constexpr std::size_t kTranscendentalCost = 8;

/// Loads the values [i, n) of p (fewer than V) into a batch, the missing lanes zero.
inline Batch load_tail(const real* p, std::size_t i, std::size_t n) {
    std::array<real, V> lanes{};
    std::copy(p + i, p + n, lanes.begin());
    return Batch::load_unaligned(lanes.data());
}

/// out[i] = f(in[i]...) for every i in [0, n), f taking and returning batches. The batches are
/// split between threads whole, and the last, partial one goes through the same f on a
/// zero-padded copy: every value is computed by the same instructions at any thread count.
template <class F, class... In>
void map_batches(real* out, std::size_t n, const F& f, const In*... in) {
    const std::size_t batches = (n + V - 1) / V;
    parallel_for(batches, grain_for(V * kTranscendentalCost),
                 [&](std::size_t first, std::size_t last) {
                     for (std::size_t b = first; b < last; ++b) {
                         const std::size_t i = b * V;
                         if (i + V <= n) {
                             f(Batch::load_unaligned(in + i)...).store_unaligned(out + i);
                         } else {
                             std::array<real, V> lanes{};
                             f(load_tail(in, i, n)...).store_unaligned(lanes.data());
                             std::copy(lanes.begin(), lanes.begin() + (n - i), out + i);
                         }
                     }
                 });
}

using namespace gelu_constants;  // inv_sqrt2, inv_sqrt_2pi, sqrt_2_over_pi, kappa

}  // namespace

// ---- tanh: y = tanh(x), dy/dx = 1 - y²

void tanh_forward(real* y, const real* x, std::size_t n) {
    map_batches(
        y, n, [](const Batch& v) { return xsimd::tanh(v); }, x);
}

void tanh_backward(real* dx, const real* dy, const real* y, std::size_t n) {
    parallel_for(n, grain_for(1), [dx, dy, y](std::size_t begin, std::size_t end) {
        for (std::size_t i = begin; i < end; ++i)
            dx[i] = dy[i] * (real(1) - y[i] * y[i]);
    });
}

// ---- sigmoid: y = σ(x), dy/dx = y (1 - y)

void sigmoid_forward(real* y, const real* x, std::size_t n) {
    map_batches(
        y, n,
        [](const Batch& v) {
            // The reference's two branches as one: e = e^-|x| <= 1 never overflows, and
            // σ(x) = 1 / (1 + e) for x >= 0, e / (1 + e) for x < 0 (NaN takes the second).
            const Batch one(real(1));
            const Batch e = xsimd::exp(-xsimd::abs(v));
            return xsimd::select(v >= Batch(real(0)), one, e) / (one + e);
        },
        x);
}

void sigmoid_backward(real* dx, const real* dy, const real* y, std::size_t n) {
    parallel_for(n, grain_for(1), [dx, dy, y](std::size_t begin, std::size_t end) {
        for (std::size_t i = begin; i < end; ++i)
            dx[i] = dy[i] * (real(1) - y[i]) * y[i];
    });
}

// ---- leaky_relu: y = x if x > 0, else a·x; dy/dx = 1 if x > 0, else a

// Written with xsimd's select rather than as relu's loop: `x > 0 ? x : x * a` is compiled
// (GCC 12, -O3) as a branch on the sign of each value, not vectorised, and mispredicted half
// the time: 5 to 8 ms on [64, 8, 26, 26] against relu's 0.2.

void leaky_relu_forward(real* y, const real* x, std::size_t n, real a) {
    map_batches(
        y, n, [a](const Batch& v) { return xsimd::select(v > Batch(real(0)), v, v * Batch(a)); },
        x);
}

void leaky_relu_backward(real* dx, const real* dy, const real* x, std::size_t n, real a) {
    map_batches(
        dx, n,
        [a](const Batch& g, const Batch& v) {
            return xsimd::select(v > Batch(real(0)), g, g * Batch(a));  // the kink takes a
        },
        dy, x);
}

// ---- gelu: y = x · Φ(x), in the reference's order of operations (reference/activation.cpp)

void gelu_forward(real* y, const real* x, std::size_t n) {
    map_batches(
        y, n,
        [](const Batch& v) {
            const Batch cdf =
                Batch(real(0.5)) * (Batch(real(1)) + xsimd::erf(v * Batch(real(inv_sqrt2))));
            return v * cdf;
        },
        x);
}

void gelu_backward(real* dx, const real* dy, const real* x, std::size_t n) {
    map_batches(
        dx, n,
        [](const Batch& g, const Batch& v) {
            const Batch cdf =
                Batch(real(0.5)) * (Batch(real(1)) + xsimd::erf(v * Batch(real(inv_sqrt2))));
            const Batch pdf = Batch(real(inv_sqrt_2pi)) * xsimd::exp(Batch(real(-0.5)) * v * v);
            return g * (cdf + v * pdf);
        },
        dy, x);
}

void gelu_tanh_forward(real* y, const real* x, std::size_t n) {
    map_batches(
        y, n,
        [](const Batch& v) {
            const Batch u = Batch(real(sqrt_2_over_pi)) * (v + Batch(real(kappa)) * (v * v * v));
            return Batch(real(0.5)) * v * (Batch(real(1)) + xsimd::tanh(u));
        },
        x);
}

void gelu_tanh_backward(real* dx, const real* dy, const real* x, std::size_t n) {
    map_batches(
        dx, n,
        [](const Batch& g, const Batch& v) {
            const Batch one(real(1));
            const Batch half(real(0.5));
            const Batch x2 = v * v;
            const Batch t =
                xsimd::tanh(Batch(real(sqrt_2_over_pi)) * (v + Batch(real(kappa)) * (x2 * v)));
            const Batch term1 = half * (one + t);
            const Batch term2 = half * v * (one - t * t) * Batch(real(sqrt_2_over_pi)) *
                                (one + Batch(real(3 * kappa)) * x2);
            return g * (term1 + term2);
        },
        dy, x);
}

}  // namespace tg::kernels::fast
