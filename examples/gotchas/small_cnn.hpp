// examples/gotchas/small_cnn.hpp — the small BatchNorm CNN that ch310_train_vs_eval and
// ch310_shifted_stats train for a few seconds before showing what goes wrong with it, and what
// the two programs share: their flags and the training run. It is not examples/common's
// make_cnn because it needs a BatchNorm1d after a Linear layer (one value per channel for a
// single example: the batch-of-one error).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "common/cli.hpp"
#include "tapegrad/checkpoint.hpp"
#include "tapegrad/data/dataset.hpp"
#include "tapegrad/data/loader.hpp"
#include "tapegrad/nn/nn.hpp"
#include "tapegrad/ops/loss.hpp"
#include "tapegrad/optim/sgd.hpp"
#include "tapegrad/random.hpp"
#include "tapegrad/tape.hpp"

namespace gotchas {

/// [N, 1, 28, 28] → Conv(1, 8, 3) → BN2d(8) → ReLU → MaxPool(2) → Conv(8, 16, 3) → BN2d(16) →
/// ReLU → MaxPool(2) → Flatten [N, 400] → Linear(400, 64) → BN1d(64) → ReLU → Linear(64, 10).
/// Layers 1, 5 and 10 are the BatchNorms. The layers draw their initial weights from one
/// generator in the order written: braces, because the arguments of a call in parentheses are
/// evaluated in an unspecified order (GCC goes right to left, so another compiler would start
/// from other weights), while a braced list is evaluated left to right.
inline tg::nn::Sequential make_small_cnn(std::uint64_t seed) {
    using namespace tg::nn;
    tg::Generator gen(seed);
    return Sequential{Conv2d(1, 8, 3, {.generator = &gen}),
                      BatchNorm2d(8),
                      ReLU(),
                      MaxPool2d(2),
                      Conv2d(8, 16, 3, {.generator = &gen}),
                      BatchNorm2d(16),
                      ReLU(),
                      MaxPool2d(2),
                      Flatten(),
                      Linear(16 * 5 * 5, 64, {.generator = &gen}),
                      BatchNorm1d(64),
                      ReLU(),
                      Linear(64, 10, {.generator = &gen})};
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

/// The flags both programs have: the common ones (one seed, no --seeds) and --epochs.
struct SmallCnnFlags {
    explicit SmallCnnFlags(tg::examples::Cli& cli)
        : common(cli.add_common({}, /*with_seeds=*/false)) {
        cli.option("--epochs", epochs, "training epochs", tg::examples::between(1, 100));
    }
    const tg::examples::CommonFlags& common;
    std::size_t epochs = 2;
};

/// make_small_cnn(--seed) trained on --dataset, and what it was trained and is tested on.
struct TrainedSmallCnn {
    tg::nn::Sequential model;
    tg::data::Dataset train_all;   // every training image (ch310_shifted_stats calibrates on
                                   // the ones after `train`'s)
    tg::data::DataLoader train;    // the first 8,000 (--quick: 2,000), batches of 64 shuffled by
                                   // --seed, normalised with their pixel mean and std
    tg::data::Dataset test;        // the test images (--quick: the first 1,024)
    double mean = 0.0, std = 1.0;  // that normalisation, x = (p / 255 − mean) / std
    std::size_t epochs = 0;        // epochs trained (--quick: 2)
};

/// Loads --dataset and trains make_small_cnn(--seed) on its first 8,000 training images for
/// --epochs; with --quick, 2 epochs on 2,000 and only the first 1,024 test images (one epoch
/// of 32 steps left some seeds too weakly trained to show the shifted-input collapse).
inline TrainedSmallCnn train_small_cnn(const SmallCnnFlags& flags) {
    const tg::examples::CommonFlags& common = flags.common;
    tg::data::Dataset train_all = tg::data::load_dataset(common.dataset, tg::data::Split::train);
    tg::data::Dataset test = tg::data::load_dataset(common.dataset, tg::data::Split::test);
    std::size_t train_examples = 8000, epochs = flags.epochs;
    if (common.quick) {
        epochs = 2;
        train_examples = 2000;
        test = test.slice(0, std::min<std::size_t>(test.size(), 1024));
    }
    tg::data::Dataset train_set = train_all.slice(0, std::min(train_all.size(), train_examples));
    const auto [pixel_mean, pixel_std] = tg::data::pixel_mean_std(train_set);
    tg::data::DataLoader train(std::move(train_set), {.batch_size = 64,
                                                      .shuffle = true,
                                                      .seed = common.seed,
                                                      .mean = pixel_mean,
                                                      .std = pixel_std,
                                                      .prefetch = true});
    tg::nn::Sequential model = make_small_cnn(common.seed);
    train_small_cnn(model, train, epochs);
    return {std::move(model),
            std::move(train_all),
            std::move(train),
            std::move(test),
            pixel_mean,
            pixel_std,
            epochs};
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
