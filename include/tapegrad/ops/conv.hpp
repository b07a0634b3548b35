// tapegrad/ops/conv.hpp — 2-D convolution (torch.nn.functional.conv2d), done as im2col + GEMM.
#pragma once

#include <cstddef>

#include "tapegrad/tensor.hpp"

namespace tg {

/// y[n, o, i, j] = b[o] + sum_{c, p, q} W[o, c, p, q] x[n, c, i*s + p - pad, j*s + q - pad]
/// (a cross-correlation, as in PyTorch; x is zero outside its borders).
/// x [N, C, H, W], W [O, C, kH, kW], b [O] or undefined (no bias); stride s and padding pad
/// are the same along both axes. y is [N, O, OH, OW] with OH = floor((H + 2 pad - kH) / s) + 1
/// and likewise OW.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = {},
              std::size_t stride = 1, std::size_t padding = 0);

}  // namespace tg
