// tapegrad/parallel.hpp — the one thread setting, and splitting a fast kernel's loop between
// threads.
//
// Only fast kernels (src/ops/kernels/fast/) call parallel_for; reference kernels are plain
// single-threaded loops. Threads never change the numbers: a kernel either splits iterations
// that are computed independently of each other (per element, per channel, per plane), or
// cuts its work into a fixed set of blocks chosen from the shapes alone and sums the blocks'
// partial results in block order (conv2d, gemm). Threads only pick which block to run next.
// BLAS is always called single-threaded, inside such blocks (detail::gemm).
#pragma once

#include <cstddef>
#include <functional>

namespace tg {

/// How many threads fast kernels split work between: set_num_threads, else the environment
/// variable TAPEGRAD_NUM_THREADS, else the build's default (CMake TAPEGRAD_THREADS: 1 in the
/// debug preset, 0 = every hardware thread otherwise).
std::size_t num_threads();
/// Sets it (1 = everything on the calling thread; 0 means 1). This is the only thread
/// setting: BLAS is kept single-threaded and runs inside tapegrad's blocks. More than
/// kMaxThreads throws std::invalid_argument (a typo must not start thousands of threads).
void set_num_threads(std::size_t threads);

/// The most threads set_num_threads and TAPEGRAD_NUM_THREADS accept.
inline constexpr std::size_t kMaxThreads = 256;

/// The least work worth handing to another thread, in values read or written (waking a
/// thread costs some microseconds); smaller loops stay on the calling thread.
inline constexpr std::size_t kMinValuesPerThread = std::size_t{1} << 16;

/// The grain for a loop whose items touch `values_per_item` values each: enough items that
/// every chunk has at least kMinValuesPerThread values.
inline std::size_t grain_for(std::size_t values_per_item) {
    const std::size_t per = values_per_item > 0 ? values_per_item : 1;
    return kMinValuesPerThread / per > 0 ? kMinValuesPerThread / per : 1;
}

namespace detail {
/// The pooled half of parallel_for (src/core/parallel.cpp): cuts [0, n) into at most
/// num_threads() contiguous chunks of at least `grain` iterations and runs them on the
/// persistent pool, the first on the calling thread. Runs body(0, n) here instead when the
/// pool is busy (a parallel_for inside another one).
void parallel_for_pooled(std::size_t n, std::size_t grain,
                         const std::function<void(std::size_t begin, std::size_t end)>& body);
}  // namespace detail

/// Calls body(begin, end) on contiguous chunks that together cover [0, n), possibly on
/// several threads. With one thread, or less than two grains of work, it is exactly
/// `body(0, n)` on the calling thread (no pool, no std::function). The chunks depend on the
/// thread count, so body must compute every iteration independently of how [0, n) is cut, and
/// chunks must not write to shared data. An exception from a chunk is rethrown here.
template <class Body>
void parallel_for(std::size_t n, std::size_t grain, const Body& body) {
    if (n == 0) return;
    if (num_threads() == 1 || n < 2 * (grain > 0 ? grain : 1)) {
        body(std::size_t{0}, n);
        return;
    }
    detail::parallel_for_pooled(n, grain, body);
}

/// Runs body(block) for every block in [0, blocks), possibly on several threads. The blocks
/// are the caller's fixed decomposition of the work (chosen from the shapes, never from the
/// thread count), so what each block computes is the same on 1 thread or 16.
template <class Body>
void parallel_for_blocks(std::size_t blocks, const Body& body) {
    parallel_for(blocks, 1, [&body](std::size_t first, std::size_t last) {
        for (std::size_t block = first; block < last; ++block)
            body(block);
    });
}

}  // namespace tg
