// The max and average pooling kernels, declared once: each signature is a function type both
// kernel sets implement (reference/pool.cpp, fast/pool.cpp). An op calls the set in use through
// kernel_set.hpp.
#pragma once

#include <cstddef>

#include "shapes.hpp"
#include "tapegrad/config.hpp"

namespace tg::kernels {

/// Max pooling of x [planes, H, W] into y [planes, OH, OW]; argmax [planes, OH, OW] receives
/// the flat index into x of each output's maximum (the first in scan order; a NaN wins).
using MaxPool2dForwardKernel = void(real* y, std::size_t* argmax, const real* x,
                                    const Pool2dShape& s);
/// dx [planes, H, W] = 0, then dx[argmax[t]] += dy[t] for every output t.
using MaxPool2dBackwardKernel = void(real* dx, const real* dy, const std::size_t* argmax,
                                     const Pool2dShape& s);

/// Average pooling (count_include_pad: the divisor is always k²).
using AvgPool2dForwardKernel = void(real* y, const real* x, const Pool2dShape& s);
/// dx [planes, H, W] = 0, then dx[r, c] += dy[i, j] / k² for every (r, c) in window (i, j).
using AvgPool2dBackwardKernel = void(real* dx, const real* dy, const Pool2dShape& s);

/// This pair's row of a kernel set (kernel_set.hpp): a pointer to each kernel.
struct PoolKernels {
    MaxPool2dForwardKernel* max_pool2d_forward;
    MaxPool2dBackwardKernel* max_pool2d_backward;
    AvgPool2dForwardKernel* avg_pool2d_forward;
    AvgPool2dBackwardKernel* avg_pool2d_backward;
};

// Both kernel sets declare the pair's kernels and their own row of it (reference::pool_kernels(),
// fast::pool_kernels()): written once here, expanded in each set's namespace.
#define TG_KERNELS_POOL                                                                            \
    MaxPool2dForwardKernel max_pool2d_forward;                                                     \
    MaxPool2dBackwardKernel max_pool2d_backward;                                                   \
    AvgPool2dForwardKernel avg_pool2d_forward;                                                     \
    AvgPool2dBackwardKernel avg_pool2d_backward;                                                   \
    constexpr PoolKernels pool_kernels() {                                                         \
        return {max_pool2d_forward, max_pool2d_backward, avg_pool2d_forward, avg_pool2d_backward}; \
    }

namespace reference {
TG_KERNELS_POOL
}  // namespace reference

namespace fast {
TG_KERNELS_POOL
}  // namespace fast

#undef TG_KERNELS_POOL

}  // namespace tg::kernels
