#include "tapegrad/nn/init.hpp"

#include <cmath>
#include <stdexcept>

namespace tg::nn::init {

std::pair<std::size_t, std::size_t> fan_in_and_fan_out(const Shape& shape) {
    if (shape.size() < 2) {
        throw std::invalid_argument(
            "init: fan in and fan out can not be computed for a tensor with fewer than 2 "
            "dimensions, got " +
            shape_str(shape));
    }
    std::size_t receptive_field = 1;  // kH·kW for a conv weight [O, C, kH, kW]
    for (std::size_t i = 2; i < shape.size(); ++i)
        receptive_field *= shape[i];
    return {shape[1] * receptive_field, shape[0] * receptive_field};
}

double leaky_relu_gain(double a) {
    return std::sqrt(2.0 / (1.0 + a * a));
}

void uniform_(Tensor& t, double lo, double hi, Generator& gen) {
    // tg::uniform draws the whole array in one go (under the default generator's lock, so a
    // layer built on another thread cannot take numbers from the middle of it).
    t.value() = tg::uniform(t.shape(), lo, hi, gen);
}

void kaiming_uniform_(Tensor& t, double a, Generator& gen) {
    const std::size_t fan_in = fan_in_and_fan_out(t.shape()).first;
    if (fan_in == 0) return;  // PyTorch warns "Initializing zero-element tensors is a no-op"
    // Var[U(-b, b)] = b²/3 = gain² / fan_in  =>  b = gain · sqrt(3 / fan_in)
    const double bound = leaky_relu_gain(a) * std::sqrt(3.0 / static_cast<double>(fan_in));
    uniform_(t, -bound, bound, gen);
}

}  // namespace tg::nn::init
