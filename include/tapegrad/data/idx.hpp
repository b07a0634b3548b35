// tapegrad/data/idx.hpp — the IDX file format of MNIST, read safely.
//
// An IDX file (http://yann.lecun.com/exdb/mnist/) is
//   byte 0-1   0x00 0x00                         (magic, part 1)
//   byte 2     data type, 0x08 = unsigned byte   (the only type MNIST-like files use)
//   byte 3     number of dimensions d
//   byte 4..   d dimensions, big-endian uint32   ([N, rows, cols] for images, [N] for labels)
//   then       prod(dims) bytes of data, row-major
// The magic number of an image file is therefore 0x00000803 and of a label file 0x00000801.
// Files may be gzip-compressed (recognised by their first two bytes 0x1f 0x8b) or raw.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace tg::data {

/// The largest payload read_idx accepts by default (1 GiB; Fashion-MNIST's training images
/// are 47 MB): a header declaring more is rejected before anything is allocated.
inline constexpr std::size_t kMaxIdxBytes = std::size_t{1} << 30;

/// The contents of an IDX file of unsigned bytes: its dimensions and its row-major data.
struct IdxArray {
    std::vector<std::size_t> shape;  // e.g. [N, 28, 28]
    std::vector<std::uint8_t> data;  // prod(shape) bytes
};

/// Reads the IDX file at `path` (gzip or raw). `expected_ndim` > 0 also requires that many
/// dimensions. Throws std::runtime_error naming the file, the byte offset (in the
/// decompressed stream) and what was expected, for a missing, truncated, corrupt or
/// oversized file, or one with bytes after the data.
IdxArray read_idx(const std::string& path, std::size_t expected_ndim = 0,
                  std::size_t max_bytes = kMaxIdxBytes);

/// True when the file at `path` starts with the gzip magic bytes 0x1f 0x8b.
bool is_gzip_file(const std::string& path);

}  // namespace tg::data
