// A seeded wrong solution (the grader must diagnose it as `missing_term3`): drops the path through
// σ²_B. Exercise batch_norm_backward: BatchNorm's backward pass (dx, dγ, dβ). Check it:  bash
// scripts/exercise.sh check batch_norm_backward     (docs/exercises.md) Solution:
// src/ops/kernels/reference/batch_norm.cpp (read it after you pass, not before).
//
// dy, x, dx are [N, C, L], element [n, c, l] at (n·C + c)·L + l; channel c has B = N·L values.
// mean, invstd [C] are the forward's (μ_B and 1/sqrt(σ²_B + ε), or the running ones in eval).
// Recompute x̂_i = (x_i − mean[c])·invstd[c]. With dx̂ = dy·γ (y = γ x̂ + β), per channel:
//
//     dβ = Σ dy            dγ = Σ dy·x̂
//
// and, when batch_stats is true (μ_B and σ²_B are the batch's own, so every x of the channel
// moves them):
//
//     dx_i = 1/B · invstd · (B·dx̂_i − Σdx̂ − x̂_i·Σ(dx̂·x̂))
//                           term 1   term 2  term 3
//
//     term 1: the direct path x → x̂;  term 2: the path through μ_B;  term 3: through σ²_B.
//
// When batch_stats is false (eval: fixed running statistics) y is affine in x:
//     dx_i = dy_i·γ·invstd.
// dx, dgamma, dbeta may each be null (that gradient is not wanted): skip writing it.
// gamma may be null (γ = 1). Accumulate sums in double.
#include <cstddef>

#include <cmath>
#include "tapegrad/config.hpp"
#include "tapegrad/exercise.hpp"

namespace tg::exercises {

void batch_norm_backward(real* dx, real* dgamma, real* dbeta, const real* dy, const real* x,
                         const double* mean, const double* invstd, const real* gamma, std::size_t N,
                         std::size_t C, std::size_t L, bool batch_stats) {
    const double B = static_cast<double>(N * L);  // values per channel
    for (std::size_t c = 0; c < C; ++c) {
        const double g = gamma ? gamma[c] : 1.0;  // γ
        // Σdy and Σ(dy·x̂) over the channel
        double sum_dy = 0.0, sum_dy_xhat = 0.0;
        for (std::size_t n = 0; n < N; ++n) {
            for (std::size_t l = 0; l < L; ++l) {
                const std::size_t i = (n * C + c) * L + l;
                const double xhat = (x[i] - mean[c]) * invstd[c];
                sum_dy += dy[i];
                sum_dy_xhat += dy[i] * xhat;
            }
        }
        if (dbeta) dbeta[c] = static_cast<real>(sum_dy);         // dβ = Σ dy
        if (dgamma) dgamma[c] = static_cast<real>(sum_dy_xhat);  // dγ = Σ dy·x̂
        if (dx == nullptr) continue;

        const double sum_dxhat = g * sum_dy;            // Σdx̂ = γ Σdy
        const double sum_dxhat_xhat = g * sum_dy_xhat;  // Σ(dx̂·x̂) = γ Σ(dy·x̂)
        for (std::size_t n = 0; n < N; ++n) {
            for (std::size_t l = 0; l < L; ++l) {
                const std::size_t i = (n * C + c) * L + l;
                const double dxhat = dy[i] * g;  // dx̂ = dy·γ
                if (!batch_stats) {
                    dx[i] = static_cast<real>(dxhat * invstd[c]);  // dx = dy·γ·invstd
                    continue;
                }
                const double xhat = (x[i] - mean[c]) * invstd[c];
                const double term1 = B * dxhat;  // B·dx̂
                const double term2 = sum_dxhat;  // Σdx̂
                const double term3 = 0.0;        // x̂·Σ(dx̂·x̂)
                dx[i] = static_cast<real>(invstd[c] / B * (term1 - term2 - term3));
            }
        }
    }
}

}  // namespace tg::exercises
