#include "tapegrad/nn/loss.hpp"

#include "tapegrad/ops/loss.hpp"

namespace tg::nn {

Tensor CrossEntropyLoss::forward(const Tensor& logits, const Labels& targets) {
    return cross_entropy(logits, targets);
}

Tensor CrossEntropyLoss::operator()(const Tensor& logits, const Labels& targets) {
    Tensor loss = forward(logits, targets);
    call_forward_hooks(logits, loss);
    return loss;
}

Tensor MSELoss::forward(const Tensor& input, const Tensor& target) {
    return mse_loss(input, target);
}

Tensor MSELoss::operator()(const Tensor& input, const Tensor& target) {
    Tensor loss = forward(input, target);
    call_forward_hooks(input, loss);
    return loss;
}

}  // namespace tg::nn
