// ch310_init_scale — experiment 3 of the chapter's claims: BN "reduces sensitivity to weight
// initialisation" (ch308).
//
// The chapter's CNN with and without BatchNorm, every Conv2d and Linear weight multiplied at
// init by s = 0.1, 0.5, 2 or 10 (PyTorch's default init times s; --full adds s = 1). Forward
// hooks record the standard deviation of each block's output on one training batch right after
// init:
//   conv1: after Conv → (BN) → ReLU       conv2: after Conv → (BN) → ReLU
//   fc1, fc2: after Linear → ReLU         logits: the last Linear
// Without BN each layer multiplies the scale in, so conv2's output grows like s² and the
// logits like s⁵; BN divides the convolutions' scale out, but the three Linear layers after it
// have no BN, so the logits still grow like s³. Then each network is trained for the same
// budget (SGD, momentum 0.9, constant lr, batch 64) and scored on the test set in eval mode.
//
// The chapter's CNN has BN in two layers of five, so it shows the claim only where BN is. A
// second part crosses to where the claim is expected to grow, depth with BN in every layer:
// plain MLPs of 4 and 16 Linear layers (--full: 4, 8 and 16; 784-100-...-100-10) with
// BatchNorm1d after every hidden Linear and without, at init scales 0.5, 1, 2.5 (about He's √6
// for ReLU: PyTorch's default Linear init shrinks a ReLU net's activations about 2.4x per
// layer) and 5, the same budget. Sensitivity to init is then the spread of accuracy over the
// scales, per depth.
//
// Output (in --out, default out/ch310): ch310_init_scale.png (test accuracy, conv2's and the
// logits' std against s; the MLPs' accuracy against s per depth and the spread over s against
// depth), ch310_init_scale.csv (one row per run: bn 1/0, scale, seed, the five stds, losses,
// diverged, test loss and accuracy), ch310_init_scale_depth.csv (the MLPs, one row per run:
// depth, bn, scale, seed, std of the last hidden layer and of the logits at init, losses,
// diverged, test loss and accuracy).
//
//     ./build/release/examples/ch310_init_scale
//     ./build/release/examples/ch310_init_scale --full
//     ./build/release/examples/ch310_init_scale --scales 0.3,1,3 --lr 0.03
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>

#include "common/cli.hpp"
#include "common/experiment.hpp"
#include "tapegrad/tape.hpp"

namespace fs = std::filesystem;
namespace ex = tg::examples;

namespace {

const std::vector<std::string> kBlocks = {"conv1", "conv2", "fc1", "fc2", "logits"};

// The population standard deviation of every value of a.
double stddev(const tg::Array& a) {
    double sum = 0.0, sq = 0.0;
    for (const tg::real x : a)
        sum += x;
    const double mean = sum / static_cast<double>(a.size());
    for (const tg::real x : a)
        sq += (x - mean) * (x - mean);
    return std::sqrt(sq / static_cast<double>(a.size()));
}

// The std of the output of each block of kBlocks on `images`: the outputs of the four ReLUs
// and of the last layer, recorded by forward hooks on every module of the model.
std::vector<double> block_stds(tg::nn::Sequential& model, const tg::Tensor& images) {
    std::vector<double> stds;
    tg::NoGradGuard no_grad;
    const std::string last = std::to_string(model.size() - 1);
    auto hooks = model.register_forward_hook_all(
        [&](const std::string& name, const tg::Tensor&, const tg::Tensor& y) {
            if (name.empty()) return;  // the model itself
            if (model[std::stoul(name)].type_name() == "ReLU" || name == last)
                stds.push_back(stddev(y.value()));
        });
    model(images);
    hooks.remove();
    return stds;
}

// Back to the running statistics of a fresh model (block_stds ran one batch in training mode).
void reset_running_stats(tg::nn::Sequential& model) {
    for (auto& [name, buffer] : model.named_buffers()) {
        if (name.ends_with("running_mean") || name.ends_with("num_batches_tracked"))
            buffer.value().fill(0);
        else if (name.ends_with("running_var"))
            buffer.value().fill(1);
    }
}

struct Flags {
    std::vector<double> scales = {0.1, 0.5, 2, 10};
    ex::TrainOptions sgd;  // lr 0.01, momentum 0.9, batch 64
    std::size_t epochs = 1;
    std::vector<std::size_t> depths = {4, 16};
    std::vector<double> depth_scales = {0.5, 1, 2.5, 5};
};

void add_flags(ex::Cli& cli, Flags& f) {
    cli.list("--scales", f.scales, "init scales s (every weight times s), comma-separated",
             ex::greater_than(0, 1000));
    ex::add_sgd_flags(cli, f.sgd);
    cli.option("--epochs", f.epochs, "passes over the training set per run", ex::between(1, 1000));
    cli.list("--depths", f.depths, "second part: Linear layers of each MLP, comma-separated",
             ex::between(2, 64));
    cli.list("--depth-scales", f.depth_scales, "second part: the MLPs' init scales",
             ex::greater_than(0, 1000));
    cli.full_help(
        "the sweep of record: scales 0.1, 0.5, 1, 2, 10 (default without 1) and MLPs of 4, 8 "
        "and 16 layers (default 4 and 16)");
    cli.quick_help(
        "a few-second run for the tests: scales 0.5 and 2 (MLPs: depths 4 and 16 at "
        "scales 0.5 and 2.5), the first 1,000 training and 500 test images");
    cli.outputs(
        "ch310_init_scale.png (test accuracy and activation std against the init scale), "
        "ch310_init_scale.csv (one row per run: bn 1/0, scale, seed, std of conv1, conv2, "
        "fc1, fc2 and logits after init, losses, diverged, test loss and accuracy), "
        "ch310_init_scale_depth.csv (the MLPs with and without BatchNorm1d: depth, bn, scale, "
        "seed, std of the last hidden layer and the logits after init, losses, diverged, test "
        "loss and accuracy).");
}

// --quick's and --full's sweeps, where the command line did not give its own.
void apply_mode(const ex::Cli& cli, const ex::CommonFlags& common, Flags& f) {
    if (common.quick) {
        f.scales = {0.5, 2};
        f.depths = {4, 16};
        f.depth_scales = {0.5, 2.5};
    } else if (common.full) {
        if (!cli.given("--scales")) f.scales = {0.1, 0.5, 1, 2, 10};
        if (!cli.given("--depths")) f.depths = {4, 8, 16};
    }
}

// One network of either part: the stds of its blocks at init, then trained and scored.
struct Run {
    std::size_t depth = 0;            // the MLP's Linear layers; 0 for the CNN
    int b = 0;                        // 0 with BN, 1 without
    std::size_t scale = 0, seed = 0;  // indices into the scales and the seeds
    std::vector<double> stds;
    double first_loss = 0, final_loss = 0;
    bool diverged = false;
    ex::Score test;
    bool failed() const { return diverged || !(final_loss < first_loss); }
};

// Records the stds of `model`'s blocks on `probe`, trains it for `sgd` and scores it.
void measure_and_train(Run& run, tg::nn::Sequential model, const tg::Tensor& probe,
                       const ex::Data& data, const ex::TrainOptions& sgd, std::uint64_t seed,
                       ex::SweepProgress& progress) {
    // Training mode, as the first step sees it (BN: this batch's statistics). NoGrad: nothing
    // recorded; the running statistics move once and are reset.
    run.stds = block_stds(model, probe);
    reset_running_stats(model);
    ex::TrainOptions o = sgd;
    o.seed = seed;
    const ex::TrainResult r = ex::train(model, data, data.train, o, progress.on_step());
    run.test = ex::evaluate(model, data, data.test);
    run.first_loss = r.first_loss();
    run.final_loss = r.final_loss();
    run.diverged = r.diverged;
    progress.finish(r.diverged ? "diverged (NaN loss)"
                               : ex::format("test %.2f%%", 100.0 * run.test.accuracy));
}

// Every (depth, scale, BN or not, seed): depth 0 is the chapter's CNN, else an MLP of `depth`
// Linear layers; in that order.
std::vector<Run> sweep(const std::vector<std::size_t>& depths, const std::vector<double>& scales,
                       const std::vector<std::uint64_t>& seeds, const tg::Tensor& probe,
                       const ex::Data& data, const ex::TrainOptions& sgd) {
    std::vector<Run> runs;
    ex::SweepProgress progress(2 * depths.size() * scales.size() * seeds.size());
    for (const std::size_t depth : depths) {
        for (std::size_t i = 0; i < scales.size(); ++i) {
            for (int b = 0; b < 2; ++b) {
                const ex::Norm norm = b == 0 ? ex::Norm::batch : ex::Norm::none;
                for (std::size_t k = 0; k < seeds.size(); ++k) {
                    const auto seed = static_cast<unsigned long long>(seeds[k]);
                    const char* model_name = b == 0 ? "BN" : "no BN";
                    progress.start(
                        runs.size(),
                        depth == 0 ? ex::format("%s s %g seed %llu", model_name, scales[i], seed)
                                   : ex::format("MLP %zu %s s %g seed %llu", depth, model_name,
                                                scales[i], seed));
                    Run run;
                    run.depth = depth;
                    run.b = b;
                    run.scale = i;
                    run.seed = k;
                    measure_and_train(
                        run,
                        depth == 0
                            ? ex::make_cnn({.norm = norm, .init_scale = scales[i]}, seeds[k])
                            : ex::make_mlp({.norm = norm,
                                            .hidden = std::vector<std::size_t>(depth - 1, 100),
                                            .init_scale = scales[i]},
                                           seeds[k]),
                        probe, data, sgd, seeds[k], progress);
                    runs.push_back(std::move(run));
                }
            }
        }
    }
    progress.done();
    return runs;
}

// value(run) for every run of (depth, b) as [seed][scale], for the figure.
template <class F>
std::vector<std::vector<double>> per_seed(const std::vector<Run>& runs, std::size_t depth, int b,
                                          std::size_t seeds, std::size_t scales, F value) {
    std::vector<std::vector<double>> out(seeds, std::vector<double>(scales));
    for (const Run& r : runs)
        if (r.depth == depth && r.b == b) out[r.seed][r.scale] = value(r);
    return out;
}

void write_cnn_csv(const fs::path& out, const std::vector<Run>& runs,
                   const std::vector<double>& scales, const std::vector<std::uint64_t>& seeds) {
    std::vector<double> c_bn, c_scale, c_seed, c_first, c_final, c_div, c_loss, c_acc;
    std::vector<std::vector<double>> c_std(kBlocks.size());
    for (const Run& r : runs) {
        c_bn.push_back(r.b == 0 ? 1 : 0);
        c_scale.push_back(scales[r.scale]);
        c_seed.push_back(static_cast<double>(seeds[r.seed]));
        for (std::size_t j = 0; j < kBlocks.size(); ++j)
            c_std[j].push_back(r.stds.at(j));
        c_first.push_back(r.first_loss);
        c_final.push_back(r.final_loss);
        c_div.push_back(r.diverged ? 1 : 0);
        c_loss.push_back(r.test.loss);
        c_acc.push_back(r.test.accuracy);
    }
    std::vector<tg::viz::CsvColumn> columns = {{"bn", c_bn}, {"scale", c_scale}, {"seed", c_seed}};
    for (std::size_t j = 0; j < kBlocks.size(); ++j)
        columns.push_back({"std_" + kBlocks[j], c_std[j]});
    columns.push_back({"first_loss", c_first});
    columns.push_back({"final_loss", c_final});
    columns.push_back({"diverged", c_div});
    columns.push_back({"test_loss", c_loss});
    columns.push_back({"test_acc", c_acc});
    tg::viz::write_csv(out / "ch310_init_scale.csv", columns);
}

// The CNN's tables: the stds after init (mean over seeds and their spread: the sd as a
// percentage of the mean, which keeps the columns narrow across five orders of magnitude),
// then the accuracy.
void print_cnn_tables(const std::vector<Run>& runs, const std::vector<double>& scales,
                      std::size_t n_seeds, std::size_t steps) {
    std::printf("\nStd of each block's output after init, on one batch of 64:\nmean over %s%s\n\n",
                ex::count_of(n_seeds, "seed").c_str(),
                n_seeds == 1 ? "" : " ± their sd as a percentage of the mean");
    ex::Table stds({"scale", "model", "conv1", "conv2", "fc1", "fc2", "logits"});
    ex::Table accs({"scale", "with BN: test %", "failed", "without BN: test %", "failed"});
    for (std::size_t i = 0; i < scales.size(); ++i) {
        std::vector<std::string> acc_row = {ex::format("%g", scales[i])};
        for (int b = 0; b < 2; ++b) {
            std::vector<const Run*> mine;
            for (const Run& r : runs)
                if (r.b == b && r.scale == i) mine.push_back(&r);
            std::vector<std::string> row = {ex::format("%g", scales[i]), b == 0 ? "BN" : "no BN"};
            for (std::size_t j = 0; j < kBlocks.size(); ++j) {
                std::vector<double> v;
                for (const Run* r : mine)
                    v.push_back(r->stds.at(j));
                const ex::MeanSd m = ex::mean_sd(v);
                row.push_back(n_seeds == 1
                                  ? ex::format("%.3g", m.mean)
                                  : ex::format("%.3g ±%.0f%%", m.mean, 100.0 * m.sd / m.mean));
            }
            stds.add(row);
            std::vector<double> a;
            std::size_t failed = 0;
            for (const Run* r : mine) {
                a.push_back(r->test.accuracy);
                failed += r->failed();
            }
            acc_row.push_back(ex::format_mean_sd(ex::mean_sd(a), 2, true));
            acc_row.push_back(ex::format("%zu/%zu", failed, a.size()));
        }
        accs.add(acc_row);
    }
    stds.print();
    std::printf(
        "\nTest accuracy (eval mode) after %zu steps, mean ± sd over %s;\n"
        "failed: loss NaN or ended above where it started\n\n",
        steps, ex::count_of(n_seeds, "seed").c_str());
    accs.print();
}

void write_depth_csv(const fs::path& out, const std::vector<Run>& runs,
                     const std::vector<double>& scales, const std::vector<std::uint64_t>& seeds) {
    std::vector<double> d_depth, d_bn, d_scale, d_seed, d_std_hidden, d_std_logits, d_first,
        d_final, d_div, d_loss, d_acc;
    for (const Run& r : runs) {
        d_depth.push_back(static_cast<double>(r.depth));
        d_bn.push_back(r.b == 0 ? 1 : 0);
        d_scale.push_back(scales[r.scale]);
        d_seed.push_back(static_cast<double>(seeds[r.seed]));
        d_std_hidden.push_back(r.stds.at(r.stds.size() - 2));
        d_std_logits.push_back(r.stds.back());
        d_first.push_back(r.first_loss);
        d_final.push_back(r.final_loss);
        d_div.push_back(r.diverged ? 1 : 0);
        d_loss.push_back(r.test.loss);
        d_acc.push_back(r.test.accuracy);
    }
    tg::viz::write_csv(out / "ch310_init_scale_depth.csv", {{"depth", d_depth},
                                                            {"bn", d_bn},
                                                            {"scale", d_scale},
                                                            {"seed", d_seed},
                                                            {"std_last_hidden", d_std_hidden},
                                                            {"std_logits", d_std_logits},
                                                            {"first_loss", d_first},
                                                            {"final_loss", d_final},
                                                            {"diverged", d_div},
                                                            {"test_loss", d_loss},
                                                            {"test_acc", d_acc}});
}

// The MLPs' accuracy (%) as dacc[b][depth][seed][scale].
using DepthAcc = std::vector<std::vector<std::vector<std::vector<double>>>>;
DepthAcc depth_accuracy(const std::vector<Run>& runs, const Flags& f, std::size_t n_seeds) {
    DepthAcc dacc(2);
    for (int b = 0; b < 2; ++b)
        for (const std::size_t depth : f.depths)
            dacc[b].push_back(per_seed(runs, depth, b, n_seeds, f.depth_scales.size(),
                                       [](const Run& r) { return 100.0 * r.test.accuracy; }));
    return dacc;
}

// Per depth: the accuracy at each scale, and the spread over the scales (best − worst mean
// accuracy): the sensitivity to init. Returns spread[b][seed][depth], each seed's best − worst.
std::vector<std::vector<std::vector<double>>> print_depth_table(const DepthAcc& dacc,
                                                                const Flags& f, std::size_t n_seeds,
                                                                std::size_t steps) {
    std::printf(
        "\nMLPs 784-100-...-100-10, BatchNorm1d after every hidden Linear or none:\n"
        "test accuracy %% (eval mode) after %zu steps, mean ± sd over %s; last\n"
        "column: best − worst mean over the scales (points)\n\n",
        steps, ex::count_of(n_seeds, "seed").c_str());
    std::vector<std::string> dheader = {"depth", "model"};
    for (const double sc : f.depth_scales)
        dheader.push_back(ex::format("s = %g", sc));
    dheader.push_back("spread");
    ex::Table dtable(dheader);
    std::vector<std::vector<std::vector<double>>> spread(
        2, std::vector<std::vector<double>>(n_seeds, std::vector<double>(f.depths.size())));
    for (std::size_t j = 0; j < f.depths.size(); ++j) {
        for (int b = 0; b < 2; ++b) {
            std::vector<std::string> row = {std::to_string(f.depths[j]), b == 0 ? "BN" : "no BN"};
            double best = -1, worst = 1e9;
            for (std::size_t i = 0; i < f.depth_scales.size(); ++i) {
                std::vector<double> a;
                for (std::size_t k = 0; k < n_seeds; ++k)
                    a.push_back(dacc[b][j][k][i] / 100.0);
                const ex::MeanSd m = ex::mean_sd(a);
                best = std::max(best, 100.0 * m.mean);
                worst = std::min(worst, 100.0 * m.mean);
                row.push_back(ex::format_mean_sd(m, 1, true));
            }
            row.push_back(ex::format("%.1f", best - worst));
            dtable.add(row);
            for (std::size_t k = 0; k < n_seeds; ++k) {
                const auto& v = dacc[b][j][k];
                spread[b][k][j] =
                    *std::max_element(v.begin(), v.end()) - *std::min_element(v.begin(), v.end());
            }
        }
    }
    dtable.print();
    return spread;
}

void draw_figure(const fs::path& out, const std::string& title, const Flags& f,
                 const std::vector<Run>& cnn, const DepthAcc& dacc,
                 const std::vector<std::vector<std::vector<double>>>& spread, std::size_t n_seeds) {
    const auto of = [&](int b, auto value) {
        return per_seed(cnn, 0, b, n_seeds, f.scales.size(), value);
    };
    const auto acc = [](const Run& r) { return 100.0 * r.test.accuracy; };
    const auto conv2 = [](const Run& r) { return r.stds[1]; };
    const auto logits = [](const Run& r) { return r.stds[4]; };
    tg::viz::Figure fig(2, 3, 1680, 1040);
    fig.suptitle = title;
    auto& p0 =
        ex::titled_panel(fig, 0, 0, "Test accuracy after training", "init scale s", "accuracy (%)");
    auto& p1 = ex::titled_panel(fig, 0, 1, "Std after conv2 block, at init", "init scale s",
                                "std of activations");
    auto& p2 =
        ex::titled_panel(fig, 0, 2, "Std of the logits, at init", "init scale s", "std of logits");
    // One legend for the three panels (same colours), where no curve is: the top left of
    // the conv2 panel. In the others it would hide the accuracy's peak or the logits' rise.
    for (auto* p : {&p0, &p1, &p2}) {
        ex::log_x(*p, f.scales);
        p->legend = p == &p1 ? "top left" : "";
    }
    p1.logy = p2.logy = true;
    ex::add_spread(p0, f.scales, of(0, acc), "with BN", ex::kWithBn);
    ex::add_spread(p0, f.scales, of(1, acc), "without BN", ex::kWithoutBn);
    ex::add_spread(p1, f.scales, of(0, conv2), "with BN", ex::kWithBn);
    ex::add_spread(p1, f.scales, of(1, conv2), "without BN", ex::kWithoutBn);
    ex::add_spread(p2, f.scales, of(0, logits), "with BN", ex::kWithBn);
    ex::add_spread(p2, f.scales, of(1, logits), "without BN", ex::kWithoutBn);
    const char* depth_colours[] = {ex::kThird, ex::kFourth, ex::kSixth, ex::kFifth};
    for (int b = 0; b < 2; ++b) {
        auto& p = ex::titled_panel(
            fig, 1, static_cast<std::size_t>(b),
            b == 0 ? "MLPs with BatchNorm1d in every hidden layer" : "MLPs without BN",
            "init scale s", "test accuracy (%)");
        for (std::size_t j = 0; j < f.depths.size(); ++j)
            ex::add_spread(p, f.depth_scales, dacc[b][j], ex::format("%zu layers", f.depths[j]),
                           depth_colours[j % 4]);
        ex::log_x(p, f.depth_scales);
        p.set_yrange(0, 100);
        // Where no curve is: low on the right with BN (the 16-layer curve starts low at
        // s = 0.5 in a --quick run), high on the left without.
        p.legend = b == 0 ? "bottom right" : "top left";
    }
    std::vector<double> xd;
    for (const std::size_t d : f.depths)
        xd.push_back(static_cast<double>(d));
    auto& ps = ex::titled_panel(fig, 1, 2, "Sensitivity: best − worst accuracy over s",
                                "Linear layers (depth)", "accuracy points");
    ex::add_spread(ps, xd, spread[0], "with BN", ex::kWithBn);
    ex::add_spread(ps, xd, spread[1], "without BN", ex::kWithoutBn);
    ex::log_x(ps, xd, 2);
    ps.legend = "center right";
    ex::seeds_note_in_title(fig);  // legends short enough to sit beside the curves
    ex::save_figure(fig, out / "ch310_init_scale.png");
}

}  // namespace

int main(int argc, char** argv) {
    ex::Cli cli("ch310_init_scale",
                "Experiment 3, \"BN reduces sensitivity to initialisation\": weights scaled at "
                "init by 0.1 to 10, with and without BatchNorm; activation std per layer after "
                "init and test accuracy after a fixed budget, over several seeds.");
    ex::CommonFlags& common = cli.add_common({.seeds = 3});
    Flags f;
    add_flags(cli, f);
    if (const auto exit_code = cli.parse(argc, argv)) return *exit_code;

    try {
        const fs::path out = cli.prepare();
        apply_mode(cli, common, f);
        const ex::Data data = ex::load_data(common, 1000, 500);
        f.sgd.batch_size = ex::cap_batch_size("ch310_init_scale", "--batch-size", f.sgd.batch_size,
                                              data.train->size(), "training images");
        f.sgd.steps = f.epochs * ((data.train->size() + f.sgd.batch_size - 1) / f.sgd.batch_size);
        const auto seeds = common.seed_list();
        std::printf(
            "%s: %zu training, %zu test images\n%zu steps of %zu per run (SGD lr %g, "
            "momentum %g)\n%zu scales x 2 models x %zu seeds\n\n",
            data.name.c_str(), data.train->size(), data.test->size(), f.sgd.steps, f.sgd.batch_size,
            f.sgd.lr, f.sgd.momentum, f.scales.size(), seeds.size());
        // One fixed batch of 64 training images for the activation statistics.
        const tg::Tensor probe =
            ex::make_loader(data, data.train, 64, false).epoch(0).begin()->images;

        const std::vector<Run> cnn = sweep({0}, f.scales, seeds, probe, data, f.sgd);
        write_cnn_csv(out, cnn, f.scales, seeds);
        print_cnn_tables(cnn, f.scales, seeds.size(), f.sgd.steps);
        // The second part: MLPs of each depth, with and without BatchNorm1d after every hidden
        // Linear, at each of depth_scales.
        const std::vector<Run> mlps = sweep(f.depths, f.depth_scales, seeds, probe, data, f.sgd);
        write_depth_csv(out, mlps, f.depth_scales, seeds);
        const DepthAcc dacc = depth_accuracy(mlps, f, seeds.size());
        const auto spread = print_depth_table(dacc, f, seeds.size(), f.sgd.steps);
        draw_figure(out,
                    ex::format("Weights scaled by s at init, with and without BatchNorm: %s, "
                               "%zu steps of %zu, SGD lr %g, momentum %g, %zu seeds",
                               data.name.c_str(), f.sgd.steps, f.sgd.batch_size, f.sgd.lr,
                               f.sgd.momentum, seeds.size()),
                    f, cnn, dacc, spread, seeds.size());
    } catch (const std::exception& e) {
        std::cerr << "ch310_init_scale: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
