// tapegrad/ops/activation.hpp — element-wise non-linearities.
#pragma once

#include <string>

#include "tapegrad/tensor.hpp"

namespace tg {

/// y = max(x, 0). dy/dx = 1 where x > 0, else 0 (0 at x = 0, as PyTorch).
Tensor relu(const Tensor& x);

/// y = tanh(x) = (e^x - e^-x) / (e^x + e^-x). dy/dx = 1 - y².
Tensor tanh(const Tensor& x);

/// y = σ(x) = 1 / (1 + e^-x). dy/dx = y (1 - y).
Tensor sigmoid(const Tensor& x);

/// y = x where x > 0, else negative_slope · x. dy/dx = 1 where x > 0, else negative_slope
/// (negative_slope at x = 0, as PyTorch).
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);

/// y = x · Φ(x), Φ the standard normal CDF: approximate "none" computes Φ(x) = ½(1 + erf(x/√2));
/// "tanh" uses ½(1 + tanh(√(2/π)(x + 0.044715 x³))) (PyTorch 1.13's two choices). Any other
/// `approximate` throws std::invalid_argument.
Tensor gelu(const Tensor& x, const std::string& approximate = "none");

}  // namespace tg
