#include "tapegrad/nn/linear.hpp"

#include <cmath>

#include "tapegrad/nn/catalog.hpp"
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

// ---- catalog -------------------------------------------------------------------------------

// This file's layers in tg::nn::layer_catalog() (tapegrad/nn/catalog.hpp): an example puts its
// layer in every test that walks the catalog.
std::vector<LayerExample> catalog::linear_layers() {
    return {
        layer<Linear>("Linear(in_features=4, out_features=3, bias=True)", {2, 4},
                      {"weight", "bias"}, 4, 3),
        layer<Linear>("Linear(in_features=3, out_features=2, bias=False)", {2, 3}, {"weight"}, 3, 2,
                      LinearOptions{.bias = false}),
    };
}

}  // namespace tg::nn
