// tapegrad/metrics.hpp — the predicted class of each row of logits, and how often it is right.
//
//     const tg::Tensor logits = model(images);             // [N, C]
//     const tg::Labels predicted = tg::argmax(logits);     // N class indices
//     const double acc = tg::accuracy(logits, labels);     // fraction in [0, 1]
#pragma once

#include <cstddef>

#include "tapegrad/config.hpp"
#include "tapegrad/tensor.hpp"

namespace tg {

/// The index of the largest entry of each row of x [N, C]: predicted[n] = argmax_c x[n, c].
/// As torch.argmax(x, dim=1): on a tie the first (lowest) index wins, and NaN counts as larger
/// than any number (a row with a NaN predicts the first NaN's index). Throws
/// std::invalid_argument unless x is [N, C] with C >= 1.
Labels argmax(const Array& x);
Labels argmax(const Tensor& x);

/// How many rows of logits [N, C] have their argmax at the label: #{n : argmax_c x[n, c] = y[n]}.
/// Throws std::invalid_argument if there are not N labels.
std::size_t num_correct(const Array& logits, const Labels& labels);
std::size_t num_correct(const Tensor& logits, const Labels& labels);

/// The fraction of rows predicted right, num_correct / N, in [0, 1] (0 for N = 0).
double accuracy(const Array& logits, const Labels& labels);
double accuracy(const Tensor& logits, const Labels& labels);

}  // namespace tg
