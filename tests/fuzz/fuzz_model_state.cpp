// libFuzzer target: loading a checkpoint into a model with BatchNorm (Conv2d, BatchNorm2d,
// ReLU, MaxPool2d, Linear), then one forward pass in eval mode with what was loaded.
//
// Input: as fuzz_state_file (byte 0 odd: a valid CRC-32 is appended to the rest).
// Promises checked: a failed load (std::runtime_error from the parser, std::invalid_argument
// from load_state_dict) changes nothing in the model; a successful load gives every tensor
// the model's own shape; the forward pass with any loaded numbers (NaN, inf, negative
// running_var) is memory-safe and keeps the output's shape.
#include <zlib.h>

#include <stdexcept>
#include <vector>

#include "fuzz_common.hpp"
#include "tapegrad/tapegrad.hpp"

namespace {

struct Model {
    tg::Generator gen{1};
    tg::nn::Sequential net;
    Model()
        : net(tg::nn::Conv2d(1, 2, 3, {.generator = &gen}), tg::nn::BatchNorm2d(2), tg::nn::ReLU(),
              tg::nn::MaxPool2d(2), tg::nn::Flatten(), tg::nn::Linear(8, 3, {.generator = &gen})) {}
};

bool same_bits(const tg::Array& a, const tg::Array& b) {
    return a.shape() == b.shape() &&
           std::equal(a.begin(), a.end(), b.begin(),
                      [](tg::real x, tg::real y) { return std::memcmp(&x, &y, sizeof x) == 0; });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    static Model model;
    static const tg::nn::NamedTensors fresh = [] {
        tg::nn::NamedTensors copy;
        for (const auto& [name, t] : model.net.state_dict())
            copy.emplace_back(name, t.detach());
        return copy;
    }();
    const std::string& path = tgfuzz::scratch_path("model");
    std::vector<std::uint8_t> file(data + 1, data + size);
    if (data[0] & 1) {
        const auto crc = static_cast<std::uint32_t>(crc32_z(0L, file.data(), file.size()));
        for (int i = 0; i < 4; ++i)
            file.push_back(static_cast<std::uint8_t>(crc >> (8 * i)));
    }
    tgfuzz::write_file(path, file.data(), file.size());

    // Start every input from the same model.
    model.net.load_state_dict(fresh);
    bool loaded = false;
    try {
        model.net.load_state(path);
        loaded = true;
    } catch (const std::runtime_error& e) {
        tgfuzz::check_printable(e.what());
    } catch (const std::invalid_argument& e) {
        tgfuzz::check_printable(e.what());
    }
    const tg::nn::NamedTensors now = model.net.state_dict();
    for (std::size_t i = 0; i < now.size(); ++i) {
        if (now[i].second.shape() != fresh[i].second.shape()) tgfuzz::broken("a shape changed");
        if (!loaded && !same_bits(now[i].second.value(), fresh[i].second.value())) {
            tgfuzz::broken("a failed load changed '" + now[i].first + "'");
        }
    }
    if (loaded) {
        tg::nn::EvalGuard eval(model.net);
        const tg::Tensor y = model.net(tg::Tensor::ones({2, 1, 6, 6}));
        if (y.shape() != tg::Shape{2, 3}) tgfuzz::broken("wrong output shape");
    }
    return 0;
}
