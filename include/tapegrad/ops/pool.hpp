// tapegrad/ops/pool.hpp — 2-D max and average pooling (torch.nn.functional.max_pool2d,
// avg_pool2d) over square windows, ceil_mode = false.
#pragma once

#include <cstddef>

#include "tapegrad/tensor.hpp"

namespace tg {

/// y[n, c, i, j] = max over the k x k window at (i s - pad, j s - pad) of x[n, c] (padding
/// counts as -inf, so it is never chosen). x [N, C, H, W] -> y [N, C, OH, OW] with
/// OH = floor((H + 2 pad - k) / s) + 1. stride 0 means stride = kernel (PyTorch's None);
/// pad <= k / 2. Backward: dx[argmax of each window] += dy (the first maximum on ties).
Tensor max_pool2d(const Tensor& x, std::size_t kernel, std::size_t stride = 0,
                  std::size_t padding = 0);

/// y[n, c, i, j] = (1 / k^2) sum over the k x k window at (i s - pad, j s - pad) of x[n, c],
/// padding counted as zeros (count_include_pad = true). Shapes and arguments as max_pool2d.
/// Backward: every input in a window receives dy / k^2.
Tensor avg_pool2d(const Tensor& x, std::size_t kernel, std::size_t stride = 0,
                  std::size_t padding = 0);

}  // namespace tg
