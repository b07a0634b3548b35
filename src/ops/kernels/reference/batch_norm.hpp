// Reference BatchNorm kernels: the chapter's equations as plain loops (see batch_norm.cpp).
#pragma once

#include <cstddef>

#include "tapegrad/config.hpp"

namespace tg::kernels::reference {

/// BatchNorm forward over x [N, C, L] (L = H·W, 1 for [N, C]); channel c is one set of
/// B = N·L values. Writes y [N, C, L], mean [C], var [C] (biased) and invstd [C].
/// fixed_mean/fixed_var [C]: null to normalise with the batch's statistics μ_B, σ²_B
/// (training), or the running statistics to normalise with (eval).
/// gamma/beta [C] may be null (γ = 1, β = 0).
void batch_norm_forward(real* y, double* mean, double* var, double* invstd, const real* x,
                        const real* gamma, const real* beta, const real* fixed_mean,
                        const real* fixed_var, std::size_t N, std::size_t C, std::size_t L,
                        double eps);

/// BatchNorm backward from dy [N, C, L]: dx [N, C, L], dgamma [C], dbeta [C] (each may be
/// null: not wanted). mean, invstd [C] are the forward's; batch_stats says whether they were
/// the batch's own (then dx goes through μ_B and σ²_B) or fixed running statistics.
void batch_norm_backward(real* dx, real* dgamma, real* dbeta, const real* dy, const real* x,
                         const double* mean, const double* invstd, const real* gamma, std::size_t N,
                         std::size_t C, std::size_t L, bool batch_stats);

/// The running statistics after one training step with batch statistics mean, var [C]
/// (biased, from batch_norm_forward) over B = N·L values per channel, as PyTorch:
///     running_mean = (1 − momentum)·running_mean + momentum·μ_B
///     running_var  = (1 − momentum)·running_var  + momentum·σ²_B·B/(B − 1)   (unbiased)
void batch_norm_update_running(real* running_mean, real* running_var, const double* mean,
                               const double* var, std::size_t C, std::size_t B, double momentum);

}  // namespace tg::kernels::reference
