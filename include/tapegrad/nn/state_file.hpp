// tapegrad/nn/state_file.hpp — the checkpoint file: named tensors on disk.
//
// Format (every integer unsigned little-endian, every value an IEEE float64 little-endian,
// whatever the build's scalar type, so a float build and a float64 build read each other's
// files):
//
//   offset 0   8 bytes  magic "TGSTATE\0"
//              u32      format version (1)
//              u64      number of tensors T
//   T times:   u64      name length L, then L bytes of name (UTF-8, "features.1.running_mean")
//              u64      number of dimensions D, then D x u64 sizes (outermost first)
//              numel x f64 values, row-major
//   end:       u32      CRC-32 (zlib's crc32) of every byte before it
//
// Module::save_state / load_state use these two functions.
#pragma once

#include <string>
#include <string_view>

#include "tapegrad/nn/module.hpp"

namespace tg::nn {

/// Writes `state` to `path`: first to a new "<path>.tmp-XXXXXX" (random, created
/// exclusively, never through a symlink) in the same directory, flushed to disk, then renamed
/// over `path`. On any failure the temporary file is removed and the previous `path` (if any)
/// is untouched; throws std::runtime_error naming the file. Threads and processes may save
/// the same path at once (the last rename wins, each file complete). After a successful save,
/// temporary files of the same path left by killed savers are removed.
void write_state_file(const std::string& path, const NamedTensors& state);

/// Reads a file written by write_state_file. A file that is not a state file, is truncated or
/// corrupt throws std::runtime_error naming the file and the byte offset of the problem.
NamedTensors read_state_file(const std::string& path);

/// `s` safe to put in a message: printable ASCII as is, a backslash doubled, every other
/// byte (NUL, control characters, non-ASCII) as \xNN. Names read from files go through it.
std::string printable(std::string_view s);

}  // namespace tg::nn
