// Layer, group, instance and RMS norm, fast: the numbers of reference/normalize_sets.cpp (within
// float round-off) with the sums of fast/sums.hpp (float lanes flushed to double, one pass for
// μ and σ², x − μ as (x − hi) − lo).
#include "../normalize_sets.hpp"

#include <cmath>
#include <vector>

#include "sums.hpp"

namespace tg::kernels::fast {

void normalize_sets_forward(real* y, double* mean, double* var, double* invstd, const real* x,
                            const real* gamma, const real* beta, const real* fixed_mean,
                            const real* fixed_var, std::size_t R, std::size_t G, std::size_t K,
                            std::size_t L, double eps) {
    const std::size_t B = K * L;
    for (std::size_t r = 0; r < R; ++r) {
        if (fixed_mean == nullptr) {
            const Moments m = moments(x + r * B, 1, B, B);
            mean[r] = m.mean;
            var[r] = m.var;
        } else {
            mean[r] = fixed_mean[r % G];
            var[r] = fixed_var[r % G];
        }
        const real inv = static_cast<real>(1.0 / std::sqrt(var[r] + eps));
        invstd[r] = inv;
        const Centre mu = centre(mean[r]);
        for (std::size_t k = 0; k < K; ++k) {
            const std::size_t p = (r % G) * K + k;
            const real g = gamma ? gamma[p] : real(1), b = beta ? beta[p] : real(0);
            const real* xb = x + r * B + k * L;
            real* yb = y + r * B + k * L;
            for (std::size_t l = 0; l < L; ++l) {
                const real xhat = ((xb[l] - mu.hi) - mu.lo) * inv;
                yb[l] = g * xhat + b;
            }
        }
    }
}

void normalize_sets_backward(real* dx, real* dgamma, real* dbeta, const real* dy, const real* x,
                             const double* mean, const double* invstd, const real* gamma,
                             std::size_t R, std::size_t G, std::size_t K, std::size_t L,
                             bool set_stats) {
    const std::size_t B = K * L;
    std::vector<double> sum_dy_xhat(G * K, 0.0), sum_dy(G * K, 0.0);  // dγ, dβ
    for (std::size_t r = 0; r < R; ++r) {
        const Centre mu = centre(mean[r]);
        const real inv = static_cast<real>(invstd[r]);
        const real* xs = x + r * B;
        const real* dys = dy + r * B;
        const real* gs = gamma ? gamma + (r % G) * K : nullptr;  // γ of this set's positions
        // Pass 1: Σdx̂ and Σ(dx̂·x̂) over the set (dx̂ = dy·γ), and per parameter Σdy, Σdy·x̂.
        double sum_dxhat = 0.0, sum_dxhat_xhat = 0.0;
        if (L == 1) {  // layer norm: one value per parameter
            for (std::size_t k = 0; k < K; ++k) {
                const real xhat = ((xs[k] - mu.hi) - mu.lo) * inv;
                sum_dy_xhat[(r % G) * K + k] += dys[k] * xhat;
                sum_dy[(r % G) * K + k] += dys[k];
            }
            add_sums(
                K,
                [xs, dys, gs, mu, inv](std::size_t k) {
                    const real dxhat = gs ? dys[k] * gs[k] : dys[k];
                    return Pair{dxhat, dxhat * (((xs[k] - mu.hi) - mu.lo) * inv)};
                },
                sum_dxhat, sum_dxhat_xhat);
        } else {  // group and instance norm: L values per parameter
            for (std::size_t k = 0; k < K; ++k) {
                const real* xb = xs + k * L;
                const real* dyb = dys + k * L;
                double sdy = 0.0, sdy_xhat = 0.0;
                add_sums(
                    L,
                    [xb, dyb, mu, inv](std::size_t l) {
                        return Pair{dyb[l], dyb[l] * (((xb[l] - mu.hi) - mu.lo) * inv)};
                    },
                    sdy, sdy_xhat);
                sum_dy[(r % G) * K + k] += sdy;
                sum_dy_xhat[(r % G) * K + k] += sdy_xhat;
                const double g = gs ? gs[k] : 1.0;
                sum_dxhat += g * sdy;
                sum_dxhat_xhat += g * sdy_xhat;
            }
        }
        if (dx == nullptr) continue;
        // Pass 2: dx = 1/B · invstd · (B·dx̂ − Σdx̂ − x̂·Σ(dx̂·x̂)), or dx̂·invstd (fixed statistics)
        const real k_scale = static_cast<real>(inv / static_cast<double>(B));
        const real s1 = static_cast<real>(sum_dxhat);
        const real s2 = static_cast<real>(sum_dxhat_xhat);
        const real Bf = static_cast<real>(B);
        for (std::size_t k = 0; k < K; ++k) {
            const real g = gs ? gs[k] : real(1);
            const real* xb = xs + k * L;
            const real* dyb = dys + k * L;
            real* dxb = dx + r * B + k * L;
            if (set_stats) {
                for (std::size_t l = 0; l < L; ++l) {
                    const real xhat = ((xb[l] - mu.hi) - mu.lo) * inv;
                    const real dxhat = dyb[l] * g;
                    real d = Bf * dxhat;  // term 1: B·dx̂
                    d -= s1;              // term 2: Σdx̂
                    d -= xhat * s2;       // term 3: x̂·Σ(dx̂·x̂)
                    dxb[l] = k_scale * d;
                }
            } else {
                const real scale = g * inv;
                for (std::size_t l = 0; l < L; ++l)
                    dxb[l] = dyb[l] * scale;
            }
        }
    }
    for (std::size_t p = 0; p < G * K; ++p) {
        if (dgamma) dgamma[p] = static_cast<real>(sum_dy_xhat[p]);
        if (dbeta) dbeta[p] = static_cast<real>(sum_dy[p]);
    }
}

void rms_norm_forward(real* y, double* invrms, const real* x, const real* gamma, std::size_t R,
                      std::size_t D, double eps) {
    for (std::size_t r = 0; r < R; ++r) {
        const real* xs = x + r * D;
        double sum_sq = 0.0, unused = 0.0;
        add_sums(
            D,
            [xs](std::size_t d) {
                return Pair{xs[d] * xs[d], real(0)};
            },
            sum_sq, unused);
        invrms[r] = 1.0 / std::sqrt(sum_sq / static_cast<double>(D) + eps);
        const real inv = static_cast<real>(invrms[r]);
        real* ys = y + r * D;
        if (gamma) {
            for (std::size_t d = 0; d < D; ++d)
                ys[d] = gamma[d] * (xs[d] * inv);
        } else {
            for (std::size_t d = 0; d < D; ++d)
                ys[d] = xs[d] * inv;
        }
    }
}

void rms_norm_backward(real* dx, real* dgamma, const real* dy, const real* x, const double* invrms,
                       const real* gamma, std::size_t R, std::size_t D) {
    std::vector<double> sum_dy_xhat(D, 0.0);  // dγ
    for (std::size_t r = 0; r < R; ++r) {
        const real* xs = x + r * D;
        const real* dys = dy + r * D;
        const real inv = static_cast<real>(invrms[r]);
        // Σ(dx̂·x̂) = invrms · Σ(dy·γ·x)
        double sum_dxhat_x = 0.0, unused = 0.0;
        add_sums(
            D,
            [xs, dys, gamma](std::size_t d) {
                return Pair{(gamma ? dys[d] * gamma[d] : dys[d]) * xs[d], real(0)};
            },
            sum_dxhat_x, unused);
        for (std::size_t d = 0; d < D; ++d)
            sum_dy_xhat[d] += static_cast<double>(dys[d]) * xs[d] * invrms[r];
        if (dx == nullptr) continue;
        // dx = invrms · (dx̂ − x̂ · 1/D Σ(dx̂·x̂)) = inv·dx̂ − x · (inv³/D · Σ(dx̂·x))
        const real c = static_cast<real>(invrms[r] * invrms[r] * invrms[r] * sum_dxhat_x /
                                         static_cast<double>(D));
        real* dxs = dx + r * D;
        for (std::size_t d = 0; d < D; ++d) {
            const real dxhat = gamma ? dys[d] * gamma[d] : dys[d];
            dxs[d] = inv * dxhat - xs[d] * c;
        }
    }
    if (dgamma)
        for (std::size_t d = 0; d < D; ++d)
            dgamma[d] = static_cast<real>(sum_dy_xhat[d]);
}

}  // namespace tg::kernels::fast
