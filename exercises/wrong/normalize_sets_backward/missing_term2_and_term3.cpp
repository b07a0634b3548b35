// A seeded wrong solution (the grader must diagnose it as `missing_term2_and_term3`): treats μ and
// σ² as constants. Exercise normalize_sets_backward: LayerNorm's backward pass (dx, dγ, dβ), and
// group and instance norm's (the same kernel, other sets). Check it:  bash scripts/exercise.sh
// check normalize_sets_backward (docs/exercises.md) Solution:
// src/ops/kernels/reference/normalize_sets.cpp (read it after you pass, not before).
//
// dy, x, dx are [R, K, L]: R sets of B = K·L values, element [r, k, l] at (r·K + k)·L + l
// (layer_norm: R rows, G = 1, K = D, L = 1; group_norm: R = N·G, K = C/G, L = H·W;
// instance_norm: R = N·C, G = C, K = 1, L = H·W). mean, invstd [R] are the forward's.
// Recompute x̂_i = (x_i − mean[r])·invstd[r]. With p = (r mod G)·K + k the parameter of
// position (r, k) and dx̂ = dy·γ_p (y = γ x̂ + β):
//
//     dβ_p = Σ dy          dγ_p = Σ dy·x̂        summed over EVERY set r that uses p
//                                                (layer norm: over all the rows)
//
// and, per set, when set_stats is true (μ and σ² are the set's own):
//
//     dx_i = 1/B · invstd · (B·dx̂_i − Σdx̂ − x̂_i·Σ(dx̂·x̂))      (sums over the set)
//                           term 1   term 2  term 3
//
//     term 1: the direct path x → x̂;  term 2: the path through μ;  term 3: through σ².
//
// When set_stats is false (fixed running statistics): dx_i = dy_i·γ_p·invstd.
// dx, dgamma, dbeta [G·K] may each be null (not wanted): skip writing it. gamma may be null
// (γ = 1). Write every element of what you are given (do not add to it); sums in double.
#include <cstddef>

#include <cmath>
#include <vector>
#include "tapegrad/config.hpp"
#include "tapegrad/exercise.hpp"

namespace tg::exercises {

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
                dx[r * B + i] = static_cast<real>(dxhat * invstd[r]);  // x̂ = (x − μ)·invstd
            }
        }
    }
    for (std::size_t p = 0; p < G * K; ++p) {
        if (dgamma) dgamma[p] = static_cast<real>(sum_dy_xhat[p]);
        if (dbeta) dbeta[p] = static_cast<real>(sum_dy[p]);
    }
}

}  // namespace tg::exercises
