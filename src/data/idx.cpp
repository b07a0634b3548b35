// The IDX reader: header first, then the data in chunks, every read bounds-checked.
#include "tapegrad/data/idx.hpp"

#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <sstream>
#include <stdexcept>

#include "tapegrad/config.hpp"

namespace tg::data {

namespace {

[[noreturn]] void fail(const std::string& path, std::size_t offset, const std::string& what) {
    throw std::runtime_error("idx: " + path + ": byte offset " + std::to_string(offset) + ": " +
                             what);
}

std::string hex(std::uint64_t v, int digits) {
    std::ostringstream s;
    s << "0x";
    s.width(digits);
    s.fill('0');
    s << std::hex << v;
    return s.str();
}

/// A file read front to back, through zlib when it is gzip-compressed. `offset()` counts
/// the (decompressed) bytes delivered so far, so errors can name where they happened.
class ByteSource {
  public:
    explicit ByteSource(const std::string& path) : path_(path) {
        // fopen succeeds on a directory and only the first read fails (EISDIR): say so here.
        struct stat st {};
        if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
            fail(path, 0, "is a directory, expected an IDX file");
        }
        gzip_ = is_gzip_file(path);
        if (gzip_) {
            gz_ = gzopen(path.c_str(), "rb");
            if (gz_ == nullptr) fail(path, 0, "cannot open: " + std::string(std::strerror(errno)));
            gzbuffer(gz_, 1u << 17);
        } else {
            raw_ = std::fopen(path.c_str(), "rb");
            if (raw_ == nullptr) fail(path, 0, "cannot open: " + std::string(std::strerror(errno)));
        }
    }
    ~ByteSource() {
        if (gz_ != nullptr) gzclose(gz_);
        if (raw_ != nullptr) std::fclose(raw_);
    }
    ByteSource(const ByteSource&) = delete;
    ByteSource& operator=(const ByteSource&) = delete;

    /// Reads up to n bytes into dst; fewer only at the end of the data. A corrupt or
    /// truncated gzip stream throws.
    std::size_t read(std::uint8_t* dst, std::size_t n) {
        std::size_t got = 0;
        if (gzip_) {
            while (got < n) {
                const unsigned ask =
                    static_cast<unsigned>(std::min<std::size_t>(n - got, 1u << 20));
                const int r = gzread(gz_, dst + got, ask);
                if (r <= 0) {
                    check_gzip_error(offset_ + got);
                    break;
                }
                got += static_cast<std::size_t>(r);
            }
        } else {
            got = std::fread(dst, 1, n, raw_);
            if (got < n && std::ferror(raw_)) {
                fail(path_, offset_ + got, "read error: " + std::string(std::strerror(errno)));
            }
        }
        offset_ += got;
        return got;
    }

    std::size_t offset() const { return offset_; }

  private:
    // gzread returns 0 both at a clean end and at a truncated stream (zlib's Z_BUF_ERROR);
    // only gzerror tells them apart.
    void check_gzip_error(std::size_t at) {
        int errnum = Z_OK;
        const char* msg = gzerror(gz_, &errnum);
        if (errnum != Z_OK) {
            fail(path_, at,
                 "corrupt or truncated gzip data (zlib: " + std::string(msg ? msg : "?") + ")");
        }
    }

    std::string path_;
    bool gzip_ = false;
    gzFile gz_ = nullptr;
    std::FILE* raw_ = nullptr;
    std::size_t offset_ = 0;
};

std::uint32_t big_endian_u32(const std::uint8_t* p) {
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
           std::uint32_t{p[3]};
}

}  // namespace

bool is_gzip_file(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) return false;
    unsigned char magic[2] = {0, 0};
    const std::size_t n = std::fread(magic, 1, 2, f);
    std::fclose(f);
    return n == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
}

IdxArray read_idx(const std::string& path, std::size_t expected_ndim, std::size_t max_bytes) {
    ByteSource in(path);

    // --- the 4-byte magic number: 0x00 0x00 <type> <ndim>
    std::uint8_t magic[4];
    std::size_t got = in.read(magic, 4);
    if (got < 4) {
        fail(
            path, got,
            "file ends inside the magic number: expected 4 bytes, file has " + std::to_string(got));
    }
    const std::string expected_magic =
        expected_ndim > 0 ? hex(0x800u + expected_ndim, 8) : std::string("0x000008NN");
    if (magic[0] != 0 || magic[1] != 0) {
        fail(path, 0,
             "magic number " + hex(big_endian_u32(magic), 8) +
                 " is not an IDX magic number, expected " + expected_magic +
                 " (is this an MNIST-format file?)");
    }
    if (magic[2] != 0x08) {
        fail(path, 2,
             "data type " + hex(magic[2], 2) + " is not supported, expected 0x08 (unsigned byte)");
    }
    const std::size_t ndim = magic[3];
    if (expected_ndim > 0 && ndim != expected_ndim) {
        fail(path, 3,
             std::to_string(ndim) + " dimensions, expected " + std::to_string(expected_ndim) +
                 " (magic " + expected_magic + ")");
    }
    if (ndim == 0) fail(path, 3, "0 dimensions, expected at least 1");

    // --- the dimensions, and the data size they declare (checked against the cap as we go,
    // so the product never overflows and nothing is allocated for an absurd header)
    std::uint8_t dims_bytes[4 * 255];
    const std::size_t header_bytes = 4 + 4 * ndim;
    got = in.read(dims_bytes, 4 * ndim);
    if (got < 4 * ndim) {
        fail(path, in.offset(),
             "file ends inside the header: expected " + std::to_string(header_bytes) +
                 " bytes of header (" + std::to_string(ndim) + " dimensions), file has " +
                 std::to_string(in.offset()));
    }
    IdxArray out;
    out.shape.resize(ndim);
    // The product of the non-zero sizes is bounded as well: a 0 makes the byte count 0, but
    // an array of that shape has strides that are products of the other sizes, and
    // [0, 2^32-1, 2^32-1, 2^32-1] would overflow them.
    std::size_t need = 1, nonzero_product = 1;
    bool too_big = false;
    for (std::size_t i = 0; i < ndim; ++i)
        out.shape[i] = big_endian_u32(dims_bytes + 4 * i);
    for (const std::size_t d : out.shape) {
        if (d == 0) {
            need = 0;
        } else if (nonzero_product > max_bytes / d) {
            too_big = true;
            break;
        } else {
            nonzero_product *= d;
            need *= d;
        }
    }
    if (too_big || need > max_bytes) {
        fail(path, 4,
             "dimensions " + shape_str(out.shape) + " declare more than " +
                 std::to_string(max_bytes) + " bytes of data (the reader's limit)");
    }

    // --- the data, in chunks: memory grows with what the file really holds, not with what
    // its header claims.
    constexpr std::size_t kChunk = std::size_t{1} << 20;
    out.data.reserve(std::min(need, 64 * kChunk));
    std::size_t have = 0;
    while (have < need) {
        const std::size_t ask = std::min(need - have, kChunk);
        out.data.resize(have + ask);
        const std::size_t n = in.read(out.data.data() + have, ask);
        have += n;
        if (n < ask) break;
    }
    if (have < need) {
        fail(path, header_bytes,
             "expected " + std::to_string(need) + " bytes of data (" + shape_str(out.shape) +
                 "), file has " + std::to_string(have));
    }

    // --- nothing may follow the data (a longer file is not what its header describes)
    std::uint8_t extra = 0;
    if (in.read(&extra, 1) != 0) {
        fail(path, header_bytes + need,
             "expected the end of the file after " + std::to_string(header_bytes + need) +
                 " bytes (header + " + shape_str(out.shape) + "), file has more");
    }
    return out;
}

}  // namespace tg::data
