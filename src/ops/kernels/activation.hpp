// The tanh, sigmoid, leaky_relu and gelu kernels, declared once: each signature is a function
// type both kernel sets implement (reference/activation.cpp, fast/activation.cpp). An op calls
// the set in use through kernel_set.hpp. (relu's pair is relu.hpp.)
#pragma once

#include <cstddef>

#include "tapegrad/config.hpp"

namespace tg::kernels {

/// y = f(x) over n values: tanh, σ, or GELU (erf or tanh form).
using ActivationForwardKernel = void(real* y, const real* x, std::size_t n);
/// dx = dy · f'(x) over n values, f' written with the op's output y (tanh: 1 - y², σ: y (1 - y))
/// or with its input x (GELU), as `saved` names.
using ActivationBackwardKernel = void(real* dx, const real* dy, const real* saved, std::size_t n);
/// y = x where x > 0, else a·x, over n values.
using LeakyReluForwardKernel = void(real* y, const real* x, std::size_t n, real negative_slope);
/// dx = dy where x > 0, else a·dy (a at x = 0, as PyTorch), over n values.
using LeakyReluBackwardKernel = void(real* dx, const real* dy, const real* x, std::size_t n,
                                     real negative_slope);

/// This pair's row of a kernel set (kernel_set.hpp): a pointer to each kernel.
struct ActivationKernels {
    ActivationForwardKernel* tanh_forward;
    ActivationBackwardKernel* tanh_backward;  // saved = y
    ActivationForwardKernel* sigmoid_forward;
    ActivationBackwardKernel* sigmoid_backward;  // saved = y
    LeakyReluForwardKernel* leaky_relu_forward;
    LeakyReluBackwardKernel* leaky_relu_backward;
    ActivationForwardKernel* gelu_forward;       // approximate "none": x · ½ (1 + erf(x / √2))
    ActivationBackwardKernel* gelu_backward;     // saved = x
    ActivationForwardKernel* gelu_tanh_forward;  // approximate "tanh"
    ActivationBackwardKernel* gelu_tanh_backward;  // saved = x
};

/// GELU's constants, read by both sets' gelu kernels (their formulas, term by term, are above
/// the reference ones in reference/activation.cpp):
///     approximate "none":  Φ(x) = ½ (1 + erf(x / √2)),  Φ'(x) = φ(x) = e^(-x²/2) / √(2π)
///     approximate "tanh":  Φ(x) ≈ ½ (1 + tanh(u)),      u = √(2/π) (x + κ x³)
namespace gelu_constants {
inline constexpr double inv_sqrt2 = 0.70710678118654752440;       // 1 / √2
inline constexpr double inv_sqrt_2pi = 0.39894228040143267794;    // 1 / √(2π)
inline constexpr double sqrt_2_over_pi = 0.79788456080286535588;  // √(2/π)
inline constexpr double kappa = 0.044715;                         // κ
}  // namespace gelu_constants

// Both kernel sets declare the pair's kernels and their own row of it
// (reference::activation_kernels(), fast::activation_kernels()): written once here, expanded in
// each set's namespace.
#define TG_KERNELS_ACTIVATION                                                                    \
    ActivationForwardKernel tanh_forward, sigmoid_forward, gelu_forward, gelu_tanh_forward;      \
    ActivationBackwardKernel tanh_backward, sigmoid_backward, gelu_backward, gelu_tanh_backward; \
    LeakyReluForwardKernel leaky_relu_forward;                                                   \
    LeakyReluBackwardKernel leaky_relu_backward;                                                 \
    constexpr ActivationKernels activation_kernels() {                                           \
        return {tanh_forward,       tanh_backward,       sigmoid_forward, sigmoid_backward,      \
                leaky_relu_forward, leaky_relu_backward, gelu_forward,    gelu_backward,         \
                gelu_tanh_forward,  gelu_tanh_backward};                                         \
    }

namespace reference {
TG_KERNELS_ACTIVATION
}  // namespace reference

namespace fast {
TG_KERNELS_ACTIVATION
}  // namespace fast

#undef TG_KERNELS_ACTIVATION

}  // namespace tg::kernels
