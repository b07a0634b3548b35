// tests/fuzz/fuzz_input.hpp — reading a libFuzzer input as a sequence of choices (bytes, sizes,
// strings, doubles); past its end every read gives zeros, so any input decodes.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <string>

namespace tgfuzz {

class Input {
  public:
    Input(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}

    std::uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
    std::uint64_t u64() {
        std::uint64_t v = 0;
        for (int i = 0; i < 8; ++i)
            v |= static_cast<std::uint64_t>(byte()) << (8 * i);
        return v;
    }
    double f64() { return std::bit_cast<double>(u64()); }
    /// A string of up to `max` bytes: a length byte, then that many bytes (any value).
    std::string text(std::size_t max = 255) {
        const std::size_t n = std::min<std::size_t>(byte(), max);
        std::string s;
        for (std::size_t i = 0; i < n && pos_ < size_; ++i)
            s.push_back(static_cast<char>(byte()));
        return s;
    }
    std::size_t remaining() const { return size_ - pos_; }

  private:
    const std::uint8_t* data_;
    std::size_t size_;
    std::size_t pos_ = 0;
};

}  // namespace tgfuzz
