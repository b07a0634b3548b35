// tapegrad/nn/init.hpp — weight initialisation, as torch.nn.init.
#pragma once

#include <cstddef>
#include <utility>

#include "tapegrad/random.hpp"
#include "tapegrad/tensor.hpp"

namespace tg::nn::init {

/// (fan_in, fan_out) of a weight [out, in, *kernel]: fan_in = in·prod(kernel),
/// fan_out = out·prod(kernel). Throws for fewer than 2 dimensions.
std::pair<std::size_t, std::size_t> fan_in_and_fan_out(const Shape& weight_shape);

/// The gain PyTorch recommends for leaky_relu with negative slope a: sqrt(2 / (1 + a²)).
double leaky_relu_gain(double a);

/// Fills t with U(lo, hi) samples from gen, in place.
void uniform_(Tensor& t, double lo, double hi, Generator& gen = default_generator());

/// Kaiming (He) uniform, fan_in mode, leaky_relu gain: t ~ U(-bound, bound) with
/// bound = gain · sqrt(3 / fan_in), gain = sqrt(2 / (1 + a²)). PyTorch's Linear and Conv2d
/// use a = sqrt(5), which gives bound = 1 / sqrt(fan_in).
void kaiming_uniform_(Tensor& t, double a = 0.0, Generator& gen = default_generator());

}  // namespace tg::nn::init
