// first_look: the README's first program. A small CNN with BatchNorm learns the bundled
// MNIST digits (8,000 to train on, 2,000 to test) and prints its test accuracy.
#include <cmath>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>

#include "tapegrad/tapegrad.hpp"
namespace nn = tg::nn;
using tg::data::Split;

int main() try {  // an error (a missing data file, a shape mismatch) ends as its message, exit 1
    nn::Sequential model{
        nn::Conv2d(1, 8, 3),  nn::BatchNorm2d(8),        nn::ReLU(), nn::MaxPool2d(2),
        nn::Conv2d(8, 16, 3), nn::BatchNorm2d(16),       nn::ReLU(), nn::MaxPool2d(2),
        nn::Flatten(),        nn::Linear(16 * 5 * 5, 10)};
    tg::optim::SGD opt(model.parameters(), {.lr = 0.05, .momentum = 0.9});

    // Inputs x = (p / 255 - mean) / std, with the training pixels' mean and std.
    auto train = tg::data::bundled_mnist(Split::train);
    const auto [mean, std] = tg::data::pixel_mean_std(train);
    tg::data::DataLoader loader(
        std::move(train), {.batch_size = 64, .shuffle = true, .seed = 0, .mean = mean, .std = std});
    tg::data::DataLoader test(tg::data::bundled_mnist(Split::test),
                              {.batch_size = 500, .mean = mean, .std = std});

    for (int epoch = 1; epoch <= 3; ++epoch) {
        for (const auto& [x, y] : loader) {
            tg::Tape tape;  // records every op from here
            tg::Tensor loss = tg::cross_entropy(model(x), y);
            if (!std::isfinite(loss.item()))  // NaN or Inf: every later step would be too
                throw std::runtime_error("training diverged in epoch " + std::to_string(epoch) +
                                         ": the loss is " + std::to_string(loss.item()) +
                                         "; try a smaller lr");
            opt.zero_grad();
            tape.backward(loss);  // reverse walk of the tape
            opt.step();
        }
        tg::nn::EvalGuard eval(model);  // BatchNorm uses its running statistics
        tg::NoGradGuard no_grad;        // nothing to record
        std::size_t right = 0, seen = 0;
        for (const auto& [x, y] : test.epoch(0)) {
            right += tg::num_correct(model(x), y);  // rows whose largest logit is the label
            seen += y.size();
        }
        std::printf("epoch %d  test accuracy %.2f%%\n", epoch, 100.0 * right / seen);
    }
} catch (const std::exception& e) {
    std::fprintf(stderr, "first_look: %s\n", e.what());
    return 1;
}
