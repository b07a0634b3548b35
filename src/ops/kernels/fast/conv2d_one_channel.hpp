// Convolution kernels for one input channel (the chapter's conv1: [N, 1, 28, 28] with 8 filters
// of 3x3, or 6 of 5x5 with padding 2): the forward pass and the weight gradient (conv1 has no
// input gradient). The maths is conv2d_direct.hpp's with C = 1:
//   y[n, o, i, j]   = b[o] + sum_{p, q} W[o, 0, p, q] x[n, 0, i + p - pad, j + q - pad]
//   dW[o, 0, p, q] += sum_{n, i, j} g[n, o, i, j] x[n, 0, i + p - pad, j + q - pad]
//   db[o]          += sum_{n, i, j} g[n, o, i, j]
// What differs from the direct kernels is the layout of the work. They compute on a
// "padded-width grid" (Wp columns per output row, Wp - OW of them thrown away) into a buffer,
// then copy the rows out to y. Here SIMD lanes run along one output row, at columns 0, V, 2V,
// ... and, where V does not divide OW, one more vector ending at the last column (OW - V) that
// overlaps the one before it: each output vector is stored straight into y (the overlapping
// lanes get the same numbers twice: same inputs, same order), the input is read in place
// when there is no padding, and no row is copied. The weight gradient runs over each plane of
// g as one flat run of OH OW values (vectors that cross rows), against shifted copies of the
// image cut to rows of OW (see the .cpp); the lanes of its last vector that the vector before
// it covers are left out, so that no position counts twice.
//
// Stride 1, C = 1, OW >= V (one whole vector a row), kW <= kMaxDirectKw. Numbers are the same
// at any thread count: every y value is computed by one thread in an order fixed by the shape;
// dW and db are summed per fixed block of kImagesPerBlock images and the blocks added in order.
#pragma once

#include <cstddef>

#include "conv2d_direct.hpp"
#include "tapegrad/config.hpp"

namespace tg::kernels::fast {

/// True if the one-channel kernels take this convolution: conv2d_direct_supports (stride 1,
/// padding < kernel, kW <= kMaxDirectKw), C = 1 and at least one SIMD vector of output columns.
bool conv2d_one_channel_supports(const DirectConvShape& s, std::size_t stride);

/// y [N, O, OH, OW] = conv(x [N, 1, H, W], W [O, 1, kH, kW]) + b [O] (b may be null).
/// The images are split between tg::num_threads() threads.
void conv2d_one_channel_forward(const DirectConvShape& s, const real* x, const real* w,
                                const real* b, real* y);

/// dW [O, 1, kH, kW] += the weight gradient, db [O] += the bias gradient (either may be null),
/// summed over the N images of x [N, 1, H, W] and g [N, O, OH, OW].
void conv2d_one_channel_backward_weight(const DirectConvShape& s, const real* x, const real* g,
                                        real* dw, real* db);

}  // namespace tg::kernels::fast
