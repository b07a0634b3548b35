// Exercise batch_norm_backward: BatchNorm's backward pass (dx, dγ, dβ).
// Check it:  bash scripts/exercise.sh check batch_norm_backward     (docs/exercises.md)
// Solution:  src/ops/kernels/reference/batch_norm.cpp (read it after you pass, not before).
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

#include "tapegrad/config.hpp"
#include "tapegrad/exercise.hpp"

namespace tg::exercises {

void batch_norm_backward(real* dx, real* dgamma, real* dbeta, const real* dy, const real* x,
                         const double* mean, const double* invstd, const real* gamma, std::size_t N,
                         std::size_t C, std::size_t L, bool batch_stats) {
    throw exercise_not_done("batch_norm_backward");
}

}  // namespace tg::exercises
