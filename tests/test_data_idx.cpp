// The IDX reader: exact error messages for bad files, and a mutation test showing that no
// truncated or corrupted file (raw or gzip) can crash it or make it read out of bounds
// (run it under `cmake --preset asan` to prove the second half).
#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

#include "tapegrad/data/dataset.hpp"
#include "tapegrad/data/idx.hpp"
#include "tapegrad/random.hpp"
#include "testing.hpp"

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;

namespace {

using tgtest::TempDir;

/// An IDX header written by hand: 0 0 0x08 ndim, then big-endian uint32 dims.
Bytes idx_header(const std::vector<std::uint32_t>& dims, std::uint8_t type = 0x08) {
    Bytes b = {0, 0, type, static_cast<std::uint8_t>(dims.size())};
    for (std::uint32_t d : dims) {
        b.push_back(static_cast<std::uint8_t>(d >> 24));
        b.push_back(static_cast<std::uint8_t>(d >> 16));
        b.push_back(static_cast<std::uint8_t>(d >> 8));
        b.push_back(static_cast<std::uint8_t>(d));
    }
    return b;
}

/// A valid image file [n, rows, cols] whose pixel k is (7 k + 3) mod 256.
Bytes image_file(std::uint32_t n, std::uint32_t rows, std::uint32_t cols) {
    Bytes b = idx_header({n, rows, cols});
    for (std::uint32_t k = 0; k < n * rows * cols; ++k)
        b.push_back(static_cast<std::uint8_t>(7 * k + 3));
    return b;
}

/// A valid label file [n] with labels k mod 10.
Bytes label_file(std::uint32_t n) {
    Bytes b = idx_header({n});
    for (std::uint32_t k = 0; k < n; ++k)
        b.push_back(static_cast<std::uint8_t>(k % 10));
    return b;
}

void write_raw(const std::string& path, const Bytes& bytes) {
    // A new file rather than a truncated one: ext4 flushes a file rewritten after truncation
    // (auto_da_alloc), which made the mutation test 50 times slower.
    std::error_code ec;
    fs::remove(path, ec);
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
    REQUIRE(out.good());
}

/// gzip(bytes) in memory, through zlib's deflate with a gzip wrapper (windowBits 15 + 16).
Bytes gzip_bytes(const Bytes& bytes) {
    z_stream s{};
    REQUIRE(deflateInit2(&s, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    Bytes out(deflateBound(&s, bytes.size()) + 32);
    s.next_in = const_cast<Bytef*>(bytes.data());
    s.avail_in = static_cast<uInt>(bytes.size());
    s.next_out = out.data();
    s.avail_out = static_cast<uInt>(out.size());
    REQUIRE(deflate(&s, Z_FINISH) == Z_STREAM_END);
    out.resize(s.total_out);
    deflateEnd(&s);
    return out;
}

/// The message of the std::runtime_error that f throws; "" if it throws nothing. Any other
/// exception type fails the test.
// The IDX format read straight from its definition (idx.hpp), as a test oracle: the array,
// or false where read_idx must throw (with its default size limit).
bool parse_idx_independently(const Bytes& b, tg::data::IdxArray& a) {
    a = {};
    if (b.size() < 4 || b[0] != 0 || b[1] != 0 || b[2] != 0x08 || b[3] == 0) return false;
    const std::size_t ndim = b[3];
    if (b.size() < 4 + 4 * ndim) return false;
    // The sizes' product, and that of the non-zero ones, which may not exceed the limit
    // either (an empty array's strides are products of the other sizes).
    std::size_t count = 1, nonzero = 1;
    bool too_big = false;
    for (std::size_t i = 0; i < ndim; ++i) {
        const std::size_t d = (std::size_t{b[4 + 4 * i]} << 24) |
                              (std::size_t{b[5 + 4 * i]} << 16) | (std::size_t{b[6 + 4 * i]} << 8) |
                              b[7 + 4 * i];
        a.shape.push_back(d);
        if (d != 0) {
            too_big = too_big || nonzero * d > tg::data::kMaxIdxBytes;  // both < 2^32: no overflow
            nonzero = too_big ? 1 : nonzero * d;
        }
        count = d == 0 ? 0 : count * d;
    }
    const std::size_t header = 4 + 4 * ndim;
    if (too_big || b.size() - header != count) return false;
    a.data.assign(b.begin() + static_cast<std::ptrdiff_t>(header), b.end());
    return true;
}

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return {};
}

using tgtest::contains;

}  // namespace

TEST_CASE("idx: a valid file, raw and gzip, is read exactly") {
    TempDir dir;
    const Bytes file = image_file(3, 4, 5);
    write_raw(dir.file("a-raw"), file);
    write_raw(dir.file("a.gz"), gzip_bytes(file));
    for (const std::string name : {"a-raw", "a.gz"}) {
        CAPTURE(name);
        const tg::data::IdxArray a = tg::data::read_idx(dir.file(name), 3);
        CHECK(a.shape == std::vector<std::size_t>{3, 4, 5});
        REQUIRE(a.data.size() == 60);
        CHECK(a.data[0] == 3);
        CHECK(a.data[1] == 10);
        CHECK(a.data[59] == static_cast<std::uint8_t>(7 * 59 + 3));
    }
    CHECK_FALSE(tg::data::is_gzip_file(dir.file("a-raw")));
    CHECK(tg::data::is_gzip_file(dir.file("a.gz")));
}

TEST_CASE("idx: error messages name the file, the byte offset and what was expected") {
    TempDir dir;
    SUBCASE("bad magic number") {
        Bytes b = image_file(2, 3, 3);
        b[0] = 0x12;
        b[1] = 0x34;
        write_raw(dir.file("bad-magic"), b);
        const std::string m = error_of([&] { tg::data::read_idx(dir.file("bad-magic"), 3); });
        CHECK(m == "idx: " + dir.file("bad-magic") +
                       ": byte offset 0: magic number 0x12340803 is not an IDX magic number, "
                       "expected 0x00000803 (is this an MNIST-format file?)");
    }
    SUBCASE("data type other than unsigned byte") {
        write_raw(dir.file("float"), idx_header({1}, 0x0D));
        const std::string m = error_of([&] { tg::data::read_idx(dir.file("float")); });
        CHECK(contains(m, "byte offset 2: data type 0x0d is not supported, expected 0x08"));
    }
    SUBCASE("a label file where images are expected") {
        write_raw(dir.file("labels"), label_file(4));
        const std::string m = error_of([&] { tg::data::read_idx(dir.file("labels"), 3); });
        CHECK(m == "idx: " + dir.file("labels") +
                       ": byte offset 3: 1 dimensions, expected 3 (magic 0x00000803)");
    }
    SUBCASE("truncated data, raw and gzip: offset 16, bytes expected and present") {
        Bytes b = idx_header({10, 28, 28});
        b.resize(b.size() + 1000, 255);
        write_raw(dir.file("short"), b);
        write_raw(dir.file("short.gz"), gzip_bytes(b));
        for (const std::string name : {"short", "short.gz"}) {
            const std::string m = error_of([&] { tg::data::read_idx(dir.file(name), 3); });
            CHECK(m == "idx: " + dir.file(name) +
                           ": byte offset 16: expected 7840 bytes of data ([10, 28, 28]), file "
                           "has 1000");
        }
    }
    SUBCASE("truncated header") {
        Bytes b = image_file(2, 3, 3);
        b.resize(9);
        write_raw(dir.file("cut"), b);
        const std::string m = error_of([&] { tg::data::read_idx(dir.file("cut"), 3); });
        CHECK(m == "idx: " + dir.file("cut") +
                       ": byte offset 9: file ends inside the header: expected 16 bytes of header "
                       "(3 dimensions), file has 9");
        write_raw(dir.file("tiny"), Bytes{0, 0});
        CHECK(contains(error_of([&] { tg::data::read_idx(dir.file("tiny")); }),
                       "byte offset 2: file ends inside the magic number"));
        write_raw(dir.file("empty"), Bytes{});
        CHECK(contains(error_of([&] { tg::data::read_idx(dir.file("empty")); }),
                       "byte offset 0: file ends inside the magic number"));
    }
    SUBCASE("bytes after the data") {
        Bytes b = label_file(5);
        b.push_back(0);
        write_raw(dir.file("long"), b);
        const std::string m = error_of([&] { tg::data::read_idx(dir.file("long"), 1); });
        CHECK(m == "idx: " + dir.file("long") +
                       ": byte offset 13: expected the end of the file after 13 bytes (header + "
                       "[5]), file has more");
    }
    SUBCASE("an absurd declared size is rejected before allocating") {
        write_raw(dir.file("huge"), idx_header({4000000000u, 4000000000u, 28}));
        const std::string m = error_of([&] { tg::data::read_idx(dir.file("huge"), 3); });
        CHECK(contains(m,
                       "byte offset 4: dimensions [4000000000, 4000000000, 28] declare more than "
                       "1073741824 bytes"));
        // A size under the cap that the file does not hold is a plain truncation.
        write_raw(dir.file("big"), idx_header({100000, 28, 28}));
        CHECK(contains(error_of([&] { tg::data::read_idx(dir.file("big"), 3); }),
                       "byte offset 16: expected 78400000 bytes of data ([100000, 28, 28]), file "
                       "has 0"));
    }
    SUBCASE("corrupt and truncated gzip streams") {
        const Bytes gz = gzip_bytes(image_file(20, 28, 28));
        Bytes bad = gz;
        for (std::size_t i = 20; i < 60; ++i)
            bad[i] ^= 0x5a;  // inside the deflate data
        write_raw(dir.file("bad.gz"), bad);
        CHECK(contains(error_of([&] { tg::data::read_idx(dir.file("bad.gz"), 3); }),
                       "corrupt or truncated gzip data"));
        Bytes half(gz.begin(), gz.begin() + static_cast<std::ptrdiff_t>(gz.size() / 2));
        write_raw(dir.file("half.gz"), half);
        const std::string m = error_of([&] { tg::data::read_idx(dir.file("half.gz"), 3); });
        CHECK(contains(m, "idx: " + dir.file("half.gz") + ": byte offset "));
        CHECK(contains(m, "corrupt or truncated gzip data"));
        // The whole payload is there but the 8-byte trailer (CRC-32, length) is cut off.
        Bytes no_trailer(gz.begin(), gz.end() - 8);
        write_raw(dir.file("notrailer.gz"), no_trailer);
        CHECK(contains(error_of([&] { tg::data::read_idx(dir.file("notrailer.gz"), 3); }),
                       "byte offset 15696: corrupt or truncated gzip data"));
    }
    SUBCASE("missing file") {
        CHECK(contains(error_of([&] { tg::data::read_idx(dir.file("nope")); }),
                       "idx: " + dir.file("nope") + ": byte offset 0: cannot open: No such file"));
    }
}

TEST_CASE("idx pairs: mismatched counts, bad labels, missing files with a hint") {
    TempDir dir;
    write_raw(dir.file("train-images-idx3-ubyte"), image_file(5, 2, 2));
    SUBCASE("images and labels of different counts") {
        write_raw(dir.file("train-labels-idx1-ubyte"), label_file(4));
        const std::string m =
            error_of([&] { tg::data::load_mnist_dir(dir.path.string(), tg::data::Split::train); });
        CHECK(m == "idx: " + dir.file("train-labels-idx1-ubyte") +
                       ": byte offset 4: 4 labels, expected 5 (one per image of " +
                       dir.file("train-images-idx3-ubyte") + ")");
    }
    SUBCASE("a label that is not a class") {
        Bytes b = label_file(5);
        b[8 + 3] = 200;
        write_raw(dir.file("train-labels-idx1-ubyte"), b);
        const std::string m =
            error_of([&] { tg::data::load_mnist_dir(dir.path.string(), tg::data::Split::train); });
        CHECK(m == "idx: " + dir.file("train-labels-idx1-ubyte") +
                       ": byte offset 11: label 200 of example 3, expected a class in 0..9");
    }
    SUBCASE("at the boundary: label 10 (= the number of classes) is refused, 9 is a class") {
        Bytes b = label_file(5);
        b[8 + 2] = 10;
        write_raw(dir.file("train-labels-idx1-ubyte"), b);
        const std::string m =
            error_of([&] { tg::data::load_mnist_dir(dir.path.string(), tg::data::Split::train); });
        CHECK(m == "idx: " + dir.file("train-labels-idx1-ubyte") +
                       ": byte offset 10: label 10 of example 2, expected a class in 0..9");
        b[8 + 2] = 9;
        write_raw(dir.file("train-labels-idx1-ubyte"), b);
        CHECK(tg::data::load_mnist_dir(dir.path.string(), tg::data::Split::train).labels[2] == 9);
    }
    SUBCASE("raw files in a directory load, the .gz file wins when both exist") {
        write_raw(dir.file("train-labels-idx1-ubyte"), label_file(5));
        tg::data::Dataset d = tg::data::load_mnist_dir(dir.path.string(), tg::data::Split::train);
        CHECK(d.size() == 5);
        CHECK(d.rows == 2);
        CHECK(d.cols == 2);
        CHECK(d.image(1)[0] == static_cast<std::uint8_t>(7 * 4 + 3));
        CHECK(d.label(4) == 4);
        Bytes other = label_file(5);
        other[8] = 9;
        write_raw(dir.file("train-labels-idx1-ubyte.gz"), gzip_bytes(other));
        CHECK(tg::data::load_mnist_dir(dir.path.string(), tg::data::Split::train).label(0) == 9);
    }
    SUBCASE("missing test files") {
        const std::string m =
            error_of([&] { tg::data::load_mnist_dir(dir.path.string(), tg::data::Split::test); });
        CHECK(m == "mnist: " + dir.path.string() +
                       ": no t10k-images-idx3-ubyte.gz (or t10k-images-idx3-ubyte) for the test "
                       "split: pass --dataset a directory with the four MNIST-format files "
                       "(train|t10k)-(images-idx3|labels-idx1)-ubyte[.gz]");
    }
    SUBCASE("missing Fashion-MNIST names the Debian package") {
        const std::string m =
            error_of([&] { tg::data::fashion_mnist(tg::data::Split::train, dir.file("none")); });
        CHECK(contains(m, "no train-images-idx3-ubyte.gz"));
        CHECK(contains(m, "install Debian's dataset-fashion-mnist"));
        CHECK(contains(m, "or pass --dataset a directory of MNIST-format files"));
    }
    SUBCASE("missing bundled digits say where they come from") {
        const std::string m =
            error_of([&] { tg::data::bundled_mnist(tg::data::Split::train, dir.file("none")); });
        CHECK(contains(m, "data/README.md"));
    }
}

// Mutation test: many copies of small valid files, truncated, with bytes overwritten, or with
// bytes appended, written raw and gzip-compressed (and, for gzip, also with the compressed
// bytes themselves mutated). Each must load or throw std::runtime_error; whatever loads must
// be self-consistent. Under ASan/UBSan (cmake --preset asan) this also proves no read goes
// out of bounds.
TEST_CASE("idx: randomly truncated and mutated files load or throw, never crash") {
    TempDir dir;
    tg::Generator gen(20240611);
    const Bytes images = image_file(6, 5, 4);
    const Bytes labels = label_file(6);
    const std::string img_path = dir.file("train-images-idx3-ubyte");
    const std::string lbl_path = dir.file("train-labels-idx1-ubyte");
    write_raw(lbl_path, labels);

    auto mutate = [&](Bytes b) {
        switch (gen.randint(4)) {
            case 0:  // truncate
                b.resize(gen.randint(b.size() + 1));
                break;
            case 1: {  // overwrite 1-4 bytes, mostly in the 16-byte header
                const std::size_t k = 1 + gen.randint(4);
                for (std::size_t i = 0; i < k && !b.empty(); ++i) {
                    const std::size_t at = gen.randint(2)
                                               ? gen.randint(std::min<std::size_t>(16, b.size()))
                                               : gen.randint(b.size());
                    b[at] = static_cast<std::uint8_t>(gen.randint(256));
                }
                break;
            }
            case 2: {  // append 1-8 random bytes
                const std::size_t k = 1 + gen.randint(8);
                for (std::size_t i = 0; i < k; ++i)
                    b.push_back(static_cast<std::uint8_t>(gen.randint(256)));
                break;
            }
            default:  // overwrite and truncate
                if (!b.empty())
                    b[gen.randint(b.size())] = static_cast<std::uint8_t>(gen.randint(256));
                b.resize(gen.randint(b.size() + 1));
        }
        return b;
    };

    int loaded = 0, rejected = 0;
    // `expected`: what read_idx must make of the decompressed bytes, from the format alone
    // (nullptr: must throw); unknown (`known` false) for a mutated gzip stream.
    auto attempt = [&](const std::string& path, const tg::data::IdxArray* expected, bool known) {
        try {
            const tg::data::IdxArray a = tg::data::read_idx(path);
            if (known) {
                REQUIRE_MESSAGE(expected != nullptr, "a file that is not valid IDX loaded");
                CHECK(a.shape == expected->shape);
                CHECK(a.data == expected->data);
            }
            std::size_t n = 1;
            for (std::size_t d : a.shape)
                n *= d;
            REQUIRE(a.data.size() == n);
            // A file that reads as IDX may still not be a valid image file for the pair.
            try {
                tg::data::Dataset d = tg::data::load_idx_pair(
                    path, lbl_path, {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"});
                REQUIRE(d.images.size() == d.size() * d.rows * d.cols);
            } catch (const std::runtime_error&) {
            }
            ++loaded;
        } catch (const std::runtime_error& e) {
            if (known)
                REQUIRE_MESSAGE(expected == nullptr, "a valid file was rejected: " << e.what());
            ++rejected;
        }
    };

    constexpr int kRounds = 1500;
    int valid_payloads = 0;
    for (int round = 0; round < kRounds; ++round) {
        const Bytes b = mutate(images);
        tg::data::IdxArray parsed;
        const tg::data::IdxArray* expected = parse_idx_independently(b, parsed) ? &parsed : nullptr;
        valid_payloads += expected != nullptr;
        write_raw(img_path, b);  // raw
        attempt(img_path, expected, true);
        write_raw(img_path, gzip_bytes(b));  // gzip of a mutated payload
        attempt(img_path, expected, true);
        write_raw(img_path, mutate(gzip_bytes(images)));  // mutated gzip stream
        attempt(img_path, nullptr, false);
    }
    // Both outcomes occur: appended bytes and data-byte overwrites keep a file readable, or
    // not; header damage and truncation are caught.
    CHECK(valid_payloads > 50);
    CHECK(valid_payloads < kRounds - 500);
    CHECK(loaded > 100);
    CHECK(rejected > 1000);
    MESSAGE("mutation test: " << loaded << " files loaded, " << rejected << " rejected");
}
