// tests/thread_count.hpp — a test that exercises threads sets how many it runs.
#pragma once

#include <cstddef>

#include "tapegrad/parallel.hpp"

namespace tgtest {

/// tg::set_num_threads(n) for one scope, then the previous count back. Tests that exercise
/// threads (threaded kernels, the thread pool, thread-count invariance) hold one, so they run
/// n threads on any runner: the pool grows to n − 1 workers even on a one-CPU machine, where
/// the default count (std::thread::hardware_concurrency) would be 1 and the threaded code
/// would never run (see scripts/ci/one_cpu.sh).
class ThreadCount {
  public:
    explicit ThreadCount(std::size_t n) : saved_(tg::num_threads()) { tg::set_num_threads(n); }
    ~ThreadCount() { tg::set_num_threads(saved_); }
    ThreadCount(const ThreadCount&) = delete;
    ThreadCount& operator=(const ThreadCount&) = delete;

  private:
    std::size_t saved_;
};

}  // namespace tgtest
