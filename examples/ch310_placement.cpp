// ch310_placement — experiment 5 of the chapter's claims: BN "belongs between the linear/conv
// transform and the activation".
//
// The chapter's CNN with its BatchNorm2d layers placed as the chapter says, Conv → BN → ReLU
// (BN normalises the convolution's output, ReLU sees a zero-mean unit-variance input and cuts
// about half of it), and the other way round, Conv → ReLU → BN (BN normalises the rectified,
// non-negative activations, so the next layer sees zero-mean inputs again). Both trained at
// each learning rate of a sweep for the same budget (SGD, momentum 0.9, constant lr, batch 64)
// from the same initial weights on the same batches, over seeds.
//
// Output (in --out, default out/ch310): ch310_placement.png (test accuracy and final loss
// against the learning rate), ch310_placement.csv (one row per run; variant 0 = Conv → BN →
// ReLU, 1 = Conv → ReLU → BN), ch310_placement_summary.csv (mean and sd over seeds).
//
//     ./build/release/examples/ch310_placement
//     ./build/release/examples/ch310_placement --lrs 0.03,0.3 --epochs 2 --seeds 5
#include <cstdio>
#include <iostream>

#include "common/cli.hpp"
#include "common/experiment.hpp"
#include "common/lr_sweep.hpp"

namespace fs = std::filesystem;
namespace ex = tg::examples;

int main(int argc, char** argv) {
    ex::Cli cli("ch310_placement",
                "Experiment 5, \"BN belongs between the conv and the activation\": Conv -> BN -> "
                "ReLU against Conv -> ReLU -> BN across learning rates, over several seeds.");
    ex::CommonFlags& common = cli.add_common({.seeds = 3});
    ex::SweepFlags sweep{.lrs = {0.01, 0.03, 0.1, 0.3, 1}};
    ex::add_sweep_flags(cli, sweep);
    auto& [lrs, epochs, batch_size, momentum] = sweep;
    cli.quick_help(
        "a few-second run for the tests: rates 0.03 and 0.3, the first 1,000 training "
        "and 500 test images");
    cli.outputs(
        "ch310_placement.png (test accuracy and final loss against the learning rate), "
        "ch310_placement.csv (one row per run: variant 0 = Conv->BN->ReLU, 1 = "
        "Conv->ReLU->BN; lr, seed, losses, diverged, failed, test loss and accuracy), "
        "ch310_placement_summary.csv (mean and sd over seeds per variant and lr).");
    if (const auto exit_code = cli.parse(argc, argv)) return *exit_code;

    try {
        const fs::path out = cli.prepare();
        if (common.quick) lrs = {0.03, 0.3};
        const ex::Data data = ex::load_data(common, 1000, 500);
        const std::vector<ex::Variant> variants = {
            {"Conv→BN→ReLU", {.norm = ex::Norm::batch}, ex::kWithBn},
            {"Conv→ReLU→BN", {.norm = ex::Norm::batch, .norm_after_relu = true}, ex::kThird}};
        batch_size = ex::cap_batch_size("ch310_placement", "--batch-size", batch_size,
                                        data.train->size(), "training images");
        ex::TrainOptions base{.momentum = momentum, .batch_size = batch_size};
        base.steps = epochs * ((data.train->size() + batch_size - 1) / batch_size);
        std::printf(
            "%s: %zu training, %zu test images\n%zu steps of %zu per run (SGD, momentum "
            "%g, constant lr)\n%zu rates x 2 placements x %zu seeds\n\n",
            data.name.c_str(), data.train->size(), data.test->size(), base.steps, batch_size,
            momentum, lrs.size(), common.seeds);
        const auto seeds = common.seed_list();
        const auto runs = ex::run_lr_sweep(data, variants, lrs, seeds, base);
        ex::report_lr_sweep(
            out, "ch310_placement",
            ex::format("Where BatchNorm goes: Conv→BN→ReLU against Conv→ReLU→BN, %s, %zu steps "
                       "of %zu, SGD momentum %g, %zu seeds",
                       data.name.c_str(), base.steps, batch_size, momentum, seeds.size()),
            variants, lrs, seeds, runs);
    } catch (const std::exception& e) {
        std::cerr << "ch310_placement: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
