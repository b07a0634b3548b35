// tapegrad/nn/conv.hpp — the 2-D convolution layer (torch.nn.Conv2d).
#pragma once

#include <cstddef>

#include "tapegrad/nn/module.hpp"
#include "tapegrad/random.hpp"

namespace tg::nn {

struct Conv2dOptions {
    std::size_t stride = 1;
    std::size_t padding = 0;
    bool bias = true;
    Generator* generator = nullptr;  // for the initial weights; nullptr: default_generator()
};

/// y = conv2d(x, W, b): x [N, C, H, W] -> y [N, O, OH, OW], OH = (H + 2 pad - k) / stride + 1.
/// W [O, C, k, k] ~ U(-1/sqrt(C k²), 1/sqrt(C k²)) (kaiming uniform with a = sqrt(5), PyTorch's
/// default), b [O] ~ U(-1/sqrt(C k²), 1/sqrt(C k²)).
///
///     tg::nn::Conv2d conv(1, 4, 3);   tg::nn::Conv2d same(4, 8, 3, {.padding = 1});
class Conv2d : public Module {
  public:
    /// W [O, C, k, k] and b [O], drawn from options.generator (default: default_generator()).
    Conv2d(std::size_t in_channels, std::size_t out_channels, std::size_t kernel_size,
           Conv2dOptions options = {});

    /// y = conv2d(x, W, b, stride, padding).
    Tensor forward(const Tensor& x) override;
    /// Draws new weights (and bias) as the constructor does.
    void reset_parameters(Generator& gen = default_generator());

    std::string type_name() const override { return "Conv2d"; }
    std::string extra_repr() const override;

    std::size_t in_channels, out_channels, kernel_size, stride, padding;
    Tensor weight;  // [O, C, k, k]
    Tensor bias;    // [O], undefined without bias
};

}  // namespace tg::nn
