// batch_norm's argument checks, shared with the fused op that begins with a BatchNorm
// (tg::batch_norm_relu_max_pool2d, ops/fused.cpp), so both refuse the same input with the same
// message, naming the op called. Internal to the library (src/), not part of the API.
#pragma once

#include "tapegrad/tensor.hpp"

namespace tg::detail {

/// Throws std::invalid_argument, the message starting "<op>: ", unless x is [N, C, *], weight,
/// bias, running_mean and running_var are each undefined or [C] (the two statistics defined
/// together), and, when batch statistics are needed (training, or no running statistics), a
/// channel has more than one value (as PyTorch).
void check_batch_norm_args(const char* op, const Tensor& x, const Tensor& weight,
                           const Tensor& bias, const Tensor& running_mean,
                           const Tensor& running_var, bool training);

}  // namespace tg::detail
