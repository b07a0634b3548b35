// SyncBatchNorm's fast kernels: the core batch_norm's loops and pieces (src/ops/kernels/fast/).
// Channels are independent, so they are split between threads when each has enough values;
// sums run in kLanes interleaved `real` partial sums (which the compiler vectorises) moved into
// double every kChunk values; x − μ is computed as (x − hi) − lo with μ = hi + lo, so a float
// μ loses nothing when |μ| ≫ σ. Results agree with the reference kernels to rounding.
#include <algorithm>
#include <cmath>

#include "../../../ops/kernels/fast/sums.hpp"
#include "../sync_batch_norm.hpp"
#include "tapegrad/parallel.hpp"

namespace tg::dist::kernels::fast {

// add_sums, Pair, Centre: the core batch_norm's fast pieces (src/ops/kernels/fast/sums.hpp).
using tg::kernels::fast::add_sums;
using tg::kernels::fast::centre;
using tg::kernels::fast::Centre;
using tg::kernels::fast::Pair;

void local_moments(double* mean, double* m2, const real* x, std::size_t N, std::size_t C,
                   std::size_t L) {
    const std::size_t n_values = N * L;
    parallel_for(C, grain_for(n_values), [&](std::size_t c0, std::size_t c1) {
        for (std::size_t c = c0; c < c1; ++c) {
            if (n_values == 0) {
                mean[c] = 0.0;
                m2[c] = 0.0;
                continue;
            }
            // One pass over d = x − K, K = the channel's first value:
            //   mean = K + Σd/n,   M2 = Σd² − (Σd)²/n   (both terms of the size of M2)
            const real K = x[c * L];
            double sd = 0.0, sd2 = 0.0;
            for (std::size_t n = 0; n < N; ++n) {
                const real* q = x + (n * C + c) * L;
                add_sums(
                    L,
                    [q, K](std::size_t i) {
                        const real d = q[i] - K;
                        return Pair{d, d * d};
                    },
                    sd, sd2);
            }
            const double cnt = static_cast<double>(n_values);
            mean[c] = K + sd / cnt;
            m2[c] = std::max(0.0, sd2 - sd * sd / cnt);
        }
    });
}

void normalize(real* y, const real* x, const double* mean, const double* invstd, const real* gamma,
               const real* beta, std::size_t N, std::size_t C, std::size_t L) {
    parallel_for(C, grain_for(N * L), [&](std::size_t c0, std::size_t c1) {
        for (std::size_t c = c0; c < c1; ++c) {
            const Centre mu = centre(mean[c]);
            const real is = static_cast<real>(invstd[c]);
            const real g = gamma ? gamma[c] : real(1), b = beta ? beta[c] : real(0);
            for (std::size_t n = 0; n < N; ++n) {
                const real* xb = x + (n * C + c) * L;
                real* yb = y + (n * C + c) * L;
                for (std::size_t l = 0; l < L; ++l)
                    yb[l] = g * (((xb[l] - mu.hi) - mu.lo) * is) + b;  // y = γ x̂ + β
            }
        }
    });
}

void backward_reduce(double* sum_dy, double* sum_dy_xhat, const real* x, const real* dy,
                     const double* mean, const double* invstd, std::size_t N, std::size_t C,
                     std::size_t L) {
    parallel_for(C, grain_for(N * L), [&](std::size_t c0, std::size_t c1) {
        for (std::size_t c = c0; c < c1; ++c) {
            const Centre mu = centre(mean[c]);
            const real is = static_cast<real>(invstd[c]);
            double s1 = 0.0, s2 = 0.0;
            for (std::size_t n = 0; n < N; ++n) {
                const real* xb = x + (n * C + c) * L;
                const real* dyb = dy + (n * C + c) * L;
                add_sums(
                    L,
                    [xb, dyb, mu, is](std::size_t l) {
                        return Pair{dyb[l], dyb[l] * (((xb[l] - mu.hi) - mu.lo) * is)};
                    },
                    s1, s2);
            }
            sum_dy[c] = s1;
            sum_dy_xhat[c] = s2;
        }
    });
}

void backward_dx(real* dx, const real* x, const real* dy, const double* mean, const double* invstd,
                 const real* gamma, const double* sum_dy, const double* sum_dy_xhat, std::size_t N,
                 std::size_t C, std::size_t L, double B) {
    parallel_for(C, grain_for(N * L), [&](std::size_t c0, std::size_t c1) {
        for (std::size_t c = c0; c < c1; ++c) {
            const Centre mu = centre(mean[c]);
            const real is = static_cast<real>(invstd[c]);
            const real g = gamma ? gamma[c] : real(1);
            const real s1 = static_cast<real>(g * sum_dy[c]);       // Σdx̂
            const real s2 = static_cast<real>(g * sum_dy_xhat[c]);  // Σ(dx̂·x̂)
            const real Bn = static_cast<real>(B);
            const real k = is / Bn;  // 1/B · 1/σ
            for (std::size_t n = 0; n < N; ++n) {
                const real* xb = x + (n * C + c) * L;
                const real* dyb = dy + (n * C + c) * L;
                real* dxb = dx + (n * C + c) * L;
                for (std::size_t l = 0; l < L; ++l) {
                    const real xhat = ((xb[l] - mu.hi) - mu.lo) * is;
                    real d = Bn * (dyb[l] * g);  // B·dx̂
                    d -= s1;                     // − Σdx̂
                    d -= xhat * s2;              // − x̂·Σ(dx̂·x̂)
                    dxb[l] = k * d;
                }
            }
        }
    });
}

}  // namespace tg::dist::kernels::fast
