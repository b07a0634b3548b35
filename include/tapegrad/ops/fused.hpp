// tapegrad/ops/fused.hpp — two ops in one, where the fast kernels can do the pair in one pass.
// With the reference kernels each is literally the chapter's two ops, one after the other.
#pragma once

#include "tapegrad/tensor.hpp"

namespace tg {

/// y = max_pool2d(relu(x), 2): ReLU, then max-pooling over 2x2 windows with stride 2 and no
/// padding. x [N, C, H, W] -> y [N, C, H/2, W/2] (H/2, W/2 rounded down, as max_pool2d does).
///
/// Reference kernels: `max_pool2d(relu(x), 2)`, two tape entries. Fast kernels: one pass each
/// way (src/ops/kernels/fast/relu_max_pool2d.hpp) and one tape entry, "relu_max_pool2d".
/// The numbers are the same: ReLU is monotone, so max(relu(a), relu(b), ...) =
/// relu(max(a, b, ...)), and the gradient goes to the same input (the first maximum of the
/// window, where it is > 0). nn::Sequential calls it for a ReLU followed by MaxPool2d(2) when
/// the fast kernels are in use.
Tensor relu_max_pool2d(const Tensor& x);

}  // namespace tg
