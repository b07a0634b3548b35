#include "lr_sweep.hpp"

#include <algorithm>
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

std::vector<std::vector<SweepPoint>> summarise_lr_sweep(std::size_t variants,
                                                        const std::vector<double>& lrs,
                                                        const std::vector<SweepRun>& runs) {
    std::vector<std::vector<SweepPoint>> points(variants, std::vector<SweepPoint>(lrs.size()));
    for (std::size_t v = 0; v < variants; ++v) {
        for (std::size_t i = 0; i < lrs.size(); ++i) {
            SweepPoint& p = points[v][i];
            std::vector<double> a, l;
            for (const SweepRun& r : runs) {
                if (r.variant != v || r.lr != lrs[i]) continue;
                a.push_back(r.test.accuracy);
                l.push_back(r.final_loss);
                p.failed += r.failed;
                p.acc_per_seed.push_back(100.0 * r.test.accuracy);
                p.loss_per_seed.push_back(r.final_loss);
            }
            p.acc = mean_sd(a);
            p.loss = mean_sd(l);
            p.runs = a.size();
        }
    }
    return points;
}

SweepBest best_of(const std::vector<double>& lrs, const std::vector<SweepPoint>& points) {
    SweepBest best{.lr = lrs.front()};
    for (std::size_t i = 0; i < lrs.size(); ++i) {
        if (points[i].acc.mean > best.acc) best.acc = points[i].acc.mean, best.lr = lrs[i];
        if (points[i].failed == 0) best.largest_ok = std::max(best.largest_ok, lrs[i]);
    }
    return best;
}

std::string largest_ok_text(const SweepBest& best) {
    return best.largest_ok > 0 ? format("%g", best.largest_ok) : "none";
}

std::vector<tg::viz::CsvColumn> sweep_run_columns(const std::vector<SweepRun>& runs) {
    std::vector<tg::viz::CsvColumn> c = {
        {"variant", {}},    {"lr", {}},       {"seed", {}},   {"steps", {}},     {"first_loss", {}},
        {"final_loss", {}}, {"diverged", {}}, {"failed", {}}, {"test_loss", {}}, {"test_acc", {}}};
    for (const SweepRun& r : runs) {
        const double values[] = {static_cast<double>(r.variant),
                                 r.lr,
                                 static_cast<double>(r.seed),
                                 static_cast<double>(r.steps),
                                 r.first_loss,
                                 r.final_loss,
                                 r.diverged ? 1.0 : 0.0,
                                 r.failed ? 1.0 : 0.0,
                                 r.test.loss,
                                 r.test.accuracy};
        for (std::size_t k = 0; k < c.size(); ++k)
            c[k].values.push_back(values[k]);
    }
    return c;
}

namespace {

// The per-seed curves of a sweep for add_spread: per_seed[seed][lr].
std::vector<std::vector<double>> per_seed(const std::vector<SweepPoint>& points,
                                          std::vector<double> SweepPoint::*values) {
    std::vector<std::vector<double>> out;
    for (std::size_t i = 0; i < points.size(); ++i) {
        const std::vector<double>& v = points[i].*values;
        if (out.size() < v.size()) out.resize(v.size(), std::vector<double>(points.size()));
        for (std::size_t k = 0; k < v.size(); ++k)
            out[k][i] = v[k];
    }
    return out;
}

}  // namespace

void report_lr_sweep(const fs::path& out, const std::string& stem, const std::string& title,
                     const std::vector<Variant>& variants, const std::vector<double>& lrs,
                     const std::vector<std::uint64_t>& seeds, const std::vector<SweepRun>& runs) {
    tg::viz::write_csv(out / (stem + ".csv"), sweep_run_columns(runs));

    // Per (variant, lr): mean and sd over the seeds, one summary row and table cell each.
    const auto points = summarise_lr_sweep(variants.size(), lrs, runs);
    std::vector<double> s_variant, s_lr, s_acc_mean, s_acc_sd, s_loss_mean, s_loss_sd, s_failed,
        s_runs;
    std::vector<std::string> header = {"lr"};
    for (const Variant& v : variants) {
        header.push_back(v.name + ": test %");
        header.push_back("failed");
    }
    Table table(header);
    for (std::size_t i = 0; i < lrs.size(); ++i) {
        std::vector<std::string> row = {format("%g", lrs[i])};
        for (std::size_t v = 0; v < variants.size(); ++v) {
            const SweepPoint& p = points[v][i];
            s_variant.push_back(static_cast<double>(v));
            s_lr.push_back(lrs[i]);
            s_acc_mean.push_back(p.acc.mean);
            s_acc_sd.push_back(p.acc.sd);
            s_loss_mean.push_back(p.loss.mean);
            s_loss_sd.push_back(p.loss.sd);
            s_failed.push_back(static_cast<double>(p.failed));
            s_runs.push_back(static_cast<double>(p.runs));
            row.push_back(format_mean_sd(p.acc, 2, true));
            row.push_back(format("%zu/%zu", p.failed, p.runs));
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
        const SweepBest best = best_of(lrs, points[v]);
        std::printf("  %-14s best lr %g (%.2f%%); no seed failed up to lr %s\n",
                    variants[v].name.c_str(), best.lr, 100.0 * best.acc,
                    largest_ok_text(best).c_str());
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
        add_spread(left, lrs, per_seed(points[v], &SweepPoint::acc_per_seed), variants[v].name,
                   variants[v].colour);
        add_spread(right, lrs, per_seed(points[v], &SweepPoint::loss_per_seed), variants[v].name,
                   variants[v].colour);
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

void report_lr_sweep_by_depth(const fs::path& out, const std::string& stem,
                              const std::string& title, const std::string& caption,
                              const std::vector<std::size_t>& depths,
                              const std::vector<std::vector<Variant>>& variants,
                              const std::vector<double>& lrs,
                              const std::vector<std::vector<SweepRun>>& runs) {
    std::vector<tg::viz::CsvColumn> rows = sweep_run_columns({});
    rows.insert(rows.begin(), tg::viz::CsvColumn{"depth", {}});
    std::vector<double> s_depth, s_variant, s_lr, s_mean, s_sd, s_failed, s_runs;
    std::vector<std::string> header = {"depth", "model"};
    for (const double lr : lrs)
        header.push_back(format("lr %g", lr));
    Table table(header);
    std::vector<std::string> verdicts;
    // At least 1,400 pixels wide, so that the title fits above two panels.
    tg::viz::Figure fig(1, depths.size(), std::max<std::size_t>(560 * depths.size(), 1400), 540);
    fig.suptitle = title;
    for (std::size_t j = 0; j < depths.size(); ++j) {
        const double depth = static_cast<double>(depths[j]);
        const auto columns = sweep_run_columns(runs[j]);
        rows[0].values.insert(rows[0].values.end(), runs[j].size(), depth);
        for (std::size_t k = 0; k < columns.size(); ++k)
            rows[k + 1].values.insert(rows[k + 1].values.end(), columns[k].values.begin(),
                                      columns[k].values.end());
        const auto points = summarise_lr_sweep(variants[j].size(), lrs, runs[j]);
        auto& panel = titled_panel(fig, 0, j, format("%zu Linear layers", depths[j]),
                                   "learning rate", "test accuracy (%)");
        for (std::size_t v = 0; v < variants[j].size(); ++v) {
            std::vector<std::string> row = {std::to_string(depths[j]), v == 0 ? "BN" : "no BN"};
            for (std::size_t i = 0; i < lrs.size(); ++i) {
                const SweepPoint& p = points[v][i];
                s_depth.push_back(depth);
                s_variant.push_back(static_cast<double>(v));
                s_lr.push_back(lrs[i]);
                s_mean.push_back(p.acc.mean);
                s_sd.push_back(p.acc.sd);
                s_failed.push_back(static_cast<double>(p.failed));
                s_runs.push_back(static_cast<double>(p.runs));
                row.push_back(format("%.1f %zu/%zu", 100.0 * p.acc.mean, p.failed, p.runs));
            }
            table.add(row);
            const SweepBest best = best_of(lrs, points[v]);
            verdicts.push_back(
                format("  %2zu layers %-6s best lr %g (%.2f%%); no seed failed up "
                       "to lr %s",
                       depths[j], v == 0 ? "BN" : "no BN", best.lr, 100.0 * best.acc,
                       largest_ok_text(best).c_str()));
            add_spread(panel, lrs, per_seed(points[v], &SweepPoint::acc_per_seed),
                       variants[j][v].name, variants[j][v].colour);
        }
        log_x(panel, lrs);
        // Room below 0 for the legend: the failed runs lie along 10%.
        panel.set_yrange(-35, 100);
        panel.legend = "bottom left";
    }
    tg::viz::write_csv(out / (stem + ".csv"), rows);
    tg::viz::write_csv(out / (stem + "_summary.csv"), {{"depth", s_depth},
                                                       {"variant", s_variant},
                                                       {"lr", s_lr},
                                                       {"test_acc_mean", s_mean},
                                                       {"test_acc_sd", s_sd},
                                                       {"failed_runs", s_failed},
                                                       {"runs", s_runs}});
    std::printf("%s", caption.c_str());
    table.print();
    std::printf("\n");
    for (const auto& line : verdicts)
        std::printf("%s\n", line.c_str());
    save_figure(fig, out / (stem + ".png"));
}

}  // namespace tg::examples
