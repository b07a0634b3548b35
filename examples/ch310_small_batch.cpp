// ch310_small_batch — experiment 6 of the chapter's claims: BN "breaks down below batch size
// ~16, where GroupNorm or LayerNorm should take over".
//
// The chapter's CNN with each normalisation after its convolutions: BatchNorm2d, GroupNorm
// with 2 groups, GroupNorm with one group per channel (InstanceNorm with γ, β), LayerNorm over
// [C, H, W], or none; trained at batch sizes 2 to 128 on the same number of examples (so a
// small batch takes many more steps; default 4,000, half an epoch), with the learning rate
// scaled with the batch size, lr = base · B / 32 (SGD, momentum 0.9, constant lr). Scored on the
// test set in eval mode, and in training mode with test batches of the same size B, which uses each
// batch's own statistics as training did: the difference is BN's train/eval gap. GroupNorm and
// LayerNorm normalise each example on its own, so their two modes give the same numbers and
// B only changes the gradient noise.
//
// In a convolutional layer BN's statistics pool B·H·W values per channel, so B alone does not
// say how noisy they are. A second part crosses that boundary: the same sweep for two networks
// whose BN statistics come from few values, BN against LayerNorm and no normalisation in each:
// a CNN whose last BN sees a 2 x 2 map (4·B values per statistic) and a plain MLP,
// 784-100-100-100-10 with BatchNorm1d after each Linear (B values, the chapter's BatchNorm1D
// setting). The figure's last panels put all three networks on one x axis, the values per
// statistic (the chapter's CNN: 100·B, conv2's 10 x 10 map).
//
// Output (in --out, default out/ch310): ch310_small_batch.png (test accuracy against batch
// size per normalisation; BN's two modes), ch310_small_batch.csv (one row per run: norm 0 =
// BN, 1 = GN(2), 2 = GN(C), 3 = LN, 4 = none; batch, lr, seed, losses, diverged, test loss and
// accuracy in eval mode and in training mode), ch310_small_batch_regimes.csv (the second part,
// one row per run: net 1 = CNN with a 2 x 2 map, 2 = MLP; norm 0 = BN, 3 = LN, 4 = none;
// batch, values per statistic, then as above).
//
//     ./build/release/examples/ch310_small_batch         # B = 2, 8, 128
//     ./build/release/examples/ch310_small_batch --full  # B = 2, 4, 8, 16, 32, 128
//     ./build/release/examples/ch310_small_batch --batch-sizes 4,16,64 --base-lr 0.05
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <limits>
#include <stdexcept>

#include "common/cli.hpp"
#include "common/experiment.hpp"
#include "tapegrad/tape.hpp"

namespace fs = std::filesystem;
namespace ex = tg::examples;

namespace {

// The fewest values any BatchNorm layer of `model` computes one statistic (a channel's mean and
// variance) from on `images`: N·H·W for an input [N, C, H, W], N for [N, C]. Measured with
// forward hooks on the network itself, not read from a table.
std::size_t values_per_statistic(tg::nn::Sequential& model, const tg::Tensor& images) {
    tg::NoGradGuard no_grad;
    std::size_t fewest = std::numeric_limits<std::size_t>::max();
    auto hooks = model.register_forward_hook_all(
        [&](const std::string& name, const tg::Tensor& x, const tg::Tensor&) {
            if (name.empty()) return;  // the model itself
            const std::string type = model[std::stoul(name)].type_name();
            if (type == "BatchNorm1d" || type == "BatchNorm2d")
                fewest = std::min(fewest, x.numel() / x.shape().at(1));
        });
    model(images);
    hooks.remove();
    if (fewest == std::numeric_limits<std::size_t>::max())
        throw std::logic_error("values_per_statistic: the network has no BatchNorm1d/2d layer");
    return fewest;
}

struct Flags {
    std::vector<std::size_t> batch_sizes = {2, 8, 128};
    std::size_t examples = 4000;
    double base_lr = 0.02, momentum = 0.9;
};

void add_flags(ex::Cli& cli, Flags& f) {
    cli.list("--batch-sizes", f.batch_sizes, "batch sizes, comma-separated", ex::between(2, 60000));
    cli.option("--examples", f.examples,
               "training examples seen per run, whatever the batch size (8,000: one epoch of "
               "the bundled digits)",
               ex::between(1, 10000000));
    cli.option("--base-lr", f.base_lr, "learning rate at batch 32; at batch B it is base-lr·B/32",
               ex::greater_than(0, 1e6));
    cli.option("--momentum", f.momentum, "SGD momentum", ex::between(0, 0.999));
    cli.full_help("the sweep of record: batch sizes 2, 4, 8, 16, 32, 128 (default 2, 8, 128)");
    cli.quick_help(
        "a few-second run for the tests: batch sizes 8 and 32 (unless --batch-sizes is given), "
        "512 examples per run, "
        "the first 1,000 training and 500 test images");
    cli.outputs(
        "ch310_small_batch.png (test accuracy against batch size), ch310_small_batch.csv "
        "(one row per run: norm 0 = BN, 1 = GN(2), 2 = GN(C), 3 = LN, 4 = none; batch, "
        "lr, seed, losses, diverged, test loss, test accuracy in eval mode and in training "
        "mode with test batches of B), ch310_small_batch_regimes.csv (the same for a CNN "
        "whose last BN sees a 2x2 map, net 1, and an MLP with BatchNorm1d, net 2; norms BN, "
        "LN, none; with the values per BN statistic).");
}

// --quick's and --full's batch sizes (unless --batch-sizes is given), capped at the data.
void apply_mode(const ex::Cli& cli, const ex::CommonFlags& common, Flags& f, const ex::Data& data) {
    if (common.quick) {
        if (!cli.given("--batch-sizes")) f.batch_sizes = {8, 32};
        f.examples = std::min<std::size_t>(f.examples, 512);
    } else if (common.full && !cli.given("--batch-sizes")) {
        f.batch_sizes = {2, 4, 8, 16, 32, 128};
    }
    for (std::size_t& B : f.batch_sizes) {
        B = ex::cap_batch_size("ch310_small_batch", "--batch-sizes", B, data.train->size(),
                               "training images");
    }
}

// The networks: 0 the chapter's CNN, 1 the CNN whose last Norm sees a 2 x 2 map, 2 the MLP.
const std::vector<std::string> kNets = {"chapter CNN", "CNN, 2x2 map", "MLP"};

tg::nn::Sequential make_net(std::size_t net, const ex::CnnOptions& cnn, std::uint64_t seed) {
    if (net == 0) return ex::make_cnn(cnn, seed);
    if (net == 1) {
        ex::CnnOptions small = cnn;
        small.small_map = true;
        return ex::make_cnn(small, seed);
    }
    return ex::make_mlp({.norm = cnn.norm}, seed);
}

// A normalisation of the sweep: its name, CSV code (0 = BN, 1 = GN(2), 2 = GN(C), 3 = LN,
// 4 = none), layer options and colour.
struct NormKind {
    std::string name;
    double code;
    ex::CnnOptions cnn;
    const char* colour;
};
// The first part's five; the second part's three (BN, LN, none) are 0, 3 and 4 of them.
const std::vector<NormKind> kNorms = {
    {"BN", 0, {.norm = ex::Norm::batch}, ex::kWithBn},
    {"GN(2)", 1, {.norm = ex::Norm::group, .groups = 2}, ex::kThird},
    {"GN(C)", 2, {.norm = ex::Norm::group, .groups = 0}, ex::kSixth},
    {"LN", 3, {.norm = ex::Norm::layer}, ex::kFourth},
    {"none", 4, {.norm = ex::Norm::none}, ex::kWithoutBn}};
const std::vector<NormKind> kRegimeNorms = {kNorms[0], kNorms[3], kNorms[4]};

// One trained network.
struct Run {
    std::size_t net = 0, norm = 0, batch = 0, seed = 0;  // norm, batch, seed: indices
    double lr = 0, per_stat = 0, first_loss = 0, final_loss = 0;
    bool diverged = false;
    ex::Score test;
    double test_acc_train_mode = 0;  // in training mode with test batches of B
};

// The runs of one network, [norm][seed][batch] of the test accuracy in %, and BN's (norm 0)
// training-mode accuracy [seed][batch].
struct Grid {
    std::vector<Run> runs;
    std::vector<std::vector<std::vector<double>>> acc;
    std::vector<std::vector<double>> bn_train_mode;
};

// Trains network `net` with each of `norms` at each batch size (lr = base·B/32, examples/B
// steps) for each seed, in the order batch, norm, seed; `per_stat[i]` is recorded with
// batch size i's runs.
Grid sweep_net(std::size_t net, const std::vector<NormKind>& norms, const Flags& f,
               const std::vector<std::uint64_t>& seeds, const std::vector<std::size_t>& per_stat,
               const ex::Data& data, ex::SweepProgress& progress, std::size_t& run) {
    Grid g;
    g.acc.assign(norms.size(), std::vector<std::vector<double>>(
                                   seeds.size(), std::vector<double>(f.batch_sizes.size())));
    g.bn_train_mode = g.acc[0];
    const std::string prefix = net == 0 ? "" : kNets[net] + " ";
    for (std::size_t i = 0; i < f.batch_sizes.size(); ++i) {
        const std::size_t B = f.batch_sizes[i];
        const double lr = f.base_lr * static_cast<double>(B) / 32.0;
        const std::size_t steps = std::max<std::size_t>(1, f.examples / B);
        for (std::size_t n = 0; n < norms.size(); ++n) {
            for (std::size_t k = 0; k < seeds.size(); ++k) {
                progress.start(
                    run++, ex::format("%s%s B %zu seed %llu", prefix.c_str(), norms[n].name.c_str(),
                                      B, static_cast<unsigned long long>(seeds[k])));
                tg::nn::Sequential model = make_net(net, norms[n].cnn, seeds[k]);
                const ex::TrainResult r = ex::train(model, data, data.train,
                                                    {.lr = lr,
                                                     .momentum = f.momentum,
                                                     .batch_size = B,
                                                     .steps = steps,
                                                     .seed = seeds[k]},
                                                    progress.on_step());
                Run x;
                x.net = net;
                x.norm = n;
                x.batch = i;
                x.seed = k;
                x.lr = lr;
                x.per_stat = per_stat.empty() ? 0.0 : static_cast<double>(per_stat[i]);
                x.first_loss = r.first_loss();
                x.final_loss = r.final_loss();
                x.diverged = r.diverged;
                x.test = ex::evaluate(model, data, data.test);
                // For GroupNorm, LayerNorm and none training mode computes exactly what eval
                // mode does (the tests check this): only BN's differs.
                x.test_acc_train_mode = ex::evaluate_train_mode(model, data, data.test, B).accuracy;
                g.acc[n][k][i] = 100.0 * x.test.accuracy;
                if (n == 0) g.bn_train_mode[k][i] = 100.0 * x.test_acc_train_mode;
                progress.finish(r.diverged ? "diverged (NaN loss)"
                                           : ex::format("test %.2f%%", 100.0 * x.test.accuracy));
                g.runs.push_back(x);
            }
        }
    }
    return g;
}

// One row per run; with `regimes` the net and values-per-statistic columns too.
void write_runs(const fs::path& path, const std::vector<Run>& runs, const Flags& f,
                const std::vector<std::uint64_t>& seeds, const std::vector<NormKind>& norms,
                bool regimes) {
    std::vector<tg::viz::CsvColumn> c = {
        {"net", {}},      {"norm", {}},      {"batch", {}},      {"per_stat", {}},
        {"lr", {}},       {"seed", {}},      {"first_loss", {}}, {"final_loss", {}},
        {"diverged", {}}, {"test_loss", {}}, {"test_acc", {}},   {"test_acc_train_mode", {}}};
    for (const Run& r : runs) {
        const double values[] = {static_cast<double>(r.net),
                                 norms[r.norm].code,
                                 static_cast<double>(f.batch_sizes[r.batch]),
                                 r.per_stat,
                                 r.lr,
                                 static_cast<double>(seeds[r.seed]),
                                 r.first_loss,
                                 r.final_loss,
                                 r.diverged ? 1.0 : 0.0,
                                 r.test.loss,
                                 r.test.accuracy,
                                 r.test_acc_train_mode};
        for (std::size_t j = 0; j < c.size(); ++j)
            c[j].values.push_back(values[j]);
    }
    if (!regimes) {  // the first part's file has no net and per_stat columns
        c.erase(c.begin() + 3);
        c.erase(c.begin());
    }
    tg::viz::write_csv(path, c);
}

// The values per BN statistic of each network at each batch size (per_stat[net][batch]),
// measured on it with BN on a batch of B training images.
std::vector<std::vector<std::size_t>> measure_per_stat(const Flags& f, const ex::Data& data) {
    std::vector<std::vector<std::size_t>> per_stat(kNets.size());
    for (std::size_t net = 0; net < kNets.size(); ++net)
        for (const std::size_t B : f.batch_sizes) {
            tg::nn::Sequential bn_net = make_net(net, kNorms[0].cnn, 0);
            per_stat[net].push_back(values_per_statistic(
                bn_net, ex::make_loader(data, data.train, B, false).epoch(0).begin()->images));
        }
    return per_stat;
}

// The second part: the 2x2-map CNN (net 1) and the MLP (net 2) with BN, LN and none, written
// to ch310_small_batch_regimes.csv. Returns every network's grid, [0] made from the first
// part's chapter CNN.
std::vector<Grid> regime_sweep(const fs::path& out, const Grid& cnn,
                               const std::vector<std::vector<std::size_t>>& per_stat,
                               const Flags& f, const std::vector<std::uint64_t>& seeds,
                               const ex::Data& data) {
    std::vector<Grid> grids = {{{}, {cnn.acc[0], cnn.acc[3], cnn.acc[4]}, cnn.bn_train_mode}};
    ex::SweepProgress progress((kNets.size() - 1) * f.batch_sizes.size() * kRegimeNorms.size() *
                               seeds.size());
    std::size_t run = 0;
    std::vector<Run> runs;
    for (std::size_t net = 1; net < kNets.size(); ++net) {
        grids.push_back(sweep_net(net, kRegimeNorms, f, seeds, per_stat[net], data, progress, run));
        runs.insert(runs.end(), grids[net].runs.begin(), grids[net].runs.end());
    }
    progress.done();
    write_runs(out / "ch310_small_batch_regimes.csv", runs, f, seeds, kRegimeNorms, true);
    return grids;
}

// The first part's tables: accuracy by B and normalisation, then BN's two modes.
void print_cnn_tables(const Grid& cnn, const Flags& f, std::size_t n_seeds) {
    const auto column = [&](std::size_t n, std::size_t i, auto value) {
        std::vector<double> sel;
        for (const Run& r : cnn.runs)
            if (r.norm == n && r.batch == i) sel.push_back(value(r));
        return ex::mean_sd(sel);
    };
    const auto eval = [](const Run& r) { return r.test.accuracy; };
    const auto train = [](const Run& r) { return r.test_acc_train_mode; };
    const auto gap = [](const Run& r) { return r.test_acc_train_mode - r.test.accuracy; };
    std::vector<std::string> header = {"B"};
    for (const auto& n : kNorms)
        header.push_back(n.name);
    ex::Table table(header);
    ex::Table modes({"B", "lr", "BN eval mode %", "BN train mode %", "train − eval"});
    for (std::size_t i = 0; i < f.batch_sizes.size(); ++i) {
        std::vector<std::string> row = {std::to_string(f.batch_sizes[i])};
        for (std::size_t n = 0; n < kNorms.size(); ++n)
            row.push_back(ex::format_mean_sd(column(n, i, eval), 1, true));
        table.add(row);
        modes.add({std::to_string(f.batch_sizes[i]),
                   ex::format("%g", f.base_lr * static_cast<double>(f.batch_sizes[i]) / 32.0),
                   ex::format_mean_sd(column(0, i, eval), 1, true),
                   ex::format_mean_sd(column(0, i, train), 1, true),
                   ex::format_mean_sd(column(0, i, gap), 1, true)});
    }
    std::printf(
        "\nTest accuracy %% (eval mode) by batch size B, %zu examples per run,\n"
        "mean ± sd over %s\n\n",
        f.examples, ex::count_of(n_seeds, "seed").c_str());
    table.print();
    std::printf(
        "\nBN scored in eval mode (running statistics) and in training mode\n"
        "(each test batch of B normalised with its own statistics, as in training)\n\n");
    modes.print();
}

// The second part's tables: per network BN (both modes), LN and none by B and values per
// statistic; then BN − LN at each B for all three networks. grids[net]: the runs of net with
// BN, LN and none ([0] made from the first part's).
void print_regime_tables(const std::vector<Grid>& grids,
                         const std::vector<std::vector<std::size_t>>& per_stat, const Flags& f,
                         std::size_t n_seeds) {
    const auto regime_cell = [&](std::size_t net, std::size_t n, std::size_t i, bool train) {
        std::vector<double> v;
        for (std::size_t k = 0; k < n_seeds; ++k)
            v.push_back((train ? grids[net].bn_train_mode[k][i] : grids[net].acc[n][k][i]) / 100.0);
        return ex::format_mean_sd(ex::mean_sd(v), 1, true);
    };
    for (std::size_t net = 1; net < kNets.size(); ++net) {
        std::printf(
            "\n%s:\ntest accuracy %% (eval mode; BN also in training mode), mean ± sd over "
            "%s\n\n",
            net == 1 ? "CNN whose last BN sees a 2x2 map (4·B values per statistic)"
                     : "MLP 784-100-100-100-10 with BatchNorm1d (B values per statistic)",
            ex::count_of(n_seeds, "seed").c_str());
        ex::Table t({"B", "values/stat", "BN", "BN train mode", "LN", "none"});
        for (std::size_t i = 0; i < f.batch_sizes.size(); ++i)
            t.add({std::to_string(f.batch_sizes[i]), std::to_string(per_stat[net][i]),
                   regime_cell(net, 0, i, false), regime_cell(net, 0, i, true),
                   regime_cell(net, 1, i, false), regime_cell(net, 2, i, false)});
        t.print();
    }
    std::printf(
        "\nBN − LN, test accuracy points (eval mode), mean ± sd over %s, and the\n"
        "values per BN statistic (chapter CNN 100·B, 2x2 map 4·B, MLP B)\n\n",
        ex::count_of(n_seeds, "seed").c_str());
    ex::Table diff({"B", "chapter CNN", "values", "CNN, 2x2 map", "values", "MLP", "values"});
    for (std::size_t i = 0; i < f.batch_sizes.size(); ++i) {
        std::vector<std::string> row = {std::to_string(f.batch_sizes[i])};
        for (std::size_t net = 0; net < kNets.size(); ++net) {
            std::vector<double> v;
            for (std::size_t k = 0; k < n_seeds; ++k)
                v.push_back(grids[net].acc[0][k][i] - grids[net].acc[1][k][i]);
            row.push_back(ex::format_mean_sd(ex::mean_sd(v), 1));
            row.push_back(std::to_string(per_stat[net][i]));
        }
        diff.add(row);
    }
    diff.print();
}

// The top row's first two panels: every normalisation by B, and BN's two modes.
void draw_cnn_panels(tg::viz::Figure& fig, const std::vector<double>& x, const Grid& cnn) {
    auto& left = fig.panel(0, 0)
                     .set_title("Test accuracy (eval mode)")
                     .set_xlabel("batch size B")
                     .set_ylabel("accuracy (%)");
    for (std::size_t n = 0; n < kNorms.size(); ++n)
        ex::add_spread(left, x, cnn.acc[n], kNorms[n].name, kNorms[n].colour);
    auto& right = fig.panel(0, 1)
                      .set_title("BatchNorm: eval mode against training mode (batch statistics)")
                      .set_xlabel("batch size B")
                      .set_ylabel("test accuracy (%)");
    ex::add_spread(right, x, cnn.acc[0], "BN, eval mode", ex::kWithBn);
    ex::add_spread(right, x, cnn.bn_train_mode, "BN, training mode", ex::kFifth);
    ex::log_x(left, x, 2);
    ex::log_x(right, x, 2);
    // Every panel of this figure has curves across its whole height: each legend gets its
    // own room below them (Panel::legend_room).
    left.legend = right.legend = "bottom left";
    left.legend_room = right.legend_room = true;
}

// The second part: the MLP and the 2x2-map CNN against B, then all three networks against the
// values per statistic.
void draw_regime_panels(tg::viz::Figure& fig, const std::vector<double>& x,
                        const std::vector<Grid>& grids,
                        const std::vector<std::vector<std::size_t>>& per_stat, std::size_t batch0) {
    for (std::size_t net = 1; net < kNets.size(); ++net) {
        auto& p = fig.panel(net == 2 ? 0 : 1, net == 2 ? 2 : 0)
                      .set_title(net == 1 ? "CNN whose last BN sees a 2x2 map (4B values)"
                                          : "MLP with BatchNorm1d (B values per statistic)")
                      .set_xlabel("batch size B")
                      .set_ylabel("test accuracy (%)");
        for (std::size_t n = 0; n < kRegimeNorms.size(); ++n)
            ex::add_spread(p, x, grids[net].acc[n], kRegimeNorms[n].name, kRegimeNorms[n].colour);
        ex::add_spread(p, x, grids[net].bn_train_mode, "BN, training mode", ex::kFifth);
        ex::log_x(p, x, 2);
        p.legend = "bottom left";
        p.legend_room = true;
    }
    const char* net_colours[] = {ex::kWithBn, ex::kThird, ex::kSixth};
    auto& pd = fig.panel(1, 1)
                   .set_title("BN minus LayerNorm, same network (eval mode)")
                   .set_xlabel("values per BN statistic (log scale)")
                   .set_ylabel("test accuracy difference (points)");
    auto& pg = fig.panel(1, 2)
                   .set_title("BN: training mode minus eval mode")
                   .set_xlabel("values per BN statistic (log scale)")
                   .set_ylabel("test accuracy difference (points)");
    double xlo = std::numeric_limits<double>::infinity(), xhi = 0;
    for (std::size_t net = 0; net < kNets.size(); ++net) {
        std::vector<double> xs;
        for (const std::size_t v : per_stat[net])
            xs.push_back(static_cast<double>(v));
        xlo = std::min(xlo, xs.front());
        xhi = std::max(xhi, xs.back());
        auto d = grids[net].acc[0], g = grids[net].bn_train_mode;
        for (std::size_t k = 0; k < d.size(); ++k)
            for (std::size_t i = 0; i < x.size(); ++i) {
                d[k][i] -= grids[net].acc[1][k][i];
                g[k][i] -= grids[net].acc[0][k][i];
            }
        const std::size_t per_example = per_stat[net].front() / batch0;
        const std::string label =
            kNets[net] +
            (per_example == 1 ? std::string(" (B)") : ex::format(" (%zu·B)", per_example));
        ex::add_spread(pd, xs, d, label, net_colours[net]);
        ex::add_spread(pg, xs, g, label, net_colours[net]);
    }
    std::vector<double> ticks;
    for (double t = std::min(xlo, 2.0); t <= xhi; t *= 4)
        ticks.push_back(t);
    for (auto* p : {&pd, &pg}) {
        ex::log_x(*p, ticks, 2);
        p->set_xrange(xlo / 1.25, xhi * 1.25);
        // The chapter's "~16", and zero (no difference).
        p->extra.push_back(
            "set arrow 1 from 16, graph 0 to 16, graph 1 nohead dt 2 lc rgb '#555555'");
        p->extra.push_back(
            "set label 1 \"the chapter's ~16\" at 18, graph 0.95 left tc rgb '#555555'");
        p->extra.push_back(
            "set arrow 2 from graph 0, first 0 to graph 1, first 0 nohead lc rgb '#999999'");
        p->legend = "bottom right";
        p->legend_room = true;
    }
}

}  // namespace

int main(int argc, char** argv) {
    ex::Cli cli("ch310_small_batch",
                "Experiment 6, \"BN breaks down below batch size ~16; use GroupNorm or "
                "LayerNorm\": BN, GroupNorm, LayerNorm and no normalisation at batch sizes 2 to "
                "128, the learning rate scaled with the batch size, over several seeds; then BN, "
                "LayerNorm and none in a CNN whose last BN sees a 2x2 map and in an MLP with "
                "BatchNorm1d, where each statistic has 4·B or B values.");
    ex::CommonFlags& common = cli.add_common({.seeds = 2});
    Flags f;
    add_flags(cli, f);
    if (const auto exit_code = cli.parse(argc, argv)) return *exit_code;

    try {
        const fs::path out = cli.prepare();
        const ex::Data data = ex::load_data(common, 1000, 500);
        apply_mode(cli, common, f, data);
        const auto seeds = common.seed_list();
        std::printf(
            "%s: %zu training, %zu test images\n%zu examples per run, lr = %g·B/32 "
            "(SGD, momentum %g)\n%zu batch sizes x %zu normalisations x %zu seeds\n\n",
            data.name.c_str(), data.train->size(), data.test->size(), f.examples, f.base_lr,
            f.momentum, f.batch_sizes.size(), kNorms.size(), seeds.size());
        std::size_t run = 0;
        ex::SweepProgress progress(f.batch_sizes.size() * kNorms.size() * seeds.size());
        const Grid cnn = sweep_net(0, kNorms, f, seeds, {}, data, progress, run);
        progress.done();
        write_runs(out / "ch310_small_batch.csv", cnn.runs, f, seeds, kNorms, false);

        // The second part: networks whose BN statistics have few values.
        const auto per_stat = measure_per_stat(f, data);
        const std::vector<Grid> grids = regime_sweep(out, cnn, per_stat, f, seeds, data);
        print_cnn_tables(cnn, f, seeds.size());
        print_regime_tables(grids, per_stat, f, seeds.size());
        std::vector<double> x;
        for (const std::size_t B : f.batch_sizes)
            x.push_back(static_cast<double>(B));
        tg::viz::Figure fig(2, 3, 1800, 1040);
        fig.suptitle = ex::format(
            "Normalisation at small batch sizes: %s, %zu examples per run, "
            "lr %g·B/32, SGD momentum %g, %zu seeds",
            data.name.c_str(), f.examples, f.base_lr, f.momentum, seeds.size());
        draw_cnn_panels(fig, x, cnn);
        draw_regime_panels(fig, x, grids, per_stat, f.batch_sizes.front());
        ex::seeds_note_in_title(fig);  // legends short enough for their panels
        ex::save_figure(fig, out / "ch310_small_batch.png");
    } catch (const std::exception& e) {
        std::cerr << "ch310_small_batch: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
