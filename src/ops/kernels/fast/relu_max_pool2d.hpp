// ReLU followed by 2x2 max-pooling (stride 2, no padding) in one pass, the pair that follows
// every BatchNorm in the chapter's CNNs: the fast kernel of tg::relu_max_pool2d (ops/fused.cpp),
// which nn::Sequential calls for a ReLU + MaxPool2d(2) pair when the fast kernels are in use
// (see docs/performance.md, "ReLU + max-pool in one pass").
//
// Why the two may be fused: ReLU is monotone, so it commutes with the maximum,
//   max_pool(relu(x)) = relu(max_pool(x)),
// and the gradient is the same: if the window's maximum m is > 0, relu is the identity on
// the positions equal to m, so the first maximum of relu(x) is the first maximum of x and
// dx there is g; if m <= 0, every relu output is 0, the pool sends g to one of them and
// relu's backward sends 0 on (x <= 0). So one pass reads x once and writes the quarter-size
// y, instead of writing relu(x) in full and reading it again; backward writes dx once.
//
// NaN follows PyTorch's composition: relu(NaN) = NaN, the pool takes a NaN over any number
// (the last NaN of the window, as max_pool2d's general loop), and relu's backward passes g
// where its output is not <= 0, so also at a NaN.
#pragma once

#include <cstddef>

#include "tapegrad/config.hpp"

namespace tg::kernels::fast {

/// y [P, H/2, W/2] = max_pool2d(relu(x), 2) over P planes x [P, H, W] (H, W floored to even
/// as max_pool2d does); argmax[o] = the flat index into x of the maximum output o took (the
/// first of the window's maxima). The planes are split between tg::num_threads() threads.
void relu_max_pool2x2_forward(real* y, std::size_t* argmax, const real* x, std::size_t planes,
                              std::size_t h, std::size_t w);

/// dx [P, H, W] = the gradient of relu_max_pool2x2_forward from g [P, H/2, W/2]: g[o] at
/// argmax[o] where y[o] is not <= 0, 0 everywhere else (dx is overwritten).
void relu_max_pool2x2_backward(real* dx, const real* g, const real* y, const std::size_t* argmax,
                               std::size_t planes, std::size_t h, std::size_t w);

}  // namespace tg::kernels::fast
