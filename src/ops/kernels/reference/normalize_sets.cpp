// Layer, group and instance norm as the chapter writes BatchNorm, one set at a time, one thread;
// and RMS norm, the same without the centring (at the end).
//
// They differ from BatchNorm only in which values form one set (tapegrad/ops/normalization.hpp);
// here a set is B = K·L contiguous values x[r, :, :]:
//
//     μ      = 1/B Σ x_i              σ² = 1/B Σ (x_i − μ)²
//     invstd = 1 / sqrt(σ² + ε)       x̂_i = (x_i − μ) · invstd
//     y_i    = γ_p x̂_i + β_p          (p: the parameter of position (r mod G, k))
//
// Sums in double, two passes, as in reference/batch_norm.cpp.
#include "../normalize_sets.hpp"

#include <cmath>
#include <vector>

namespace tg::kernels::reference {

void normalize_sets_forward(real* y, double* mean, double* var, double* invstd, const real* x,
                            const real* gamma, const real* beta, const real* fixed_mean,
                            const real* fixed_var, std::size_t R, std::size_t G, std::size_t K,
                            std::size_t L, double eps) {
    const std::size_t B = K * L;  // values per set
    for (std::size_t r = 0; r < R; ++r) {
        const real* xs = x + r * B;  // x[r, :, :]
        if (fixed_mean == nullptr) {
            // μ = 1/B Σ x
            double sum = 0.0;
            for (std::size_t i = 0; i < B; ++i)
                sum += xs[i];
            mean[r] = sum / static_cast<double>(B);
            // σ² = 1/B Σ (x − μ)²
            double sum_sq = 0.0;
            for (std::size_t i = 0; i < B; ++i) {
                const double centred = xs[i] - mean[r];
                sum_sq += centred * centred;
            }
            var[r] = sum_sq / static_cast<double>(B);
        } else {  // fixed (running) statistics
            mean[r] = fixed_mean[r % G];
            var[r] = fixed_var[r % G];
        }
        // invstd = 1 / sqrt(σ² + ε)
        invstd[r] = 1.0 / std::sqrt(var[r] + eps);

        for (std::size_t k = 0; k < K; ++k) {
            const std::size_t p = (r % G) * K + k;  // which γ, β
            const double g = gamma ? gamma[p] : 1.0, b = beta ? beta[p] : 0.0;
            for (std::size_t l = 0; l < L; ++l) {
                const std::size_t i = k * L + l;
                const double xhat = (xs[i] - mean[r]) * invstd[r];  // x̂ = (x − μ)·invstd
                y[r * B + i] = static_cast<real>(g * xhat + b);     // y = γ x̂ + β
            }
        }
    }
}

// Backward, per set, with dx̂ = dy·γ_p:
//
//     dγ_p = Σ dy·x̂      dβ_p = Σ dy          (summed over every set that uses p)
//     dx   = 1/B · invstd · (B·dx̂ − Σdx̂ − x̂·Σ(dx̂·x̂))      (the set's own statistics)
//                            term 1  term 2  term 3
//     dx   = dx̂ · invstd                                    (fixed statistics)
void normalize_sets_backward(real* dx, real* dgamma, real* dbeta, const real* dy, const real* x,
                             const double* mean, const double* invstd, const real* gamma,
                             std::size_t R, std::size_t G, std::size_t K, std::size_t L,
                             bool set_stats) {
    const std::size_t B = K * L;
    std::vector<double> sum_dy_xhat(G * K, 0.0), sum_dy(G * K, 0.0);  // dγ, dβ
    for (std::size_t r = 0; r < R; ++r) {
        const real* xs = x + r * B;
        const real* dys = dy + r * B;
        // Σdx̂ and Σ(dx̂·x̂) over the set; dγ, dβ
        double sum_dxhat = 0.0, sum_dxhat_xhat = 0.0;
        for (std::size_t k = 0; k < K; ++k) {
            const std::size_t p = (r % G) * K + k;
            const double g = gamma ? gamma[p] : 1.0;
            for (std::size_t l = 0; l < L; ++l) {
                const std::size_t i = k * L + l;
                const double xhat = (xs[i] - mean[r]) * invstd[r];
                const double dxhat = dys[i] * g;
                sum_dxhat += dxhat;
                sum_dxhat_xhat += dxhat * xhat;
                sum_dy_xhat[p] += dys[i] * xhat;
                sum_dy[p] += dys[i];
            }
        }
        if (dx == nullptr) continue;
        const double Bd = static_cast<double>(B);
        for (std::size_t k = 0; k < K; ++k) {
            const std::size_t p = (r % G) * K + k;
            const double g = gamma ? gamma[p] : 1.0;
            for (std::size_t l = 0; l < L; ++l) {
                const std::size_t i = k * L + l;
                const double dxhat = dys[i] * g;  // dx̂ = dy·γ
                if (!set_stats) {
                    dx[r * B + i] = static_cast<real>(dxhat * invstd[r]);
                    continue;
                }
                const double xhat = (xs[i] - mean[r]) * invstd[r];
                const double term1 = Bd * dxhat;             // B·dx̂
                const double term2 = sum_dxhat;              // Σdx̂
                const double term3 = xhat * sum_dxhat_xhat;  // x̂·Σ(dx̂·x̂)
                dx[r * B + i] = static_cast<real>(invstd[r] / Bd * (term1 - term2 - term3));
            }
        }
    }
    for (std::size_t p = 0; p < G * K; ++p) {
        if (dgamma) dgamma[p] = static_cast<real>(sum_dy_xhat[p]);
        if (dbeta) dbeta[p] = static_cast<real>(sum_dy[p]);
    }
}

// RMS norm, one row of D values at a time: layer norm without μ,
//
//     invrms = 1 / sqrt(1/D Σ x_d² + ε)      x̂_d = x_d · invrms      y_d = γ_d x̂_d
void rms_norm_forward(real* y, double* invrms, const real* x, const real* gamma, std::size_t R,
                      std::size_t D, double eps) {
    for (std::size_t r = 0; r < R; ++r) {
        const real* xs = x + r * D;  // x[r, :]
        // 1/D Σ x², the mean square (no centring: the second moment about 0)
        double sum_sq = 0.0;
        for (std::size_t d = 0; d < D; ++d)
            sum_sq += static_cast<double>(xs[d]) * xs[d];
        invrms[r] = 1.0 / std::sqrt(sum_sq / static_cast<double>(D) + eps);
        for (std::size_t d = 0; d < D; ++d) {
            const double g = gamma ? gamma[d] : 1.0;
            y[r * D + d] = static_cast<real>(g * xs[d] * invrms[r]);  // y = γ x̂
        }
    }
}

// Backward, per row, with x̂ = x·invrms and dx̂ = dy·γ:
//
//     dγ_d = Σ_r dy·x̂
//     dx   = invrms · (dx̂ − x̂ · 1/D Σ(dx̂·x̂))
//                      term 1   term 3
// Layer norm's dx without term 2 (Σdx̂): with no μ, no path runs through the mean.
void rms_norm_backward(real* dx, real* dgamma, const real* dy, const real* x, const double* invrms,
                       const real* gamma, std::size_t R, std::size_t D) {
    std::vector<double> sum_dy_xhat(D, 0.0);  // dγ
    const double Dd = static_cast<double>(D);
    for (std::size_t r = 0; r < R; ++r) {
        const real* xs = x + r * D;
        const real* dys = dy + r * D;
        double sum_dxhat_xhat = 0.0;  // Σ(dx̂·x̂) over the row
        for (std::size_t d = 0; d < D; ++d) {
            const double xhat = xs[d] * invrms[r];
            const double dxhat = dys[d] * (gamma ? gamma[d] : 1.0);
            sum_dxhat_xhat += dxhat * xhat;
            sum_dy_xhat[d] += dys[d] * xhat;
        }
        if (dx == nullptr) continue;
        for (std::size_t d = 0; d < D; ++d) {
            const double xhat = xs[d] * invrms[r];
            const double term1 = dys[d] * (gamma ? gamma[d] : 1.0);  // dx̂
            const double term3 = xhat * sum_dxhat_xhat / Dd;         // x̂ · 1/D Σ(dx̂·x̂)
            dx[r * D + d] = static_cast<real>(invrms[r] * (term1 - term3));
        }
    }
    if (dgamma)
        for (std::size_t d = 0; d < D; ++d)
            dgamma[d] = static_cast<real>(sum_dy_xhat[d]);
}

}  // namespace tg::kernels::reference
