// linear's kernels: one GEMM each way (detail::gemm, OpenBLAS single-threaded). There is no
// reference/fast pair: the loops are BLAS's, and tapegrad's own code is the bias loop.
#pragma once

#include <cstddef>

#include "tapegrad/config.hpp"

namespace tg::kernels {

/// Y = X Wᵀ + b for X [M, in], W [out, in], b [out] (null: no bias); writes y [M, out].
void linear_forward(real* y, const real* x, const real* weight, const real* bias, std::size_t M,
                    std::size_t in, std::size_t out);

/// Backward from dY [M, out]: dX [M, in] = dY W, dW [out, in] = dYᵀ X, db [out] = Σ_m dY[m, :].
/// dx, dweight, dbias may each be null (not wanted).
void linear_backward(real* dx, real* dweight, real* dbias, const real* dy, const real* x,
                     const real* weight, std::size_t M, std::size_t in, std::size_t out);

}  // namespace tg::kernels
