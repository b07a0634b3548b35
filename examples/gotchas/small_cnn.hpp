// examples/gotchas/small_cnn.hpp — the small BatchNorm CNN that ch310_train_vs_eval and
// ch310_shifted_stats train for a few seconds before showing what goes wrong with it. It is
// not examples/common's make_cnn because it needs a BatchNorm1d after a Linear layer (one
// value per channel for a single example: the batch-of-one error).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "tapegrad/checkpoint.hpp"
#include "tapegrad/data/loader.hpp"
#include "tapegrad/nn/nn.hpp"
#include "tapegrad/ops/loss.hpp"
#include "tapegrad/optim/sgd.hpp"
#include "tapegrad/random.hpp"
#include "tapegrad/tape.hpp"

namespace gotchas {

/// [N, 1, 28, 28] → Conv(1, 8, 3) → BN2d(8) → ReLU → MaxPool(2) → Conv(8, 16, 3) → BN2d(16) →
/// ReLU → MaxPool(2) → Flatten [N, 400] → Linear(400, 64) → BN1d(64) → ReLU → Linear(64, 10).
/// Layers 1, 5 and 10 are the BatchNorms.
inline tg::nn::Sequential make_small_cnn(std::uint64_t seed) {
    using namespace tg::nn;
    tg::Generator gen(seed);
    return Sequential(Conv2d(1, 8, 3, {.generator = &gen}), BatchNorm2d(8), ReLU(), MaxPool2d(2),
                      Conv2d(8, 16, 3, {.generator = &gen}), BatchNorm2d(16), ReLU(), MaxPool2d(2),
                      Flatten(), Linear(16 * 5 * 5, 64, {.generator = &gen}), BatchNorm1d(64),
                      ReLU(), Linear(64, 10, {.generator = &gen}));
}

/// `epochs` epochs of SGD (lr 0.05, momentum 0.9) on the cross-entropy, in training mode.
inline void train_small_cnn(tg::nn::Module& model, const tg::data::DataLoader& train,
                            std::size_t epochs) {
    tg::optim::SGD opt(model.parameters(), {.lr = 0.05, .momentum = 0.9});
    model.train();
    for (std::size_t e = 0; e < epochs; ++e) {
        for (const auto& [images, labels] : train.epoch(e)) {
            if (labels.size() < 2) continue;  // BatchNorm1d needs two examples
            tg::Tape tape;
            const tg::Tensor loss = tg::cross_entropy(model(images), labels);
            opt.zero_grad();
            tape.backward(loss);
            opt.step();
        }
    }
}

/// The number of rows of logits [N, C] whose largest entry is at the label.
inline std::size_t count_correct(const tg::Array& logits, const tg::Labels& labels) {
    const std::size_t C = logits.shape()[1];
    std::size_t right = 0;
    for (std::size_t n = 0; n < labels.size(); ++n) {
        const tg::real* row = logits.data() + n * C;
        right += static_cast<std::int64_t>(std::max_element(row, row + C) - row) == labels[n];
    }
    return right;
}

/// Accuracy of `model` in whatever mode it is on `loader`'s examples taken in `order`, in
/// batches of `batch` (a last partial batch is dropped), leaving the running statistics alone
/// (tg::NoStatsUpdateGuard) and recording no tape.
inline double accuracy(tg::nn::Module& model, const tg::data::DataLoader& loader,
                       const std::vector<std::size_t>& order, std::size_t batch) {
    tg::NoGradGuard no_grad;
    const tg::NoStatsUpdateGuard frozen;
    std::size_t right = 0, seen = 0;
    for (std::size_t i = 0; i + batch <= order.size(); i += batch) {
        const auto b = loader.make_batch(order.data() + i, batch);
        right += count_correct(model(b.images).value(), b.labels);
        seen += batch;
    }
    return seen == 0 ? 0.0 : static_cast<double>(right) / static_cast<double>(seen);
}

}  // namespace gotchas
