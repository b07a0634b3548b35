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

/// y = max_pool2d(relu(batch_norm(x, running_mean, running_var, weight, bias, training,
/// momentum, eps)), 2): the conv block BatchNorm, ReLU, 2x2 max-pool (stride 2, no padding).
/// x [N, C, H, W] -> y [N, C, H/2, W/2]; the arguments, the running-statistics update and the
/// errors are batch_norm's (tapegrad/ops/normalization.hpp), the errors naming this op.
///
/// Reference kernels: the three ops one after the other, three tape entries. Fast kernels with
/// batch statistics (training, or no running statistics): a statistics pass, then one pass
/// that normalises, activates and pools (src/ops/kernels/fast/batch_norm_relu_max_pool2d.hpp),
/// two passes back, one tape entry "batch_norm_relu_max_pool2d"; the numbers of the three fast
/// ops bit for bit. Fast kernels normalising with the
/// running statistics (eval): batch_norm then relu_max_pool2d. nn::Sequential calls it for a
/// BatchNorm2d, ReLU, MaxPool2d(2) triple when the fast kernels are in use.
Tensor batch_norm_relu_max_pool2d(const Tensor& x, const Tensor& running_mean,
                                  const Tensor& running_var, const Tensor& weight,
                                  const Tensor& bias, bool training, double momentum, double eps);

}  // namespace tg
