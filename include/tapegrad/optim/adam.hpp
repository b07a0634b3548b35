// tapegrad/optim/adam.hpp — Adam, as torch.optim.Adam (L2 weight decay, not AdamW).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "tapegrad/optim/optimizer.hpp"

namespace tg::optim {

struct AdamOptions {
    double lr = 1e-3;
    std::pair<double, double> betas = {0.9, 0.999};
    double eps = 1e-8;
    double weight_decay = 0.0;  // L2 penalty, added to the gradient
};

/// torch.optim.Adam (PyTorch 1.13), per parameter p with gradient g, at its step t = 1, 2, ...:
///   d = g + weight_decay * p
///   m = beta1 * m + (1 - beta1) * d            (first moment, starts at 0)
///   v = beta2 * v + (1 - beta2) * d^2          (second moment, starts at 0)
///   p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
///
///     tg::optim::Adam opt(model.parameters(), {.lr = 1e-3, .weight_decay = 1e-4});
class Adam : public Optimizer {
  public:
    /// Throws std::invalid_argument on a negative lr, eps or weight decay, or a beta outside [0,
    /// 1).
    Adam(std::vector<Tensor> parameters, AdamOptions options = {});

    /// The update above for every parameter with a gradient (its own t counts its updates).
    void step() override;

    /// The settings; changing options().lr between steps is how a schedule is applied.
    AdamOptions& options() { return options_; }

    /// The per-parameter state: t, m and v.
    struct State {
        std::int64_t step = 0;
        Array exp_avg;     // m
        Array exp_avg_sq;  // v
    };
    /// The state of parameter i (step 0 and empty arrays before its first update).
    const State& state(std::size_t i) const { return states_.at(i); }

  private:
    AdamOptions options_;
    std::vector<State> states_;
};

}  // namespace tg::optim
