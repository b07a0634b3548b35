// tapegrad/atomic_file.hpp — the one way tapegrad writes a file: whole or not at all.
#pragma once

#include <string>
#include <string_view>

namespace tg {

/// Writes `bytes` to `path` so that a reader (or a crash, or kill -9) sees the old file or the
/// whole new one, never a part: a temporary file "<stem>.tmp-XXXXXX" (temp_stem below) in the
/// target's directory
/// with an unpredictable name, created O_CREAT | O_EXCL (never through a planted symlink),
/// permissions 0666 minus the umask, written and fsync'ed, renamed onto `path`, and the
/// directory fsync'ed. Its writer holds flock on the temporary until the rename, so threads
/// and processes may write one path at once, and the next successful write removes the
/// temporaries of killed writers (never those of a writer still at work). Checkpoints, CSV,
/// gnuplot scripts, figures and every other file tapegrad writes go through it.
/// Throws std::runtime_error "<who>(<path>): <reason>" (the temporary is removed).
void write_file_atomically(const std::string& path, std::string_view bytes,
                           const std::string& who = "write_file_atomically");

/// The stem of the temporary names beside a target file named `name` (its last path
/// component): `name` itself, or, when "<name>.tmp-XXXXXX" would be longer than a file name may
/// be (255 bytes), its first 200 bytes, "~" and 16 hex digits of a hash of the whole name, so
/// a file with a name of up to 255 bytes can be written too.
std::string temp_stem(const std::string& name);

}  // namespace tg
