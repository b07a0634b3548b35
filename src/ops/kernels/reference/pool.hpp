// Reference max and average pooling kernels (see pool.cpp).
#pragma once

#include <cstddef>

#include "../shapes.hpp"
#include "tapegrad/config.hpp"

namespace tg::kernels::reference {

/// Max pooling of x [planes, H, W] into y [planes, OH, OW]; argmax [planes, OH, OW] receives
/// the flat index into x of each output's maximum (the first in scan order; a NaN wins).
void max_pool2d_forward(real* y, std::size_t* argmax, const real* x, const Pool2dShape& s);
/// dx [planes, H, W] = 0, then dx[argmax[t]] += dy[t] for every output t.
void max_pool2d_backward(real* dx, const real* dy, const std::size_t* argmax, const Pool2dShape& s);

/// Average pooling (count_include_pad: the divisor is always k²).
void avg_pool2d_forward(real* y, const real* x, const Pool2dShape& s);
/// dx [planes, H, W] = 0, then dx[r, c] += dy[i, j] / k² for every (r, c) in window (i, j).
void avg_pool2d_backward(real* dx, const real* dy, const Pool2dShape& s);

}  // namespace tg::kernels::reference
