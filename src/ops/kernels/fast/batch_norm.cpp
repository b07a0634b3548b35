// BatchNorm, fast: the numbers of kernels/reference/batch_norm.cpp (within float round-off)
// with these tricks:
// - one pass for μ and σ² (sums of x − K, K = the channel's first value), in 8 float lanes
//   flushed to double every 64 values, so the compiler vectorises them (fast/sums.hpp);
// - x − μ as (x − hi) − lo with μ = hi + lo, exact in float even when |μ| ≫ σ;
// - each channel normalised right after its statistics, while its values are in cache;
// - channels split between threads when each gets at least kMinValuesPerThread values
//   (channels are independent, so the numbers do not depend on the thread count).
#include "../batch_norm.hpp"

#include <cmath>

#include "sums.hpp"
#include "tapegrad/parallel.hpp"

namespace tg::kernels::fast {

void batch_norm_forward(real* y, double* mean, double* var, double* invstd, const real* x,
                        const real* gamma, const real* beta, const real* fixed_mean,
                        const real* fixed_var, std::size_t N, std::size_t C, std::size_t L,
                        double eps) {
    const std::size_t B = N * L;
    parallel_for(C, grain_for(B), [=](std::size_t c_begin, std::size_t c_end) {
        for (std::size_t c = c_begin; c < c_end; ++c) {
            if (fixed_mean == nullptr) {
                const Moments m = moments(x + c * L, N, L, C * L);  // N runs of L, C·L apart
                mean[c] = m.mean;
                var[c] = m.var;
            } else {
                mean[c] = fixed_mean[c];
                var[c] = fixed_var[c];
            }
            const real inv = static_cast<real>(1.0 / std::sqrt(var[c] + eps));
            invstd[c] = inv;
            // y = γ x̂ + β with x̂ = (x − μ)·invstd
            const Centre mu = centre(mean[c]);
            const real g = gamma ? gamma[c] : real(1), b = beta ? beta[c] : real(0);
            for (std::size_t n = 0; n < N; ++n) {
                const real* xb = x + (n * C + c) * L;
                real* yb = y + (n * C + c) * L;
                for (std::size_t l = 0; l < L; ++l) {
                    const real xhat = ((xb[l] - mu.hi) - mu.lo) * inv;
                    yb[l] = g * xhat + b;
                }
            }
        }
    });
}

void batch_norm_backward(real* dx, real* dgamma, real* dbeta, const real* dy, const real* x,
                         const double* mean, const double* invstd, const real* gamma, std::size_t N,
                         std::size_t C, std::size_t L, bool batch_stats) {
    const std::size_t B = N * L;
    parallel_for(C, grain_for(B), [=](std::size_t c_begin, std::size_t c_end) {
        for (std::size_t c = c_begin; c < c_end; ++c) {
            const Centre mu = centre(mean[c]);
            const real inv = static_cast<real>(invstd[c]);
            const real g = gamma ? gamma[c] : real(1);

            // Pass 1 over the channel: dβ = Σdy, dγ = Σdy·x̂.
            double sum_dy = 0.0, sum_dy_xhat = 0.0;
            for (std::size_t n = 0; n < N; ++n) {
                const real* xb = x + (n * C + c) * L;
                const real* dyb = dy + (n * C + c) * L;
                add_sums(
                    L,
                    [xb, dyb, mu, inv](std::size_t l) {
                        return Pair{dyb[l], dyb[l] * (((xb[l] - mu.hi) - mu.lo) * inv)};
                    },
                    sum_dy, sum_dy_xhat);
            }
            if (dgamma) dgamma[c] = static_cast<real>(sum_dy_xhat);
            if (dbeta) dbeta[c] = static_cast<real>(sum_dy);
            if (dx == nullptr) continue;

            if (batch_stats) {
                // With dx̂ = dy·γ: Σdx̂ = γ·Σdy, Σ(dx̂·x̂) = γ·Σ(dy·x̂)
                const real sum_dxhat = static_cast<real>(g * sum_dy);
                const real sum_dxhat_xhat = static_cast<real>(g * sum_dy_xhat);
                const real Bf = static_cast<real>(B);  // B as a number
                const real k = inv / Bf;               // 1/B · invstd
                // Pass 2. dx = 1/B · invstd · (B·dx̂ − Σdx̂ − x̂·Σ(dx̂·x̂))
                for (std::size_t n = 0; n < N; ++n) {
                    const real* xb = x + (n * C + c) * L;
                    const real* dyb = dy + (n * C + c) * L;
                    real* dxb = dx + (n * C + c) * L;
                    for (std::size_t l = 0; l < L; ++l) {
                        const real xhat = ((xb[l] - mu.hi) - mu.lo) * inv;
                        const real dxhat = dyb[l] * g;
                        real d = Bf * dxhat;         // term 1: B·dx̂
                        d -= sum_dxhat;              // term 2: Σdx̂
                        d -= xhat * sum_dxhat_xhat;  // term 3: x̂·Σ(dx̂·x̂)
                        dxb[l] = k * d;
                    }
                }
            } else {
                // Fixed running statistics: dx = dy·γ·invstd.
                const real scale = g * inv;
                for (std::size_t n = 0; n < N; ++n) {
                    const real* dyb = dy + (n * C + c) * L;
                    real* dxb = dx + (n * C + c) * L;
                    for (std::size_t l = 0; l < L; ++l)
                        dxb[l] = dyb[l] * scale;
                }
            }
        }
    });
}

}  // namespace tg::kernels::fast
