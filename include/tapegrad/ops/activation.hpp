// tapegrad/ops/activation.hpp — element-wise non-linearities.
#pragma once

#include "tapegrad/tensor.hpp"

namespace tg {

/// y = max(x, 0). dy/dx = 1 where x > 0, else 0 (0 at x = 0, as PyTorch).
Tensor relu(const Tensor& x);

}  // namespace tg
