// Exercise normalize_sets_backward: LayerNorm's backward pass (dx, dγ, dβ), and group and
// instance norm's (the same kernel, other sets).
// Check it:  bash scripts/exercise.sh check normalize_sets_backward (docs/exercises.md)
// Solution:  src/ops/kernels/reference/normalize_sets.cpp (read it after you pass, not before).
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

#include "tapegrad/config.hpp"
#include "tapegrad/exercise.hpp"

namespace tg::exercises {

void normalize_sets_backward(real* dx, real* dgamma, real* dbeta, const real* dy, const real* x,
                             const double* mean, const double* invstd, const real* gamma,
                             std::size_t R, std::size_t G, std::size_t K, std::size_t L,
                             bool set_stats) {
    throw exercise_not_done("normalize_sets_backward");
}

}  // namespace tg::exercises
