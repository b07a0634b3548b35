// libFuzzer target: the checkpoint (state file) parser.
//
// Input: byte 0 chooses the mode, the rest is the payload.
//   mode even: the payload is the file as is (the CRC check stops most mutations early);
//   mode odd:  a valid CRC-32 of the payload is appended, so mutations reach the parser.
// Promises checked: read_state_file returns tensors whose shapes match their values, or
// throws std::runtime_error whose message names the file and ends with "at byte offset N",
// with every byte printable; nothing else.
#include <zlib.h>

#include <stdexcept>
#include <vector>

#include "fuzz_common.hpp"
#include "tapegrad/nn/state_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::string& path = tgfuzz::scratch_path("state");
    std::vector<std::uint8_t> file(data + 1, data + size);
    if (data[0] & 1) {
        const auto crc = static_cast<std::uint32_t>(crc32_z(0L, file.data(), file.size()));
        for (int i = 0; i < 4; ++i)
            file.push_back(static_cast<std::uint8_t>(crc >> (8 * i)));
    }
    tgfuzz::write_file(path, file.data(), file.size());
    try {
        const tg::nn::NamedTensors state = tg::nn::read_state_file(path);
        for (const auto& [name, t] : state) {
            std::size_t n = 1;
            for (const std::size_t d : t.shape())
                n *= d;
            if (n != t.numel()) tgfuzz::broken("a tensor whose shape does not match its size");
        }
    } catch (const std::runtime_error& e) {
        const std::string what = e.what();
        const std::string head = "read_state_file(" + path + "): ";
        if (what.rfind(head, 0) != 0 || what.find(" at byte offset ") == std::string::npos) {
            tgfuzz::broken("message without the file and byte offset: " + what);
        }
        tgfuzz::check_printable(what);
    }
    return 0;
}
