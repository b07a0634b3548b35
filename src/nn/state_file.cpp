#include "tapegrad/nn/state_file.hpp"

#include <fcntl.h>     // open, O_*
#include <sys/file.h>  // flock
#include <sys/stat.h>  // fstat, fchmod
#include <unistd.h>    // fsync, rename, unlink
#include <zlib.h>      // crc32_z

#include <algorithm>
#include <bit>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <stdexcept>

#include "tapegrad/atomic_file.hpp"

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
        const std::size_t name_at = in.offset();
        // Names go into messages escaped: a NUL would cut the message, control characters
        // would reach the terminal.
        const std::string name = printable(in.text(name_len, "the name of " + which));
        const std::size_t dims_at = in.offset();
        const auto ndim = in.le<std::uint64_t>("the rank of '" + name + "'");
        if (ndim > kMaxDims) {
            in.fail("corrupt rank " + std::to_string(ndim) + " of '" + name + "'", dims_at);
        }
        Shape shape(ndim);
        for (auto& d : shape)
            d = in.le<std::uint64_t>("the shape of '" + name + "'");
        const std::string values = "the values of '" + name + "' " + shape_str(shape);
        // The product of the non-zero sizes is bounded too: a 0 in the shape makes the count
        // 0, but the array's strides are products of the other sizes, and [0, 2^40, 2^40]
        // would overflow them (signed, undefined behaviour inside xtensor).
        std::uint64_t numel = 1, nonzero_product = 1;
        for (auto d : shape) {
            if (d != 0 && nonzero_product > kMaxNumel / d) {  // the byte count would overflow
                in.fail("corrupt shape " + shape_str(shape) + " of '" + name + "'", dims_at);
            }
            if (d != 0) nonzero_product *= d;
            numel *= d;
        }
        in.need(numel * 8, values);
        Array value = new_array(shape);
        for (auto& v : value)
            v = static_cast<real>(in.f64());
        state.emplace_back(std::string(bytes, name_at, name_len), Tensor(std::move(value)));
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

namespace {

std::string errno_text(int err) {
    return std::strerror(err);
}

}  // namespace

std::string printable(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (const char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (u == '\\') {
            out += "\\\\";
        } else if (u >= 0x20 && u < 0x7f) {
            out += c;
        } else {
            static constexpr char kHex[] = "0123456789abcdef";
            out += "\\x";
            out += kHex[u >> 4];
            out += kHex[u & 15];
        }
    }
    return out;
}

void write_state_file(const std::string& path, const NamedTensors& state) {
    write_file_atomically(path, encode(state), "write_state_file");
}

NamedTensors read_state_file(const std::string& path) {
    const auto fail = [&](const std::string& why) {
        throw std::runtime_error("read_state_file(" + path + "): " + why);
    };
    // O_NONBLOCK: opening a FIFO without a writer must not wait (it is refused below).
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) fail("cannot open the file: " + errno_text(errno));
    std::string bytes;
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        const int err = errno;
        ::close(fd);
        fail("cannot examine the file: " + errno_text(err));
    }
    if (S_ISDIR(st.st_mode)) {
        ::close(fd);
        fail("is a directory, expected a tapegrad state file");
    }
    if (!S_ISREG(st.st_mode)) {  // a FIFO would block forever, /dev/zero never end
        ::close(fd);
        fail(std::string("is not a regular file (") +
             (S_ISFIFO(st.st_mode)   ? "a FIFO"
              : S_ISCHR(st.st_mode)  ? "a character device"
              : S_ISBLK(st.st_mode)  ? "a block device"
              : S_ISSOCK(st.st_mode) ? "a socket"
                                     : "not a plain file") +
             "), expected a tapegrad state file");
    }
    // Read what the file's size says, no more: a file that grows while it is read is refused
    // instead of being read until memory runs out.
    const auto size = static_cast<std::size_t>(st.st_size);
    bytes.reserve(size);
    char chunk[1 << 16];
    for (;;) {
        if (bytes.size() > size) {
            ::close(fd);
            fail("the file grew while it was read (" + std::to_string(size) +
                 " bytes at the start)");
        }
        const ssize_t n = ::read(fd, chunk, sizeof chunk);
        if (n == 0) break;
        if (n < 0) {
            if (errno == EINTR) continue;
            const int err = errno;
            ::close(fd);
            fail("read error after " + std::to_string(bytes.size()) + " bytes: " + errno_text(err));
        }
        bytes.append(chunk, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return decode(path, bytes);
}

}  // namespace tg::nn
