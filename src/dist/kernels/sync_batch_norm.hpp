// The kernels of sync_batch_norm (src/dist/sync_batchnorm.cpp), in two versions with one
// signature: reference/ (plain loops that read like the chapter's equations, sums in double)
// and fast/ (the loops the core's batch_norm uses: channels split between threads, sums in
// interleaved partial sums). tg::set_kernels (tapegrad/kernels.hpp) picks which the op calls.
//
// x, dy, y, dx are [N, C, L] (L = H·W, 1 for [N, C]): channel c of example n is the run of L
// values at (n·C + c)·L. Per-channel arrays have C entries. This rank holds N rows; B (where
// it appears) is the global count of values per channel, Σ_ranks N_rank·L.
#pragma once

#include <cstddef>

#include "tapegrad/config.hpp"

namespace tg::dist::kernels {

namespace reference {
/// This rank's mean and M2 = Σ (x − mean)² per channel, over its n = N·L values.
void local_moments(const real* x, std::size_t N, std::size_t C, std::size_t L, double* mean,
                   double* m2);
/// y = γ (x − μ) · invstd + β per channel; gamma/beta may be null (γ = 1, β = 0).
void normalize(const real* x, std::size_t N, std::size_t C, std::size_t L, const double* mean,
               const double* invstd, const real* gamma, const real* beta, real* y);
/// This rank's Σdy and Σdy·x̂ per channel (its dβ and dγ, and what is all-reduced).
void backward_reduce(const real* x, const real* dy, std::size_t N, std::size_t C, std::size_t L,
                     const double* mean, const double* invstd, double* sum_dy, double* sum_dy_xhat);
/// dx = 1/B · invstd · (B·dx̂ − Σdx̂ − x̂·Σ(dx̂·x̂)) with dx̂ = γ dy and the sums over all ranks:
/// Σdx̂ = γ Σdy, Σ(dx̂·x̂) = γ Σ(dy·x̂); gamma may be null (γ = 1).
void backward_dx(const real* x, const real* dy, std::size_t N, std::size_t C, std::size_t L,
                 const double* mean, const double* invstd, const real* gamma, const double* sum_dy,
                 const double* sum_dy_xhat, double B, real* dx);
}  // namespace reference

// The same kernels, fast.
namespace fast {
/// This rank's mean and M2 = Σ (x − mean)² per channel, over its n = N·L values.
void local_moments(const real* x, std::size_t N, std::size_t C, std::size_t L, double* mean,
                   double* m2);
/// y = γ (x − μ) · invstd + β per channel; gamma/beta may be null (γ = 1, β = 0).
void normalize(const real* x, std::size_t N, std::size_t C, std::size_t L, const double* mean,
               const double* invstd, const real* gamma, const real* beta, real* y);
/// This rank's Σdy and Σdy·x̂ per channel (its dβ and dγ, and what is all-reduced).
void backward_reduce(const real* x, const real* dy, std::size_t N, std::size_t C, std::size_t L,
                     const double* mean, const double* invstd, double* sum_dy, double* sum_dy_xhat);
/// dx = 1/B · invstd · (B·dx̂ − Σdx̂ − x̂·Σ(dx̂·x̂)) with dx̂ = γ dy and the sums over all ranks:
/// Σdx̂ = γ Σdy, Σ(dx̂·x̂) = γ Σ(dy·x̂); gamma may be null (γ = 1).
void backward_dx(const real* x, const real* dy, std::size_t N, std::size_t C, std::size_t L,
                 const double* mean, const double* invstd, const real* gamma, const double* sum_dy,
                 const double* sum_dy_xhat, double B, real* dx);
}  // namespace fast

}  // namespace tg::dist::kernels
