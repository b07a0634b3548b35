#include "tapegrad/parallel.hpp"

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace tg {

namespace {

std::size_t default_threads() {
    if (const char* env = std::getenv("TAPEGRAD_NUM_THREADS")) {
        // A whole number from 1 to kMaxThreads; anything else is ignored, and said so once.
        char* end = nullptr;
        errno = 0;
        const long long v = std::strtoll(env, &end, 10);
        if (end != env && *end == '\0' && errno == 0 && v >= 1 &&
            static_cast<unsigned long long>(v) <= kMaxThreads)
            return static_cast<std::size_t>(v);
        std::fprintf(stderr,
                     "tapegrad: TAPEGRAD_NUM_THREADS=\"%s\" ignored: it must be a whole number "
                     "from 1 to %zu\n",
                     env, kMaxThreads);
    }
#if defined(TAPEGRAD_DEFAULT_THREADS) && TAPEGRAD_DEFAULT_THREADS > 0
    return TAPEGRAD_DEFAULT_THREADS;  // the build's choice (CMake TAPEGRAD_THREADS)
#else
    return std::max(1u, std::thread::hardware_concurrency());
#endif
}

/// Worker threads that sleep until a job is posted. Job k is chunks 1..m-1 of one
/// parallel_for (chunk 0 runs on the caller); each worker takes the next chunk index.
class Pool {
  public:
    explicit Pool(std::size_t workers) {
        for (std::size_t i = 0; i < workers; ++i)
            threads_.emplace_back([this] { work(); });
    }
    ~Pool() {
        {
            std::lock_guard lock(mutex_);
            stop_ = true;
        }
        wake_.notify_all();
        for (auto& t : threads_)
            t.join();
    }
    std::size_t workers() const { return threads_.size(); }
    /// Starts workers until there are at least `n` (only while no job runs: the caller holds
    /// pool_mutex). set_num_threads(k) is honoured even on a machine with fewer hardware
    /// threads, so tests that force two threads run two threads on a one-CPU runner too.
    void ensure_workers(std::size_t n) {
        while (threads_.size() < n)
            threads_.emplace_back([this] { work(); });
    }

    /// Runs chunk(i) for i in [1, chunks) on the workers and chunk(0) here; waits for all.
    void run(std::size_t chunks, const std::function<void(std::size_t)>& chunk) {
        {
            std::lock_guard lock(mutex_);
            job_ = &chunk;
            next_ = 1;
            chunks_ = chunks;
            pending_ = chunks - 1;
            error_ = nullptr;
            ++generation_;
        }
        wake_.notify_all();
        std::exception_ptr mine;
        try {
            chunk(0);
        } catch (...) {
            mine = std::current_exception();
        }
        std::unique_lock lock(mutex_);
        done_.wait(lock, [this] { return pending_ == 0; });
        job_ = nullptr;
        if (mine) std::rethrow_exception(mine);
        if (error_) std::rethrow_exception(error_);
    }

  private:
    void work() {
        std::size_t seen = 0;
        std::unique_lock lock(mutex_);
        for (;;) {
            wake_.wait(lock, [&] { return stop_ || (generation_ != seen && next_ < chunks_); });
            if (stop_) return;
            seen = generation_;
            while (next_ < chunks_) {
                const std::size_t i = next_++;
                const auto* job = job_;
                lock.unlock();
                std::exception_ptr err;
                try {
                    (*job)(i);
                } catch (...) {
                    err = std::current_exception();
                }
                lock.lock();
                if (err && !error_) error_ = err;
                if (--pending_ == 0) done_.notify_one();
            }
        }
    }

    std::mutex mutex_;
    std::condition_variable wake_, done_;
    std::vector<std::thread> threads_;
    const std::function<void(std::size_t)>* job_ = nullptr;
    std::size_t next_ = 0, chunks_ = 0, pending_ = 0, generation_ = 0;
    std::exception_ptr error_;
    bool stop_ = false;
};

std::size_t thread_count = default_threads();
std::mutex pool_mutex;  // one parallel_for at a time uses the pool; others run inline

Pool& pool() {
    static Pool p(std::max<std::size_t>(1, std::thread::hardware_concurrency()) - 1);
    return p;
}

}  // namespace

std::size_t num_threads() {
    return thread_count;
}

void set_num_threads(std::size_t threads) {
    if (threads > kMaxThreads)
        throw std::invalid_argument("set_num_threads(" + std::to_string(threads) + "): at most " +
                                    std::to_string(kMaxThreads) + " threads");
    thread_count = std::max<std::size_t>(1, threads);
}

namespace detail {

void parallel_for_pooled(std::size_t n, std::size_t grain,
                         const std::function<void(std::size_t, std::size_t)>& body) {
    if (n == 0) return;
    grain = std::max<std::size_t>(1, grain);
    std::size_t chunks = std::min(thread_count, n / grain);
    std::unique_lock lock(pool_mutex, std::defer_lock);
    if (chunks > 1 && lock.try_lock()) {
        pool().ensure_workers(thread_count - 1);
        chunks = std::min(chunks, pool().workers() + 1);
    } else {
        chunks = 1;  // too little work, or already inside a parallel_for: run here
    }
    if (chunks <= 1) {
        body(0, n);
        return;
    }
    const std::size_t per = (n + chunks - 1) / chunks;
    pool().run(chunks, [&](std::size_t i) {
        const std::size_t begin = i * per, end = std::min(n, begin + per);
        if (begin < end) body(begin, end);
    });
}

}  // namespace detail

}  // namespace tg
