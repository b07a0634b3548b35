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
// Output (in --out, default out/ch310): ch310_small_batch.png (test accuracy against batch
// size per normalisation; BN's two modes), ch310_small_batch.csv (one row per run: norm 0 =
// BN, 1 = GN(2), 2 = GN(C), 3 = LN, 4 = none; batch, lr, seed, losses, diverged, test loss and
// accuracy in eval mode and in training mode).
//
//     ./build/release/examples/ch310_small_batch
//     ./build/release/examples/ch310_small_batch --batch-sizes 4,16,64 --base-lr 0.05
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <limits>

#include "common/cli.hpp"
#include "common/experiment.hpp"

namespace fs = std::filesystem;
namespace ex = tg::examples;

int main(int argc, char** argv) {
    ex::Cli cli("ch310_small_batch",
                "Experiment 6, \"BN breaks down below batch size ~16; use GroupNorm or "
                "LayerNorm\": BN, GroupNorm, LayerNorm and no normalisation at batch sizes 2 to "
                "128, the learning rate scaled with the batch size, over several seeds.");
    ex::CommonFlags& common = cli.add_common({.seeds = 2});
    std::vector<std::size_t> batch_sizes = {2, 4, 8, 16, 32, 128};
    std::size_t examples = 4000;
    double base_lr = 0.02, momentum = 0.9;
    const CLI::Option* batch_sizes_flag = cli.list(
        "--batch-sizes", batch_sizes, "batch sizes, comma-separated", ex::between(2, 60000));
    cli.option("--examples", examples,
               "training examples seen per run, whatever the batch size (8,000: one epoch of "
               "the bundled digits)",
               ex::between(1, 10000000));
    cli.option("--base-lr", base_lr, "learning rate at batch 32; at batch B it is base-lr·B/32",
               ex::greater_than(0, 1e6));
    cli.option("--momentum", momentum, "SGD momentum", ex::between(0, 0.999));
    cli.quick_help(
        "a few-second run for the tests: batch sizes 8 and 32 (unless --batch-sizes is given), "
        "512 examples per run, "
        "the first 1,000 training and 500 test images");
    cli.outputs(
        "ch310_small_batch.png (test accuracy against batch size), ch310_small_batch.csv "
        "(one row per run: norm 0 = BN, 1 = GN(2), 2 = GN(C), 3 = LN, 4 = none; batch, "
        "lr, seed, losses, diverged, test loss, test accuracy in eval mode and in training "
        "mode with test batches of B).");
    if (const auto exit_code = cli.parse(argc, argv)) return *exit_code;

    try {
        const fs::path out = cli.prepare();
        if (common.quick) {
            if (batch_sizes_flag->count() == 0) batch_sizes = {8, 32};  // unless given
            examples = std::min<std::size_t>(examples, 512);
        }
        const ex::Data data = ex::load_data(common, 1000, 500);
        for (std::size_t& B : batch_sizes) {
            B = ex::cap_batch_size("ch310_small_batch", "--batch-sizes", B, data.train->size(),
                                   "training images");
        }
        const auto seeds = common.seed_list();
        struct Config {
            std::string name;
            ex::CnnOptions cnn;
            const char* colour;
        };
        const std::vector<Config> norms = {
            {"BN", {.norm = ex::Norm::batch}, ex::kWithBn},
            {"GN(2)", {.norm = ex::Norm::group, .groups = 2}, ex::kThird},
            {"GN(C)", {.norm = ex::Norm::group, .groups = 0}, ex::kSixth},
            {"LN", {.norm = ex::Norm::layer}, ex::kFourth},
            {"none", {.norm = ex::Norm::none}, ex::kWithoutBn}};
        std::printf(
            "%s: %zu training, %zu test images\n%zu examples per run, lr = %g·B/32 "
            "(SGD, momentum %g)\n%zu batch sizes x %zu normalisations x %zu seeds\n\n",
            data.name.c_str(), data.train->size(), data.test->size(), examples, base_lr, momentum,
            batch_sizes.size(), norms.size(), seeds.size());

        std::vector<double> c_norm, c_batch, c_lr, c_seed, c_first, c_final, c_div, c_loss, c_acc,
            c_acc_train_mode;
        // acc[norm][seed][batch size]; BN's train-mode accuracy likewise.
        std::vector<std::vector<std::vector<double>>> acc(norms.size());
        for (auto& a : acc)
            a.assign(seeds.size(), std::vector<double>(batch_sizes.size()));
        auto bn_train_mode = acc[0];
        ex::SweepProgress progress(batch_sizes.size() * norms.size() * seeds.size());
        std::size_t run = 0;
        for (std::size_t i = 0; i < batch_sizes.size(); ++i) {
            const std::size_t B = batch_sizes[i];
            const double lr = base_lr * static_cast<double>(B) / 32.0;
            const std::size_t steps = std::max<std::size_t>(1, examples / B);
            for (std::size_t n = 0; n < norms.size(); ++n) {
                for (std::size_t k = 0; k < seeds.size(); ++k) {
                    progress.start(run++, ex::format("%s B %zu seed %llu", norms[n].name.c_str(), B,
                                                     static_cast<unsigned long long>(seeds[k])));
                    tg::nn::Sequential model = ex::make_cnn(norms[n].cnn, seeds[k]);
                    const ex::TrainResult r = ex::train(model, data, data.train,
                                                        {.lr = lr,
                                                         .momentum = momentum,
                                                         .batch_size = B,
                                                         .steps = steps,
                                                         .seed = seeds[k]},
                                                        progress.on_step());
                    const ex::Score test = ex::evaluate(model, data, data.test);
                    // For GroupNorm, LayerNorm and none training mode computes exactly what
                    // eval mode does (the tests check this): only BN's differs.
                    const double train_mode =
                        ex::evaluate_train_mode(model, data, data.test, B).accuracy;
                    c_norm.push_back(static_cast<double>(n));
                    c_batch.push_back(static_cast<double>(B));
                    c_lr.push_back(lr);
                    c_seed.push_back(static_cast<double>(seeds[k]));
                    c_first.push_back(r.first_loss());
                    c_final.push_back(r.final_loss());
                    c_div.push_back(r.diverged ? 1 : 0);
                    c_loss.push_back(test.loss);
                    c_acc.push_back(test.accuracy);
                    c_acc_train_mode.push_back(train_mode);
                    acc[n][k][i] = 100.0 * test.accuracy;
                    if (n == 0) bn_train_mode[k][i] = 100.0 * train_mode;
                    progress.finish(r.diverged ? "diverged (NaN loss)"
                                               : ex::format("test %.2f%%", 100.0 * test.accuracy));
                }
            }
        }
        progress.done();
        tg::viz::write_csv(out / "ch310_small_batch.csv",
                           {{"norm", c_norm},
                            {"batch", c_batch},
                            {"lr", c_lr},
                            {"seed", c_seed},
                            {"first_loss", c_first},
                            {"final_loss", c_final},
                            {"diverged", c_div},
                            {"test_loss", c_loss},
                            {"test_acc", c_acc},
                            {"test_acc_train_mode", c_acc_train_mode}});

        const auto column = [&](std::size_t n, std::size_t i, const std::vector<double>& v) {
            std::vector<double> sel;
            for (std::size_t r = 0; r < c_norm.size(); ++r)
                if (c_norm[r] == static_cast<double>(n) && c_batch[r] == batch_sizes[i])
                    sel.push_back(v[r]);
            return ex::mean_sd(sel);
        };
        std::vector<std::string> header = {"B"};
        for (const auto& n : norms)
            header.push_back(n.name);
        ex::Table table(header);
        ex::Table gap({"B", "lr", "BN eval mode %", "BN train mode %", "train − eval"});
        for (std::size_t i = 0; i < batch_sizes.size(); ++i) {
            std::vector<std::string> row = {std::to_string(batch_sizes[i])};
            for (std::size_t n = 0; n < norms.size(); ++n)
                row.push_back(ex::format_mean_sd(column(n, i, c_acc), 1, true));
            table.add(row);
            std::vector<double> d;
            for (std::size_t r = 0; r < c_norm.size(); ++r)
                if (c_norm[r] == 0 && c_batch[r] == batch_sizes[i])
                    d.push_back(c_acc_train_mode[r] - c_acc[r]);
            gap.add({std::to_string(batch_sizes[i]),
                     ex::format("%g", base_lr * static_cast<double>(batch_sizes[i]) / 32.0),
                     ex::format_mean_sd(column(0, i, c_acc), 1, true),
                     ex::format_mean_sd(column(0, i, c_acc_train_mode), 1, true),
                     ex::format_mean_sd(ex::mean_sd(d), 1, true)});
        }
        std::printf(
            "\nTest accuracy %% (eval mode) by batch size B, %zu examples per run,\n"
            "mean ± sd over %s\n\n",
            examples, ex::count_of(seeds.size(), "seed").c_str());
        table.print();
        std::printf(
            "\nBN scored in eval mode (running statistics) and in training mode\n"
            "(each test batch of B normalised with its own statistics, as in training)\n\n");
        gap.print();

        std::vector<double> x;
        for (const std::size_t B : batch_sizes)
            x.push_back(static_cast<double>(B));
        tg::viz::Figure fig(1, 2, 1400, 540);
        fig.suptitle = ex::format(
            "Normalisation at small batch sizes: %s, %zu examples per run, "
            "lr %g·B/32, SGD momentum %g, %zu seeds",
            data.name.c_str(), examples, base_lr, momentum, seeds.size());
        auto& left = fig.panel(0, 0)
                         .set_title("Test accuracy (eval mode)")
                         .set_xlabel("batch size B")
                         .set_ylabel("accuracy (%)");
        for (std::size_t n = 0; n < norms.size(); ++n)
            ex::add_spread(left, x, acc[n], norms[n].name, norms[n].colour);
        auto& right =
            fig.panel(0, 1)
                .set_title("BatchNorm: eval mode against training mode (batch statistics)")
                .set_xlabel("batch size B")
                .set_ylabel("test accuracy (%)");
        ex::add_spread(right, x, acc[0], "BN, eval mode", ex::kWithBn);
        ex::add_spread(right, x, bn_train_mode, "BN, training mode", ex::kFifth);
        ex::log_x(left, x, 2);
        ex::log_x(right, x, 2);
        left.legend = right.legend = "bottom left";
        // The right panel's curves span its whole height: room below them for the legend (a
        // quarter of the data's range).
        double lo = std::numeric_limits<double>::infinity(), hi = -lo;
        for (const auto* runs : {&acc[0], &bn_train_mode})
            for (const auto& seed_curve : *runs)
                for (const double y : seed_curve)
                    if (std::isfinite(y)) lo = std::min(lo, y), hi = std::max(hi, y);
        if (lo < hi) right.set_yrange(lo - 0.3 * (hi - lo), hi + 0.05 * (hi - lo));
        ex::save_figure(fig, out / "ch310_small_batch.png");
    } catch (const std::exception& e) {
        std::cerr << "ch310_small_batch: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
