// Reference log_softmax and cross_entropy kernels: plain loops in double (see cross_entropy.cpp).
#pragma once

#include <cstddef>
#include <cstdint>

#include "tapegrad/config.hpp"

namespace tg::kernels::reference {

/// log_softmax forward over x seen as [outer, n, inner]: the softmax runs over the n values of
/// each (o, i) pair, which sit `inner` apart. y [outer, n, inner].
void log_softmax_forward(real* y, const real* x, std::size_t outer, std::size_t n,
                         std::size_t inner);

/// log_softmax backward: dx [outer, n, inner] from dy and the forward's y (same layout).
void log_softmax_backward(real* dx, const real* dy, const real* y, std::size_t outer, std::size_t n,
                          std::size_t inner);

/// Cross-entropy forward over logits x [N, C] and class labels targets [N] (each in [0, C)):
/// writes lse [N] (log Σ_c e^(x[n, c]) per row, for the backward) and loss [1], the mean over
/// the rows of lse_n − x[n, t_n].
void cross_entropy_forward(real* loss, double* lse, const real* x, const std::int64_t* targets,
                           std::size_t N, std::size_t C);

/// Cross-entropy backward: dx [N, C] from dloss (the loss's incoming gradient), x and the
/// forward's lse [N].
void cross_entropy_backward(real* dx, real dloss, const real* x, const double* lse,
                            const std::int64_t* targets, std::size_t N, std::size_t C);

}  // namespace tg::kernels::reference
