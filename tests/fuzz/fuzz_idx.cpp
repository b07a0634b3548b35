// libFuzzer target: the IDX reader, raw and gzip.
//
// Input: byte 0 chooses the mode, the rest is the payload.
//   mode even: the payload is the file as is (raw IDX, or a gzip stream the fuzzer mutates);
//   mode odd:  the payload is gzip-compressed first, so the fuzzer explores the IDX layout
//              behind the decompression too.
// Promises checked: read_idx returns a consistent array or throws std::runtime_error whose
// message starts with "idx: <path>: byte offset "; nothing else (ASan/UBSan watch memory).
#include <zlib.h>

#include <stdexcept>
#include <vector>

#include "fuzz_common.hpp"
#include "tapegrad/data/idx.hpp"

namespace {

std::vector<std::uint8_t> gzip(const std::uint8_t* data, std::size_t n) {
    z_stream s{};
    if (deflateInit2(&s, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) std::abort();
    std::vector<std::uint8_t> out(deflateBound(&s, n) + 32);
    s.next_in = const_cast<Bytef*>(data);
    s.avail_in = static_cast<uInt>(n);
    s.next_out = out.data();
    s.avail_out = static_cast<uInt>(out.size());
    if (deflate(&s, Z_FINISH) != Z_STREAM_END) std::abort();
    out.resize(s.total_out);
    deflateEnd(&s);
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::string& path = tgfuzz::scratch_path("idx");
    if (data[0] & 1) {
        const std::vector<std::uint8_t> z = gzip(data + 1, size - 1);
        tgfuzz::write_file(path, z.data(), z.size());
    } else {
        tgfuzz::write_file(path, data + 1, size - 1);
    }
    // A small limit keeps the fuzzer's memory small; the limit check itself is under test.
    constexpr std::size_t kLimit = std::size_t{1} << 20;
    try {
        const tg::data::IdxArray a = tg::data::read_idx(path, 0, kLimit);
        std::size_t n = 1;
        for (const std::size_t d : a.shape)
            n *= d;
        if (a.shape.empty() || n != a.data.size() || n > kLimit) {
            tgfuzz::broken("read_idx returned an inconsistent array");
        }
    } catch (const std::runtime_error& e) {
        const std::string what = e.what();
        if (what.rfind("idx: " + path + ": byte offset ", 0) != 0) {
            tgfuzz::broken("message without the file and byte offset: " + what);
        }
        tgfuzz::check_printable(what);
    }
    return 0;
}
