// Convolution backward kernels with SIMD lanes across channels, for layers with few channels
// (the chapter's conv1, C = 1, O = 6 or 8; conv2, C = 6 or 8, O = 16). The maths is
// conv2d_direct.hpp's:
//   dW[o, c, p, q] += sum_{n, i, j} g[n, o, i, j] x[n, c, i + p - pad, j + q - pad]
//   db[o]          += sum_{n, i, j} g[n, o, i, j]
//   dx[n, c, h, w]  = sum_{o, p, q} W[o, c, p, q] g[n, o, h + pad - p, w + pad - q]
// What differs is the layout of the work. The direct kernels put SIMD lanes across output
// positions; these put them across the channels, where there are few of them:
//   weight gradient: dW is a product G [O, L] x X [L, C kH kW] summed over the L output
//     positions; a register tile holds dW for all O filters (one or two vectors of lanes
//     across o) x a few taps (c, p, q), and each position adds one vector of g times one
//     broadcast x per tap. No lanes are summed at the end and no position is wasted.
//   input gradient: dx at a row of up to 12 pixels, each a vector of lanes across c, sums
//     W[o, c, p, q] (a vector across c) times one broadcast g per pixel.
// Stride 1, as the direct kernels. Numbers are the same at any thread count: dW and db are
// summed per fixed block of kImagesPerBlock images and the blocks added in order; every dx
// value is computed by one thread in an order fixed by the shape.
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

/// dW [O, C, kH, kW] += the weight gradient, db [O] += the bias gradient (either may be null),
/// summed over the N images of x [N, C, H, W] and g [N, O, OH, OW].
void conv2d_lanes_backward_weight(const DirectConvShape& s, const real* x, const real* g, real* dw,
                                  real* db);

/// dx [N, C, H, W] = the input gradient from g [N, O, OH, OW] (overwritten, not added to).
void conv2d_lanes_backward_input(const DirectConvShape& s, const real* g, const real* w, real* dx);

}  // namespace tg::kernels::fast
