// A seeded wrong solution (the grader must diagnose it as `missing_eps`): forgets ε.
// Exercise batch_norm_forward: BatchNorm's forward pass, training and eval mode.
// Check it:  bash scripts/exercise.sh check batch_norm_forward      (docs/exercises.md)
// Solution:  src/ops/kernels/reference/batch_norm.cpp (read it after you pass, not before).
//
// x is [N, C, L] (L = H·W; 1 for a [N, C] input), element x[n, c, l] at (n·C + c)·L + l.
// Channel c is one set of B = N·L values x_i. Per channel:
//
//     μ_B    = 1/B Σ x_i                   the batch mean                 -> mean[c]
//     σ²_B   = 1/B Σ (x_i − μ_B)²          the batch variance (biased)    -> var[c]
//     invstd = 1 / sqrt(σ²_B + ε)                                         -> invstd[c]
//     x̂_i    = (x_i − μ_B) · invstd        normalised
//     y_i    = γ x̂_i + β                   scaled and shifted             -> y[n, c, l]
//
// Eval mode: fixed_mean and fixed_var [C] are not null (the running statistics); then they
// take the place of μ_B and σ²_B (mean[c] = fixed_mean[c], var[c] = fixed_var[c]).
// gamma, beta [C] may be null: γ = 1, β = 0.
// Accumulate the sums in double; write y as real (float in the library, double in the grader).
#include <cmath>
#include <cstddef>

#include <cmath>
#include "tapegrad/config.hpp"
#include "tapegrad/exercise.hpp"

namespace tg::exercises {

void batch_norm_forward(real* y, double* mean, double* var, double* invstd, const real* x,
                        const real* gamma, const real* beta, const real* fixed_mean,
                        const real* fixed_var, std::size_t N, std::size_t C, std::size_t L,
                        double eps) {
    for (std::size_t c = 0; c < C; ++c) {  // channel c: its B = N·L values x[n, c, l], then y
        // μ_B = 1/B Σ x
        double sum = 0.0;
        for (std::size_t n = 0; n < N; ++n) {
            for (std::size_t l = 0; l < L; ++l)
                sum += x[(n * C + c) * L + l];
        }
        const double B = static_cast<double>(N * L);
        mean[c] = fixed_mean ? fixed_mean[c] : sum / B;  // (eval: the running mean instead)
        // σ²_B = 1/B Σ (x − μ_B)²
        double sum_sq = 0.0;
        for (std::size_t n = 0; n < N; ++n) {
            for (std::size_t l = 0; l < L; ++l) {
                const double centred = x[(n * C + c) * L + l] - mean[c];
                sum_sq += centred * centred;
            }
        }
        var[c] = fixed_var ? fixed_var[c] : sum_sq / B;  // (eval: the running variance instead)
        // invstd = 1 / sqrt(σ²_B + ε)
        invstd[c] = 1.0 / std::sqrt(var[c]);

        const double g = gamma ? gamma[c] : 1.0, b = beta ? beta[c] : 0.0;  // γ, β
        for (std::size_t n = 0; n < N; ++n) {
            for (std::size_t l = 0; l < L; ++l) {
                const std::size_t i = (n * C + c) * L + l;         // x[n, c, l]
                const double xhat = (x[i] - mean[c]) * invstd[c];  // x̂ = (x − μ_B)·invstd
                y[i] = static_cast<real>(g * xhat + b);            // y = γ x̂ + β
            }
        }
    }
}

}  // namespace tg::exercises
