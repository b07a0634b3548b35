#include "tapegrad/nn/state_file.hpp"

#include <unistd.h>  // fsync, getpid
#include <zlib.h>    // crc32_z

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <stdexcept>

namespace tg::nn {

namespace {

constexpr char kMagic[8] = {'T', 'G', 'S', 'T', 'A', 'T', 'E', '\0'};
constexpr std::uint32_t kVersion = 1;
constexpr std::uint64_t kMaxDims = 32;
constexpr std::uint64_t kMaxNumel = std::numeric_limits<std::uint64_t>::max() / 8;

// ---- encoding: integers and float64 as little-endian bytes ----

template <class U>
void put_le(std::string& out, U v) {
    for (std::size_t i = 0; i < sizeof(U); ++i)
        out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put_f64(std::string& out, double v) {
    put_le(out, std::bit_cast<std::uint64_t>(v));
}

std::uint32_t crc32_of(const char* data, std::size_t n) {
    return static_cast<std::uint32_t>(
        crc32_z(0L, reinterpret_cast<const Bytef*>(data), static_cast<z_size_t>(n)));
}

std::string encode(const NamedTensors& state) {
    std::string out(kMagic, sizeof(kMagic));
    put_le<std::uint32_t>(out, kVersion);
    put_le<std::uint64_t>(out, state.size());
    for (const auto& [name, t] : state) {
        put_le<std::uint64_t>(out, name.size());
        out += name;
        const Shape shape = t.shape();
        put_le<std::uint64_t>(out, shape.size());
        for (auto d : shape)
            put_le<std::uint64_t>(out, d);
        const real* v = t.value().data();
        for (std::size_t i = 0; i < t.numel(); ++i)
            put_f64(out, static_cast<double>(v[i]));
    }
    put_le<std::uint32_t>(out, crc32_of(out.data(), out.size()));
    return out;
}

// ---- decoding: a cursor that knows its byte offset, for error messages ----

class Reader {
  public:
    Reader(const std::string& path, const std::string& bytes) : path_(path), bytes_(bytes) {}

    std::size_t offset() const { return pos_; }
    std::size_t remaining() const { return bytes_.size() - pos_; }

    [[noreturn]] void fail(const std::string& why, std::size_t at) const {
        throw std::runtime_error("read_state_file(" + path_ + "): " + why + " at byte offset " +
                                 std::to_string(at));
    }

    // Throws: `what` needs `needed` bytes, more than remain.
    [[noreturn]] void too_short(const std::string& what, const std::string& needed) const {
        fail("truncated or corrupt file: " + what + " needs " + needed + " bytes, only " +
                 std::to_string(remaining()) + " remain",
             pos_);
    }

    // Makes sure `n` more bytes exist for `what`.
    void need(std::uint64_t n, const std::string& what) const {
        if (n > remaining()) too_short(what, std::to_string(n));
    }

    template <class U>
    U le(const std::string& what) {
        need(sizeof(U), what);
        U v = 0;
        for (std::size_t i = 0; i < sizeof(U); ++i) {
            v |= static_cast<U>(static_cast<unsigned char>(bytes_[pos_ + i])) << (8 * i);
        }
        pos_ += sizeof(U);
        return v;
    }

    double f64() { return std::bit_cast<double>(le<std::uint64_t>("a value")); }

    std::string text(std::size_t n, const std::string& what) {
        need(n, what);
        std::string s = bytes_.substr(pos_, n);
        pos_ += n;
        return s;
    }

  private:
    const std::string& path_;
    const std::string& bytes_;
    std::size_t pos_ = 0;
};

NamedTensors decode(const std::string& path, const std::string& bytes) {
    Reader in(path, bytes);
    if (in.text(sizeof(kMagic), "the magic header") != std::string(kMagic, sizeof(kMagic))) {
        in.fail("not a tapegrad state file (the magic header \"TGSTATE\" is missing)", 0);
    }
    const std::size_t version_at = in.offset();
    if (const auto version = in.le<std::uint32_t>("the format version"); version != kVersion) {
        in.fail("unsupported format version " + std::to_string(version) + " (this build reads " +
                    std::to_string(kVersion) + ")",
                version_at);
    }
    // A corrupt count fails below where the entries run out (each takes at least 16 bytes).
    const auto count = in.le<std::uint64_t>("the tensor count");
    NamedTensors state;
    for (std::uint64_t k = 0; k < count; ++k) {
        const std::string which = "tensor " + std::to_string(k);
        const auto name_len = in.le<std::uint64_t>("the name length of " + which);
        std::string name = in.text(name_len, "the name of " + which);
        const std::size_t dims_at = in.offset();
        const auto ndim = in.le<std::uint64_t>("the rank of '" + name + "'");
        if (ndim > kMaxDims) {
            in.fail("corrupt rank " + std::to_string(ndim) + " of '" + name + "'", dims_at);
        }
        Shape shape(ndim);
        for (auto& d : shape)
            d = in.le<std::uint64_t>("the shape of '" + name + "'");
        const std::string values = "the values of '" + name + "' " + shape_str(shape);
        std::uint64_t numel = 1;
        for (auto d : shape) {
            if (d != 0 && numel > kMaxNumel / d) {  // the byte count would overflow
                in.fail("corrupt shape " + shape_str(shape) + " of '" + name + "'", dims_at);
            }
            numel *= d;
        }
        in.need(numel * 8, values);
        Array value = Array::from_shape(shape);
        for (auto& v : value)
            v = static_cast<real>(in.f64());
        state.emplace_back(std::move(name), Tensor(std::move(value)));
    }
    const std::size_t crc_at = in.offset();
    const auto stored_crc = in.le<std::uint32_t>("the CRC-32 checksum");
    if (in.remaining() != 0) in.fail("unexpected data after the checksum", in.offset());
    if (stored_crc != crc32_of(bytes.data(), crc_at)) {
        in.fail("checksum mismatch: the file is corrupt (CRC-32 of bytes 0.." +
                    std::to_string(crc_at) + " does not match the one stored)",
                crc_at);
    }
    return state;
}

}  // namespace

void write_state_file(const std::string& path, const NamedTensors& state) {
    const std::string bytes = encode(state);
    const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
    const auto fail = [&](const std::string& why) {
        std::error_code ignored;
        std::filesystem::remove(tmp, ignored);
        throw std::runtime_error("write_state_file(" + path + "): " + why);
    };
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (f == nullptr) fail("cannot create " + tmp + ": " + std::strerror(errno));
    // Write, flush to the OS, then to the disk: only a complete file is ever renamed.
    const bool written = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size() &&
                         std::fflush(f) == 0 && ::fsync(::fileno(f)) == 0;
    const int saved_errno = errno;
    const bool closed = std::fclose(f) == 0;
    if (!written || !closed) fail("writing " + tmp + " failed: " + std::strerror(saved_errno));
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) fail("cannot rename " + tmp + " to " + path + ": " + ec.message());
}

NamedTensors read_state_file(const std::string& path) {
    std::ifstream file(path, std::ios::binary);
    if (!file) throw std::runtime_error("read_state_file(" + path + "): cannot open the file");
    const std::string bytes((std::istreambuf_iterator<char>(file)),
                            std::istreambuf_iterator<char>());
    if (file.bad()) throw std::runtime_error("read_state_file(" + path + "): read error");
    return decode(path, bytes);
}

}  // namespace tg::nn
