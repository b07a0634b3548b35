// tapegrad/optim/sgd.hpp — stochastic gradient descent with momentum, as torch.optim.SGD.
#pragma once

#include <limits>
#include <optional>
#include <vector>

#include "tapegrad/optim/optimizer.hpp"

namespace tg::optim {

struct SGDOptions {
    double lr = std::numeric_limits<double>::quiet_NaN();  // required, as in PyTorch
    double momentum = 0.0;
    double dampening = 0.0;
    double weight_decay = 0.0;  // L2 penalty, added to the gradient
    bool nesterov = false;
};

/// torch.optim.SGD (PyTorch 1.13), per parameter p with gradient g:
///   d = g + weight_decay * p
///   b = d on the first step, else b = momentum * b + (1 - dampening) * d   (if momentum != 0)
///   d = d + momentum * b (nesterov) or d = b                              (if momentum != 0)
///   p = p - lr * d
///
///     tg::optim::SGD opt(model.parameters(), {.lr = 0.1, .momentum = 0.9});
class SGD : public Optimizer {
  public:
    /// Throws std::invalid_argument on an unset or negative lr, negative momentum or weight
    /// decay, or nesterov without momentum or with dampening.
    SGD(std::vector<Tensor> parameters, SGDOptions options);

    /// p = p - lr * d for every parameter with a gradient (the update above).
    void step() override;

    /// The settings; changing options().lr between steps is how a schedule is applied.
    SGDOptions& options() { return options_; }
    /// The momentum buffer b of parameter i (unset before its first step, or without momentum).
    const std::optional<Array>& momentum_buffer(std::size_t i) const { return buffers_.at(i); }

  private:
    SGDOptions options_;
    std::vector<std::optional<Array>> buffers_;
};

}  // namespace tg::optim
