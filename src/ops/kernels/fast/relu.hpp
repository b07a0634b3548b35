// Fast ReLU kernels (see relu.cpp).
#pragma once

#include <cstddef>

#include "tapegrad/config.hpp"

namespace tg::kernels::fast {

/// y = max(x, 0) over n values.
void relu_forward(real* y, const real* x, std::size_t n);
/// dx = dy where y > 0, else 0, over n values (relu'(0) = 0, as in PyTorch).
void relu_backward(real* dx, const real* dy, const real* y, std::size_t n);

}  // namespace tg::kernels::fast
