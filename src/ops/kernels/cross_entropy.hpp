// The log_softmax and cross_entropy kernels, declared once: each signature is a function type
// both kernel sets implement (reference/cross_entropy.cpp: plain loops in double;
// fast/cross_entropy.cpp). An op calls the set in use through kernel_set.hpp.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tapegrad/config.hpp"

namespace tg::kernels {

/// log_softmax forward over x seen as [outer, n, inner]: the softmax runs over the n values of
/// each (o, i) pair, which sit `inner` apart. y [outer, n, inner].
using LogSoftmaxForwardKernel = void(real* y, const real* x, std::size_t outer, std::size_t n,
                                     std::size_t inner);

/// log_softmax backward: dx [outer, n, inner] from dy and the forward's y (same layout).
using LogSoftmaxBackwardKernel = void(real* dx, const real* dy, const real* y, std::size_t outer,
                                      std::size_t n, std::size_t inner);

/// Cross-entropy forward over logits x [N, C] and class labels targets [N] (each in [0, C)):
/// writes lse [N] (log Σ_c e^(x[n, c]) per row, for the backward) and loss [1], the mean over
/// the rows of lse_n − x[n, t_n].
using CrossEntropyForwardKernel = void(real* loss, double* lse, const real* x,
                                       const std::int64_t* targets, std::size_t N, std::size_t C);

/// Cross-entropy backward: dx [N, C] from dloss (the loss's incoming gradient), x and the
/// forward's lse [N].
using CrossEntropyBackwardKernel = void(real* dx, real dloss, const real* x, const double* lse,
                                        const std::int64_t* targets, std::size_t N, std::size_t C);

/// This pair's row of a kernel set (kernel_set.hpp): a pointer to each kernel.
struct CrossEntropyKernels {
    LogSoftmaxForwardKernel* log_softmax_forward;
    LogSoftmaxBackwardKernel* log_softmax_backward;
    CrossEntropyForwardKernel* cross_entropy_forward;
    CrossEntropyBackwardKernel* cross_entropy_backward;
};

// Both kernel sets declare the pair's kernels and their own row of it
// (reference::cross_entropy_kernels(), fast::cross_entropy_kernels()): written once here, expanded
// in each set's namespace.
#define TG_KERNELS_CROSS_ENTROPY                                                  \
    LogSoftmaxForwardKernel log_softmax_forward;                                  \
    LogSoftmaxBackwardKernel log_softmax_backward;                                \
    CrossEntropyForwardKernel cross_entropy_forward;                              \
    CrossEntropyBackwardKernel cross_entropy_backward;                            \
    constexpr CrossEntropyKernels cross_entropy_kernels() {                       \
        return {log_softmax_forward, log_softmax_backward, cross_entropy_forward, \
                cross_entropy_backward};                                          \
    }

namespace reference {
TG_KERNELS_CROSS_ENTROPY
}  // namespace reference

namespace fast {
TG_KERNELS_CROSS_ENTROPY
}  // namespace fast

#undef TG_KERNELS_CROSS_ENTROPY

}  // namespace tg::kernels
