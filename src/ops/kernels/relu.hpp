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

namespace reference {
ReluForwardKernel relu_forward;
ReluBackwardKernel relu_backward;
constexpr ReluKernels relu_kernels() {
    return {relu_forward, relu_backward};
}
}  // namespace reference

namespace fast {
ReluForwardKernel relu_forward;
ReluBackwardKernel relu_backward;
constexpr ReluKernels relu_kernels() {
    return {relu_forward, relu_backward};
}
}  // namespace fast

}  // namespace tg::kernels
