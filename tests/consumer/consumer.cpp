// A program outside tapegrad's tree (tests/consumer/, built by scripts/ci/consumer.sh): one
// training step on the bundled digits, found from whatever directory it runs in.
#include <concepts>
#include <iostream>

#include "tapegrad/tapegrad.hpp"

int main() {
    static_assert(__cplusplus >= 202002L, "tapegrad::tapegrad must publish C++20");
    namespace nn = tg::nn;
    tg::data::Dataset test = tg::data::bundled_mnist(tg::data::Split::test);
    tg::data::DataLoader loader(test, {.batch_size = 32});
    nn::Sequential model{nn::Flatten(), nn::Linear(28 * 28, 10)};
    tg::optim::SGD opt(model.parameters(), {.lr = 0.01});
    const auto [x, y] = *loader.begin();
    tg::Tape tape;
    const tg::Tensor loss = tg::cross_entropy(model(x), y);
    opt.zero_grad();
    tape.backward(loss);
    opt.step();
    std::cout << "consumer: " << test.size() << " test digits from " << tg::data::bundled_data_dir()
              << "; first loss " << loss.item() << "\n";
    return loss.item() > 0 ? 0 : 1;
}
