// im2col and col2im: a convolution's input unrolled into a matrix, and back. Both conv2d
// kernels (reference and fast) use them.
#pragma once

#include "shapes.hpp"
#include "tapegrad/config.hpp"

namespace tg::kernels {

/// cols [K, L] from one image x [C, H, W] (K = C·kH·kW, L = OH·OW): row (c, p, q) holds, for
/// every output position (i, j), the pixel x[c, i·s + p − pad, j·s + q − pad] that kernel tap
/// (p, q) multiplies (0 where that falls in the padding).
void im2col(const Conv2dShape& s, const real* x, real* cols);

/// dx [C, H, W] += col2im(dcols [K, L]) for one image: the adjoint of im2col. Each entry of
/// dcols goes back to the pixel im2col copied it from; a pixel seen by several taps sums them.
void col2im(const Conv2dShape& s, const real* dcols, real* dx);

}  // namespace tg::kernels
