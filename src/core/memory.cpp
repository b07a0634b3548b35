#include "tapegrad/memory.hpp"

#include <malloc.h>

#include <mutex>

namespace tg {

void tune_allocator_for_training() {
    static std::once_flag once;
    std::call_once(once, [] {
        // Both settings are needed (either alone made it worse, see docs/performance.md).
        mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);    // glibc's maximum: 32 MiB
        mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024);  // do not give the heap top back
    });
}

}  // namespace tg
