// ch310_lr_sweep — experiment 1 of the chapter's claims: "BN allows higher learning rates".
//
// The chapter's LeNet-style CNN (examples/common/experiment.hpp) with a BatchNorm2d after each
// convolution and without, trained at each learning rate of a log-spaced sweep for the same
// budget (SGD, momentum 0.9, constant lr, batch 64), from the same initial weights on the same
// batches, repeated over seeds. Per rate: the final training loss, the test accuracy in eval
// mode, and whether the run failed (its loss went NaN, or ended above where it started).
//
// Output (in --out, default out/ch310): ch310_lr_sweep.png (accuracy and final loss against
// the learning rate, one curve per seed and their mean), ch310_lr_sweep.csv (one row per run;
// variant 0 = with BN, 1 = without), ch310_lr_sweep_summary.csv (mean and sd over seeds).
// ch310_convergence reads the summary to train each model at its best learning rate.
//
// A second part puts depth on an axis, where the claim is expected to grow: plain MLPs of 4, 8
// and 16 Linear layers (784-100-...-100-10) with BatchNorm1d after every hidden Linear and
// without, each at the rates 0.01 ... 1, the same budget. Their weights start at 2.5 times
// PyTorch's default (about He's init for ReLU: at the default a 16-layer plain net's signal
// shrinks about 2.4x per layer and it does not train at any rate, which would be the init's
// effect, not the rate's). Output: ch310_lr_sweep_depth.csv (one row per run: depth, variant
// 0 = with BN, 1 = without, then as above), ch310_lr_sweep_depth_summary.csv and
// ch310_lr_sweep_depth.png (accuracy against the rate, one panel per depth).
//
//     ./build/release/examples/ch310_lr_sweep                  # 5 rates x 2 models x 3 seeds
//     ./build/release/examples/ch310_lr_sweep --full           # 7 rates; MLPs of 4, 8, 16
//     ./build/release/examples/ch310_lr_sweep --lrs 0.1,1 --seeds 5
#include <algorithm>
#include <cstdio>
#include <iostream>

#include "common/cli.hpp"
#include "common/experiment.hpp"
#include "common/lr_sweep.hpp"

namespace fs = std::filesystem;
namespace ex = tg::examples;

namespace {

struct Flags {
    ex::SweepFlags sweep{.lrs = {0.01, 0.03, 0.1, 0.3, 1}};
    std::vector<std::size_t> depths = {4, 16};
    std::vector<double> depth_lrs = {0.01, 0.03, 0.1, 0.3, 1};
    double depth_init = 2.5;
};

void add_flags(ex::Cli& cli, Flags& f) {
    ex::add_sweep_flags(cli, f.sweep);
    cli.list("--depths", f.depths, "second part: Linear layers of each MLP, comma-separated",
             ex::between(2, 64));
    cli.list("--depth-lrs", f.depth_lrs, "second part: the MLPs' learning rates",
             ex::greater_than(0, 1e6));
    cli.option("--depth-init-scale", f.depth_init,
               "second part: the MLPs' weights times this at init", ex::greater_than(0, 1000));
    cli.full_help(
        "the sweep of record: rates 0.003 ... 3 (default 0.01 ... 1) and MLPs of 4, 8 and 16 "
        "layers (default 4 and 16)");
    cli.quick_help(
        "a few-second run for the tests: rates 0.01 and 1 (MLPs: depths 4 and 16), the "
        "first 1,000 training and 500 test images");
    cli.outputs(
        "ch310_lr_sweep.png (test accuracy and final loss against the learning rate), "
        "ch310_lr_sweep.csv (one row per run: variant 0 = with BN, 1 = without; lr, seed, "
        "losses, diverged, failed, test loss and accuracy), ch310_lr_sweep_summary.csv (mean "
        "and sd over seeds per variant and lr), ch310_lr_sweep_depth.csv, "
        "ch310_lr_sweep_depth_summary.csv and ch310_lr_sweep_depth.png (the MLPs with and "
        "without BatchNorm1d at each depth; depth, then as above).");
}

// --quick's and --full's sweeps, where the command line did not give its own.
void apply_mode(const ex::Cli& cli, const ex::CommonFlags& common, Flags& f) {
    if (common.quick) {
        f.sweep.lrs = {0.01, 1.0};
        f.depths = {4, 16};
        f.depth_lrs = {0.01, 1.0};
    } else if (common.full) {
        if (!cli.given("--lrs")) f.sweep.lrs = {0.003, 0.01, 0.03, 0.1, 0.3, 1, 3};
        if (!cli.given("--depths")) f.depths = {4, 8, 16};
    }
}

// SGD with the sweep's momentum and batch size for its epochs of `data`, and what it does.
ex::TrainOptions budget(const ex::Data& data, ex::SweepFlags& sweep, std::size_t n_seeds) {
    sweep.batch_size = ex::cap_batch_size("ch310_lr_sweep", "--batch-size", sweep.batch_size,
                                          data.train->size(), "training images");
    ex::TrainOptions base{.momentum = sweep.momentum, .batch_size = sweep.batch_size};
    base.steps = sweep.epochs * ((data.train->size() + sweep.batch_size - 1) / sweep.batch_size);
    std::printf(
        "%s: %zu training, %zu test images\n%zu steps of %zu per run (SGD, momentum "
        "%g, constant lr)\n%zu rates x 2 models x %zu seeds\n\n",
        data.name.c_str(), data.train->size(), data.test->size(), base.steps, sweep.batch_size,
        sweep.momentum, sweep.lrs.size(), n_seeds);
    return base;
}

// The first part: the chapter's CNN with and without BN at each rate.
void cnn_sweep(const fs::path& out, const ex::Data& data, const ex::SweepFlags& sweep,
               const ex::TrainOptions& base, const std::vector<std::uint64_t>& seeds) {
    const std::vector<ex::Variant> variants = {
        {"with BN", {.norm = ex::Norm::batch}, ex::kWithBn},
        {"without BN", {.norm = ex::Norm::none}, ex::kWithoutBn}};
    const auto runs = ex::run_lr_sweep(data, variants, sweep.lrs, seeds, base);
    ex::report_lr_sweep(
        out, "ch310_lr_sweep",
        ex::format("Learning rate sweep with and without BatchNorm: %s, %zu steps of %zu, "
                   "SGD momentum %g, %zu seeds",
                   data.name.c_str(), base.steps, base.batch_size, sweep.momentum, seeds.size()),
        variants, sweep.lrs, seeds, runs);
}

// The second part: the MLPs, with and without BatchNorm1d, at each depth.
void depth_sweep(const fs::path& out, const ex::Data& data, const Flags& f,
                 const ex::TrainOptions& base, const std::vector<std::uint64_t>& seeds) {
    std::vector<std::vector<ex::Variant>> variants;
    std::vector<std::vector<ex::SweepRun>> runs;
    for (const std::size_t depth : f.depths) {
        const std::vector<std::size_t> hidden(depth - 1, 100);
        const auto mlp = [&](ex::Norm norm) {
            return ex::MlpOptions{.norm = norm, .hidden = hidden, .init_scale = f.depth_init};
        };
        variants.push_back({{"with BN", {}, ex::kWithBn, mlp(ex::Norm::batch)},
                            {"without BN", {}, ex::kWithoutBn, mlp(ex::Norm::none)}});
        std::printf("\nMLP with %zu Linear layers:\n", depth);
        runs.push_back(ex::run_lr_sweep(data, variants.back(), f.depth_lrs, seeds, base));
    }
    ex::report_lr_sweep_by_depth(
        out, "ch310_lr_sweep_depth",
        ex::format("Learning rate sweep by depth: MLPs with and without BatchNorm1d, weights %g x "
                   "PyTorch's init, %s, %zu steps of %zu, %zu seeds",
                   f.depth_init, data.name.c_str(), base.steps, base.batch_size, seeds.size()),
        ex::format("\nMLPs with BatchNorm1d after every hidden Linear or none, weights %g x "
                   "PyTorch's\ninit: test accuracy %% (eval mode), mean over %s, and failed "
                   "runs\n\n",
                   f.depth_init, ex::count_of(seeds.size(), "seed").c_str()),
        f.depths, variants, f.depth_lrs, runs);
}

}  // namespace

int main(int argc, char** argv) {
    ex::Cli cli("ch310_lr_sweep",
                "Experiment 1, \"BN allows higher learning rates\": the chapter's CNN with and "
                "without BatchNorm trained at each learning rate of a sweep, over several seeds.");
    ex::CommonFlags& common = cli.add_common({.seeds = 3});
    Flags flags;
    add_flags(cli, flags);
    if (const auto exit_code = cli.parse(argc, argv)) return *exit_code;

    try {
        const fs::path out = cli.prepare();
        apply_mode(cli, common, flags);
        const ex::Data data = ex::load_data(common, 1000, 500);
        const auto seeds = common.seed_list();
        const ex::TrainOptions base = budget(data, flags.sweep, seeds.size());
        cnn_sweep(out, data, flags.sweep, base, seeds);
        depth_sweep(out, data, flags, base, seeds);
    } catch (const std::exception& e) {
        std::cerr << "ch310_lr_sweep: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
