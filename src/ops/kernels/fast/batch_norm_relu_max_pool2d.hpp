// Training-mode BatchNorm, then ReLU, then 2x2 max-pooling (stride 2, no
// padding): the conv block of the chapter's CNNs, in one kernel pair. The fast
// kernels of tg::batch_norm_relu_max_pool2d (ops/fused.cpp), which
// nn::Sequential calls for a BatchNorm2d, ReLU, MaxPool2d(2) triple when the
// fast kernels are in use (docs/performance.md, "BatchNorm + ReLU + max-pool in
// one pass").
//
// Unfused, the block writes z = BN(x) in full, reads it back for the pool, and
// in backward writes dz in full (three quarters zeros) and reads it back for
// BN's two passes. Fused, each pass goes over the planes [n, c] in memory
// order, the threads taking consecutive planes (a split by channel read each
// channel's planes C·H·W apart, runs of 2.7 KB or 0.5 KB in the benchmark's
// CNN, and ran at a fraction of the cache's rate at batch 512):
// Forward pass 1: each plane's partial sums of x − K (K = its channel's first value) and their
//   squares, kept per plane, then added up per channel in plane order: μ_B, σ²_B (reads x).
// Forward pass 2, plane by plane: z = γ x̂ + β, each window's maximum, relu, and one byte per
//   output: the window position of the maximum, and whether relu passes a gradient (reads x,
//   writes the quarter-size y and the bytes). With four or more windows per row (OW >= 4: the
//   benchmark's 13 and 5) in blocks of four windows of one window row, straight from x in
//   vector registers, a row's last block overlapping the one before; with fewer, or for a
//   plane holding a NaN, through a one-plane buffer per thread holding the windows' top rows
//   apart from their bottom rows, so that the pool is one loop over the plane's windows.
// Backward pass 1, plane by plane: dz (g at each window's maximum where y > 0, 0 elsewhere) into
//   a one-plane buffer per thread (OW >= 4: block by block from g and the bytes; else through
//   the split layout and row copies), then the plane's partial sums of dz and dz·x̂, added up
//   per channel as in the forward (reads g, the bytes and x).
// Backward pass 2, plane by plane: dz made again, and dx = 1/B · invstd · (B·dx̂ − Σdx̂ −
//   x̂·Σ(dx̂·x̂)) (reads g, the bytes and x, writes dx); with OW >= 8 straight from each block's
//   dz in registers, with fewer windows through the plane buffer. Making dz again reads a
//   quarter of a plane of g and of bytes; keeping it (a version before) wrote and read a
//   whole plane.
// The numbers are those of fast batch_norm_{forward,backward} and
// relu_max_pool2x2_{forward, backward}, bit for bit, at any thread count: the
// same expressions (no FMA contraction: CMakeLists.txt) and the same sums in
// the same order. The pool's rules are relu_max_pool2x2's
// (relu_max_pool2d.hpp): the first maximum of the window, and a window holding
// a NaN takes its last NaN, as max_pool2d does.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tapegrad/config.hpp"

namespace tg::kernels::fast {

/// Added to a window byte when the window's maximum m is <= 0: relu's output y
/// = 0, which passes no gradient (a NaN maximum passes it, as relu's backward
/// does).
inline constexpr std::uint8_t kNoGradient = 4;

/// Forward over x [N, C, H, W], normalised with its batch statistics
/// (training): y [N, C, H/2, W/2] = max_pool2d(relu(γ x̂ + β), 2) (H, W floored
/// to even as max_pool2d does); window[o] = the position 0..3 of output o's
/// maximum in its 2x2 window (row-major: 2·r + c), plus kNoGradient where y[o]
/// <= 0; mean, var (biased), invstd [C] as batch_norm_forward writes them.
/// gamma/beta [C] may be null (γ = 1, β = 0). Planes are split between
/// tg::num_threads() threads (the numbers do not depend on the thread count).
/// H, W ≥ 2.
void batch_norm_relu_max_pool2x2_forward(real* y, std::uint8_t* window, double* mean, double* var,
                                         double* invstd, const real* x, const real* gamma,
                                         const real* beta, std::size_t N, std::size_t C,
                                         std::size_t H, std::size_t W, double eps);

/// Backward from g [N, C, H/2, W/2] = ∂L/∂y: dx [N, C, H, W], dgamma [C], dbeta
/// [C] (each may be null: not wanted; dx is overwritten). window, mean, invstd
/// are the forward's.
void batch_norm_relu_max_pool2x2_backward(real* dx, real* dgamma, real* dbeta, const real* g,
                                          const std::uint8_t* window, const real* x,
                                          const double* mean, const double* invstd,
                                          const real* gamma, std::size_t N, std::size_t C,
                                          std::size_t H, std::size_t W);

}  // namespace tg::kernels::fast
