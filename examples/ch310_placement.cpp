// ch310_placement — experiment 5 of the chapter's claims: BN "belongs between the linear/conv
// transform and the activation".
//
// The chapter's CNN with its BatchNorm2d layers placed as the chapter says, Conv → BN → ReLU
// (BN normalises the convolution's output, ReLU sees a zero-mean unit-variance input and cuts
// about half of it), and the other way round, Conv → ReLU → BN (BN normalises the rectified,
// non-negative activations, so the next layer sees zero-mean inputs again). Two parts, every
// pair from the same initial weights on the same batches (SGD, momentum 0.9, constant lr,
// batch 64), over seeds:
//   1. the chapter's CNN (2 conv layers) at each learning rate of a sweep, for --epochs;
//   2. depth and training length: CNNs of --depths conv layers (the chapter's two, then
//      Conv2d(16, 16, 3, pad 1) → BN → ReLU blocks on its 5 × 5 map after the second pool),
//      each trained for --depth-epochs at each of --depth-lrs, scored after every epoch.
// --full runs a longer sweep of both parts (minutes).
//
// Output (in --out, default out/ch310): ch310_placement.png, .csv, _summary.csv (part 1: test
// accuracy and final loss against the learning rate; variant 0 = Conv → BN → ReLU, 1 = Conv →
// ReLU → BN), ch310_placement_depth.png, .csv, _summary.csv (part 2: test accuracy after each
// epoch, one panel per depth).
//
//     ./build/release/examples/ch310_placement
//     ./build/release/examples/ch310_placement --depths 2,8 --depth-epochs 4 --seeds 5
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>

#include "common/cli.hpp"
#include "common/experiment.hpp"
#include "common/lr_sweep.hpp"

namespace fs = std::filesystem;
namespace ex = tg::examples;

namespace {

const char* const kPlacement[2] = {"Conv→BN→ReLU", "Conv→ReLU→BN"};

struct Settings {
    ex::SweepFlags sweep{.lrs = {0.03, 0.1}};
    std::vector<std::size_t> depths = {6};
    std::vector<double> depth_lrs = {0.1};
    std::size_t depth_epochs = 2;
};

void add_flags(ex::Cli& cli, Settings& s) {
    ex::add_sweep_flags(cli, s.sweep);
    cli.list("--depths", s.depths,
             "part 2: conv layers of each CNN, comma-separated (2 = the "
             "chapter's)",
             ex::between(2, 32));
    cli.list("--depth-lrs", s.depth_lrs, "part 2: learning rates", ex::greater_than(0, 1e6));
    cli.option("--depth-epochs", s.depth_epochs, "part 2: epochs per run, scored after each",
               ex::between(1, 100));
    cli.full_help(
        "the longer sweep: rates 0.01 ... 1; depths 2, 4, 6, 8 at rates 0.03 and 0.1 for 4 "
        "epochs (minutes)");
    cli.quick_help(
        "a few-second run for the tests: rates 0.03 and 0.3; depths 2 and 4 at rate 0.1 for "
        "2 epochs; the first 1,000 training and 500 test images");
    cli.outputs(
        "ch310_placement.png, .csv, _summary.csv (part 1, one row per run: variant 0 = "
        "Conv->BN->ReLU, 1 = Conv->ReLU->BN; lr, seed, losses, diverged, failed, test loss and "
        "accuracy), ch310_placement_depth.png, .csv, _summary.csv (part 2: depth, variant, lr, "
        "seed, epoch, test loss and accuracy after it).");
}

// --quick and --full replace the defaults of the flags not given on the command line.
void apply_mode(const ex::Cli& cli, Settings& s) {
    using Lrs = std::vector<double>;
    using Depths = std::vector<std::size_t>;
    cli.mode_value("--lrs", s.sweep.lrs, Lrs{0.03, 0.3}, Lrs{0.01, 0.03, 0.1, 0.3, 1});
    cli.mode_value("--depths", s.depths, Depths{2, 4}, Depths{2, 4, 6, 8});
    cli.mode_value("--depth-lrs", s.depth_lrs, Lrs{0.1}, Lrs{0.03, 0.1});
    cli.mode_value("--depth-epochs", s.depth_epochs, std::size_t{2}, std::size_t{4});
}

// The chapter's CNN with `depth` conv layers, BN before the ReLU (Conv → BN → ReLU) or after
// it: conv1 and conv2 as in ex::make_cnn, then depth − 2 blocks Conv2d(16, 16, 3, pad 1) → BN
// → ReLU on the 5 × 5 map, then Linear 400-120-84-10. Weights drawn in layer order from one
// Generator seeded with `seed`, as make_cnn draws them: at depth 2 this is make_cnn's network.
tg::nn::Sequential make_deep_cnn(std::size_t depth, bool after_relu, std::uint64_t seed) {
    using namespace tg::nn;
    tg::Generator gen(seed);
    Sequential model;
    const auto block = [&](Conv2d conv, std::size_t channels, bool pool) {
        model.push_back(std::move(conv));
        if (!after_relu) model.push_back(BatchNorm2d(channels));
        model.push_back(ReLU());
        if (after_relu) model.push_back(BatchNorm2d(channels));
        if (pool) model.push_back(MaxPool2d(2));
    };
    block(Conv2d(1, 6, 5, {.padding = 2, .generator = &gen}), 6, true);
    block(Conv2d(6, 16, 5, {.generator = &gen}), 16, true);
    for (std::size_t k = 2; k < depth; ++k)
        block(Conv2d(16, 16, 3, {.padding = 1, .generator = &gen}), 16, false);
    model.push_back(Flatten());
    model.push_back(Linear(400, 120, {.generator = &gen}));
    model.push_back(ReLU());
    model.push_back(Linear(120, 84, {.generator = &gen}));
    model.push_back(ReLU());
    model.push_back(Linear(84, 10, {.generator = &gen}));
    return model;
}

// One run of part 2: the test score after each epoch (NaN after a divergence).
struct DepthRun {
    std::size_t depth = 0, variant = 0;
    double lr = 0.0;
    std::uint64_t seed = 0;
    double first_loss = 0.0;
    bool diverged = false;
    std::vector<ex::Score> epochs;
};

std::vector<DepthRun> run_depth_sweep(const ex::Data& data, const Settings& s,
                                      const std::vector<std::uint64_t>& seeds,
                                      ex::TrainOptions base) {
    const std::size_t per_epoch = base.steps;  // base.steps is one epoch
    base.steps = s.depth_epochs * per_epoch;
    base.eval_every = per_epoch;
    std::vector<DepthRun> runs;
    ex::SweepProgress progress(s.depths.size() * s.depth_lrs.size() * 2 * seeds.size());
    for (const std::size_t depth : s.depths)
        for (const double lr : s.depth_lrs)
            for (std::size_t v = 0; v < 2; ++v)
                for (const std::uint64_t seed : seeds) {
                    progress.start(runs.size(),
                                   ex::format("depth %zu %s lr %g seed %llu", depth, kPlacement[v],
                                              lr, static_cast<unsigned long long>(seed)));
                    tg::nn::Sequential model = make_deep_cnn(depth, v == 1, seed);
                    ex::TrainOptions o = base;
                    o.lr = lr;
                    o.seed = seed;
                    const ex::TrainResult r =
                        ex::train(model, data, data.train, o, progress.on_step());
                    DepthRun run{depth, v, lr, seed, r.first_loss(), r.diverged, r.evals};
                    run.epochs.resize(s.depth_epochs, {std::nan(""), std::nan("")});
                    progress.finish(ex::format("test %.2f%%", 100 * run.epochs.back().accuracy));
                    runs.push_back(std::move(run));
                }
    progress.done();
    return runs;
}

// Writes part 2's CSV files, prints its table and draws its figure.
void report_depth_sweep(const fs::path& out, const std::string& title, const Settings& s,
                        const std::vector<std::uint64_t>& seeds,
                        const std::vector<DepthRun>& runs) {
    std::vector<double> c_depth, c_var, c_lr, c_seed, c_epoch, c_first, c_div, c_loss, c_acc;
    for (const DepthRun& r : runs)
        for (std::size_t e = 0; e < r.epochs.size(); ++e) {
            c_depth.push_back(static_cast<double>(r.depth));
            c_var.push_back(static_cast<double>(r.variant));
            c_lr.push_back(r.lr);
            c_seed.push_back(static_cast<double>(r.seed));
            c_epoch.push_back(static_cast<double>(e + 1));
            c_first.push_back(r.first_loss);
            c_div.push_back(r.diverged ? 1 : 0);
            c_loss.push_back(r.epochs[e].loss);
            c_acc.push_back(r.epochs[e].accuracy);
        }
    tg::viz::write_csv(out / "ch310_placement_depth.csv", {{"depth", c_depth},
                                                           {"variant", c_var},
                                                           {"lr", c_lr},
                                                           {"seed", c_seed},
                                                           {"epoch", c_epoch},
                                                           {"first_loss", c_first},
                                                           {"diverged", c_div},
                                                           {"test_loss", c_loss},
                                                           {"test_acc", c_acc}});

    const std::size_t last = s.depth_epochs;
    std::vector<double> s_depth, s_var, s_lr, s_epoch, s_mean, s_sd, s_runs;
    ex::Table table({"depth", "lr", "BN→ReLU 1 ep", "ReLU→BN 1 ep",
                     ex::format("BN→ReLU %zu ep", last), ex::format("ReLU→BN %zu ep", last),
                     "lead"});
    const char* colours[] = {ex::kWithBn, ex::kThird, ex::kFourth,
                             ex::kFifth,  ex::kSixth, ex::kWithoutBn};
    // At least two panels wide, so that the title fits (and the legend inside one panel).
    // The seeds' note is said once, in the title (seeds_note_in_title), so that each legend
    // entry is short enough for its panel; each legend gets its own room below the curves.
    tg::viz::Figure fig(1, s.depths.size(), std::max<std::size_t>(560 * s.depths.size(), 1120),
                        540);
    fig.suptitle = title;
    std::vector<double> x;
    for (std::size_t e = 1; e <= last; ++e)
        x.push_back(static_cast<double>(e));
    for (std::size_t j = 0; j < s.depths.size(); ++j) {
        auto& panel = ex::titled_panel(fig, 0, j, ex::format("%zu conv layers", s.depths[j]),
                                       "epochs", "test accuracy (%)");
        panel.legend = "bottom right";
        panel.legend_room = true;
        for (std::size_t i = 0; i < s.depth_lrs.size(); ++i) {
            std::vector<std::string> row = {std::to_string(s.depths[j]),
                                            ex::format("%g", s.depth_lrs[i])};
            std::vector<double> final_mean(2);
            std::vector<std::string> first_cells, last_cells;
            for (std::size_t v = 0; v < 2; ++v) {
                std::vector<std::vector<double>> curves;  // [seed][epoch], percent
                for (const DepthRun& r : runs) {
                    if (r.depth != s.depths[j] || r.lr != s.depth_lrs[i] || r.variant != v)
                        continue;
                    curves.emplace_back();
                    for (const ex::Score& sc : r.epochs)
                        curves.back().push_back(100 * sc.accuracy);
                }
                for (std::size_t e = 0; e < last; ++e) {
                    std::vector<double> acc;
                    for (const auto& c : curves)
                        acc.push_back(c[e] / 100);
                    const ex::MeanSd m = ex::mean_sd(acc);
                    s_depth.push_back(static_cast<double>(s.depths[j]));
                    s_var.push_back(static_cast<double>(v));
                    s_lr.push_back(s.depth_lrs[i]);
                    s_epoch.push_back(static_cast<double>(e + 1));
                    s_mean.push_back(m.mean);
                    s_sd.push_back(m.sd);
                    s_runs.push_back(static_cast<double>(acc.size()));
                    if (e == 0) first_cells.push_back(ex::format_mean_sd(m, 2, true));
                    if (e + 1 == last) last_cells.push_back(ex::format_mean_sd(m, 2, true));
                    if (e + 1 == last) final_mean[v] = m.mean;
                }
                ex::add_spread(panel, x, curves,
                               ex::format("%s, lr %g", kPlacement[v], s.depth_lrs[i]),
                               colours[(2 * i + v) % 6]);
            }
            row.insert(row.end(), first_cells.begin(), first_cells.end());
            row.insert(row.end(), last_cells.begin(), last_cells.end());
            row.push_back(ex::format("%+.2f", 100 * (final_mean[0] - final_mean[1])));
            table.add(row);
        }
    }
    tg::viz::write_csv(out / "ch310_placement_depth_summary.csv", {{"depth", s_depth},
                                                                   {"variant", s_var},
                                                                   {"lr", s_lr},
                                                                   {"epoch", s_epoch},
                                                                   {"test_acc_mean", s_mean},
                                                                   {"test_acc_sd", s_sd},
                                                                   {"runs", s_runs}});
    std::printf(
        "\nPart 2: test accuracy %% (eval mode) after 1 and %zu epochs,\n"
        "mean ± sd over %s; lead: Conv→BN→ReLU − Conv→ReLU→BN after %zu (points)\n\n",
        last, ex::count_of(seeds.size(), "seed").c_str(), last);
    table.print();
    ex::seeds_note_in_title(fig);
    ex::save_figure(fig, out / "ch310_placement_depth.png");
}

}  // namespace

int main(int argc, char** argv) {
    ex::Cli cli("ch310_placement",
                "Experiment 5, \"BN belongs between the conv and the activation\": Conv -> BN -> "
                "ReLU against Conv -> ReLU -> BN across learning rates, depths and epochs, over "
                "several seeds.");
    ex::CommonFlags& common = cli.add_common({.seeds = 3});
    Settings s;
    add_flags(cli, s);
    if (const auto exit_code = cli.parse(argc, argv)) return *exit_code;

    try {
        const fs::path out = cli.prepare();
        apply_mode(cli, s);
        const ex::Data data = ex::load_data(common, 1000, 500);
        const auto& [lrs, epochs, batch_size_flag, momentum] = s.sweep;
        const std::size_t batch_size =
            ex::cap_batch_size("ch310_placement", "--batch-size", batch_size_flag,
                               data.train->size(), "training images");
        const std::size_t per_epoch = (data.train->size() + batch_size - 1) / batch_size;
        ex::TrainOptions base{.momentum = momentum, .batch_size = batch_size};
        base.steps = epochs * per_epoch;
        const auto seeds = common.seed_list();
        std::printf(
            "%s: %zu training, %zu test images\nPart 1: %zu steps of %zu per run (SGD, "
            "momentum %g, constant lr);\n%zu rates x 2 placements x %zu seeds\n\n",
            data.name.c_str(), data.train->size(), data.test->size(), base.steps, batch_size,
            momentum, lrs.size(), seeds.size());
        const std::vector<ex::Variant> variants = {
            {kPlacement[0], {.norm = ex::Norm::batch}, ex::kWithBn},
            {kPlacement[1], {.norm = ex::Norm::batch, .norm_after_relu = true}, ex::kThird}};
        ex::report_lr_sweep(
            out, "ch310_placement",
            ex::format("Where BatchNorm goes: Conv→BN→ReLU against Conv→ReLU→BN, %s, %zu steps "
                       "of %zu, SGD momentum %g, %zu seeds",
                       data.name.c_str(), base.steps, batch_size, momentum, seeds.size()),
            variants, lrs, seeds, ex::run_lr_sweep(data, variants, lrs, seeds, base));

        std::printf(
            "\nPart 2: depths and epochs: %zu depths x %zu rates x 2 placements x %zu "
            "seeds,\n%zu epochs of %zu steps\n\n",
            s.depths.size(), s.depth_lrs.size(), seeds.size(), s.depth_epochs, per_epoch);
        base.steps = per_epoch;
        const auto runs = run_depth_sweep(data, s, seeds, base);
        report_depth_sweep(out,
                           ex::format("Placement by depth and epoch: %s, batch %zu, SGD momentum "
                                      "%g, %zu seeds",
                                      data.name.c_str(), batch_size, momentum, seeds.size()),
                           s, seeds, runs);
    } catch (const std::exception& e) {
        std::cerr << "ch310_placement: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
