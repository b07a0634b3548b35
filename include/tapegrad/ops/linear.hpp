// tapegrad/ops/linear.hpp — the fully connected layer as a function (torch.nn.functional.linear).
#pragma once

#include "tapegrad/tensor.hpp"

namespace tg {

/// y = x W^T + b, with x [*, in], W [out, in] (PyTorch's layout), b [out] or undefined (no
/// bias); y is [*, out]. Usually x is [N, in]; any leading axes are treated as a batch.
/// Gradients: dx = dy W, dW = dy^T x, db = sum over the batch of dy.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = {});

}  // namespace tg
