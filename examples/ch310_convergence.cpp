// ch310_convergence — experiment 2 of the chapter's claims: "BN speeds up convergence".
//
// The chapter's CNN with and without BatchNorm, each at its own best learning rate from
// experiment 1 (read from ch310_lr_sweep_summary.csv in --out when ch310_lr_sweep has run
// there; --lr-bn and --lr-plain set them by hand), trained for the same budget (SGD, momentum
// 0.9, constant lr, batch 64) from the same initial weights on the same batches, with the test
// set scored in eval mode every --eval-every steps. Reported: the steps (and seconds) until
// the test accuracy first reaches --target, over seeds.
//
// Output (in --out, default out/ch310): ch310_convergence.png (test accuracy against steps,
// whole and zoomed on the target), ch310_convergence.csv (every evaluation: variant 0 = with
// BN, 1 = without; lr, seed, step, test loss and accuracy), ch310_convergence_summary.csv (per
// run: steps to the target, NaN if never reached, and the final accuracy), and
// ch310_convergence_timing.csv (seconds: the only file that differs between runs of one seed).
//
//     ./build/release/examples/ch310_lr_sweep && ./build/release/examples/ch310_convergence
//     ./build/release/examples/ch310_convergence --lr-bn 0.3 --lr-plain 0.03 --target 0.98
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <sstream>

#include "common/cli.hpp"
#include "common/experiment.hpp"

namespace fs = std::filesystem;
namespace ex = tg::examples;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The learning rate with the highest mean test accuracy for each variant of
// ch310_lr_sweep_summary.csv (columns variant, lr, test_acc_mean, ...); empty if no file.
std::map<int, double> best_rates(const fs::path& summary) {
    std::ifstream in(summary);
    std::map<int, double> best_lr;
    if (!in) return best_lr;
    std::string line;
    std::getline(in, line);
    std::vector<std::string> header;
    {
        std::stringstream h(line);
        for (std::string col; std::getline(h, col, ',');)
            header.push_back(col);
    }
    const auto column = [&](const std::string& name) {
        for (std::size_t i = 0; i < header.size(); ++i)
            if (header[i] == name) return i;
        throw std::runtime_error(summary.string() + ": no column " + name);
    };
    const std::size_t c_variant = column("variant"), c_lr = column("lr"),
                      c_acc = column("test_acc_mean");
    std::map<int, double> best_acc;
    while (std::getline(in, line)) {
        std::vector<double> v;
        std::stringstream row(line);
        for (std::string cell; std::getline(row, cell, ',');)
            v.push_back(std::stod(cell));
        if (v.size() != header.size())
            throw std::runtime_error(summary.string() + ": a row has " + std::to_string(v.size()) +
                                     " cells, the header " + std::to_string(header.size()));
        const int variant = static_cast<int>(v[c_variant]);
        if (!best_acc.contains(variant) || v[c_acc] > best_acc[variant]) {
            best_acc[variant] = v[c_acc];
            best_lr[variant] = v[c_lr];
        }
    }
    return best_lr;
}

struct Flags {
    double target = 0.95, lr_bn = 0, lr_plain = 0, momentum = 0.9;
    std::size_t epochs = 3, batch_size = 64, eval_every = 25;
};

void add_flags(ex::Cli& cli, Flags& f) {
    cli.option("--target", f.target, "test accuracy to reach (a fraction)", ex::between(0.1, 1));
    cli.option("--lr-bn", f.lr_bn,
               "learning rate with BN; 0: the best of ch310_lr_sweep_summary.csv in --out, or 0.1 "
               "if it is not there",
               ex::between(0, 1e6));
    cli.option("--lr-plain", f.lr_plain,
               "learning rate without BN; 0: the best of ch310_lr_sweep_summary.csv in --out, or "
               "0.03 if it is not there",
               ex::between(0, 1e6));
    cli.option("--epochs", f.epochs, "passes over the training set per run", ex::between(1, 1000));
    cli.option("--batch-size", f.batch_size, "examples per SGD step", ex::between(2, 60000));
    cli.option("--eval-every", f.eval_every, "score the test set every this many steps",
               ex::between(1, 1000000));
    cli.option("--momentum", f.momentum, "SGD momentum", ex::between(0, 0.999));
    cli.quick_help(
        "a few-second run for the tests: 1 epoch of the first 1,000 training images, "
        "500 test images, target 0.5, scored every 4 steps");
    cli.outputs(
        "ch310_convergence.png (test accuracy against steps), ch310_convergence.csv "
        "(every evaluation: variant 0 = with BN, 1 = without; lr, seed, step, test loss "
        "and accuracy), ch310_convergence_summary.csv (per run: steps to the target, NaN "
        "if never reached; final accuracy), ch310_convergence_timing.csv (seconds).");
}

// The settings of the runs, once --quick, the data and ch310_lr_sweep's summary are known.
struct Setup {
    Flags f;
    double lr_of[2] = {0, 0};  // with BN, without
    std::size_t steps = 0;
    std::vector<double> eval_x;  // the steps after which the test set is scored
};

Setup settle(Flags f, bool quick, const ex::Data& data, const fs::path& out) {
    if (quick) {
        f.epochs = 1;
        f.target = std::min(f.target, 0.5);
        f.eval_every = 4;
    }
    f.batch_size = ex::cap_batch_size("ch310_convergence", "--batch-size", f.batch_size,
                                      data.train->size(), "training images");
    const auto best = best_rates(out / "ch310_lr_sweep_summary.csv");
    const bool from_sweep = best.contains(0) && best.contains(1);
    if (f.lr_bn == 0) f.lr_bn = from_sweep ? best.at(0) : 0.1;
    if (f.lr_plain == 0) f.lr_plain = from_sweep ? best.at(1) : 0.03;
    Setup s;
    s.f = f;
    s.lr_of[0] = f.lr_bn;
    s.lr_of[1] = f.lr_plain;
    s.steps = f.epochs * ((data.train->size() + f.batch_size - 1) / f.batch_size);
    for (std::size_t k = 0; k < (s.steps + f.eval_every - 1) / f.eval_every; ++k)
        s.eval_x.push_back(static_cast<double>(std::min((k + 1) * f.eval_every, s.steps)));
    std::printf(
        "%s: %zu training, %zu test images\n%zu steps of %zu per run, test scored "
        "every %zu steps\nlearning rates with BN %g, without BN %g %s\nSGD momentum %g, "
        "constant lr; target %.1f%%\n\n",
        data.name.c_str(), data.train->size(), data.test->size(), s.steps, f.batch_size,
        f.eval_every, f.lr_bn, f.lr_plain,
        from_sweep ? "(best of ch310_lr_sweep)" : "(flags/defaults)", f.momentum, 100.0 * f.target);
    return s;
}

// One trained network: its test scores, when it first reached the target, its time.
struct Run {
    std::size_t variant = 0;
    std::uint64_t seed = 0;
    ex::TrainResult result;
    double steps_to = kNaN, final_acc = kNaN, per_step = 0;
    std::vector<double> curve;  // test accuracy (%) at each of Setup::eval_x; NaN: diverged
};

const char* const kNames[2] = {"with BN", "without BN"};

std::vector<Run> train_all(const Setup& s, const ex::Data& data,
                           const std::vector<std::uint64_t>& seeds) {
    const ex::CnnOptions cnn[2] = {{.norm = ex::Norm::batch}, {.norm = ex::Norm::none}};
    std::vector<Run> runs;
    ex::SweepProgress progress(2 * seeds.size());
    for (std::size_t v = 0; v < 2; ++v) {
        for (const std::uint64_t seed : seeds) {
            progress.start(runs.size(), ex::format("%s seed %llu", kNames[v],
                                                   static_cast<unsigned long long>(seed)));
            tg::nn::Sequential model = ex::make_cnn(cnn[v], seed);
            Run r;
            r.variant = v;
            r.seed = seed;
            r.result = ex::train(model, data, data.train,
                                 {.lr = s.lr_of[v],
                                  .momentum = s.f.momentum,
                                  .batch_size = s.f.batch_size,
                                  .steps = s.steps,
                                  .seed = seed,
                                  .eval_every = s.f.eval_every},
                                 progress.on_step());
            for (std::size_t k = 0; k < r.result.evals.size(); ++k) {
                r.curve.push_back(100.0 * r.result.evals[k].accuracy);
                if (std::isnan(r.steps_to) && r.result.evals[k].accuracy >= s.f.target)
                    r.steps_to = static_cast<double>(r.result.eval_step[k]);
            }
            // A diverged run stops early: the rest of its curve is a gap.
            r.curve.resize(s.eval_x.size(), kNaN);
            if (!r.result.evals.empty()) r.final_acc = r.result.evals.back().accuracy;
            r.per_step = r.result.seconds / static_cast<double>(r.result.step_loss.size());
            progress.finish(std::isnan(r.steps_to)
                                ? ex::format("target not reached, %.2f%%", 100.0 * r.final_acc)
                                : ex::format("target at step %.0f", r.steps_to));
            runs.push_back(std::move(r));
        }
    }
    progress.done();
    return runs;
}

// ch310_convergence.csv (every evaluation), _summary.csv (per run), _timing.csv (seconds).
void write_csvs(const fs::path& out, const Setup& s, const std::vector<Run>& runs) {
    std::vector<double> e_variant, e_lr, e_seed, e_step, e_loss, e_acc;
    std::vector<double> s_variant, s_lr, s_seed, s_steps_to, s_final;
    std::vector<double> t_seconds, t_per_step, t_to_target;
    for (const Run& r : runs) {
        const double v = static_cast<double>(r.variant), seed = static_cast<double>(r.seed);
        for (std::size_t k = 0; k < r.result.evals.size(); ++k) {
            e_variant.push_back(v);
            e_lr.push_back(s.lr_of[r.variant]);
            e_seed.push_back(seed);
            e_step.push_back(static_cast<double>(r.result.eval_step[k]));
            e_loss.push_back(r.result.evals[k].loss);
            e_acc.push_back(r.result.evals[k].accuracy);
        }
        s_variant.push_back(v);
        s_lr.push_back(s.lr_of[r.variant]);
        s_seed.push_back(seed);
        s_steps_to.push_back(r.steps_to);
        s_final.push_back(r.final_acc);
        t_seconds.push_back(r.result.seconds);
        t_per_step.push_back(r.per_step);
        t_to_target.push_back(r.steps_to * r.per_step);
    }
    tg::viz::write_csv(out / "ch310_convergence.csv", {{"variant", e_variant},
                                                       {"lr", e_lr},
                                                       {"seed", e_seed},
                                                       {"step", e_step},
                                                       {"test_loss", e_loss},
                                                       {"test_acc", e_acc}});
    tg::viz::write_csv(out / "ch310_convergence_summary.csv", {{"variant", s_variant},
                                                               {"lr", s_lr},
                                                               {"seed", s_seed},
                                                               {"steps_to_target", s_steps_to},
                                                               {"final_test_acc", s_final}});
    tg::viz::write_csv(out / "ch310_convergence_timing.csv", {{"variant", s_variant},
                                                              {"seed", s_seed},
                                                              {"train_seconds", t_seconds},
                                                              {"seconds_per_step", t_per_step},
                                                              {"seconds_to_target", t_to_target}});
}

// The table: per model, steps and seconds to the target over the seeds that reached it.
void print_table(const Setup& s, const std::vector<Run>& runs) {
    ex::Table table({"model", "lr", "steps to target", "reached", "seconds", "final test %"});
    for (std::size_t v = 0; v < 2; ++v) {
        std::vector<double> reached_steps, reached_seconds, finals;
        for (const Run& r : runs) {
            if (r.variant != v) continue;
            finals.push_back(r.final_acc);
            if (!std::isnan(r.steps_to)) {
                reached_steps.push_back(r.steps_to);
                reached_seconds.push_back(r.steps_to * r.per_step);
            }
        }
        table.add(
            {kNames[v], ex::format("%g", s.lr_of[v]),
             reached_steps.empty() ? "-" : ex::format_mean_sd(ex::mean_sd(reached_steps), 0),
             ex::format("%zu/%zu", reached_steps.size(), finals.size()),
             reached_seconds.empty() ? "-" : ex::format_mean_sd(ex::mean_sd(reached_seconds), 1),
             ex::format_mean_sd(ex::mean_sd(finals), 2, true)});
    }
    std::printf(
        "\nSteps until the test accuracy first reached %.1f%% (scored every %zu "
        "steps),\nmean ± sd over the seeds that reached it; seconds are this machine's "
        "(timings)\n\n",
        100.0 * s.f.target, s.f.eval_every);
    table.print();
}

void draw_figure(const fs::path& out, const Setup& s, const ex::Data& data,
                 const std::vector<Run>& runs, std::size_t n_seeds) {
    std::vector<std::vector<double>> acc[2];  // acc[v][seed][eval]
    for (const Run& r : runs)
        acc[r.variant].push_back(r.curve);
    const std::vector<double>& x = s.eval_x;
    const double target = 100.0 * s.f.target;
    tg::viz::Figure fig(1, 2, 1400, 540);
    fig.suptitle = ex::format(
        "Convergence with and without BatchNorm at each one's best learning rate (%g, %g): "
        "%s, batch %zu, %zu seeds",
        s.f.lr_bn, s.f.lr_plain, data.name.c_str(), s.f.batch_size, n_seeds);
    for (std::size_t col = 0; col < 2; ++col) {
        auto& p = fig.panel(0, col)
                      .set_title(col == 0 ? "Test accuracy (eval mode) during training"
                                          : "The same, near the target")
                      .set_xlabel("SGD steps")
                      .set_ylabel("test accuracy (%)");
        ex::add_spread(p, x, acc[0], ex::format("with BN, lr %g", s.f.lr_bn), ex::kWithBn);
        ex::add_spread(p, x, acc[1], ex::format("without BN, lr %g", s.f.lr_plain), ex::kWithoutBn);
        p.line({x.front(), x.back()}, {target, target}, ex::format("target %.1f%%", target),
               "#555555", /*dashed=*/true);
        // One legend, in the whole curve's panel: near the target, the rising curves pass
        // through the bottom right.
        p.legend = col == 0 ? "bottom right" : "";
        p.legend_room = col == 0;  // its own room below the curves (Panel::legend_room)
    }
    fig.panel(0, 1).set_yrange(target - 6.0, 100.0);
    ex::save_figure(fig, out / "ch310_convergence.png");
}

}  // namespace

int main(int argc, char** argv) {
    ex::Cli cli("ch310_convergence",
                "Experiment 2, \"BN speeds up convergence\": steps and seconds until the test "
                "accuracy reaches a target, with and without BatchNorm, each at its best learning "
                "rate, over several seeds.");
    ex::CommonFlags& common = cli.add_common({.seeds = 3});
    Flags flags;
    add_flags(cli, flags);
    if (const auto exit_code = cli.parse(argc, argv)) return *exit_code;

    try {
        const fs::path out = cli.prepare();
        const ex::Data data = ex::load_data(common, 1000, 500);
        const Setup setup = settle(flags, common.quick, data, out);
        const auto seeds = common.seed_list();
        const std::vector<Run> runs = train_all(setup, data, seeds);
        write_csvs(out, setup, runs);
        print_table(setup, runs);
        draw_figure(out, setup, data, runs, seeds.size());
    } catch (const std::exception& e) {
        std::cerr << "ch310_convergence: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
