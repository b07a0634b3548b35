// The one way tapegrad writes a file (tapegrad/atomic_file.hpp): a private temporary file
// beside the target, then an atomic rename.
#include "tapegrad/atomic_file.hpp"

#include <fcntl.h>     // open, O_*
#include <sys/file.h>  // flock
#include <sys/stat.h>  // fstat, fchmod
#include <unistd.h>    // fsync, rename, unlink

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace tg {

namespace {

// The temporary file is "<stem>.tmp-XXXXXX" (temp_stem: the name, shortened if it is long)
// in the target's directory (a rename is atomic
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

bool write_all(int fd, std::string_view bytes) {
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

std::string temp_stem(const std::string& name) {
    constexpr std::size_t kNameMax = 255;  // NAME_MAX of Linux's filesystems
    constexpr std::size_t kKept = 200;
    if (name.size() + std::strlen(kTempInfix) + kTempRandomChars <= kNameMax) return name;
    std::uint64_t h = 1469598103934665603ULL;  // FNV-1a of the whole name
    for (const char c : name) {
        h ^= static_cast<unsigned char>(c);
        h *= 1099511628211ULL;
    }
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
    return name.substr(0, kKept) + "~" + hex;
}

void write_file_atomically(const std::string& path, std::string_view bytes,
                           const std::string& who) {
    const std::filesystem::path target(path);
    const std::string name = target.filename().string();
    const std::filesystem::path dir =
        target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
    const auto fail = [&](const std::string& why) {
        throw std::runtime_error(who + "(" + path + "): " + why);
    };
    if (name.empty() || name == "." || name == "..") fail("the path does not name a file");
    const std::string base = temp_stem(name);  // the temporaries' names start with it

    // 1. A new temporary file of our own, locked (see above). mkostemp gives mode 0600; the
    // checkpoint gets what a plain open() would have given it.
    std::string tmp;
    int fd = -1;
    for (int attempt = 0; fd < 0; ++attempt) {
        std::string temp =
            (dir / (base + kTempInfix + std::string(kTempRandomChars, 'X'))).string();
        fd = ::mkostemp(temp.data(), O_CLOEXEC);
        if (fd < 0)
            fail("cannot create a temporary file in " + dir.string() + ": " + errno_text(errno));
        tmp = std::move(temp);
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

}  // namespace tg
