// tapegrad/parallel.hpp — splitting a loop between threads.
//
// Kernels whose iterations are independent (per image, per channel, per element) call
// parallel_for; it runs the loop on the calling thread alone when there is too little work
// to pay for waking other threads, which is always the case at small batch sizes. So a
// reader stepping through with small inputs never leaves the thread they started on.
#pragma once

#include <cstddef>
#include <functional>

namespace tg {

/// How many threads kernels split work between: TAPEGRAD_NUM_THREADS if set, else the
/// number of hardware threads.
std::size_t num_threads();
/// Sets it (1 = everything on the calling thread).
void set_num_threads(std::size_t threads);

/// The least work worth handing to another thread, in values read or written (waking a
/// thread costs some microseconds); smaller loops stay on the calling thread.
inline constexpr std::size_t kMinValuesPerThread = std::size_t{1} << 16;

/// The grain for a loop whose items touch `values_per_item` values each: enough items that
/// every chunk has at least kMinValuesPerThread values.
inline std::size_t grain_for(std::size_t values_per_item) {
    const std::size_t per = values_per_item > 0 ? values_per_item : 1;
    return kMinValuesPerThread / per > 0 ? kMinValuesPerThread / per : 1;
}

/// Calls body(begin, end) on contiguous chunks that together cover [0, n), in parallel,
/// with at most num_threads() chunks of at least `grain` iterations each (so n < 2·grain
/// runs as one call on the calling thread). Chunks must not write to shared data.
/// Returns after every chunk is done; an exception from a chunk is rethrown here.
void parallel_for(std::size_t n, std::size_t grain,
                  const std::function<void(std::size_t begin, std::size_t end)>& body);

/// The same, and body also receives the index of its chunk, 0 <= chunk < num_threads(), so
/// each chunk can sum into its own partial result (conv2d's per-thread dW).
void parallel_for_chunks(
    std::size_t n, std::size_t grain,
    const std::function<void(std::size_t chunk, std::size_t begin, std::size_t end)>& body);

}  // namespace tg
