// SyncBatchNorm's reference kernels: one plain loop per equation, everything in double.
// Slow and obviously right; the fast kernels are tested against the same truths.
#include <cmath>

#include "../sync_batch_norm.hpp"

namespace tg::dist::kernels::reference {

namespace {
// x[n, c, l] of x [N, C, L]
inline std::size_t at(std::size_t n, std::size_t c, std::size_t l, std::size_t C, std::size_t L) {
    return (n * C + c) * L + l;
}
}  // namespace

void local_moments(double* mean, double* m2, const real* x, std::size_t N, std::size_t C,
                   std::size_t L) {
    const double count = static_cast<double>(N * L);
    for (std::size_t c = 0; c < C; ++c) {
        // mean_c = 1/n Σ x
        double sum = 0.0;
        for (std::size_t n = 0; n < N; ++n)
            for (std::size_t l = 0; l < L; ++l)
                sum += x[at(n, c, l, C, L)];
        mean[c] = N * L == 0 ? 0.0 : sum / count;
        // M2_c = Σ (x − mean_c)²   (two passes: no cancellation)
        double sq = 0.0;
        for (std::size_t n = 0; n < N; ++n)
            for (std::size_t l = 0; l < L; ++l) {
                const double d = x[at(n, c, l, C, L)] - mean[c];
                sq += d * d;
            }
        m2[c] = sq;
    }
}

void normalize(real* y, const real* x, const double* mean, const double* invstd, const real* gamma,
               const real* beta, std::size_t N, std::size_t C, std::size_t L) {
    for (std::size_t n = 0; n < N; ++n)
        for (std::size_t c = 0; c < C; ++c) {
            const double g = gamma ? gamma[c] : 1.0, b = beta ? beta[c] : 0.0;
            for (std::size_t l = 0; l < L; ++l) {
                const std::size_t i = at(n, c, l, C, L);
                const double xhat = (x[i] - mean[c]) * invstd[c];  // x̂ = (x − μ_B) / σ_B
                y[i] = static_cast<real>(g * xhat + b);            // y = γ x̂ + β
            }
        }
}

void backward_reduce(double* sum_dy, double* sum_dy_xhat, const real* x, const real* dy,
                     const double* mean, const double* invstd, std::size_t N, std::size_t C,
                     std::size_t L) {
    for (std::size_t c = 0; c < C; ++c) {
        double s1 = 0.0, s2 = 0.0;
        for (std::size_t n = 0; n < N; ++n)
            for (std::size_t l = 0; l < L; ++l) {
                const std::size_t i = at(n, c, l, C, L);
                const double xhat = (x[i] - mean[c]) * invstd[c];
                s1 += dy[i];         // dβ = Σ dy
                s2 += dy[i] * xhat;  // dγ = Σ dy·x̂
            }
        sum_dy[c] = s1;
        sum_dy_xhat[c] = s2;
    }
}

void backward_dx(real* dx, const real* x, const real* dy, const double* mean, const double* invstd,
                 const real* gamma, const double* sum_dy, const double* sum_dy_xhat, std::size_t N,
                 std::size_t C, std::size_t L, double B) {
    for (std::size_t c = 0; c < C; ++c) {
        const double g = gamma ? gamma[c] : 1.0;
        const double sum_dxhat = g * sum_dy[c];            // Σdx̂ over all ranks
        const double sum_dxhat_xhat = g * sum_dy_xhat[c];  // Σ(dx̂·x̂) over all ranks
        for (std::size_t n = 0; n < N; ++n)
            for (std::size_t l = 0; l < L; ++l) {
                const std::size_t i = at(n, c, l, C, L);
                const double xhat = (x[i] - mean[c]) * invstd[c];
                const double dxhat = g * dy[i];
                // dx = 1/B · 1/σ · (B·dx̂ − Σdx̂ − x̂·Σ(dx̂·x̂))
                dx[i] = static_cast<real>(invstd[c] / B *
                                          (B * dxhat - sum_dxhat - xhat * sum_dxhat_xhat));
            }
    }
}

}  // namespace tg::dist::kernels::reference
