// Two threads, each training its own small CNN (Conv2d, BatchNorm2d, ReLU, MaxPool2d,
// Linear) with its own Generator, at the same time (issue 16; CTest `two_threads_training`).
// Each thread must end with exactly the weights the same training gives when run alone
// (deterministic by seed, whatever the other thread does). Meanwhile both threads also build
// layers from the shared default generator, which must not race (defect 6).
// scripts/ci/sanitizers.sh builds this under ThreadSanitizer and requires zero reports.
//
// The kernels' own thread pool is set to one thread: the two training threads are the
// concurrency under test.
#include <cstdio>
#include <thread>
#include <vector>

#include "tapegrad/ops/gemm.hpp"
#include "tapegrad/parallel.hpp"
#include "tapegrad/tapegrad.hpp"

namespace {

// Trains for a few steps from `seed`; returns every parameter and buffer value, in order.
std::vector<tg::Array> train(std::uint64_t seed) {
    tg::Generator gen(seed);
    tg::nn::Sequential net(tg::nn::Conv2d(1, 4, 3, {.generator = &gen}), tg::nn::BatchNorm2d(4),
                           tg::nn::ReLU(), tg::nn::MaxPool2d(2), tg::nn::Flatten(),
                           tg::nn::Linear(4 * 3 * 3, 5, {.generator = &gen}));
    tg::optim::SGD opt(net.parameters(), {.lr = 0.05, .momentum = 0.9});
    for (int step = 0; step < 8; ++step) {
        const tg::Tensor x(tg::normal({16, 1, 8, 8}, 0.0, 1.0, gen));
        tg::Labels y(16);
        for (auto& label : y)
            label = static_cast<std::int64_t>(gen.randint(5));
        // A layer from the default generator, built while the other thread does the same.
        tg::nn::Linear shared_init(32, 32);
        opt.zero_grad();
        tg::Tape tape;
        tape.backward(tg::cross_entropy(net(x), y));
        opt.step();
    }
    std::vector<tg::Array> out;
    for (const auto& [name, t] : net.state_dict())
        out.push_back(t.value());
    return out;
}

}  // namespace

int main() {
    tg::set_num_threads(1);  // the kernels' pool (BLAS always runs single-threaded)
    const std::vector<tg::Array> alone_a = train(11), alone_b = train(22);
    std::vector<tg::Array> a, b;
    std::thread ta([&] { a = train(11); });
    std::thread tb([&] { b = train(22); });
    ta.join();
    tb.join();
    const bool same = a == alone_a && b == alone_b;
    const bool differ = a != b;  // different seeds: a check that the comparison can fail
    std::printf("two threads training: %s\n", same && differ
                                                  ? "each thread's weights equal its run alone"
                                                  : "MISMATCH with the runs alone");
    return same && differ ? 0 : 1;
}
