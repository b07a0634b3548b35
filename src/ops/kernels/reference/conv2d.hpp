// Reference conv2d kernels (see conv2d.cpp).
#pragma once

#include "../shapes.hpp"
#include "tapegrad/config.hpp"

namespace tg::kernels::reference {

/// y [N, O, OH, OW] = conv2d(x [N, C, H, W], weight [O, C, kH, kW]) + bias [O]
/// (bias may be null: no bias).
void conv2d_forward(real* y, const real* x, const real* weight, const real* bias,
                    const Conv2dShape& s);

/// From dy [N, O, OH, OW]: dx [N, C, H, W], dweight [O, C, kH, kW], dbias [O], each written
/// (not accumulated), each may be null (not wanted).
void conv2d_backward(real* dx, real* dweight, real* dbias, const real* dy, const real* x,
                     const real* weight, const Conv2dShape& s);

}  // namespace tg::kernels::reference
