// tapegrad/nn/activation.hpp — activation and reshaping layers without parameters.
#pragma once

#include "tapegrad/nn/module.hpp"

namespace tg::nn {

/// y = max(x, 0), element-wise (torch.nn.ReLU).
class ReLU : public Module {
  public:
    /// y = relu(x).
    Tensor forward(const Tensor& x) override;
    std::string type_name() const override { return "ReLU"; }
};

/// Merges axes start_dim..end_dim into one: [N, C, H, W] -> [N, C·H·W] by default
/// (torch.nn.Flatten).
class Flatten : public Module {
  public:
    /// Merges axes start..end (negative counts from the end).
    explicit Flatten(int start = 1, int end = -1) : start_dim(start), end_dim(end) {}
    /// y = flatten(x, start_dim, end_dim).
    Tensor forward(const Tensor& x) override;
    std::string type_name() const override { return "Flatten"; }
    std::string extra_repr() const override;

    int start_dim, end_dim;
};

}  // namespace tg::nn
