#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "chapter_cnn.hpp"
#include "tapegrad/parallel.hpp"
#include "tapegrad/tapegrad.hpp"
#include "testing.hpp"
#include "thread_count.hpp"

TEST_CASE("parallel_for covers [0, n) exactly once, in chunks of at least `grain`") {
    for (std::size_t threads : {1, 2, 3}) {
        CAPTURE(threads);
        const tgtest::ThreadCount count(threads);
        for (std::size_t n : {0, 1, 7, 100, 1001}) {
            std::vector<int> hits(n, 0);
            std::mutex m;
            std::vector<std::pair<std::size_t, std::size_t>> chunks;
            tg::parallel_for(n, 10, [&](std::size_t b, std::size_t e) {
                for (std::size_t i = b; i < e; ++i)
                    ++hits[i];
                std::lock_guard lock(m);
                chunks.emplace_back(b, e);
            });
            for (int h : hits)
                CHECK(h == 1);
            if (n >= 20) {
                for (auto [b, e] : chunks)
                    CHECK(e - b >= 10);
            }
        }
    }
}

TEST_CASE("parallel_for runs chunks on other threads when there is enough work") {
    // Forced to two threads: this holds on a one-CPU runner too (the pool grows to match).
    const tgtest::ThreadCount two(2);
    std::mutex m;
    std::set<std::thread::id> ids;
    tg::parallel_for(2, 1, [&](std::size_t, std::size_t) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        std::lock_guard lock(m);
        ids.insert(std::this_thread::get_id());
    });
    CHECK(ids.size() == 2);
}

TEST_CASE("a nested parallel_for runs inline, and exceptions reach the caller") {
    const tgtest::ThreadCount two(2);
    std::atomic<int> total{0}, inner_calls{0}, inner_elsewhere{0};
    std::mutex m;
    std::set<std::thread::id> outer_ids;
    tg::parallel_for(4, 1, [&](std::size_t b, std::size_t e) {
        const std::thread::id outer = std::this_thread::get_id();
        {
            std::lock_guard lock(m);
            outer_ids.insert(outer);
        }
        tg::parallel_for(10, 1, [&](std::size_t b2, std::size_t e2) {
            total += static_cast<int>((e - b) * (e2 - b2));
            ++inner_calls;
            if (std::this_thread::get_id() != outer) ++inner_elsewhere;
        });
    });
    CHECK(total == 40);
    CHECK(outer_ids.size() == 2);  // the outer loop really used the pool
    // Inline: one call per outer chunk, covering [0, 10) on the outer chunk's own thread.
    CHECK(inner_calls == 2);
    CHECK(inner_elsewhere == 0);
    CHECK_THROWS_WITH_AS(tg::parallel_for(4, 1,
                                          [](std::size_t b, std::size_t) {
                                              if (b > 0) throw std::runtime_error("chunk failed");
                                          }),
                         "chunk failed", std::runtime_error);
    // the pool still works afterwards
    std::atomic<int> count{0};
    tg::parallel_for(100, 1, [&](std::size_t b, std::size_t e) { count += int(e - b); });
    CHECK(count == 100);
}

namespace {
// Forward value and input gradient of f at x, with `threads` threads.
std::pair<tg::Array, tg::Array> run_with(std::size_t threads, const tg::Array& x0,
                                         const std::function<tg::Tensor(const tg::Tensor&)>& f) {
    const tgtest::ThreadCount count(threads);
    tg::Tensor x(x0, true);
    tg::Tape tape;
    tg::Tensor y = f(x);
    tg::Generator gen(7);
    const tg::Array g = tg::normal(y.shape(), 0, 1, gen);
    tape.backward(y, g);
    return {y.value(), x.grad()};
}
}  // namespace

TEST_CASE("threaded kernels give the same numbers as one thread (relu, batch_norm, max_pool2d)") {
    // Big enough that every kernel splits its work: 4 x 3 x 128 x 128 = 196,608 values.
    tg::Generator gen(3);
    const tg::Array x0 = tg::normal({4, 3, 128, 128}, 1.0, 2.0, gen);
    const std::vector<std::pair<const char*, std::function<tg::Tensor(const tg::Tensor&)>>> ops = {
        {"relu", [](const tg::Tensor& x) { return tg::relu(x); }},
        {"max_pool2d", [](const tg::Tensor& x) { return tg::max_pool2d(x, 2); }},
        {"batch_norm",
         [](const tg::Tensor& x) {
             tg::Tensor w(tg::Array{1.5, 0.5, 2.0}, true), b(tg::Array{0.1, -0.2, 0.3}, true);
             return tg::batch_norm(x, {}, {}, w, b, true, 0.1, 1e-5);
         }},
    };
    for (const auto& op : ops) {
        // (Not a structured binding: clang 14 cannot capture one in CAPTURE's lambda.)
        const auto& name = op.first;
        const auto& f = op.second;
        CAPTURE(name);
        const auto [y1, g1] = run_with(1, x0, f);
        const auto [y2, g2] = run_with(2, x0, f);
        CHECK(y1 == y2);
        CHECK(g1 == g2);
    }
}

// ---------------------------------------------------------------------------------------------
// Determinism across thread counts: a chapter training run
// ---------------------------------------------------------------------------------------------

// OpenBLAS's own thread setting (its cblas.h would clash with xtensor-blas's declarations).
extern "C" void openblas_set_num_threads(int num_threads);

namespace {

/// The losses of `steps` SGD steps of the chapter's LeNet-style CNN (chapter_cnn.hpp) with
/// BatchNorm on random batches of 64, then every parameter and buffer, on `threads` threads
/// (tapegrad's and OpenBLAS's setting both).
std::vector<tg::Array> chapter_run(std::size_t threads, int steps) {
    const tgtest::ThreadCount count(threads);
    openblas_set_num_threads(static_cast<int>(threads));
    namespace nn = tg::nn;
    tg::Generator gen(0);
    nn::Sequential model = tgtest::chapter_cnn(gen);
    tg::optim::SGD opt(model.parameters(), {.lr = 0.1, .momentum = 0.9});

    std::vector<tg::Array> out;
    tg::Generator data(1);
    for (int step = 0; step < steps; ++step) {
        const tg::Tensor images(tg::normal({64, 1, 28, 28}, 0.0, 1.0, data));
        tg::Labels labels;
        for (auto v : tg::uniform({64}, 0.0, 10.0, data))
            labels.push_back(static_cast<std::int64_t>(v));
        tg::Tape tape;
        const tg::Tensor loss = tg::cross_entropy(model(images), labels);
        opt.zero_grad();
        tape.backward(loss);
        opt.step();
        out.push_back(loss.value());
    }
    for (const auto& [name, t] : model.state_dict())
        out.push_back(t.value());
    openblas_set_num_threads(1);
    return out;
}

}  // namespace

TEST_CASE(
    "a chapter CNN's training steps are bit-identical on 1 and 2 threads (both kernel sets)") {
    for (const tg::Kernels k : tgtest::kBothKernels) {
        tgtest::KernelsGuard guard(k);
        const std::string kernel_set = tg::kernels_name();
        CAPTURE(kernel_set);
        const std::vector<tg::Array> one = chapter_run(1, 3);
        const std::vector<tg::Array> two = chapter_run(2, 3);
        REQUIRE(one.size() == two.size());
        for (std::size_t i = 0; i < one.size(); ++i) {
            CAPTURE(i);  // 0-2: the losses, then the state dict in order
            CHECK(one[i] == two[i]);
        }
    }
}

TEST_CASE("set_num_threads refuses more than kMaxThreads instead of starting them") {
    const tgtest::ThreadCount count(2);
    CHECK_THROWS_WITH_AS(tg::set_num_threads(std::size_t{1} << 63),
                         doctest::Contains("at most 256 threads"), std::invalid_argument);
    CHECK(tg::num_threads() == 2);  // unchanged by the refused call
    tg::set_num_threads(tg::kMaxThreads);
    CHECK(tg::num_threads() == tg::kMaxThreads);
}
