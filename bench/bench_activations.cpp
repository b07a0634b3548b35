// bench_activations — forward + backward of each activation, the reference kernels against the
// fast ones (docs/performance.md, "Activations: reference and fast kernels").
//
// For relu, tanh, sigmoid, leaky_relu, gelu and gelu "tanh" on x [N, C, H, W] (default
// [64, 8, 26, 26], conv1's output in the chapter CNN): the op then tape.backward from a fixed
// dL/dy, as a program runs it (the tape, the output's and the gradient's allocation included),
// with each kernel set, on the thread count given. Prints the minimum wall time over --reps
// repetitions in ms, after one warm-up. bench/bench_activations_torch.py times PyTorch the
// same way. Not built by default (EXCLUDE_FROM_ALL): cmake --build --preset release --target
// bench_activations.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include "tapegrad/tapegrad.hpp"

namespace {

using tg::Tensor;

double min_ms(int reps, const std::function<void()>& f) {
    f();  // warm up: caches, first touch of the buffers
    double best = 1e30;
    for (int i = 0; i < reps; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        f();
        const std::chrono::duration<double, std::milli> dt = std::chrono::steady_clock::now() - t0;
        best = std::min(best, dt.count());
    }
    return best;
}

std::string loadavg() {
    std::ifstream in("/proc/loadavg");
    std::string one, five, fifteen;
    in >> one >> five >> fifteen;
    return one + " " + five + " " + fifteen;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"bench_activations: forward + backward of each activation, reference vs fast"};
    std::vector<std::size_t> shape{64, 8, 26, 26};
    std::size_t threads = 1;
    int reps = 30;
    app.add_option("--shape", shape, "input shape")->expected(1, 8);
    app.add_option("--threads", threads, "tapegrad's threads")->check(CLI::Range(1, 256));
    app.add_option("--reps", reps, "repetitions; the minimum is printed")
        ->check(CLI::Range(1, 100000));
    CLI11_PARSE(app, argc, argv);

    tg::set_num_threads(threads);
    // As the training programs: freed buffers are reused rather than returned to the system, so
    // the times are the kernels' and the tape's, not the page faults of fresh 1.4 MB arrays.
    tg::tune_allocator_for_training();
    tg::Generator gen(1);
    const tg::Shape s(shape.begin(), shape.end());
    Tensor x(tg::normal(s, 0.0, 1.0, gen), true);
    const tg::Array g = tg::normal(s, 0.0, 1.0, gen);

    const std::vector<std::pair<const char*, std::function<Tensor(const Tensor&)>>> ops{
        {"relu", [](const Tensor& t) { return tg::relu(t); }},
        {"tanh", [](const Tensor& t) { return tg::tanh(t); }},
        {"sigmoid", [](const Tensor& t) { return tg::sigmoid(t); }},
        {"leaky_relu", [](const Tensor& t) { return tg::leaky_relu(t); }},
        {"gelu", [](const Tensor& t) { return tg::gelu(t); }},
        {"gelu tanh", [](const Tensor& t) { return tg::gelu(t, "tanh"); }}};

    std::printf("# bench_activations: %s, shape %s, min of %d, load average %s\n",
                tg::runtime_summary().c_str(), tg::shape_str(s).c_str(), reps, loadavg().c_str());
    std::printf("| op | reference ms | fast ms | speed-up |\n|---|---:|---:|---:|\n");
    for (const auto& [name, op] : ops) {
        double ms[2] = {0, 0};
        for (const tg::Kernels k : {tg::Kernels::reference, tg::Kernels::fast}) {
            tg::set_kernels(k);
            ms[k == tg::Kernels::fast] = min_ms(reps, [&x, &g, &op = op] {
                x.zero_grad(true);
                tg::Tape tape;
                const Tensor y = op(x);
                tape.backward(y, g);
            });
        }
        std::printf("| %s | %.3f | %.3f | %.1fx |\n", name, ms[0], ms[1], ms[0] / ms[1]);
    }
    std::printf("# load average at the end %s\n", loadavg().c_str());
    return 0;
}
