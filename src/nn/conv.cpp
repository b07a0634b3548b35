#include "tapegrad/nn/conv.hpp"

#include <cmath>
#include <stdexcept>

#include "tapegrad/nn/catalog.hpp"
#include "tapegrad/nn/init.hpp"
#include "tapegrad/ops/conv.hpp"

namespace tg::nn {

Conv2d::Conv2d(std::size_t in, std::size_t out, std::size_t kernel, Conv2dOptions options)
    : in_channels(in),
      out_channels(out),
      kernel_size(kernel),
      stride(options.stride),
      padding(options.padding) {
    if (stride == 0) throw std::invalid_argument("Conv2d: stride must be positive, got 0");
    weight = register_parameter("weight", Tensor::zeros({out, in, kernel, kernel}));
    if (options.bias) bias = register_parameter("bias", Tensor::zeros({out}));
    reset_parameters(options.generator ? *options.generator : default_generator());
}

void Conv2d::reset_parameters(Generator& gen) {
    init::kaiming_uniform_(weight, std::sqrt(5.0), gen);
    if (bias.defined()) {
        const double fan_in = static_cast<double>(init::fan_in_and_fan_out(weight.shape()).first);
        const double bound = fan_in > 0 ? 1.0 / std::sqrt(fan_in) : 0.0;
        init::uniform_(bias, -bound, bound, gen);
    }
}

Tensor Conv2d::forward(const Tensor& x) {
    return conv2d(x, weight, bias, stride, padding);
}

std::string Conv2d::extra_repr() const {
    const auto pair = [](std::size_t v) {
        return "(" + std::to_string(v) + ", " + std::to_string(v) + ")";
    };
    std::string s = std::to_string(in_channels) + ", " + std::to_string(out_channels) +
                    ", kernel_size=" + pair(kernel_size) + ", stride=" + pair(stride);
    if (padding != 0) s += ", padding=" + pair(padding);
    if (!has_parameter("bias")) s += ", bias=False";
    return s;
}

// ---- catalog -------------------------------------------------------------------------------

// This file's layers in tg::nn::layer_catalog() (tapegrad/nn/catalog.hpp): an example puts its
// layer in every test that walks the catalog.
std::vector<LayerExample> catalog::conv_layers() {
    return {
        layer<Conv2d>("Conv2d(1, 4, kernel_size=(3, 3), stride=(1, 1))", {2, 1, 6, 6},
                      {"weight", "bias"}, 1, 4, 3),
        bad_input({2, 3, 5, 5}, "conv2d: input [2, 3, 5, 5] has 3 channels, weight expects 2",
                  layer<Conv2d>("Conv2d(2, 3, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), "
                                "bias=False)",
                                {2, 2, 5, 5}, {"weight"}, 2, 3, 3,
                                Conv2dOptions{.stride = 2, .padding = 1, .bias = false})),
    };
}

}  // namespace tg::nn
