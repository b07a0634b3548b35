// tapegrad/ops/loss.hpp — (log-)softmax and the losses built on them.
#pragma once

#include "tapegrad/tensor.hpp"

namespace tg {

/// y_i = x_i - log sum_j e^(x_j) along `dim`, computed stably as x_i - m - log sum_j e^(x_j - m)
/// with m = max_j x_j. dx_i = g_i - softmax(x)_i sum_j g_j.
Tensor log_softmax(const Tensor& x, int dim = -1);
/// y_i = e^(x_i - m) / sum_j e^(x_j - m) along `dim` (m = max_j x_j, for stability).
/// dx_i = y_i (g_i - sum_j g_j y_j).
Tensor softmax(const Tensor& x, int dim = -1);
/// L = (1/N) sum_n [log sum_c e^(x[n, c]) - x[n, t_n]] for logits [N, C] and class labels
/// t_n in [0, C): log_softmax and the negative log-likelihood fused into one op.
/// dL/dx[n, c] = (softmax(x[n])_c - [c == t_n]) / N.
Tensor cross_entropy(const Tensor& logits, const Labels& targets);
struct MseLossOptions {
    /// false (the default): input and target must have the same shape, else
    /// std::invalid_argument naming both (PyTorch broadcasts with a warning, so input [4, 1]
    /// and target [4] silently average 16 differences). true: target and input broadcast.
    bool broadcast = false;
};

/// L = (1/n) sum_i (x_i - y_i)^2 over the n elements of x and y (of the same shape, or
/// broadcast with options.broadcast). dL/dx = 2 (x - y) / n, dL/dy = -2 (x - y) / n.
Tensor mse_loss(const Tensor& input, const Tensor& target, MseLossOptions options = {});

}  // namespace tg
