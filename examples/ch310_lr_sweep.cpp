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
//     ./build/release/examples/ch310_lr_sweep                  # 7 rates x 2 models x 3 seeds
//     ./build/release/examples/ch310_lr_sweep --lrs 0.1,1 --seeds 5
#include <cstdio>
#include <iostream>

#include "common/cli.hpp"
#include "common/experiment.hpp"
#include "common/lr_sweep.hpp"

namespace fs = std::filesystem;
namespace ex = tg::examples;

int main(int argc, char** argv) {
    ex::Cli cli("ch310_lr_sweep",
                "Experiment 1, \"BN allows higher learning rates\": the chapter's CNN with and "
                "without BatchNorm trained at each learning rate of a sweep, over several seeds.");
    ex::CommonFlags& common = cli.add_common({.seeds = 3});
    ex::SweepFlags sweep{.lrs = {0.003, 0.01, 0.03, 0.1, 0.3, 1, 3}};
    ex::add_sweep_flags(cli, sweep);
    auto& [lrs, epochs, batch_size, momentum] = sweep;
    cli.quick_help(
        "a few-second run for the tests: rates 0.01 and 1, the first 1,000 training "
        "and 500 test images");
    cli.outputs(
        "ch310_lr_sweep.png (test accuracy and final loss against the learning rate), "
        "ch310_lr_sweep.csv (one row per run: variant 0 = with BN, 1 = without; lr, seed, "
        "losses, diverged, failed, test loss and accuracy), ch310_lr_sweep_summary.csv (mean "
        "and sd over seeds per variant and lr).");
    if (const auto exit_code = cli.parse(argc, argv)) return *exit_code;

    try {
        const fs::path out = cli.prepare();
        if (common.quick) lrs = {0.01, 1.0};
        const ex::Data data = ex::load_data(common, 1000, 500);
        const std::vector<ex::Variant> variants = {
            {"with BN", {.norm = ex::Norm::batch}, ex::kWithBn},
            {"without BN", {.norm = ex::Norm::none}, ex::kWithoutBn}};
        batch_size = ex::cap_batch_size("ch310_lr_sweep", "--batch-size", batch_size,
                                        data.train->size(), "training images");
        ex::TrainOptions base{.momentum = momentum, .batch_size = batch_size};
        base.steps = epochs * ((data.train->size() + batch_size - 1) / batch_size);
        std::printf(
            "%s: %zu training, %zu test images\n%zu steps of %zu per run (SGD, momentum "
            "%g, constant lr)\n%zu rates x 2 models x %zu seeds\n\n",
            data.name.c_str(), data.train->size(), data.test->size(), base.steps, batch_size,
            momentum, lrs.size(), common.seeds);
        const auto seeds = common.seed_list();
        const auto runs = ex::run_lr_sweep(data, variants, lrs, seeds, base);
        ex::report_lr_sweep(
            out, "ch310_lr_sweep",
            ex::format("Learning rate sweep with and without BatchNorm: %s, %zu steps of %zu, "
                       "SGD momentum %g, %zu seeds",
                       data.name.c_str(), base.steps, batch_size, momentum, seeds.size()),
            variants, lrs, seeds, runs);
    } catch (const std::exception& e) {
        std::cerr << "ch310_lr_sweep: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
