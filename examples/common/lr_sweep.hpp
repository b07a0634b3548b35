// examples/common/lr_sweep.hpp — a learning-rate sweep of CNN variants over seeds, shared by
// ch310_lr_sweep (with and without BN) and ch310_placement (Conv→BN→ReLU against
// Conv→ReLU→BN): every (variant, learning rate, seed) trained for the same budget from the same
// initial weights on the same batches, then scored on the test set in evaluation mode.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "experiment.hpp"

namespace tg::examples {

struct Variant {
    std::string name;  // "with BN"
    CnnOptions cnn;
    std::string colour;
    std::optional<MlpOptions> mlp = {};  // set: this variant is make_mlp(*mlp), not the CNN
};

/// One trained network of the sweep.
struct SweepRun {
    std::size_t variant = 0;
    double lr = 0.0;
    std::uint64_t seed = 0;
    std::size_t steps = 0;  // steps taken (fewer than budgeted when it diverged)
    double first_loss = 0.0, final_loss = 0.0;
    bool diverged = false;  // a NaN or infinite loss
    bool failed = false;    // diverged, or the final loss above the first
    Score test;             // eval mode, after training
};

/// The flags of a sweep, shared by its programs; `lrs` starts as the program's default rates.
struct SweepFlags {
    std::vector<double> lrs;
    std::size_t epochs = 1, batch_size = 64;
    double momentum = 0.9;
};
/// Adds --lrs, --epochs, --batch-size and --momentum for `flags`.
void add_sweep_flags(Cli& cli, SweepFlags& flags);

/// Trains every (variant, lr, seed) with `base` (its lr replaced), seeds' runs sharing initial
/// weights (make_cnn(variant.cnn, seed), or make_mlp(*variant.mlp, seed)) and batch order
/// (base.seed = seed).
std::vector<SweepRun> run_lr_sweep(const Data& data, const std::vector<Variant>& variants,
                                   const std::vector<double>& lrs,
                                   const std::vector<std::uint64_t>& seeds, TrainOptions base);

/// Writes <stem>.csv (one row per run), <stem>_summary.csv (mean and sd over seeds per
/// variant and lr) and <stem>.png (test accuracy and final training loss against lr), and
/// prints the table and, per variant, the best lr and the largest lr at which no seed failed.
void report_lr_sweep(const std::filesystem::path& out, const std::string& stem,
                     const std::string& title, const std::vector<Variant>& variants,
                     const std::vector<double>& lrs, const std::vector<std::uint64_t>& seeds,
                     const std::vector<SweepRun>& runs);

}  // namespace tg::examples
