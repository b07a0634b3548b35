// BatchNorm as the chapter writes it, one channel at a time, one thread.
//
// x is [N, C, L] (L = H·W). Channel c is one set of B = N·L values x_i = x[n, c, l]:
//
//     μ_B  = 1/B Σ x_i                    the batch mean
//     σ²_B = 1/B Σ (x_i − μ_B)²           the batch variance (biased)
//     invstd = 1 / sqrt(σ²_B + ε)
//     x̂_i  = (x_i − μ_B) · invstd         normalised
//     y_i  = γ x̂_i + β                    scaled and shifted
//
// Sums are accumulated in double, in two passes (first μ_B, then σ²_B around it), so they are
// exact after rounding to float for any data a network produces; the fast kernels
// (kernels/fast/batch_norm.cpp) are tested against these.
//
// In eval mode the running statistics take the place of μ_B and σ²_B. The forward still sums
// the batch first (the reference kernel is for reading, not speed): then `step` from
// tg::batch_norm reaches the sum for μ_B in a few steps, without a branch on the way.
#include "../batch_norm.hpp"

#include <cmath>

namespace tg::kernels::reference {

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
        invstd[c] = 1.0 / std::sqrt(var[c] + eps);

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

// PyTorch's convention: momentum is the weight of the *new* batch (Keras's is the weight of the
// old estimate), and the running variance estimates the population's, so it takes the
// unbiased σ²_B·B/(B − 1) although the batch was normalised with the biased σ²_B.
void batch_norm_update_running(real* running_mean, real* running_var, const double* mean,
                               const double* var, std::size_t C, std::size_t B, double momentum) {
    const double Bd = static_cast<double>(B);
    for (std::size_t c = 0; c < C; ++c) {
        // running_mean = (1 − momentum)·running_mean + momentum·μ_B
        running_mean[c] =
            static_cast<real>((1.0 - momentum) * running_mean[c] + momentum * mean[c]);
        // running_var = (1 − momentum)·running_var + momentum·σ²_B·B/(B − 1)
        running_var[c] = static_cast<real>((1.0 - momentum) * running_var[c] +
                                           momentum * var[c] * Bd / (Bd - 1.0));
    }
}

// Backward. With dx̂ = dy·γ (y = γ x̂ + β), per channel:
//
//     dβ = Σ dy        dγ = Σ dy·x̂
//
// and, when μ_B and σ²_B are the batch's own (both depend on every x of the channel),
//
//     dx = 1/B · invstd · (B·dx̂ − Σdx̂ − x̂·Σ(dx̂·x̂))
//                          term 1  term 2  term 3
//
// term 1 is the direct path x → x̂, term 2 the path through μ_B, term 3 the path through σ²_B.
// With fixed running statistics y is affine in x: dx = dy·γ·invstd.
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
                const double term1 = B * dxhat;              // B·dx̂
                const double term2 = sum_dxhat;              // Σdx̂
                const double term3 = xhat * sum_dxhat_xhat;  // x̂·Σ(dx̂·x̂)
                dx[i] = static_cast<real>(invstd[c] / B * (term1 - term2 - term3));
            }
        }
    }
}

}  // namespace tg::kernels::reference
