#include "tapegrad/nn/linear.hpp"

#include <cmath>

#include "tapegrad/nn/init.hpp"
#include "tapegrad/ops/linear.hpp"

namespace tg::nn {

Linear::Linear(std::size_t in, std::size_t out, LinearOptions options)
    : in_features(in), out_features(out) {
    weight = register_parameter("weight", Tensor::zeros({out, in}));
    if (options.bias) bias = register_parameter("bias", Tensor::zeros({out}));
    reset_parameters(options.generator ? *options.generator : default_generator());
}

void Linear::reset_parameters(Generator& gen) {
    init::kaiming_uniform_(weight, std::sqrt(5.0), gen);
    if (bias.defined()) {
        const double fan_in = static_cast<double>(in_features);
        const double bound = fan_in > 0 ? 1.0 / std::sqrt(fan_in) : 0.0;
        init::uniform_(bias, -bound, bound, gen);
    }
}

Tensor Linear::forward(const Tensor& x) {
    return linear(x, weight, bias);
}

std::string Linear::extra_repr() const {
    return "in_features=" + std::to_string(in_features) +
           ", out_features=" + std::to_string(out_features) +
           ", bias=" + (has_parameter("bias") ? "True" : "False");
}

}  // namespace tg::nn
