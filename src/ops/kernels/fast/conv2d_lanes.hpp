// Convolution kernels with SIMD lanes across channels, for layers with few channels (the
// chapter's conv1, C = 1, O = 6 or 8; conv2, C = 6 or 8, O = 16). The maths is
// conv2d_direct.hpp's:
//   y[n, o, i, j]   = b[o] + sum_{c, p, q} W[o, c, p, q] x[n, c, i + p - pad, j + q - pad]
//   dW[o, c, p, q] += sum_{n, i, j} g[n, o, i, j] x[n, c, i + p - pad, j + q - pad]
//   db[o]          += sum_{n, i, j} g[n, o, i, j]
//   dx[n, c, h, w]  = sum_{o, p, q} W[o, c, p, q] g[n, o, h + pad - p, w + pad - q]
// What differs is the layout of the work. The direct kernels put SIMD lanes across output
// positions; these put them across the channels, where there are few of them:
//   forward: y at a row of up to 12 pixels, each a vector of lanes across o (one or two
//     vectors), sums W[:, c, p, q] (a vector across o) times one broadcast x per pixel; the
//     pixels come out with their channels last and are transposed to [O, OH, OW] by V x V
//     blocks. Every output pixel is computed (the direct kernels also compute the W + 2 pad
//     - OW positions per row that are not outputs).
//   weight gradient: dW is a product G [O, L] x X [L, C kH kW] summed over the L output
//     positions; a register tile holds dW for all O filters (one or two vectors of lanes
//     across o) x a few taps (c, p, q), and each position adds one vector of g times one
//     broadcast x per tap. No lanes are summed at the end and no position is wasted.
//   input gradient: the forward kernel's convolution of g padded by k - 1 - pad with the
//     filters turned 180 degrees, lanes across c.
// Stride 1, as the direct kernels. Numbers are the same at any thread count: dW and db are
// summed per fixed block of kImagesPerBlock images and the blocks added in order; every y and
// dx value is computed by one thread in an order fixed by the shape.
#pragma once

#include <cstddef>

#include "conv2d_direct.hpp"
#include "tapegrad/config.hpp"

namespace tg::kernels::fast {

/// True if conv2d_lanes_backward_weight takes this layer: conv2d_direct_supports (stride 1,
/// padding < kernel) and at most two SIMD registers of filters (O <= 16 with AVX2).
bool conv2d_lanes_weight_supports(const DirectConvShape& s, std::size_t stride);

/// True if conv2d_lanes_backward_input takes this layer: as above, with C <= two registers.
bool conv2d_lanes_input_supports(const DirectConvShape& s, std::size_t stride);

/// True if conv2d_lanes_forward takes this layer: as above, with O <= two registers.
bool conv2d_lanes_forward_supports(const DirectConvShape& s, std::size_t stride);

/// y [N, O, OH, OW] = conv(x [N, C, H, W], W [O, C, kH, kW]) + b [O] (b may be null).
void conv2d_lanes_forward(const DirectConvShape& s, const real* x, const real* w, const real* b,
                          real* y);

/// dW [O, C, kH, kW] += the weight gradient, db [O] += the bias gradient (either may be null),
/// summed over the N images of x [N, C, H, W] and g [N, O, OH, OW].
void conv2d_lanes_backward_weight(const DirectConvShape& s, const real* x, const real* g, real* dw,
                                  real* db);

/// dx [N, C, H, W] = the input gradient from g [N, O, OH, OW] (overwritten, not added to).
void conv2d_lanes_backward_input(const DirectConvShape& s, const real* g, const real* w, real* dx);

}  // namespace tg::kernels::fast
