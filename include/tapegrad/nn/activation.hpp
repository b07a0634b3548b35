// tapegrad/nn/activation.hpp — activation and reshaping layers without parameters.
#pragma once

#include <string>

#include "tapegrad/nn/module.hpp"

namespace tg::nn {

/// y = max(x, 0), element-wise (torch.nn.ReLU).
class ReLU : public Module {
  public:
    /// y = relu(x).
    Tensor forward(const Tensor& x) override;
    std::string type_name() const override { return "ReLU"; }
};

/// y = tanh(x), element-wise (torch.nn.Tanh).
class Tanh : public Module {
  public:
    /// y = tanh(x).
    Tensor forward(const Tensor& x) override;
    std::string type_name() const override { return "Tanh"; }
};

/// y = σ(x) = 1 / (1 + e^-x), element-wise (torch.nn.Sigmoid).
class Sigmoid : public Module {
  public:
    /// y = sigmoid(x).
    Tensor forward(const Tensor& x) override;
    std::string type_name() const override { return "Sigmoid"; }
};

/// y = x where x > 0, else negative_slope · x, element-wise (torch.nn.LeakyReLU).
class LeakyReLU : public Module {
  public:
    explicit LeakyReLU(double slope = 0.01) : negative_slope(slope) {}
    /// y = leaky_relu(x, negative_slope).
    Tensor forward(const Tensor& x) override;
    std::string type_name() const override { return "LeakyReLU"; }
    std::string extra_repr() const override;

    double negative_slope;
};

/// y = x · Φ(x), element-wise, Φ exact ("none") or its tanh approximation ("tanh")
/// (torch.nn.GELU). Any other `approximate` throws std::invalid_argument.
class GELU : public Module {
  public:
    explicit GELU(std::string approximation = "none");
    /// y = gelu(x, approximate).
    Tensor forward(const Tensor& x) override;
    std::string type_name() const override { return "GELU"; }
    std::string extra_repr() const override;

    std::string approximate;
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
