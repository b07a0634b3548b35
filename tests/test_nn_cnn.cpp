// End to end: 20 SGD steps of a small CNN from PyTorch's initial weights on PyTorch's batches;
// every loss must match torch's (tests/reference/gen_nn.py, group nn_cnn).
#include <cmath>

#include "tapegrad/nn/nn.hpp"
#include "tapegrad/ops/loss.hpp"
#include "tapegrad/optim/sgd.hpp"
#include "tapegrad/tape.hpp"
#include "testing.hpp"

using tg::Array;
using tg::Tensor;
namespace nn = tg::nn;

TEST_CASE("a small CNN trained for 20 SGD steps gives PyTorch's 20 losses") {
    const tgtest::Reference& ref = tgtest::reference("nn_cnn");
    nn::Sequential model(nn::Conv2d(1, 4, 3), nn::BatchNorm2d(4), nn::ReLU(), nn::MaxPool2d(2),
                         nn::Flatten(), nn::Linear(4 * 13 * 13, 10));
    // PyTorch's initial weights, by name: our state dict has the same names as torch's.
    nn::NamedTensors init;
    for (const auto& [name, t] : model.state_dict()) {
        init.emplace_back(name, Tensor(ref.at("cnn/init/" + name)));
    }
    model.load_state_dict(init);

    tg::optim::SGD opt(model.parameters(), {.lr = 0.1, .momentum = 0.9});
    const Array& expected = ref.at("cnn/losses");
    // The run is 20 steps of a recurrence, so float32 rounding differences grow a little.
    const double tolerance = tg::is_double ? 1e-10 : 1e-4;
    for (std::size_t step = 0; step < 20; ++step) {
        const std::string s = std::to_string(step);
        const Tensor x(ref.at("cnn/x" + s));  // [8, 1, 28, 28]
        tg::Labels y;
        for (auto v : ref.at("cnn/y" + s))
            y.push_back(static_cast<std::int64_t>(v));

        tg::Tape tape;
        const Tensor loss = tg::cross_entropy(model(x), y);
        opt.zero_grad();
        tape.backward(loss);
        opt.step();
        CAPTURE(step);
        CHECK(std::abs(loss.item() - expected(step)) <= tolerance);
    }
    // The state after the run: BatchNorm's buffers and the conv weights.
    const double rtol = tg::is_double ? 1e-10 : 1e-4;
    CHECK(tgtest::mismatch_scaled(model.at<nn::BatchNorm2d>(1).running_mean.value(),
                                  ref.at("cnn/final/1.running_mean"), rtol) == "");
    CHECK(tgtest::mismatch_scaled(model.at<nn::BatchNorm2d>(1).running_var.value(),
                                  ref.at("cnn/final/1.running_var"), rtol) == "");
    CHECK(model.at<nn::BatchNorm2d>(1).num_batches_tracked.item() == 20);
    CHECK(tgtest::mismatch_scaled(model.at<nn::Conv2d>(0).weight.value(),
                                  ref.at("cnn/final/0.weight"), rtol) == "");
}
