// A seeded wrong solution (the grader must diagnose it as `eps_outside_sqrt`): adds ε after the
// square root. Exercise normalize_sets_forward: LayerNorm's forward pass (and group and instance
// norm's: the same kernel, other sets). Check it:  bash scripts/exercise.sh check
// normalize_sets_forward  (docs/exercises.md) Solution:
// src/ops/kernels/reference/normalize_sets.cpp (read it after you pass, not before).
//
// x, y are [R, K, L]: R sets of B = K·L contiguous values, element [r, k, l] at (r·K + k)·L + l.
// Unlike BatchNorm (one set per channel, across the batch), each set here is one row of
// one example:
//   layer_norm     R = rows, G = 1, K = D (the normalized size), L = 1
//   group_norm     R = N·G,  G groups, K = C/G channels, L = H·W
//   instance_norm  R = N·C,  G = C,   K = 1,             L = H·W
// Per set r (over its B values x_i):
//
//     μ      = 1/B Σ x_i              σ² = 1/B Σ (x_i − μ)²      (biased, two passes)
//     invstd = 1 / sqrt(σ² + ε)       x̂_i = (x_i − μ)·invstd
//     y_i    = γ_p x̂_i + β_p          p = (r mod G)·K + k        (gamma, beta [G·K])
//
// Write mean[r], var[r] (biased), invstd[r] [R] and y. gamma, beta may be null (γ = 1, β = 0).
// fixed_mean, fixed_var [G]: null to use each set's own statistics; else set r is normalised
// with fixed_mean[r mod G], fixed_var[r mod G] (instance norm's running statistics in eval),
// and mean[r], var[r] are those. Accumulate sums in double.
#include <cstddef>

#include <cmath>
#include <vector>
#include "tapegrad/config.hpp"
#include "tapegrad/exercise.hpp"

namespace tg::exercises {

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
        invstd[r] = 1.0 / (std::sqrt(var[r]) + eps);

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

}  // namespace tg::exercises
