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

/// One (variant, lr) of a sweep over its seeds.
struct SweepPoint {
    MeanSd acc, loss;  // test accuracy (a fraction) and final training loss
    std::size_t failed = 0, runs = 0;
    std::vector<double> acc_per_seed, loss_per_seed;  // accuracy in %, in the runs' seed order
};
/// points[v][i]: variant v at lrs[i], from `runs`.
std::vector<std::vector<SweepPoint>> summarise_lr_sweep(std::size_t variants,
                                                        const std::vector<double>& lrs,
                                                        const std::vector<SweepRun>& runs);
/// A variant's best rate (the first of the highest mean accuracy) and the largest rate at which
/// no seed failed (0: none).
struct SweepBest {
    double lr = 0.0, acc = -1.0, largest_ok = 0.0;
};
SweepBest best_of(const std::vector<double>& lrs, const std::vector<SweepPoint>& points);
/// "0.3", or "none" for 0: the largest rate at which no seed failed, as the verdicts print it.
std::string largest_ok_text(const SweepBest& best);
/// The runs as CSV columns: variant, lr, seed, steps, first_loss, final_loss, diverged, failed,
/// test_loss, test_acc.
std::vector<tg::viz::CsvColumn> sweep_run_columns(const std::vector<SweepRun>& runs);

/// Writes <stem>.csv (one row per run), <stem>_summary.csv (mean and sd over seeds per
/// variant and lr) and <stem>.png (test accuracy and final training loss against lr), and
/// prints the table and, per variant, the best lr and the largest lr at which no seed failed.
void report_lr_sweep(const std::filesystem::path& out, const std::string& stem,
                     const std::string& title, const std::vector<Variant>& variants,
                     const std::vector<double>& lrs, const std::vector<std::uint64_t>& seeds,
                     const std::vector<SweepRun>& runs);

/// The same sweep for several networks of one kind at each of `depths` (runs[j]: depths[j]'s):
/// writes <stem>.csv and <stem>_summary.csv with a depth column first (the summary without the
/// losses) and <stem>.png (test accuracy against lr, one panel per depth), and prints one table
/// row per depth and variant (mean accuracy and failed runs at each rate) and the verdicts.
/// `caption` is the table's caption, `title` the figure's.
void report_lr_sweep_by_depth(const std::filesystem::path& out, const std::string& stem,
                              const std::string& title, const std::string& caption,
                              const std::vector<std::size_t>& depths,
                              const std::vector<std::vector<Variant>>& variants,
                              const std::vector<double>& lrs,
                              const std::vector<std::vector<SweepRun>>& runs);

}  // namespace tg::examples
