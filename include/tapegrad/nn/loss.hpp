// tapegrad/nn/loss.hpp — losses as modules (torch.nn.CrossEntropyLoss, MSELoss).
//
// Their forward takes two arguments, so they are called as loss(input, target), not through
// Module::operator()(x). Forward hooks still run, with (name, input, loss).
#pragma once

#include "tapegrad/nn/module.hpp"

namespace tg::nn {

/// L = (1/N) Σ_n [log Σ_c e^(x[n, c]) - x[n, t_n]]: logits x [N, C], labels t_n in [0, C).
class CrossEntropyLoss : public Module {
  public:
    using Module::forward;  // the one-input forward stays visible (and throws)
    /// L = cross_entropy(logits, targets) (the mean over the batch).
    Tensor forward(const Tensor& logits, const Labels& targets);
    /// forward(logits, targets), then the forward hooks with (name, logits, L).
    Tensor operator()(const Tensor& logits, const Labels& targets);
    std::string type_name() const override { return "CrossEntropyLoss"; }
};

/// L = (1/n) Σ_i (x_i - y_i)², the mean over all n elements.
class MSELoss : public Module {
  public:
    using Module::forward;  // the one-input forward stays visible (and throws)
    /// L = mse_loss(input, target).
    Tensor forward(const Tensor& input, const Tensor& target);
    /// forward(input, target), then the forward hooks with (name, input, L).
    Tensor operator()(const Tensor& input, const Tensor& target);
    std::string type_name() const override { return "MSELoss"; }
};

}  // namespace tg::nn
