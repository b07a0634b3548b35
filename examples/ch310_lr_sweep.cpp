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
//     ./build/release/examples/ch310_lr_sweep                  # 7 rates x 2 models x 3 seeds
//     ./build/release/examples/ch310_lr_sweep --lrs 0.1,1 --seeds 5
#include <algorithm>
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
    std::vector<std::size_t> depths = {4, 8, 16};
    std::vector<double> depth_lrs = {0.01, 0.03, 0.1, 0.3, 1};
    double depth_init = 2.5;
    cli.list("--depths", depths, "second part: Linear layers of each MLP, comma-separated",
             ex::between(2, 64));
    cli.list("--depth-lrs", depth_lrs, "second part: the MLPs' learning rates",
             ex::greater_than(0, 1e6));
    cli.option("--depth-init-scale", depth_init,
               "second part: the MLPs' weights times this at init", ex::greater_than(0, 1000));
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
    if (const auto exit_code = cli.parse(argc, argv)) return *exit_code;

    try {
        const fs::path out = cli.prepare();
        if (common.quick) {
            lrs = {0.01, 1.0};
            depths = {4, 16};
            depth_lrs = {0.01, 1.0};
        }
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

        // The second part: the MLPs, with and without BatchNorm1d, at each depth.
        std::vector<double> c_depth, c_variant, c_lr, c_seed, c_steps, c_first, c_final, c_div,
            c_failed, c_test_loss, c_test_acc;
        std::vector<double> s_depth, s_variant, s_lr, s_mean, s_sd, s_failed, s_runs;
        std::vector<std::string> header = {"depth", "model"};
        for (const double lr : depth_lrs)
            header.push_back(ex::format("lr %g", lr));
        ex::Table table(header);
        std::vector<std::string> verdicts;
        tg::viz::Figure fig(1, depths.size(), 560 * depths.size(), 540);
        fig.suptitle = ex::format(
            "Learning rate sweep by depth: MLPs with and without BatchNorm1d, weights %g x "
            "PyTorch's init, %s, %zu steps of %zu, %zu seeds",
            depth_init, data.name.c_str(), base.steps, batch_size, seeds.size());
        for (std::size_t j = 0; j < depths.size(); ++j) {
            const std::vector<std::size_t> hidden(depths[j] - 1, 100);
            const std::vector<ex::Variant> mlps = {
                {"with BN",
                 {},
                 ex::kWithBn,
                 ex::MlpOptions{
                     .norm = ex::Norm::batch, .hidden = hidden, .init_scale = depth_init}},
                {"without BN",
                 {},
                 ex::kWithoutBn,
                 ex::MlpOptions{
                     .norm = ex::Norm::none, .hidden = hidden, .init_scale = depth_init}}};
            std::printf("\nMLP with %zu Linear layers:\n", depths[j]);
            const auto mruns = ex::run_lr_sweep(data, mlps, depth_lrs, seeds, base);
            for (const ex::SweepRun& r : mruns) {
                c_depth.push_back(static_cast<double>(depths[j]));
                c_variant.push_back(static_cast<double>(r.variant));
                c_lr.push_back(r.lr);
                c_seed.push_back(static_cast<double>(r.seed));
                c_steps.push_back(static_cast<double>(r.steps));
                c_first.push_back(r.first_loss);
                c_final.push_back(r.final_loss);
                c_div.push_back(r.diverged ? 1 : 0);
                c_failed.push_back(r.failed ? 1 : 0);
                c_test_loss.push_back(r.test.loss);
                c_test_acc.push_back(r.test.accuracy);
            }
            auto& panel = ex::titled_panel(fig, 0, j, ex::format("%zu Linear layers", depths[j]),
                                           "learning rate", "test accuracy (%)");
            for (std::size_t v = 0; v < mlps.size(); ++v) {
                std::vector<std::string> row = {std::to_string(depths[j]), v == 0 ? "BN" : "no BN"};
                // acc[seed][lr] for the figure
                std::vector<std::vector<double>> acc(seeds.size(),
                                                     std::vector<double>(depth_lrs.size()));
                double best_lr = depth_lrs.front(), best = -1, largest_ok = 0;
                for (std::size_t i = 0; i < depth_lrs.size(); ++i) {
                    std::vector<double> a;
                    std::size_t failed = 0;
                    for (const ex::SweepRun& r : mruns)
                        if (r.variant == v && r.lr == depth_lrs[i]) {
                            acc[a.size()][i] = 100.0 * r.test.accuracy;
                            a.push_back(r.test.accuracy);
                            failed += r.failed;
                        }
                    const ex::MeanSd m = ex::mean_sd(a);
                    s_depth.push_back(static_cast<double>(depths[j]));
                    s_variant.push_back(static_cast<double>(v));
                    s_lr.push_back(depth_lrs[i]);
                    s_mean.push_back(m.mean);
                    s_sd.push_back(m.sd);
                    s_failed.push_back(static_cast<double>(failed));
                    s_runs.push_back(static_cast<double>(a.size()));
                    row.push_back(ex::format("%.1f %zu/%zu", 100.0 * m.mean, failed, a.size()));
                    if (m.mean > best) best = m.mean, best_lr = depth_lrs[i];
                    if (failed == 0) largest_ok = std::max(largest_ok, depth_lrs[i]);
                }
                table.add(row);
                verdicts.push_back(
                    ex::format("  %2zu layers %-6s best lr %g (%.2f%%); no seed failed up to lr %s",
                               depths[j], v == 0 ? "BN" : "no BN", best_lr, 100.0 * best,
                               largest_ok > 0 ? ex::format("%g", largest_ok).c_str() : "none"));
                ex::add_spread(panel, depth_lrs, acc, mlps[v].name, mlps[v].colour);
            }
            ex::log_x(panel, depth_lrs);
            // Room below 0 for the legend: the failed runs lie along 10%.
            panel.set_yrange(-35, 100);
            panel.legend = "bottom left";
        }
        tg::viz::write_csv(out / "ch310_lr_sweep_depth.csv", {{"depth", c_depth},
                                                              {"variant", c_variant},
                                                              {"lr", c_lr},
                                                              {"seed", c_seed},
                                                              {"steps", c_steps},
                                                              {"first_loss", c_first},
                                                              {"final_loss", c_final},
                                                              {"diverged", c_div},
                                                              {"failed", c_failed},
                                                              {"test_loss", c_test_loss},
                                                              {"test_acc", c_test_acc}});
        tg::viz::write_csv(out / "ch310_lr_sweep_depth_summary.csv", {{"depth", s_depth},
                                                                      {"variant", s_variant},
                                                                      {"lr", s_lr},
                                                                      {"test_acc_mean", s_mean},
                                                                      {"test_acc_sd", s_sd},
                                                                      {"failed_runs", s_failed},
                                                                      {"runs", s_runs}});
        std::printf(
            "\nMLPs with BatchNorm1d after every hidden Linear or none, weights %g x PyTorch's\n"
            "init: test accuracy %% (eval mode), mean over %s, and failed runs\n\n",
            depth_init, ex::count_of(seeds.size(), "seed").c_str());
        table.print();
        std::printf("\n");
        for (const auto& line : verdicts)
            std::printf("%s\n", line.c_str());
        ex::save_figure(fig, out / "ch310_lr_sweep_depth.png");
    } catch (const std::exception& e) {
        std::cerr << "ch310_lr_sweep: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
