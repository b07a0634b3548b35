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
        Array value = Array::from_shape(shape);
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

// ---- saving: a private temporary file beside the target, then an atomic rename ----
//
// The temporary file is "<name>.tmp-XXXXXX" in the target's directory (a rename is atomic
// only within one filesystem), made by mkostemp: an unpredictable name opened with
// O_CREAT | O_EXCL, which fails on any existing entry, a planted symlink included, so the
// bytes never go anywhere but a new file of ours. Its writer holds flock(LOCK_EX) on it
// until it is renamed, so a temporary file whose lock can be taken is one whose writer
// died (a killed process loses its locks): the next successful save of the same target
// removes it, and never removes the file of a writer still at work (another thread or
// process saving the same path).

constexpr const char* kTempInfix = ".tmp-";
constexpr std::size_t kTempRandomChars = 6;  // mkstemp's XXXXXX

std::string errno_text(int err) {
    return std::strerror(err);
}

// The permissions a new file would get from open(..., 0666): 0666 minus the umask, read
// from /proc (umask(2) itself cannot be read without changing it, which races with threads).
mode_t new_file_mode() {
    mode_t mask = 022;
    if (std::FILE* f = std::fopen("/proc/self/status", "r")) {
        char line[256];
        while (std::fgets(line, sizeof line, f) != nullptr) {
            unsigned int m = 0;
            if (std::sscanf(line, "Umask: %o", &m) == 1) {
                mask = static_cast<mode_t>(m);
                break;
            }
        }
        std::fclose(f);
    }
    return static_cast<mode_t>(0666 & ~mask);
}

bool write_all(int fd, const std::string& bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        done += static_cast<std::size_t>(n);
    }
    return true;
}

// True for a name mkostemp could have made for `base`: "<base>.tmp-" and six characters.
bool is_temp_name_of(const std::string& name, const std::string& base) {
    const std::string prefix = base + kTempInfix;
    if (name.size() != prefix.size() + kTempRandomChars || name.compare(0, prefix.size(), prefix))
        return false;
    return std::all_of(name.begin() + static_cast<std::ptrdiff_t>(prefix.size()), name.end(),
                       [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; });
}

// Removes the temporary files of `base` in `dir` left by writers that died (their flock is
// free). Best effort: a file that cannot be examined is left alone.
void remove_stale_temps(const std::filesystem::path& dir, const std::string& base) {
    std::error_code ec;
    std::filesystem::directory_iterator it(dir, ec), end;
    for (; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (!is_temp_name_of(name, base)) continue;
        const std::string temp = it->path().string();
        const int fd = ::open(temp.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) continue;  // a symlink, already gone, or not ours to read
        struct stat st {};
        if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && ::flock(fd, LOCK_EX | LOCK_NB) == 0) {
            ::unlink(temp.c_str());  // its writer is gone: nobody will rename it
        }
        ::close(fd);
    }
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
    const std::string bytes = encode(state);
    const std::filesystem::path target(path);
    const std::string base = target.filename().string();
    const std::filesystem::path dir =
        target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
    const auto fail = [&](const std::string& why) {
        throw std::runtime_error("write_state_file(" + path + "): " + why);
    };
    if (base.empty() || base == "." || base == "..") fail("the path does not name a file");

    // 1. A new temporary file of our own, locked (see above). mkostemp gives mode 0600; the
    // checkpoint gets what a plain open() would have given it.
    std::string tmp;
    int fd = -1;
    for (int attempt = 0; fd < 0; ++attempt) {
        std::string name =
            (dir / (base + kTempInfix + std::string(kTempRandomChars, 'X'))).string();
        fd = ::mkostemp(name.data(), O_CLOEXEC);
        if (fd < 0)
            fail("cannot create a temporary file in " + dir.string() + ": " + errno_text(errno));
        tmp = std::move(name);
        ::flock(fd, LOCK_EX);
        // Another saver's cleanup may have taken it between mkostemp and flock: start again.
        struct stat st {};
        if (::fstat(fd, &st) == 0 && st.st_nlink == 0 && attempt < 100) {
            ::close(fd);
            fd = -1;
        }
    }
    const auto fail_and_remove = [&](const std::string& why) {
        ::unlink(tmp.c_str());
        ::close(fd);
        fail(why);
    };

    // 2. Write, flush to the disk: only a complete file is ever renamed.
    if (::fchmod(fd, new_file_mode()) != 0) {
        fail_and_remove("cannot set the permissions of " + tmp + ": " + errno_text(errno));
    }
    if (!write_all(fd, bytes) || ::fsync(fd) != 0) {
        fail_and_remove("writing " + tmp + " failed: " + errno_text(errno));
    }

    // 3. The atomic step: readers see the old file or the new one, never a mix.
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        fail_and_remove("cannot rename " + tmp + " to " + path + ": " + errno_text(errno));
    }
    ::close(fd);  // releases the lock; the file now has the target's name

    // 4. Make the rename itself durable, then clear what killed savers left behind.
    if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
    remove_stale_temps(dir, base);
}

NamedTensors read_state_file(const std::string& path) {
    const auto fail = [&](const std::string& why) {
        throw std::runtime_error("read_state_file(" + path + "): " + why);
    };
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
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
    char chunk[1 << 16];
    for (;;) {
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
