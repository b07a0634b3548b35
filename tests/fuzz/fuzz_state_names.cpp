// libFuzzer target: checkpoint files with odd names, written and read back.
//
// Input: 1 to 4 tensors, each a name of any bytes (backslashes, control bytes, NUL, invalid
// UTF-8, empty) and a small shape (rank 0-3, sizes 0-3) with values of any bit pattern; then the
// file's own name: any bytes but '/' and NUL, 1 to 255 of them (so names at NAME_MAX, with
// newlines, a leading dash, ".tmp-" inside, non-ASCII).
// Promises checked: write_state_file saves it (every such name is a valid file name) and
// read_state_file gives back the same names byte for byte, in order, the same shapes and the
// same values (NaN as a NaN); no temporary file is left beside it.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "fuzz_input.hpp"
#include "tapegrad/nn/state_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    tgfuzz::Input in(data, size);
    const std::size_t count = 1 + in.byte() % 4;
    tg::nn::NamedTensors state;
    for (std::size_t k = 0; k < count; ++k) {
        std::string name = in.text(64);
        tg::Shape shape(in.byte() % 4);
        for (auto& d : shape)
            d = in.byte() % 4;
        tg::Tensor t = tg::Tensor::zeros(shape);
        for (auto& v : t.value())
            v = static_cast<tg::real>(in.f64());
        state.emplace_back(std::move(name), std::move(t));
    }
    // The file name: what is left, without '/' and NUL, at most 255 bytes.
    std::string file;
    while (in.remaining() > 0 && file.size() < 255) {
        const char c = static_cast<char>(in.byte());
        if (c != '/' && c != '\0') file.push_back(c);
    }
    if (file.empty() || file == "." || file == "..") file = "state";

    const std::filesystem::path dir = tgfuzz::scratch_path("names_dir");
    std::filesystem::create_directories(dir);
    const std::string path = (dir / file).string();
    try {
        tg::nn::write_state_file(path, state);
    } catch (const std::exception& e) {
        tgfuzz::broken(std::string("a valid state and file name were not saved: ") + e.what());
    }
    tg::nn::NamedTensors back;
    try {
        back = tg::nn::read_state_file(path);
    } catch (const std::exception& e) {
        tgfuzz::broken(std::string("a file just saved did not load: ") + e.what());
    }
    if (back.size() != state.size()) tgfuzz::broken("a different number of tensors");
    for (std::size_t k = 0; k < state.size(); ++k) {
        if (back[k].first != state[k].first)
            tgfuzz::broken("a name did not round-trip: " + tg::nn::printable(state[k].first) +
                           " came back as " + tg::nn::printable(back[k].first));
        if (back[k].second.shape() != state[k].second.shape())
            tgfuzz::broken("a shape did not round-trip");
        const auto& a = state[k].second.value();
        const auto& b = back[k].second.value();
        for (std::size_t i = 0; i < a.size(); ++i) {
            const tg::real x = a.flat(i), y = b.flat(i);
            if (!(std::isnan(x) && std::isnan(y)) && std::memcmp(&x, &y, sizeof x) != 0)
                tgfuzz::broken("a value did not round-trip");
        }
    }
    std::size_t entries = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        ++entries;
        if (e.path().filename().string() != file)
            tgfuzz::broken("a file left beside the checkpoint: " +
                           tg::nn::printable(e.path().filename().string()));
    }
    if (entries != 1) tgfuzz::broken("the checkpoint is missing");
    std::filesystem::remove(path);  // the directory is empty again (removed at exit)
    return 0;
}
