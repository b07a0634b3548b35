// The kernels of sync_batch_norm (src/dist/sync_batchnorm.cpp), declared once: each signature
// is a function type both kernel sets implement, reference/ (plain loops that read like the
// chapter's equations, sums in double) and fast/ (the loops the core's batch_norm uses: channels
// split between threads, sums in interleaved partial sums). The op calls the set in use, as the
// core's ops do (src/ops/kernels/kernel_set.hpp): a table of pointers per set.
//
// The arguments follow the core kernels' order: outputs, inputs, sizes, then scalars.
// x, dy, y, dx are [N, C, L] (L = H·W, 1 for [N, C]): channel c of example n is the run of L
// values at (n·C + c)·L. Per-channel arrays have C entries. This rank holds N rows; B (where
// it appears) is the global count of values per channel, Σ_ranks N_rank·L.
#pragma once

#include <cstddef>

#include "tapegrad/config.hpp"

namespace tg::dist::kernels {

/// This rank's mean and M2 = Σ (x − mean)² per channel, over its n = N·L values.
using LocalMomentsKernel = void(double* mean, double* m2, const real* x, std::size_t N,
                                std::size_t C, std::size_t L);
/// y = γ (x − μ) · invstd + β per channel; gamma/beta may be null (γ = 1, β = 0).
using NormalizeKernel = void(real* y, const real* x, const double* mean, const double* invstd,
                             const real* gamma, const real* beta, std::size_t N, std::size_t C,
                             std::size_t L);
/// This rank's Σdy and Σdy·x̂ per channel (its dβ and dγ, and what is all-reduced).
using BackwardReduceKernel = void(double* sum_dy, double* sum_dy_xhat, const real* x,
                                  const real* dy, const double* mean, const double* invstd,
                                  std::size_t N, std::size_t C, std::size_t L);
/// dx = 1/B · invstd · (B·dx̂ − Σdx̂ − x̂·Σ(dx̂·x̂)) with dx̂ = γ dy and the sums over all ranks:
/// Σdx̂ = γ Σdy, Σ(dx̂·x̂) = γ Σ(dy·x̂); gamma may be null (γ = 1).
using BackwardDxKernel = void(real* dx, const real* x, const real* dy, const double* mean,
                              const double* invstd, const real* gamma, const double* sum_dy,
                              const double* sum_dy_xhat, std::size_t N, std::size_t C,
                              std::size_t L, double B);

namespace reference {
LocalMomentsKernel local_moments;
NormalizeKernel normalize;
BackwardReduceKernel backward_reduce;
BackwardDxKernel backward_dx;
}  // namespace reference

namespace fast {
LocalMomentsKernel local_moments;
NormalizeKernel normalize;
BackwardReduceKernel backward_reduce;
BackwardDxKernel backward_dx;
}  // namespace fast

/// One kernel set of sync_batch_norm.
struct KernelSet {
    LocalMomentsKernel* local_moments;
    NormalizeKernel* normalize;
    BackwardReduceKernel* backward_reduce;
    BackwardDxKernel* backward_dx;
};

/// The reference kernels and the fast ones (reference/ and fast/sync_batch_norm.cpp).
extern const KernelSet reference_set;
extern const KernelSet fast_set;

}  // namespace tg::dist::kernels
