// tapegrad/nn/dropout.hpp — inverted dropout (torch.nn.Dropout).
#pragma once

#include <cstdint>
#include <optional>

#include "tapegrad/nn/module.hpp"
#include "tapegrad/random.hpp"

namespace tg::nn {

struct DropoutOptions {
    /// Seed of the layer's own generator; unset: drawn from default_generator() (so
    /// tg::manual_seed makes it reproducible too).
    std::optional<std::uint64_t> seed;
};

/// Training: each element is zeroed with probability p and the survivors are scaled by
/// 1/(1 - p), so E[y] = x. Evaluation: y = x.
///
///     tg::nn::Dropout drop(0.5, {.seed = 42});
class Dropout : public Module {
  public:
    /// Throws std::invalid_argument unless 0 <= p <= 1.
    explicit Dropout(double p = 0.5, DropoutOptions options = {});
    /// y = dropout(x, p, is_training(), generator).
    Tensor forward(const Tensor& x) override;
    std::string type_name() const override { return "Dropout"; }
    std::string extra_repr() const override;

    double p;
    Generator generator;  // draws the masks
};

}  // namespace tg::nn
