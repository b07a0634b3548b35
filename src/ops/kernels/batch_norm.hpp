// BatchNorm's kernels, declared once: each signature is a function type both kernel sets
// implement, reference/batch_norm.cpp (the chapter's equations as plain loops) and
// fast/batch_norm.cpp (the same numbers with lanes, fused passes and threads). An op calls the
// set in use through kernel_set.hpp: kernels::in_use->batch_norm_forward(...).
#pragma once

#include <cstddef>

#include "tapegrad/config.hpp"

namespace tg::kernels {

/// BatchNorm forward over x [N, C, L] (L = H·W, 1 for [N, C]); channel c is one set of
/// B = N·L values. Writes y [N, C, L], mean [C], var [C] (biased) and invstd [C].
/// fixed_mean/fixed_var [C]: null to normalise with the batch's statistics μ_B, σ²_B
/// (training), or the running statistics to normalise with (eval).
/// gamma/beta [C] may be null (γ = 1, β = 0).
using BatchNormForwardKernel = void(real* y, double* mean, double* var, double* invstd,
                                    const real* x, const real* gamma, const real* beta,
                                    const real* fixed_mean, const real* fixed_var, std::size_t N,
                                    std::size_t C, std::size_t L, double eps);

/// BatchNorm backward from dy [N, C, L]: dx [N, C, L], dgamma [C], dbeta [C] (each may be
/// null: not wanted). mean, invstd [C] are the forward's; batch_stats says whether they were
/// the batch's own (then dx goes through μ_B and σ²_B) or fixed running statistics.
using BatchNormBackwardKernel = void(real* dx, real* dgamma, real* dbeta, const real* dy,
                                     const real* x, const double* mean, const double* invstd,
                                     const real* gamma, std::size_t N, std::size_t C, std::size_t L,
                                     bool batch_stats);

/// This pair's row of a kernel set (kernel_set.hpp): a pointer to each kernel.
struct BatchNormKernels {
    BatchNormForwardKernel* batch_norm_forward;
    BatchNormBackwardKernel* batch_norm_backward;
};

// Both kernel sets declare the pair's kernels and their own row of it
// (reference::batch_norm_kernels(), fast::batch_norm_kernels()): written once here, expanded in
// each set's namespace.
#define TG_KERNELS_BATCH_NORM                             \
    BatchNormForwardKernel batch_norm_forward;            \
    BatchNormBackwardKernel batch_norm_backward;          \
    constexpr BatchNormKernels batch_norm_kernels() {     \
        return {batch_norm_forward, batch_norm_backward}; \
    }

namespace reference {
TG_KERNELS_BATCH_NORM

/// The running statistics after one training step on a batch of B values per channel:
///     running_mean = (1 − momentum)·running_mean + momentum·μ_B
///     running_var  = (1 − momentum)·running_var  + momentum·σ²_B·B/(B − 1)   (unbiased)
/// running_mean, running_var [C] are updated in place; mean, var [C] are the batch's μ_B and
/// (biased) σ²_B. B ≥ 2. The one update there is: batch_norm, instance_norm and
/// tg::dist::sync_batch_norm call it whatever kernels are in use.
void batch_norm_update_running(real* running_mean, real* running_var, const double* mean,
                               const double* var, std::size_t C, std::size_t B, double momentum);
}  // namespace reference

namespace fast {
TG_KERNELS_BATCH_NORM
}  // namespace fast

#undef TG_KERNELS_BATCH_NORM

}  // namespace tg::kernels
