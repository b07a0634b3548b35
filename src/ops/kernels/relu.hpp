// The ReLU kernels, declared once: each signature is a function type both kernel sets implement
// (reference/relu.cpp, fast/relu.cpp). An op calls the set in use through kernel_set.hpp.
#pragma once

#include <cstddef>

#include "tapegrad/config.hpp"

namespace tg::kernels {

/// y = max(x, 0) over n values.
using ReluForwardKernel = void(real* y, const real* x, std::size_t n);
/// dx = dy where y > 0, else 0, over n values (relu'(0) = 0, as in PyTorch).
using ReluBackwardKernel = void(real* dx, const real* dy, const real* y, std::size_t n);

/// This pair's row of a kernel set (kernel_set.hpp): a pointer to each kernel.
struct ReluKernels {
    ReluForwardKernel* relu_forward;
    ReluBackwardKernel* relu_backward;
};

// Both kernel sets declare the pair's kernels and their own row of it (reference::relu_kernels(),
// fast::relu_kernels()): written once here, expanded in each set's namespace.
#define TG_KERNELS_RELU                       \
    ReluForwardKernel relu_forward;           \
    ReluBackwardKernel relu_backward;         \
    constexpr ReluKernels relu_kernels() {    \
        return {relu_forward, relu_backward}; \
    }

namespace reference {
TG_KERNELS_RELU
}  // namespace reference

namespace fast {
TG_KERNELS_RELU
}  // namespace fast

#undef TG_KERNELS_RELU

}  // namespace tg::kernels
