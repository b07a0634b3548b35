// Exercise normalize_sets_forward: LayerNorm's forward pass (and group and instance norm's:
// the same kernel, other sets).
// Check it:  bash scripts/exercise.sh check normalize_sets_forward  (docs/exercises.md)
// Solution:  src/ops/kernels/reference/normalize_sets.cpp (read it after you pass, not before).
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

#include "tapegrad/config.hpp"
#include "tapegrad/exercise.hpp"

namespace tg::exercises {

void normalize_sets_forward(real* y, double* mean, double* var, double* invstd, const real* x,
                            const real* gamma, const real* beta, const real* fixed_mean,
                            const real* fixed_var, std::size_t R, std::size_t G, std::size_t K,
                            std::size_t L, double eps) {
    throw exercise_not_done("normalize_sets_forward");
}

}  // namespace tg::exercises
