// tests/fuzz/fuzz_common.hpp — what the libFuzzer targets share: a private file per process
// (the loaders read paths), and a check that fails loudly.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace tgfuzz {

/// A file path private to this process, removed at exit.
inline const std::string& scratch_path(const char* tag) {
    static const std::string path = [tag] {
        const auto p = std::filesystem::temp_directory_path() /
                       (std::string("tapegrad_fuzz_") + tag + "_" + std::to_string(::getpid()));
        return p.string();
    }();
    static const struct Remover {
        ~Remover() { std::remove(path.c_str()); }
    } remover;
    return path;
}

/// Writes `n` bytes to `path`, replacing it.
inline void write_file(const std::string& path, const std::uint8_t* data, std::size_t n) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr || (n > 0 && std::fwrite(data, 1, n, f) != n) || std::fclose(f) != 0) {
        std::perror(path.c_str());
        std::abort();
    }
}

/// A broken promise: print it and abort, so libFuzzer saves the input as a crash.
[[noreturn]] inline void broken(const std::string& what) {
    std::fprintf(stderr, "tapegrad fuzz: %s\n", what.c_str());
    std::abort();
}

/// The message may be printed to a terminal: no byte below 0x20, no DEL.
inline void check_printable(const std::string& message) {
    for (const char c : message) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f) broken("unescaped control byte in the message: " + message);
    }
}

}  // namespace tgfuzz
