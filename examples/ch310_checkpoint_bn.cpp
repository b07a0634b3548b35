// ch310_checkpoint_bn — gradient checkpointing (tg::checkpoint) with BatchNorm in training mode.
//
// The model: a stem and K residual-free blocks Conv2d(C, C, 3, padding 1) → BatchNorm2d(C) →
// ReLU, trained a few SGD steps (lr 0.01, momentum 0.9; a loss that is not finite stops the
// program in one line, exit 1) three times from the same weights on the same batches:
//   plain         every activation stays on the tape until backward;
//   checkpointed  each block is tg::checkpoint(block, h): one tape entry, its forward run
//                 again during backward (PyTorch's torch.utils.checkpoint behaviour) — the
//                 recomputation updates BatchNorm's running statistics a SECOND time per step;
//   fixed         the same with {.recompute_updates_running_stats = false}: the recomputation
//                 runs inside a tg::NoStatsUpdateGuard, so every batch is counted once.
// Printed: num_batches_tracked and the running_mean drift against the plain run, the gradients'
// largest difference from the plain run (exactly 0: the recomputation sees the same batch
// statistics), the tape's entries, and the memory: this program counts every byte allocated
// with operator new (every tensor is), so "held after forward" is what the tape keeps for
// backward and "peak" the most ever in use during the step.
//
//     ./build/release/examples/ch310_checkpoint_bn              # --quick: a smaller model
#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/cli.hpp"
#include "common/compare.hpp"
#include "gotchas/facts.hpp"
#include "tapegrad/checkpoint.hpp"
#include "tapegrad/nn/nn.hpp"
#include "tapegrad/ops/elementwise.hpp"
#include "tapegrad/ops/reduce.hpp"
#include "tapegrad/optim/sgd.hpp"
#include "tapegrad/parallel.hpp"
#include "tapegrad/random.hpp"
#include "tapegrad/tape.hpp"
#include "tapegrad/viz/viz.hpp"

// ---- counting every byte allocated through operator new ------------------------------------
namespace {
std::atomic<std::size_t> bytes_in_use{0}, bytes_peak{0};

void* counted_alloc(std::size_t n) {
    void* p = std::malloc(n == 0 ? 1 : n);
    if (p == nullptr) throw std::bad_alloc();
    const std::size_t now = bytes_in_use += malloc_usable_size(p);
    std::size_t peak = bytes_peak.load();
    while (now > peak && !bytes_peak.compare_exchange_weak(peak, now)) {
    }
    return p;
}

void counted_free(void* p) noexcept {
    if (p == nullptr) return;
    bytes_in_use -= malloc_usable_size(p);
    std::free(p);
}
}  // namespace

void* operator new(std::size_t n) {
    return counted_alloc(n);
}
void* operator new[](std::size_t n) {
    return counted_alloc(n);
}
void operator delete(void* p) noexcept {
    counted_free(p);
}
void operator delete[](void* p) noexcept {
    counted_free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    counted_free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
    counted_free(p);
}

namespace fs = std::filesystem;
using tg::Array;
using tg::Tensor;

namespace {

struct Settings {
    std::size_t blocks = 6, channels = 16, batch = 32, size = 28, steps = 8;
    double lr = 0.01;  // SGD's, momentum 0.9 (no flag: --lr 1e6 does not diverge, ReLU dies)
};

tg::nn::Sequential make_model(const Settings& s, std::uint64_t seed) {
    tg::Generator gen(seed);
    tg::nn::Sequential model;
    model.push_back(tg::nn::Conv2d(1, s.channels, 3, {.padding = 1, .generator = &gen}));
    for (std::size_t b = 0; b < s.blocks; ++b) {
        tg::nn::Sequential block;
        block.push_back(
            tg::nn::Conv2d(s.channels, s.channels, 3, {.padding = 1, .generator = &gen}));
        block.push_back(tg::nn::BatchNorm2d(s.channels));
        block.push_back(tg::nn::ReLU());
        model.push_back(std::move(block));
    }
    return model;
}

enum class Mode { plain, checkpointed, fixed };
const char* mode_name(Mode m) {
    return m == Mode::plain ? "plain" : m == Mode::checkpointed ? "checkpointed" : "fixed";
}

struct Run {
    std::vector<double> mean_trace;  // running_mean[0] of the first block's BN after each step
    std::vector<std::vector<Array>> grads;  // per step, every parameter's gradient
    std::size_t tape_entries = 0;
    std::size_t held_after_forward = 0;  // bytes in use after forward minus before the step
    std::size_t peak = 0;                // peak bytes during the step minus before it
    std::vector<double> tracked;         // num_batches_tracked of every BN at the end
    std::vector<Array> running_means;
};

tg::nn::BatchNorm2d& block_bn(tg::nn::Sequential& model, std::size_t b) {
    return dynamic_cast<tg::nn::Sequential&>(model[b + 1]).at<tg::nn::BatchNorm2d>(1);
}

Run train(Mode mode, const Settings& s, std::uint64_t seed) {
    tg::nn::Sequential model = make_model(s, seed);
    tg::optim::SGD opt(model.parameters(), {.lr = s.lr, .momentum = 0.9});
    tg::Generator data(seed + 1);
    Run run;
    for (std::size_t step = 0; step < s.steps; ++step) {
        Array x = Array::from_shape({s.batch, 1, s.size, s.size});
        for (auto& v : x)
            v = static_cast<tg::real>(data.normal(0.5, 1.0));
        const Tensor input(std::move(x));
        opt.zero_grad(true);
        const std::size_t before = bytes_in_use.load();
        bytes_peak = before;
        {
            tg::Tape tape;
            Tensor h = model[0](input);
            for (std::size_t b = 0; b < s.blocks; ++b) {
                tg::nn::Module& block = model[b + 1];
                if (mode == Mode::plain) {
                    h = block(h);
                } else {
                    const tg::CheckpointOptions options{.recompute_updates_running_stats =
                                                            mode == Mode::checkpointed};
                    h = tg::checkpoint(
                        options, [&block](const Tensor& in) { return block(in); }, h);
                }
            }
            const Tensor loss = tg::mean(h * h);
            if (step == 0) {
                run.tape_entries = tape.size();
                run.held_after_forward = bytes_in_use.load() - before;
            }
            if (!std::isfinite(loss.item())) {  // diverged: every later step would be NaN too
                throw std::runtime_error("training diverged at step " + std::to_string(step + 1) +
                                         " of the " + mode_name(mode) + " run: the loss is " +
                                         std::to_string(loss.item()) +
                                         "; try a smaller --lr, and --detect-anomaly to name the "
                                         "op that first made a NaN or Inf");
            }
            tape.backward(loss);
        }
        if (step == 0) run.peak = bytes_peak.load() - before;
        std::vector<Array> g;
        for (const auto& p : model.parameters())
            g.push_back(p.grad());
        run.grads.push_back(std::move(g));
        opt.step();
        run.mean_trace.push_back(block_bn(model, 0).running_mean.value()(0));
    }
    for (std::size_t b = 0; b < s.blocks; ++b) {
        run.tracked.push_back(block_bn(model, b).num_batches_tracked.item());
        run.running_means.push_back(block_bn(model, b).running_mean.value());
    }
    return run;
}

using tg::examples::max_abs_diff;  // examples/common/compare.hpp

std::string mib(std::size_t bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
    return buf;
}

// --blocks, --batch-size, --steps, and what --quick does and the program writes.
void add_flags(tg::examples::Cli& cli, Settings& s) {
    cli.option("--blocks", s.blocks, "Conv-BN-ReLU blocks, each one checkpoint",
               tg::examples::between(1, 64));
    cli.option("--batch-size", s.batch, "examples per step", tg::examples::between(2, 4096));
    cli.option("--steps", s.steps, "SGD steps", tg::examples::between(1, 1000));
    cli.quick_help("4 blocks, batch 8 of 16 x 16 images, 3 steps (for the tests)");
    cli.outputs(
        "ch310_checkpoint_bn.png (+ .gp, CSV) and ch310_checkpoint_bn_facts.json. One thread, "
        "so the byte counts are the same every run.");
}

// The table: each run against the plain one (tape entries, batches counted, running_mean and
// gradient differences, memory); every number also into `facts`.
void print_runs(const std::vector<Run>& runs, const Settings& s, gotchas::Facts& facts) {
    const Run& plain = runs[0];
    std::printf("  %-13s %7s %18s %22s %15s %15s %12s\n", "run", "entries", "num_batches_tracked",
                "|Δrunning_mean| max", "|Δgrad| max", "held after fwd", "peak");
    for (std::size_t i = 0; i < runs.size(); ++i) {
        const Run& r = runs[i];
        const std::string name = mode_name(static_cast<Mode>(i));
        double dmean = 0.0, dgrad = 0.0;
        for (std::size_t b = 0; b < s.blocks; ++b)
            dmean = std::max(dmean, max_abs_diff(r.running_means[b], plain.running_means[b]));
        for (std::size_t st = 0; st < s.steps; ++st)
            for (std::size_t p = 0; p < r.grads[st].size(); ++p)
                dgrad = std::max(dgrad, max_abs_diff(r.grads[st][p], plain.grads[st][p]));
        const double tracked = *std::max_element(r.tracked.begin(), r.tracked.end());
        const double tracked_min = *std::min_element(r.tracked.begin(), r.tracked.end());
        std::printf("  %-13s %7zu %18.0f %22.3g %15.3g %15s %12s\n", name.c_str(), r.tape_entries,
                    tracked, dmean, dgrad, mib(r.held_after_forward).c_str(), mib(r.peak).c_str());
        facts.number(name + "_tape_entries", static_cast<double>(r.tape_entries));
        facts.number(name + "_num_batches_tracked_max", tracked);
        facts.number(name + "_num_batches_tracked_min", tracked_min);
        facts.number(name + "_running_mean_max_diff", dmean);
        facts.number(name + "_grad_max_diff", dgrad);
        facts.number(name + "_bytes_held_after_forward", static_cast<double>(r.held_after_forward));
        facts.number(name + "_bytes_peak", static_cast<double>(r.peak));
    }
}

// What the table shows, in words: batches counted twice, gradients equal, memory saved.
void print_findings(const std::vector<Run>& runs, const Settings& s, gotchas::Facts& facts) {
    const Run &plain = runs[0], &fixed = runs[2];
    const double saved_held =
        1.0 - static_cast<double>(fixed.held_after_forward) / plain.held_after_forward;
    const double saved_peak = 1.0 - static_cast<double>(fixed.peak) / plain.peak;
    std::printf(
        "\nAfter %zu steps the checkpointed run has counted every batch twice "
        "(num_batches_tracked %.0f, not %zu):\n"
        "each recomputation is a second BatchNorm forward in training mode, so the "
        "running statistics move\nwith an effective momentum of 1 − 0.9² = 0.19 "
        "instead of 0.1. The fixed run equals the plain one exactly.\n",
        s.steps, runs[1].tracked[0], s.steps);
    std::printf(
        "Gradients: identical in all three runs (training mode normalises with the "
        "batch's statistics, which the recomputation reproduces bit for bit).\n");
    std::printf(
        "Memory: checkpointing keeps %.0f%% less after the forward and peaks %.0f%% "
        "lower (the price: every block's forward runs twice).\n",
        100.0 * saved_held, 100.0 * saved_peak);
    facts.number("memory_saved_after_forward", saved_held);
    facts.number("memory_saved_peak", saved_peak);
    facts.number("steps", static_cast<double>(s.steps));
}

// running_mean[0] of the first block after each step, per run: the CSV and the figure.
void write_figure(const fs::path& dir, const std::vector<Run>& runs, const Settings& s) {
    std::vector<double> step(s.steps);
    for (std::size_t i = 0; i < s.steps; ++i)
        step[i] = static_cast<double>(i + 1);
    tg::viz::write_csv(dir / "ch310_checkpoint_bn.csv",
                       {{"step", step},
                        {"plain_running_mean0", runs[0].mean_trace},
                        {"checkpointed_running_mean0", runs[1].mean_trace},
                        {"fixed_running_mean0", runs[2].mean_trace}});
    tg::viz::Figure fig(1, 1, 900, 560);
    fig.suptitle = "Checkpointing with BatchNorm: running_mean[0] of the first block";
    fig.panel(0, 0)
        .set_xlabel("SGD step")
        .set_ylabel("running_mean[0]")
        .line(step, runs[0].mean_trace, "plain", tg::viz::kBlue)
        .line(step, runs[1].mean_trace, "checkpointed (updated twice per step)", tg::viz::kRed)
        .line(step, runs[2].mean_trace, "checkpointed, fixed (= plain)", "black", true)
        .legend = "top right";
    std::cout << "\n" << fig.save(dir / "ch310_checkpoint_bn.png").message << "\n";
}

}  // namespace

int main(int argc, char** argv) {
    tg::examples::Cli cli(
        "ch310_checkpoint_bn",
        "Gradient checkpointing with BatchNorm in training mode: the recomputation updates "
        "the running statistics twice; the fix; gradients equal; memory saved.");
    auto& common = cli.add_common({}, /*with_seeds=*/false, /*with_dataset=*/false);
    Settings s;
    add_flags(cli, s);
    if (const auto exit_code = cli.parse(argc, argv)) return *exit_code;

    try {
        cli.prepare();  // --threads applied, --out created and checked writable
        if (common.quick) {
            s.blocks = 4;
            s.batch = 8;
            s.size = 16;
            s.steps = 3;
        }
        tg::set_num_threads(1);  // the byte counts then do not depend on the thread pool
        std::printf(
            "Model: stem Conv2d(1, %zu, 3) + %zu blocks [Conv2d(%zu, %zu, 3, pad 1) → "
            "BatchNorm2d(%zu) → ReLU], input [%zu, 1, %zu, %zu], %zu SGD steps\n\n",
            s.channels, s.blocks, s.channels, s.channels, s.channels, s.batch, s.size, s.size,
            s.steps);
        std::vector<Run> runs;  // the same weights and batches three times
        for (Mode m : {Mode::plain, Mode::checkpointed, Mode::fixed})
            runs.push_back(train(m, s, common.seed));

        gotchas::Facts facts;
        print_runs(runs, s, facts);
        print_findings(runs, s, facts);
        const fs::path dir = common.out;
        write_figure(dir, runs, s);
        std::cout << "Facts: " << facts.save(dir, "ch310_checkpoint_bn").string() << "\n";
    } catch (const std::exception& e) {
        std::cerr << "ch310_checkpoint_bn: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
