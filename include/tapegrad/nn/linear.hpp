// tapegrad/nn/linear.hpp — the fully connected layer (torch.nn.Linear).
#pragma once

#include <cstddef>

#include "tapegrad/nn/module.hpp"
#include "tapegrad/random.hpp"

namespace tg::nn {

struct LinearOptions {
    bool bias = true;
    Generator* generator = nullptr;  // for the initial weights; nullptr: default_generator()
};

/// y = x Wᵀ + b: x [N, in] -> y [N, out]. W [out, in] ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming
/// uniform with a = sqrt(5), PyTorch's default), b [out] ~ U(-1/sqrt(in), 1/sqrt(in)).
///
///     tg::nn::Linear fc(784, 10);   tg::nn::Linear head(64, 2, {.bias = false});
class Linear : public Module {
  public:
    /// W [out, in] and b [out], drawn from options.generator (default: default_generator()).
    Linear(std::size_t in_features, std::size_t out_features, LinearOptions options = {});

    /// y = linear(x, W, b).
    Tensor forward(const Tensor& x) override;
    /// Draws new weights (and bias) as the constructor does.
    void reset_parameters(Generator& gen = default_generator());

    std::string type_name() const override { return "Linear"; }
    std::string extra_repr() const override;

    std::size_t in_features, out_features;
    Tensor weight;  // [out, in]
    Tensor bias;    // [out], undefined without bias
};

}  // namespace tg::nn
