// Main-memory bandwidth of this machine, the roof under the memory-bound ops of a training
// step (batch_norm, ReLU, max-pool, the SGD update): docs/performance.md, "The sgemm
// ceiling and the memory roof". STREAM's four loops on float arrays far larger than the
// caches, split across threads in contiguous chunks; each figure is the best of the reps.
//
//   build/release/bench/bench_bandwidth --threads 2                  # main memory
//   build/release/bench/bench_bandwidth --threads 2 --megabytes 11   # one conv1 output at batch
//   512
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <functional>
#include <thread>
#include <vector>

namespace {

// Runs body(begin, end) on `threads` contiguous chunks of [0, n) and returns the seconds taken.
double run_split(std::size_t n, int threads,
                 const std::function<void(std::size_t, std::size_t)>& body) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
        const std::size_t begin =
            n * static_cast<std::size_t>(t) / static_cast<std::size_t>(threads);
        const std::size_t end =
            n * static_cast<std::size_t>(t + 1) / static_cast<std::size_t>(threads);
        pool.emplace_back(body, begin, end);
    }
    for (auto& th : pool)
        th.join();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "Main-memory bandwidth (STREAM's copy, scale, add, triad, plus read and write alone), "
        "GB/s"};
    int threads = 2;
    std::size_t megabytes = 256;
    int reps = 7;
    app.add_option("--threads", threads, "threads sharing each loop")->check(CLI::Range(1, 256));
    app.add_option("--megabytes", megabytes,
                   "size of each array (three arrays); below the cache sizes it measures the cache")
        ->check(CLI::Range(1, 8192));
    app.add_option("--reps", reps, "repetitions; the best is printed")->check(CLI::Range(1, 100));
    CLI11_PARSE(app, argc, argv);

    const std::size_t n = megabytes * 1024 * 1024 / sizeof(float);
    std::vector<float> a(n), b(n), c(n);
    // First touch from the threads that will use each chunk, then one untimed pass.
    run_split(n, threads, [&](std::size_t lo, std::size_t hi) {
        for (std::size_t i = lo; i < hi; ++i) {
            a[i] = 1.0f;
            b[i] = 2.0f;
            c[i] = 0.0f;
        }
    });
    std::vector<double> partial(static_cast<std::size_t>(threads));
    const float s = 3.0f;
    struct Loop {
        const char* name;
        double bytes_per_element;  // bytes read + written per index
        std::function<void(std::size_t, std::size_t)> body;
    };
    const std::vector<Loop> loops = {
        {"read    (sum += a[i])", 4,
         [&](std::size_t lo, std::size_t hi) {
             // 32 independent sums (vectors of them): one sum's add latency would bound the loop.
             float sums[32] = {};
             const float* x = a.data();
             std::size_t i = lo;
             for (; i + 32 <= hi; i += 32)
                 for (std::size_t k = 0; k < 32; ++k)
                     sums[k] += x[i + k];
             double sum = 0;
             for (; i < hi; ++i)
                 sum += static_cast<double>(a[i]);
             for (float v : sums)
                 sum += static_cast<double>(v);
             partial[lo * static_cast<std::size_t>(threads) / n] = sum;
         }},
        {"write   (c[i] = s)", 4,
         [&](std::size_t lo, std::size_t hi) {
             std::fill(c.begin() + static_cast<std::ptrdiff_t>(lo),
                       c.begin() + static_cast<std::ptrdiff_t>(hi), s);
         }},
        {"copy    (c[i] = a[i])", 8,
         [&](std::size_t lo, std::size_t hi) {
             for (std::size_t i = lo; i < hi; ++i)
                 c[i] = a[i];
         }},
        {"scale   (b[i] = s*c[i])", 8,
         [&](std::size_t lo, std::size_t hi) {
             for (std::size_t i = lo; i < hi; ++i)
                 b[i] = s * c[i];
         }},
        {"add     (c[i] = a[i]+b[i])", 12,
         [&](std::size_t lo, std::size_t hi) {
             for (std::size_t i = lo; i < hi; ++i)
                 c[i] = a[i] + b[i];
         }},
        {"triad   (a[i] = b[i]+s*c[i])", 12,
         [&](std::size_t lo, std::size_t hi) {
             for (std::size_t i = lo; i < hi; ++i)
                 a[i] = b[i] + s * c[i];
         }},
    };
    std::printf("main-memory bandwidth: %d thread(s), 3 arrays of %zu MB, best of %d\n", threads,
                megabytes, reps);
    for (const auto& loop : loops) {
        double best = 1e30;
        for (int r = 0; r < reps; ++r)
            best = std::min(best, run_split(n, threads, loop.body));
        std::printf("  %-30s %7.1f GB/s\n", loop.name,
                    loop.bytes_per_element * static_cast<double>(n) / best / 1e9);
    }
    double total = 0;
    for (double p : partial)
        total += p;
    std::printf("  (checksum %.0f)\n", total);  // keeps the read loop from being optimised away
    return 0;
}
