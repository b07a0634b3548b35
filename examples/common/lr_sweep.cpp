#include "lr_sweep.hpp"

#include <cmath>
#include <cstdio>
#include <limits>

namespace tg::examples {

namespace fs = std::filesystem;

void add_sweep_flags(Cli& cli, SweepFlags& flags) {
    cli.list("--lrs", flags.lrs, "learning rates, comma-separated", greater_than(0, 1e6));
    cli.option("--epochs", flags.epochs, "passes over the training set per run", between(1, 1000));
    cli.option("--batch-size", flags.batch_size, "examples per SGD step", between(2, 60000));
    cli.option("--momentum", flags.momentum, "SGD momentum", between(0, 0.999));
}

std::vector<SweepRun> run_lr_sweep(const Data& data, const std::vector<Variant>& variants,
                                   const std::vector<double>& lrs,
                                   const std::vector<std::uint64_t>& seeds, TrainOptions base) {
    std::vector<SweepRun> runs;
    SweepProgress progress(variants.size() * lrs.size() * seeds.size());
    for (const double lr : lrs) {
        for (std::size_t v = 0; v < variants.size(); ++v) {
            for (const std::uint64_t seed : seeds) {
                progress.start(runs.size(),
                               format("%-8.8s lr %-6g seed %llu", variants[v].name.c_str(), lr,
                                      static_cast<unsigned long long>(seed)));
                tg::nn::Sequential model = variants[v].mlp ? make_mlp(*variants[v].mlp, seed)
                                                           : make_cnn(variants[v].cnn, seed);
                TrainOptions o = base;
                o.lr = lr;
                o.seed = seed;
                const TrainResult r = train(model, data, data.train, o,
                                            [&](std::size_t done, std::size_t steps, double loss) {
                                                progress.step(done, steps, loss);
                                            });
                SweepRun run{v,
                             lr,
                             seed,
                             r.step_loss.size(),
                             r.first_loss(),
                             r.final_loss(),
                             r.diverged,
                             r.failed(),
                             evaluate(model, data, data.test)};
                progress.finish(run.diverged
                                    ? "diverged (NaN loss)"
                                    : format("loss %.3f → %.3f, test %.2f%%", run.first_loss,
                                             run.final_loss, 100.0 * run.test.accuracy));
                runs.push_back(run);
            }
        }
    }
    progress.done();
    return runs;
}

void report_lr_sweep(const fs::path& out, const std::string& stem, const std::string& title,
                     const std::vector<Variant>& variants, const std::vector<double>& lrs,
                     const std::vector<std::uint64_t>& seeds, const std::vector<SweepRun>& runs) {
    // Per run.
    std::vector<double> c_variant, c_lr, c_seed, c_steps, c_first, c_final, c_div, c_failed,
        c_test_loss, c_test_acc;
    for (const SweepRun& r : runs) {
        c_variant.push_back(static_cast<double>(r.variant));
        c_lr.push_back(r.lr);
        c_seed.push_back(static_cast<double>(r.seed));
        c_steps.push_back(static_cast<double>(r.steps));
        c_first.push_back(r.first_loss);
        c_final.push_back(r.final_loss);
        c_div.push_back(r.diverged ? 1.0 : 0.0);
        c_failed.push_back(r.failed ? 1.0 : 0.0);
        c_test_loss.push_back(r.test.loss);
        c_test_acc.push_back(r.test.accuracy);
    }
    tg::viz::write_csv(out / (stem + ".csv"), {{"variant", c_variant},
                                               {"lr", c_lr},
                                               {"seed", c_seed},
                                               {"steps", c_steps},
                                               {"first_loss", c_first},
                                               {"final_loss", c_final},
                                               {"diverged", c_div},
                                               {"failed", c_failed},
                                               {"test_loss", c_test_loss},
                                               {"test_acc", c_test_acc}});

    // Per (variant, lr): mean and sd over the seeds.
    const auto select = [&](std::size_t v, double lr) {
        std::vector<const SweepRun*> sel;
        for (const SweepRun& r : runs)
            if (r.variant == v && r.lr == lr) sel.push_back(&r);
        return sel;
    };
    std::vector<double> s_variant, s_lr, s_acc_mean, s_acc_sd, s_loss_mean, s_loss_sd, s_failed,
        s_runs;
    std::vector<std::string> header = {"lr"};
    for (const Variant& v : variants) {
        header.push_back(v.name + ": test %");
        header.push_back("failed");
    }
    Table table(header);
    // acc[v][seed][lr], loss[v][seed][lr] for the figure.
    std::vector<std::vector<std::vector<double>>> acc(variants.size()), loss(variants.size());
    for (std::size_t v = 0; v < variants.size(); ++v) {
        acc[v].assign(seeds.size(), std::vector<double>(lrs.size()));
        loss[v].assign(seeds.size(), std::vector<double>(lrs.size()));
    }
    for (std::size_t i = 0; i < lrs.size(); ++i) {
        std::vector<std::string> row = {format("%g", lrs[i])};
        for (std::size_t v = 0; v < variants.size(); ++v) {
            std::vector<double> a, l;
            std::size_t failed = 0;
            const auto sel = select(v, lrs[i]);
            for (std::size_t k = 0; k < sel.size(); ++k) {
                a.push_back(sel[k]->test.accuracy);
                l.push_back(sel[k]->final_loss);
                failed += sel[k]->failed;
                acc[v][k][i] = 100.0 * sel[k]->test.accuracy;
                loss[v][k][i] = sel[k]->final_loss;
            }
            const MeanSd ma = mean_sd(a), ml = mean_sd(l);
            s_variant.push_back(static_cast<double>(v));
            s_lr.push_back(lrs[i]);
            s_acc_mean.push_back(ma.mean);
            s_acc_sd.push_back(ma.sd);
            s_loss_mean.push_back(ml.mean);
            s_loss_sd.push_back(ml.sd);
            s_failed.push_back(static_cast<double>(failed));
            s_runs.push_back(static_cast<double>(sel.size()));
            row.push_back(format_mean_sd(ma, 2, true));
            row.push_back(format("%zu/%zu", failed, sel.size()));
        }
        table.add(row);
    }
    tg::viz::write_csv(out / (stem + "_summary.csv"), {{"variant", s_variant},
                                                       {"lr", s_lr},
                                                       {"test_acc_mean", s_acc_mean},
                                                       {"test_acc_sd", s_acc_sd},
                                                       {"final_loss_mean", s_loss_mean},
                                                       {"final_loss_sd", s_loss_sd},
                                                       {"failed_runs", s_failed},
                                                       {"runs", s_runs}});

    std::printf(
        "\nTest accuracy (eval mode) after training, mean ± sd over %s; "
        "failed: runs\nwhose loss went NaN or ended above where it started\n\n",
        count_of(seeds.size(), "seed").c_str());
    table.print();
    std::printf("\n");
    for (std::size_t v = 0; v < variants.size(); ++v) {
        double best_lr = lrs.front(), best_acc = -1.0, largest_ok = 0.0;
        for (std::size_t i = 0; i < s_lr.size(); ++i) {
            if (s_variant[i] != static_cast<double>(v)) continue;
            if (s_acc_mean[i] > best_acc) best_acc = s_acc_mean[i], best_lr = s_lr[i];
            if (s_failed[i] == 0) largest_ok = std::max(largest_ok, s_lr[i]);
        }
        std::printf("  %-14s best lr %g (%.2f%%); no seed failed up to lr %s\n",
                    variants[v].name.c_str(), best_lr, 100.0 * best_acc,
                    largest_ok > 0 ? format("%g", largest_ok).c_str() : "none");
    }

    tg::viz::Figure fig(1, 2, 1400, 540);
    fig.suptitle = title;
    auto& left = fig.panel(0, 0)
                     .set_title("Test accuracy after training (eval mode)")
                     .set_xlabel("learning rate")
                     .set_ylabel("accuracy (%)");
    auto& right = fig.panel(0, 1)
                      .set_title("Training loss at the end (gaps: diverged to NaN)")
                      .set_xlabel("learning rate")
                      .set_ylabel("cross-entropy, mean of the last 10% of steps");
    for (std::size_t v = 0; v < variants.size(); ++v) {
        add_spread(left, lrs, acc[v], variants[v].name, variants[v].colour);
        add_spread(right, lrs, loss[v], variants[v].name, variants[v].colour);
    }
    // One legend, in the loss panel's empty top left, for both panels (same colours): in the
    // accuracy panel every corner has curves under it (the failed runs lie along the bottom).
    left.legend = "";
    right.logy = true;
    right.legend = "top left";
    log_x(left, lrs);
    log_x(right, lrs);
    save_figure(fig, out / (stem + ".png"));
}

}  // namespace tg::examples
