// TensorDataset and TensorDataLoader (tapegrad/data/tensor_dataset.hpp): a student's own
// tensors in batches. Rows travel together, shuffling is the image DataLoader's, bad shapes are
// refused naming both, and README.md's "Your own tensors" example (the block between the
// markers below; tests/check_docs.py checks README's copy is this one) learns its function.
#include <cmath>
#include <cstddef>
#include <iostream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "tapegrad/data/loader.hpp"
#include "tapegrad/data/tensor_dataset.hpp"
#include "tapegrad/tapegrad.hpp"
#include "testing.hpp"
#include "thread_count.hpp"

using tg::Array;
using tg::Tensor;
using tg::data::TensorBatch;
using tg::data::TensorDataLoader;
using tg::data::TensorDataset;

namespace {

/// n examples: features [n, 2, 3] whose every value of row i is i, targets [n] = 10 i.
TensorDataset numbered(std::size_t n) {
    Array x = Array::from_shape({n, 2, 3}), y = Array::from_shape({n});
    for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t j = 0; j < 6; ++j)
            x.data()[i * 6 + j] = static_cast<tg::real>(i);
        y(i) = static_cast<tg::real>(10 * i);
    }
    return TensorDataset(Tensor(x), Tensor(y));
}

/// The example indices of each batch of one pass, read back from the features.
template <class Range>
std::vector<std::vector<std::size_t>> epoch_ids(Range&& batches) {
    std::vector<std::vector<std::size_t>> out;
    for (const TensorBatch& b : batches) {
        out.emplace_back();
        for (std::size_t k = 0; k < b.features.shape()[0]; ++k)
            out.back().push_back(static_cast<std::size_t>(b.features.value().flat(k * 6)));
    }
    return out;
}

}  // namespace

TEST_CASE("TensorDataLoader: batch shapes, drop_last, and rows that travel together") {
    TensorDataLoader loader(numbered(10), {.batch_size = 4});
    CHECK(loader.num_batches() == 3);
    std::vector<tg::Shape> shapes;
    for (const auto& [x, y] : loader.epoch(0)) {
        shapes.push_back(x.shape());
        CHECK(y.shape() == tg::Shape{x.shape()[0]});
        CHECK_FALSE(x.requires_grad());
        for (std::size_t k = 0; k < x.shape()[0]; ++k) {
            CHECK(y.value()(k) == 10 * x.value()(k, 1, 2));  // row k's features and its target
        }
    }
    CHECK(shapes == std::vector<tg::Shape>{{4, 2, 3}, {4, 2, 3}, {2, 2, 3}});
    CHECK(epoch_ids(loader.epoch(0))[2] == std::vector<std::size_t>{8, 9});
    TensorDataLoader full(numbered(10), {.batch_size = 4, .drop_last = true});
    CHECK(full.num_batches() == 2);
    CHECK(epoch_ids(full.epoch(0)).size() == 2);
    // Targets with more axes come in rows as well.
    TensorDataLoader wide(TensorDataset(Tensor::ones({5, 3}), Tensor::zeros({5, 2, 2})),
                          {.batch_size = 2});
    CHECK((*wide.epoch(0).begin()).targets.shape() == tg::Shape{2, 2, 2});
}

TEST_CASE("TensorDataLoader: shuffled as the image DataLoader, by seed and epoch only") {
    const tg::data::TensorDataLoaderOptions opt{.batch_size = 7, .shuffle = true, .seed = 42};
    TensorDataLoader a(numbered(50), opt), b(numbered(50), opt);
    const auto a0 = epoch_ids(a), a1 = epoch_ids(a);  // range-for: epochs 0, then 1
    CHECK(a0 == epoch_ids(b.epoch(0)));
    CHECK(a1 == epoch_ids(b.epoch(1)));
    CHECK(a0 != a1);
    CHECK(epoch_ids(TensorDataLoader(numbered(50), {.batch_size = 7, .shuffle = true, .seed = 43})
                        .epoch(0)) != a0);
    // Every example once per epoch.
    std::multiset<std::size_t> seen;
    for (const auto& batch : a1)
        seen.insert(batch.begin(), batch.end());
    CHECK(seen.size() == 50);
    CHECK(std::set<std::size_t>(seen.begin(), seen.end()).size() == 50);
    // The order an image DataLoader with the same N, seed and epoch serves.
    tg::data::Dataset images;
    images.rows = images.cols = 1;
    images.classes = {"0"};
    images.images.assign(50, 0);
    images.labels.assign(50, 0);
    const tg::data::DataLoader pixels(std::move(images),
                                      {.batch_size = 7, .shuffle = true, .seed = 42});
    for (const std::size_t k : {0, 1, 5})
        CHECK(a.order(k) == pixels.order(k));
    // Without shuffle: in order, every epoch.
    TensorDataLoader plain(numbered(50), {.batch_size = 7});
    CHECK(epoch_ids(plain.epoch(0)) == epoch_ids(plain.epoch(3)));
    CHECK(epoch_ids(plain.epoch(0))[1] == std::vector<std::size_t>{7, 8, 9, 10, 11, 12, 13});
}

TEST_CASE("TensorDataset: class labels in, labels() out; bad shapes and labels are refused") {
    TensorDataLoader loader(TensorDataset(Tensor::zeros({4, 3}), tg::Labels{2, 0, 1, 2}),
                            {.batch_size = 4});
    CHECK((*loader.epoch(0).begin()).labels() == tg::Labels{2, 0, 1, 2});
    CHECK_THROWS_WITH_AS(TensorDataset(Tensor::zeros({5, 3}), Tensor::zeros({4})),
                         "TensorDataset: features [5, 3] and targets [4]: expected the same N on "
                         "axis 0 (5 features, 4 targets)",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(TensorDataset(Tensor::scalar(1), Tensor::zeros({1})),
                         doctest::Contains("features [] and targets [1]: expected features [N, "
                                           "...] and targets [N] or [N, ...]"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(TensorDataLoader(numbered(3), {.batch_size = 0}),
                         "TensorDataLoader: batch_size 0, expected at least 1",
                         std::invalid_argument);
    const TensorBatch fractional{Tensor::zeros({2}), Tensor(Array{1, 1.5})};
    CHECK_THROWS_WITH_AS(fractional.labels(), doctest::Contains("target 1 is 1.5"),
                         std::invalid_argument);
    const TensorBatch negative{Tensor::zeros({1}), Tensor(Array{-1})};
    CHECK_THROWS_AS(negative.labels(), std::invalid_argument);
    const TensorBatch rows{Tensor::zeros({2}), Tensor::zeros({2, 1})};
    CHECK_THROWS_WITH_AS(rows.labels(), doctest::Contains("targets [2, 1], expected [B]"),
                         std::invalid_argument);
    // An empty dataset serves no batch.
    TensorDataLoader empty(TensorDataset(Tensor::zeros({0, 3}), Tensor::zeros({0})));
    CHECK(empty.num_batches() == 0);
    CHECK(epoch_ids(empty.epoch(0)).empty());
}

TEST_CASE("README.md's 'Your own tensors': a small MLP learns y = sin(x0) + x1 / 2") {
    tg::manual_seed(0);
    const tgtest::ThreadCount threads(1);
    std::ostringstream printed;  // what the example prints, captured
    struct Capture {
        std::streambuf* saved;
        ~Capture() { std::cout.rdbuf(saved); }
    } capture{std::cout.rdbuf(printed.rdbuf())};
    // README.md "Your own tensors" begins
    tg::Generator gen(0);
    tg::Array x = tg::normal({256, 2}, 0.0, 1.0, gen);  // your features [N, 2]
    tg::Array y = tg::Array::from_shape({256, 1});      // and targets [N, 1]
    for (std::size_t i = 0; i < 256; ++i)
        y(i, 0) = std::sin(x(i, 0)) + x(i, 1) / 2;
    tg::data::TensorDataLoader loader(tg::data::TensorDataset(tg::Tensor(x), tg::Tensor(y)),
                                      {.batch_size = 32, .shuffle = true, .seed = 0});
    tg::nn::Sequential model{tg::nn::Linear(2, 16), tg::nn::Tanh(), tg::nn::Linear(16, 1)};
    std::cout << model;
    tg::optim::SGD opt(model.parameters(), {.lr = 0.1, .momentum = 0.9});
    for (int epoch = 1; epoch <= 30; ++epoch) {
        for (const auto& [features, targets] : loader) {
            tg::Tape tape;
            tg::Tensor loss = tg::mse_loss(model(features), targets);
            opt.zero_grad();
            tape.backward(loss);
            opt.step();
        }
    }
    const tg::Tensor test(tg::Array{{0.5, -1.0}});  // sin(0.5) - 0.5 = -0.0206
    std::cout << "model(0.5, -1) = " << model(test).value() << '\n';
    // README.md "Your own tensors" ends
    CHECK(printed.str().find("  (1): Tanh()\n") != std::string::npos);
    CHECK(printed.str().find("model(0.5, -1) = {{") != std::string::npos);
    const tg::real mse = tg::mse_loss(model(Tensor(x)), Tensor(y)).item();
    CHECK(mse < 0.01);  // the mean of y² is about 0.6: the model learned the function
    CHECK(std::abs(model(test).value()(0, 0) - (std::sin(0.5) - 0.5)) < 0.1);
}
