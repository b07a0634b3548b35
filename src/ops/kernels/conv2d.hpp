// The conv2d kernels, declared once: each signature is a function type both kernel sets
// implement (reference/conv2d.cpp; fast/conv2d.cpp, whose own extras are in fast/conv2d.hpp).
// An op calls the set in use through kernel_set.hpp.
#pragma once

#include "shapes.hpp"
#include "tapegrad/config.hpp"

namespace tg::kernels {

/// y [N, O, OH, OW] = conv2d(x [N, C, H, W], weight [O, C, kH, kW]) + bias [O]
/// (bias may be null: no bias).
using Conv2dForwardKernel = void(real* y, const real* x, const real* weight, const real* bias,
                                 const Conv2dShape& s);

/// From dy [N, O, OH, OW]: dx [N, C, H, W], dweight [O, C, kH, kW], dbias [O], each written
/// (not accumulated), each may be null (not wanted).
using Conv2dBackwardKernel = void(real* dx, real* dweight, real* dbias, const real* dy,
                                  const real* x, const real* weight, const Conv2dShape& s);

/// This pair's row of a kernel set (kernel_set.hpp): a pointer to each kernel.
struct Conv2dKernels {
    Conv2dForwardKernel* conv2d_forward;
    Conv2dBackwardKernel* conv2d_backward;
};

// Both kernel sets declare the pair's kernels and their own row of it (reference::conv2d_kernels(),
// fast::conv2d_kernels()): written once here, expanded in each set's namespace.
#define TG_KERNELS_CONV2D                         \
    Conv2dForwardKernel conv2d_forward;           \
    Conv2dBackwardKernel conv2d_backward;         \
    constexpr Conv2dKernels conv2d_kernels() {    \
        return {conv2d_forward, conv2d_backward}; \
    }

namespace reference {
TG_KERNELS_CONV2D
}  // namespace reference

namespace fast {
TG_KERNELS_CONV2D
}  // namespace fast

#undef TG_KERNELS_CONV2D

}  // namespace tg::kernels
