// The kernels of layer, group, instance and RMS norm, "normalise a set" pairs, declared once:
// each signature is a function type both kernel sets implement (reference/normalize_sets.cpp,
// fast/normalize_sets.cpp). An op calls the set in use through kernel_set.hpp.
#pragma once

#include <cstddef>

#include "tapegrad/config.hpp"

namespace tg::kernels {

/// Normalises R sets of B = K·L contiguous values, x [R, K, L], each with its own μ, σ²:
///     y[r, k, l] = γ_p x̂[r, k, l] + β_p,   p = (r mod G)·K + k   (G·K affine parameters)
///   layer_norm     R = rows, G = 1, K = D (normalized size), L = 1:   p = the position in the row
///   group_norm     R = N·G,  G groups, K = C/G channels, L = H·W:   p = the channel
///   instance_norm  R = N·C,  G = C,   K = 1,             L = H·W:   p = the channel
/// Writes y [R, K, L], mean [R], var [R] (biased), invstd [R]. fixed_mean/fixed_var [G]: null to
/// use each set's own statistics, else set r is normalised with fixed_mean[r mod G] (instance
/// norm's running statistics). gamma/beta [G·K] may be null (γ = 1, β = 0).
using NormalizeSetsForwardKernel = void(real* y, double* mean, double* var, double* invstd,
                                        const real* x, const real* gamma, const real* beta,
                                        const real* fixed_mean, const real* fixed_var,
                                        std::size_t R, std::size_t G, std::size_t K, std::size_t L,
                                        double eps);

/// Its backward from dy [R, K, L]: dx [R, K, L], dgamma [G·K], dbeta [G·K] (each may be null:
/// not wanted). set_stats: mean and invstd were each set's own (then dx goes through them), or
/// fixed.
using NormalizeSetsBackwardKernel = void(real* dx, real* dgamma, real* dbeta, const real* dy,
                                         const real* x, const double* mean, const double* invstd,
                                         const real* gamma, std::size_t R, std::size_t G,
                                         std::size_t K, std::size_t L, bool set_stats);

/// RMS norm of R rows of D values, x [R, D]: scaled by the root mean square, not centred:
///     invrms[r] = 1 / sqrt(1/D Σ_d x[r, d]² + ε)
///     y[r, d]   = γ_d · x[r, d] · invrms[r]          (gamma [D] may be null: γ = 1)
/// Writes y [R, D] and invrms [R].
using RmsNormForwardKernel = void(real* y, double* invrms, const real* x, const real* gamma,
                                  std::size_t R, std::size_t D, double eps);

/// Its backward from dy [R, D]: dx [R, D] and dgamma [D] (each may be null: not wanted).
using RmsNormBackwardKernel = void(real* dx, real* dgamma, const real* dy, const real* x,
                                   const double* invrms, const real* gamma, std::size_t R,
                                   std::size_t D);

/// This pair's row of a kernel set (kernel_set.hpp): a pointer to each kernel.
struct NormalizeSetsKernels {
    NormalizeSetsForwardKernel* normalize_sets_forward;
    NormalizeSetsBackwardKernel* normalize_sets_backward;
    RmsNormForwardKernel* rms_norm_forward;
    RmsNormBackwardKernel* rms_norm_backward;
};

// Both kernel sets declare the pair's kernels and their own row of it
// (reference::normalize_sets_kernels(), fast::normalize_sets_kernels()): written once here,
// expanded in each set's namespace.
#define TG_KERNELS_NORMALIZE_SETS                                                  \
    NormalizeSetsForwardKernel normalize_sets_forward;                             \
    NormalizeSetsBackwardKernel normalize_sets_backward;                           \
    RmsNormForwardKernel rms_norm_forward;                                         \
    RmsNormBackwardKernel rms_norm_backward;                                       \
    constexpr NormalizeSetsKernels normalize_sets_kernels() {                      \
        return {normalize_sets_forward, normalize_sets_backward, rms_norm_forward, \
                rms_norm_backward};                                                \
    }

namespace reference {
TG_KERNELS_NORMALIZE_SETS
}  // namespace reference

namespace fast {
TG_KERNELS_NORMALIZE_SETS
}  // namespace fast

#undef TG_KERNELS_NORMALIZE_SETS

}  // namespace tg::kernels
