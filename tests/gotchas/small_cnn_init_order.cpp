// The small CNN of ch310_train_vs_eval and ch310_shifted_stats (examples/gotchas/small_cnn.hpp)
// draws its initial weights from one generator in the order its layers are written, on every
// compiler: each layer must hold exactly what the same layer built alone, in that order, from
// a fresh Generator(seed) holds. (Built with Sequential(...) in parentheses the arguments are
// evaluated in an unspecified order — GCC right to left — and this fails.)
// CTest `gotchas_small_cnn_init_order`.
#include <cstdio>
#include <string>

#include "gotchas/small_cnn.hpp"
#include "tapegrad/nn/nn.hpp"
#include "tapegrad/random.hpp"

namespace {

int failures = 0;

void expect_equal(const tg::Tensor& got, const tg::Tensor& want, const std::string& what) {
    bool same = got.value().shape() == want.value().shape();
    for (std::size_t i = 0; same && i < want.value().size(); ++i)
        same = got.value().flat(i) == want.value().flat(i);
    std::printf("%s  %s\n", same ? "ok  " : "FAIL", what.c_str());
    failures += same ? 0 : 1;
}

}  // namespace

int main() {
    for (const std::uint64_t seed : {0ULL, 7ULL}) {
        tg::nn::Sequential model = gotchas::make_small_cnn(seed);
        tg::Generator gen(seed);  // the layers with weights, built alone in the written order
        const tg::nn::Conv2d conv1(1, 8, 3, {.generator = &gen});
        const tg::nn::Conv2d conv2(8, 16, 3, {.generator = &gen});
        const tg::nn::Linear fc1(16 * 5 * 5, 64, {.generator = &gen});
        const tg::nn::Linear fc2(64, 10, {.generator = &gen});
        const std::string s = "seed " + std::to_string(seed) + ": ";
        expect_equal(model.at<tg::nn::Conv2d>(0).weight, conv1.weight, s + "layer 0 weight");
        expect_equal(model.at<tg::nn::Conv2d>(0).bias, conv1.bias, s + "layer 0 bias");
        expect_equal(model.at<tg::nn::Conv2d>(4).weight, conv2.weight, s + "layer 4 weight");
        expect_equal(model.at<tg::nn::Conv2d>(4).bias, conv2.bias, s + "layer 4 bias");
        expect_equal(model.at<tg::nn::Linear>(9).weight, fc1.weight, s + "layer 9 weight");
        expect_equal(model.at<tg::nn::Linear>(9).bias, fc1.bias, s + "layer 9 bias");
        expect_equal(model.at<tg::nn::Linear>(12).weight, fc2.weight, s + "layer 12 weight");
        expect_equal(model.at<tg::nn::Linear>(12).bias, fc2.bias, s + "layer 12 bias");
    }
    std::printf("%s\n", failures == 0 ? "all checks passed" : "some checks failed");
    return failures == 0 ? 0 : 1;
}
