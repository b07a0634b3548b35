// bench_tapegrad — tapegrad's side of the benchmark (bench/bench_torch.py is PyTorch's).
//
// Trains the reference network
//   Conv2d(1, 8, 3) BN ReLU MaxPool(2) Conv2d(8, 16, 3) BN ReLU MaxPool(2) Flatten Linear(400, 10)
// with cross-entropy and plain SGD (lr 0.05) on Fashion-MNIST (the bundled digits if it is not
// installed) and prints one JSON object: median step times per batch size, one epoch at batch
// 64, per-layer GFLOP/s, peak RSS, and a per-op profile of one step.
// Run it through `bash scripts/bench.sh`, which prints both sides as one table.
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "../src/ops/kernels/fast/conv2d.hpp"
#include "../src/ops/kernels/fast/conv2d_direct.hpp"
#include "tapegrad/ops/gemm.hpp"
#include "tapegrad/tapegrad.hpp"

namespace {

using Clock = std::chrono::steady_clock;
namespace nn = tg::nn;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

/// --clock cpu: step and layer times in the process's CPU time instead of wall time. On a
/// loaded machine that leaves out the time other processes held the cores; meaningful with
/// --threads 1 only (with more threads it is the sum over the threads).
bool use_cpu_clock = false;

/// Seconds on the chosen clock (wall or process CPU time), from an arbitrary origin.
double now_seconds() {
    if (use_cpu_clock) {
        timespec t{};
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
        return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
    }
    return std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
}

/// CPU seconds of the calling thread (only its own work: not the pool's, not the loader's).
double thread_cpu_seconds() {
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

/// The 1-minute load average (-1 if unknown): benchmark tables say how loaded the machine was.
double load_average() {
    double load = -1;
    return getloadavg(&load, 1) == 1 ? load : -1;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

nn::Sequential make_model(std::uint64_t seed) {
    tg::manual_seed(seed);
    return nn::Sequential{nn::Conv2d(1, 8, 3),  nn::BatchNorm2d(8),  nn::ReLU(), nn::MaxPool2d(2),
                          nn::Conv2d(8, 16, 3), nn::BatchNorm2d(16), nn::ReLU(), nn::MaxPool2d(2),
                          nn::Flatten(),        nn::Linear(400, 10)};
}

/// One training step: forward, backward through the tape, SGD update. Never inlined, so that
/// `valgrind --tool=callgrind --toggle-collect='*train_step*'` counts exactly the steps.
[[gnu::noinline]] void train_step(nn::Sequential& model, tg::optim::SGD& opt,
                                  const tg::data::Batch& batch, std::string* profile = nullptr) {
    tg::Tape tape;
    if (profile) tape.enable_profiling();
    const tg::Tensor loss = tg::cross_entropy(model(batch.images), batch.labels);
    opt.zero_grad();
    tape.backward(loss);
    opt.step();
    if (profile) {
        std::ostringstream out;
        tape.print_profile(out);
        *profile = out.str();
    }
}

/// --unfused-bn: a forward hook (doing nothing) on each BatchNorm2d, which keeps nn::Sequential
/// from fusing BatchNorm + ReLU + max-pool (it still fuses ReLU + max-pool): the step as it was
/// before the fused kernel, in the same binary, for a before/after comparison.
bool unfused_bn = false;
void unfuse(nn::Sequential& model) {
    if (!unfused_bn) return;
    for (std::size_t i = 0; i < model.size(); ++i)
        if (dynamic_cast<nn::BatchNorm2d*>(&model[i]) != nullptr)
            model[i].register_forward_hook(
                [](const std::string&, const tg::Tensor&, const tg::Tensor&) {});
}

double step_ms(const std::shared_ptr<const tg::data::Dataset>& train, std::size_t batch, int warmup,
               int steps) {
    nn::Sequential model = make_model(0);
    unfuse(model);
    tg::optim::SGD opt(model.parameters(), {.lr = 0.05});
    // Each batch is made before its step, outside the timed part, and dropped after it (as
    // PyTorch's side does): holding all warmup + steps batches at once would add 96 MB to the
    // peak RSS at batch 512. The loader's epochs repeat when one runs out.
    tg::data::DataLoader loader(train, {.batch_size = batch, .drop_last = true});
    std::vector<double> times;
    for (std::size_t epoch = 0; static_cast<int>(times.size()) < steps; ++epoch)
        for (const auto& b : loader.epoch(epoch)) {
            const double t0 = now_seconds();
            train_step(model, opt, b);
            if (warmup > 0)
                --warmup;
            else
                times.push_back(now_seconds() - t0);
            if (static_cast<int>(times.size()) == steps) break;
        }
    return 1e3 * median(times);
}

double accuracy(nn::Sequential& model, const std::shared_ptr<const tg::data::Dataset>& test) {
    nn::EvalGuard eval(model);
    tg::data::DataLoader loader(test, {.batch_size = 1000});
    std::size_t correct = 0;
    for (const auto& [x, y] : loader) {
        const tg::Tensor out = model(x);  // keeps the logits alive (a temporary would not)
        const tg::Array& logits = out.value();
        const std::size_t C = logits.shape()[1];
        for (std::size_t i = 0; i < y.size(); ++i) {
            const tg::real* row = logits.data() + i * C;
            const auto best = std::max_element(row, row + C) - row;
            correct += best == y[i];
        }
    }
    return static_cast<double>(correct) / static_cast<double>(test->size());
}

/// GFLOP/s of one layer alone at batch `n`, FLOPs counted as PyTorch's side counts them.
struct LayerGflops {
    double forward, backward, both;  // backward: weight gradient, and input gradient if wanted
};

/// Times forward alone and forward + backward (medians); backward is their difference.
/// dL/dy is all ones (as PyTorch's side passes it).
template <class Layer>
LayerGflops layer_gflops(Layer& layer, tg::Tensor x, double forward_flops, int reps) {
    const double backward_flops = forward_flops * (x.requires_grad() ? 2 : 1);
    std::vector<double> fwd_times, both_times;
    // The backward pass starts from a given dL/dy of ones, not from tg::sum(y): the broadcast
    // in sum's backward cost more than conv1's own backward and is not the layer's work.
    tg::Array ones;
    for (int i = 0; i < reps + 3; ++i) {
        layer.zero_grad();
        x.zero_grad(true);
        const double t0 = now_seconds();
        tg::Tape tape;
        const tg::Tensor y = layer(x);
        const double t1 = now_seconds();
        if (ones.size() != y.value().size()) ones = xt::ones<tg::real>(y.shape());
        tape.backward(y, ones);
        const double t2 = now_seconds();
        if (i >= 3) {
            fwd_times.push_back(t1 - t0);
            both_times.push_back(t2 - t0);
        }
    }
    const double f = median(fwd_times), both = median(both_times);
    return {forward_flops / f / 1e9, backward_flops / std::max(both - f, 1e-9) / 1e9,
            (forward_flops + backward_flops) / both / 1e9};
}

/// The machine's sgemm rate at the step's thread count: one 1024³ product cut into 8 column
/// blocks of 128 run by tapegrad's threads, single-threaded OpenBLAS in each (how tapegrad's
/// own kernels call it, tg::detail::gemm), median of 6 after 2 warm-ups.
double sgemm_gflops() {
    const std::size_t n = 1024, blocks = 8, cols = n / blocks;
    tg::Array a = tg::uniform({n, n}, 0, 1), b = tg::uniform({n, n}, 0, 1);
    tg::Array c = tg::Array::from_shape({n, n});
    std::vector<double> times;
    for (int i = 0; i < 8; ++i) {
        // now_seconds: process CPU time with --clock cpu
        const double t0 = now_seconds();
        tg::parallel_for_blocks(blocks, [&](std::size_t k) {  // C[:, k·128 ..] = A B[:, k·128 ..]
            tg::detail::gemm(false, false, n, cols, n, 1, a.data(), n, b.data() + k * cols, n, 0,
                             c.data() + k * cols, n);
        });
        if (i >= 2) times.push_back(now_seconds() - t0);
    }
    return 2.0 * static_cast<double>(n * n * n) / median(times) / 1e9;
}

/// FLOPs of one training step of make_model's network at batch n (multiply-adds counted as 2,
/// as PyTorch's side counts them; the convolutions and the linear layer only, the rest is
/// memory traffic): each layer's forward, its weight gradient, and its input gradient where
/// the layer has one (conv1's input is the images: none).
double step_flops(std::size_t n) {
    const double N = static_cast<double>(n);
    const double conv1 = 2 * N * 8 * 26 * 26 * 1 * 9;   // [N, 1, 28, 28] -> [N, 8, 26, 26]
    const double conv2 = 2 * N * 16 * 11 * 11 * 8 * 9;  // [N, 8, 13, 13] -> [N, 16, 11, 11]
    const double linear = 2 * N * 400 * 10;
    return 2 * conv1 + 3 * conv2 + 3 * linear;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "tapegrad's side of the CNN training benchmark; prints JSON (see scripts/bench.sh)"};
    int threads = 2, steps = 50, warmup = 10;
    bool no_epoch = false;
    std::vector<std::size_t> sizes = {8, 32, 64, 128, 256, 512};
    std::string data_dir = tg::data::fashion_mnist_dir;
    app.add_option("--threads", threads,
                   "tapegrad's threads (BLAS runs single-threaded inside its blocks)");
    app.add_option("--steps", steps, "timed steps per batch size")->check(CLI::Range(1, 1000000));
    app.add_option("--warmup", warmup, "untimed steps first")->check(CLI::Range(0, 1000000));
    app.add_option("--data-dir", data_dir, "directory with Fashion-MNIST (IDX) files");
    app.add_flag("--no-epoch", no_epoch, "skip the full epoch");
    bool no_layers = false, no_profile = false;
    app.add_flag("--no-layers", no_layers, "skip the per-layer GFLOP/s");
    app.add_flag("--no-profile", no_profile, "skip the per-op profile");
    app.add_option("--batch-sizes", sizes, "batch sizes of the step timings");
    app.add_flag("--unfused-bn", unfused_bn,
                 "keep BatchNorm2d + ReLU + MaxPool2d unfused (a no-op hook on each BatchNorm2d)");
    bool no_lanes = false;
    app.add_flag("--no-lanes", no_lanes,
                 "conv2d's forward and backward without the kernels with lanes across channels "
                 "(the direct kernels alone, as before them)");
    bool no_prefetch = false;
    app.add_flag("--no-prefetch", no_prefetch,
                 "the epoch's loader assembles each batch on the training thread when asked for "
                 "it, instead of one batch ahead on a thread of its own");
    bool no_ceiling = false;
    app.add_flag("--no-ceiling", no_ceiling,
                 "skip the sgemm ceiling after the steps (e.g. under valgrind)");
    std::size_t profile_batch = 64;
    int epoch_seeds = 3;
    app.add_option("--epoch-seeds", epoch_seeds,
                   "epochs run, with seeds 0, 1, ... (weights and shuffling); one epoch's accuracy "
                   "varies by a few points with the seed");
    app.add_option("--profile-batch", profile_batch, "batch size of the per-op profile");
    int profile_steps = 1;
    app.add_option("--profile-steps", profile_steps,
                   "steps profiled one after another (bench/roofline.py takes each op's median)")
        ->check(CLI::Range(1, 10000));
    std::string clock = "wall";
    app.add_option("--clock", clock,
                   "wall, or cpu: process CPU time (for loaded machines; with --threads 1 only)")
        ->check(CLI::IsMember({"wall", "cpu"}));
    std::string kernels = tg::kernels_name();  // the build's default, or TAPEGRAD_KERNELS
    app.add_option("--kernels", kernels,
                   "reference (the chapter's plain loops) or fast (the tuned kernels); default: "
                   "the build's choice or TAPEGRAD_KERNELS")
        ->check(CLI::IsMember({"reference", "fast"}));
    CLI11_PARSE(app, argc, argv);
    tg::set_kernels(tg::parse_kernels(kernels));
    tg::kernels::fast::conv2d_use_lanes = !no_lanes;
    use_cpu_clock = clock == "cpu";
    const double load_start = load_average();
    tg::set_num_threads(static_cast<std::size_t>(threads));
    tg::tune_allocator_for_training();
    std::cerr << tg::runtime_summary() << '\n';

    std::string dataset = "fashion-mnist";
    // Loaded once and shared by every loader (DataLoader(Dataset) would copy the 47 MB of
    // training images into each loader, as PyTorch's side does not).
    std::shared_ptr<const tg::data::Dataset> train, test;
    try {
        train = std::make_shared<const tg::data::Dataset>(
            tg::data::fashion_mnist(tg::data::Split::train, data_dir));
        test = std::make_shared<const tg::data::Dataset>(
            tg::data::fashion_mnist(tg::data::Split::test, data_dir));
    } catch (const std::exception& e) {
        std::cerr << "bench: " << e.what() << "\nbench: using the bundled MNIST digits instead\n";
        dataset = "bundled-mnist";
        train = std::make_shared<const tg::data::Dataset>(
            tg::data::bundled_mnist(tg::data::Split::train));
        test = std::make_shared<const tg::data::Dataset>(
            tg::data::bundled_mnist(tg::data::Split::test));
    }

    for (const std::size_t batch : sizes)
        if (batch == 0 || batch > train->size()) {
            std::cerr << "bench: --batch-sizes " << batch << ": must be 1 to the " << train->size()
                      << " training images of " << dataset << '\n';
            return 2;
        }

    // The result for bench/report.py, as JSON (nlohmann::json, which Debian's xtensor already
    // pulls in, instead of hand-written quoting).
    nlohmann::json json;
    json["framework"] = "tapegrad";
    json["clock"] = clock;
    json["threads"] = threads;
    json["kernels"] = tg::kernels_name();
    json["conv_lanes"] = !no_lanes;
    json["blas_core"] = tg::detail::blas_core();
    json["conv_kernels"] = std::string("OpenBLAS ") + tg::detail::blas_core() +
                           "; direct convolution " +
                           std::string(tg::kernels::fast::conv2d_direct_simd());
    json["dataset"] = dataset;
    json["step_ms"] = nlohmann::json::object();
    json["step_flops"] = nlohmann::json::object();
    for (const std::size_t batch : sizes) {
        json["step_ms"][std::to_string(batch)] = step_ms(train, batch, warmup, steps);
        json["step_flops"][std::to_string(batch)] = step_flops(batch);
    }
    // The ceiling, in the same process right after the steps, at the same thread count
    // (bench/report.py gives each step's share of it).
    if (!no_ceiling) json["sgemm_gflops"] = sgemm_gflops();

    if (!no_epoch) {
        // The time is the first epoch's; the accuracy is reported for every seed.
        double secs = 0.0, steps_secs = 0.0, cpu_outside = 0.0;
        std::vector<double> accs;
        for (int k = 0; k < epoch_seeds; ++k) {
            const auto seed = static_cast<std::uint64_t>(k);
            nn::Sequential model = make_model(seed);
            unfuse(model);
            tg::optim::SGD opt(model.parameters(), {.lr = 0.05});
            tg::data::DataLoader loader(
                train, {.batch_size = 64, .shuffle = true, .seed = seed, .prefetch = !no_prefetch});
            // Wall time of the whole epoch, and of its steps alone: the difference is what the
            // loop spends waiting for batches (and the order's shuffle, at the start).
            // The training thread's CPU time outside the steps is the loading it does itself
            // (a loaded machine does not change it, where the wall-clock wait above moves).
            double in_steps = 0.0, cpu_in_steps = 0.0;
            const double cpu0 = thread_cpu_seconds();
            const auto t0 = Clock::now();
            for (const auto& batch : loader) {
                const auto s0 = Clock::now();
                const double c0 = thread_cpu_seconds();
                train_step(model, opt, batch);
                cpu_in_steps += thread_cpu_seconds() - c0;
                in_steps += seconds_since(s0);
            }
            if (k == 0) {
                secs = seconds_since(t0);
                steps_secs = in_steps;
                cpu_outside = thread_cpu_seconds() - cpu0 - cpu_in_steps;
            }
            accs.push_back(accuracy(model, test));
        }
        json["epoch"] = {{"batch", 64},
                         {"images", train->size()},
                         {"prefetch", !no_prefetch},
                         {"seconds", secs},
                         {"seconds_in_steps", steps_secs},
                         {"training_thread_cpu_seconds_outside_steps", cpu_outside},
                         {"images_per_second", static_cast<double>(train->size()) / secs},
                         {"test_accuracy", accs}};
    }

    if (!no_layers) {
        tg::manual_seed(0);
        const std::size_t n = 64;
        nn::Conv2d conv1(1, 8, 3), conv2(8, 16, 3);
        nn::Linear fc(400, 10);
        tg::Tensor x1(tg::uniform({n, 1, 28, 28}, 0, 1));
        tg::Tensor x2(tg::uniform({n, 8, 13, 13}, 0, 1), true);
        tg::Tensor x3(tg::uniform({n, 400}, 0, 1), true);
        const double N = static_cast<double>(n);
        const LayerGflops g1 = layer_gflops(conv1, x1, 2 * N * 8 * 26 * 26 * 9, 20);
        const LayerGflops g2 = layer_gflops(conv2, x2, 2 * N * 16 * 11 * 11 * 8 * 9, 20);
        const LayerGflops g3 = layer_gflops(fc, x3, 2 * N * 400 * 10, 20);
        const auto pass = [&](double LayerGflops::*field) {
            return nlohmann::json{
                {"conv1", g1.*field}, {"conv2", g2.*field}, {"linear", g3.*field}};
        };
        json["gflops_forward"] = pass(&LayerGflops::forward);
        json["gflops_backward"] = pass(&LayerGflops::backward);
        json["gflops"] = pass(&LayerGflops::both);
        json["gflops"]["sgemm_1024"] = sgemm_gflops();
    }

    if (!no_profile) {
        nn::Sequential model = make_model(0);
        unfuse(model);
        tg::optim::SGD opt(model.parameters(), {.lr = 0.05});
        tg::data::DataLoader loader(train, {.batch_size = profile_batch, .drop_last = true});
        if (loader.num_batches() == 0) {
            std::cerr << "bench_tapegrad: --profile-batch " << profile_batch << " is larger than "
                      << dataset << "'s " << train->size() << " training images\n";
            return 2;
        }
        // Warm up for 10 steps, then profile steps 11, 12, ... (--profile-steps of them; the
        // loader's epochs repeat when one runs out). "profile" is the first of them.
        std::vector<std::string> profiles;
        int k = 0;
        for (std::size_t epoch = 0; static_cast<int>(profiles.size()) < profile_steps; ++epoch) {
            for (const auto& batch : loader.epoch(epoch)) {
                std::string profile;
                const bool timed = ++k > 10;
                train_step(model, opt, batch, timed ? &profile : nullptr);
                if (timed) profiles.push_back(profile);
                if (static_cast<int>(profiles.size()) == profile_steps) break;
            }
        }
        json["profile_batch"] = profile_batch;
        json["profile"] = profiles.front();
        json["profiles"] = profiles;
    }

    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    json["peak_rss_mb"] = static_cast<double>(usage.ru_maxrss) / 1024.0;
    json["load_average"] = {load_start, load_average()};  // 1-minute, at start and end
    std::cout << json.dump() << std::endl;
}
