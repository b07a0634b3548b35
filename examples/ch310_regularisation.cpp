// ch310_regularisation — experiment 4 of the chapter's claims: BN "regularises mildly, often
// making Dropout unnecessary".
//
// The chapter's CNN four ways: neither BN nor Dropout, BN alone (after each convolution),
// Dropout alone (p = 0.5 after each hidden Linear's ReLU), both. Each trained on the first
// N training images for each N of --train-sizes, the same number of SGD steps for every N
// (SGD, momentum 0.9, constant lr, batch 64; the default 160 steps are 10 epochs of 1,000
// images, --full's 480 are 30), from the same initial weights on the same batches. A few times
// during training the training subset (at most its first 2,000 images) and the test set are scored
// in eval mode; the gap between them is how much the network overfits. A regulariser lowers the gap
// and, if it helps, raises the test accuracy. The sizes cross the regime boundary: a few hundred
// images overfit quickly and badly, 1,000 much less (the default: 250 and 1,000); --full adds
// 4,000 and the whole bundled set (8,000), which hardly overfits in the budget.
//
// Output (in --out, default out/ch310): ch310_regularisation.png (top: test accuracy and
// train − test gap during training at the middle size; bottom: gap and test accuracy at the
// end against the training-set size), ch310_regularisation.csv (per run at the end:
// train_size, bn 1/0, dropout p, seed, train and test loss and accuracy, gap),
// ch310_regularisation_curve.csv (per evaluation).
//
//     ./build/release/examples/ch310_regularisation
//     ./build/release/examples/ch310_regularisation --train-sizes 500,2000 --steps 800
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>

#include "common/cli.hpp"
#include "common/experiment.hpp"

namespace fs = std::filesystem;
namespace ex = tg::examples;

namespace {

constexpr std::size_t kTrainProbe = 2000;

struct Settings {
    std::vector<std::size_t> sizes = {250, 1000};
    std::size_t steps = 160, evals = 4;
    double dropout = 0.5;
    ex::TrainOptions sgd;  // lr 0.01, momentum 0.9, batch 64
};

struct Config {
    std::string name;
    bool bn;
    double p;
    const char* colour;
};

// One trained network: its scores (train subset, test set) at each evaluation.
struct Run {
    std::size_t size = 0, config = 0;
    std::uint64_t seed = 0;
    std::vector<std::size_t> steps;
    std::vector<ex::Score> train, test;
};

void add_flags(ex::Cli& cli, Settings& s) {
    cli.list("--train-sizes", s.sizes,
             "training images used (the first ones), one set of runs per size, comma-separated",
             ex::between(10, 1000000));
    cli.option("--steps", s.steps, "SGD steps per run, the same for every size",
               ex::between(1, 1000000));
    cli.option("--evals", s.evals, "score train and test sets this many times per run",
               ex::between(1, 1000));
    cli.option("--dropout", s.dropout, "Dropout probability p where Dropout is used",
               ex::between(0.01, 0.95));
    ex::add_sgd_flags(cli, s.sgd);
    cli.full_help(
        "the longer sweep: sizes 250, 1000, 4000 and 8000, 480 steps (30 epochs of 1,000 "
        "images), scored 6 times (minutes)");
    cli.quick_help(
        "a few-second run for the tests: 100 and 200 training images, 16 steps, scored "
        "twice, 500 test images");
    cli.outputs(
        "ch310_regularisation.png (test accuracy and train-test gap during training; gap and "
        "test accuracy against the training-set size), ch310_regularisation.csv (per run at the "
        "end: train_size, bn 1/0, dropout p, seed, step, train and test loss and accuracy, "
        "gap), ch310_regularisation_curve.csv (every evaluation: train_size, bn, dropout, "
        "seed, step, epoch, train and test accuracy).");
}

// --quick and --full replace the defaults of the flags not given on the command line.
void apply_mode(const ex::Cli& cli, Settings& s) {
    using Sizes = std::vector<std::size_t>;
    cli.mode_value("--train-sizes", s.sizes, Sizes{100, 200}, Sizes{250, 1000, 4000, 8000});
    cli.mode_value("--steps", s.steps, std::size_t{16}, std::size_t{480});
    cli.mode_value("--evals", s.evals, std::size_t{2}, std::size_t{6});
}

// Every configuration at every size and seed, trained for s.steps on the first `size` images.
std::vector<Run> run_all(const ex::Data& data, const Settings& s,
                         const std::vector<Config>& configs,
                         const std::vector<std::uint64_t>& seeds) {
    std::vector<Run> runs;
    const std::size_t eval_every = (s.steps + s.evals - 1) / s.evals;
    ex::SweepProgress progress(s.sizes.size() * configs.size() * seeds.size());
    for (const std::size_t size : s.sizes) {
        const auto subset = std::make_shared<const tg::data::Dataset>(data.train->slice(0, size));
        // Training accuracy is scored on the subset's first kTrainProbe images (all of a
        // subset up to that size): scoring all 8,000 at every evaluation would cost more than
        // the training.
        const auto probe = std::make_shared<const tg::data::Dataset>(
            data.train->slice(0, std::min(size, kTrainProbe)));
        const std::size_t batch_size = ex::cap_batch_size(
            "ch310_regularisation", "--batch-size", s.sgd.batch_size, size, "training images");
        for (std::size_t c = 0; c < configs.size(); ++c)
            for (const std::uint64_t seed : seeds) {
                progress.start(runs.size(), ex::format("%zu images, %s, seed %llu", size,
                                                       configs[c].name.c_str(),
                                                       static_cast<unsigned long long>(seed)));
                std::vector<ex::Score> train_scores;
                tg::nn::Sequential model =
                    ex::make_cnn({.norm = configs[c].bn ? ex::Norm::batch : ex::Norm::none,
                                  .dropout = configs[c].p},
                                 seed);
                const ex::TrainResult r =
                    ex::train(model, data, subset,
                              {.lr = s.sgd.lr,
                               .momentum = s.sgd.momentum,
                               .batch_size = batch_size,
                               .steps = s.steps,
                               .seed = seed,
                               .eval_every = eval_every,
                               .on_eval =
                                   [&](std::size_t) {
                                       train_scores.push_back(ex::evaluate(model, data, probe));
                                   }},
                              progress.on_step());
                Run run{size, c, seed, r.eval_step, train_scores, r.evals};
                const std::size_t evals = (s.steps + eval_every - 1) / eval_every;
                for (std::size_t k = run.steps.size(); k < evals; ++k) {  // diverged: NaN
                    run.steps.push_back(std::min(s.steps, (k + 1) * eval_every));
                    run.train.push_back({std::nan(""), std::nan("")});
                    run.test.push_back({std::nan(""), std::nan("")});
                }
                progress.finish(ex::format("train %.1f%% test %.1f%%",
                                           100 * run.train.back().accuracy,
                                           100 * run.test.back().accuracy));
                runs.push_back(std::move(run));
            }
    }
    progress.done();
    return runs;
}

// "250, 1000, 8000".
std::string join(const std::vector<std::size_t>& values) {
    std::string s;
    for (const std::size_t v : values)
        s += (s.empty() ? "" : ", ") + std::to_string(v);
    return s;
}

// Passes over `size` images after `step` steps of (at most) `batch_size`.
double epochs_at(std::size_t step, std::size_t size, std::size_t batch_size) {
    const std::size_t b = std::min(batch_size, size);
    return static_cast<double>(step) / static_cast<double>((size + b - 1) / b);
}

void write_csvs(const fs::path& out, const Settings& s, const std::vector<Config>& configs,
                const std::vector<Run>& runs) {
    std::vector<double> size, bn, p, seed, train_loss, train_acc, test_loss, test_acc, gap;
    std::vector<double> e_size, e_bn, e_p, e_seed, e_step, e_epoch, e_train, e_test;
    for (const Run& r : runs) {
        const Config& c = configs[r.config];
        size.push_back(static_cast<double>(r.size));
        bn.push_back(c.bn);
        p.push_back(c.p);
        seed.push_back(static_cast<double>(r.seed));
        train_loss.push_back(r.train.back().loss);
        train_acc.push_back(r.train.back().accuracy);
        test_loss.push_back(r.test.back().loss);
        test_acc.push_back(r.test.back().accuracy);
        gap.push_back(r.train.back().accuracy - r.test.back().accuracy);
        for (std::size_t k = 0; k < r.steps.size(); ++k) {
            e_size.push_back(static_cast<double>(r.size));
            e_bn.push_back(c.bn);
            e_p.push_back(c.p);
            e_seed.push_back(static_cast<double>(r.seed));
            e_step.push_back(static_cast<double>(r.steps[k]));
            e_epoch.push_back(epochs_at(r.steps[k], r.size, s.sgd.batch_size));
            e_train.push_back(r.train[k].accuracy);
            e_test.push_back(r.test[k].accuracy);
        }
    }
    tg::viz::write_csv(out / "ch310_regularisation.csv", {{"train_size", size},
                                                          {"bn", bn},
                                                          {"dropout", p},
                                                          {"seed", seed},
                                                          {"train_loss", train_loss},
                                                          {"train_acc", train_acc},
                                                          {"test_loss", test_loss},
                                                          {"test_acc", test_acc},
                                                          {"gap", gap}});
    tg::viz::write_csv(out / "ch310_regularisation_curve.csv", {{"train_size", e_size},
                                                                {"bn", e_bn},
                                                                {"dropout", e_p},
                                                                {"seed", e_seed},
                                                                {"step", e_step},
                                                                {"epoch", e_epoch},
                                                                {"train_acc", e_train},
                                                                {"test_acc", e_test}});
}

// The runs of one configuration at one size, in seed order.
std::vector<const Run*> runs_of(const std::vector<Run>& runs, std::size_t size, std::size_t c) {
    std::vector<const Run*> sel;
    for (const Run& r : runs)
        if (r.size == size && r.config == c) sel.push_back(&r);
    return sel;
}

void print_table(const Settings& s, const std::vector<Config>& configs,
                 const std::vector<std::uint64_t>& seeds, const std::vector<Run>& runs) {
    ex::Table table({"images", "model", "train %", "test %", "gap (points)", "test loss"});
    for (const std::size_t size : s.sizes)
        for (std::size_t c = 0; c < configs.size(); ++c) {
            std::vector<double> tr, te, gap, loss;
            for (const Run* r : runs_of(runs, size, c)) {
                tr.push_back(r->train.back().accuracy);
                te.push_back(r->test.back().accuracy);
                gap.push_back(tr.back() - te.back());
                loss.push_back(r->test.back().loss);
            }
            table.add({c == 0 ? std::to_string(size) : "", configs[c].name,
                       ex::format_mean_sd(ex::mean_sd(tr), 2, true),
                       ex::format_mean_sd(ex::mean_sd(te), 2, true),
                       ex::format_mean_sd(ex::mean_sd(gap), 2, true),
                       ex::format_mean_sd(ex::mean_sd(loss), 3)});
        }
    std::printf(
        "\nAfter %zu steps of %zu on each training subset, eval mode, mean ± sd over %s\n"
        "(gap = train − test)\n\n",
        s.steps, s.sgd.batch_size, ex::count_of(seeds.size(), "seed").c_str());
    table.print();
}

void draw(const fs::path& out, const std::string& title, const Settings& s,
          const std::vector<Config>& configs, const std::vector<Run>& runs) {
    tg::viz::Figure fig(2, 2, 1400, 1080);
    fig.suptitle = title;
    const std::size_t curve_size = s.sizes[s.sizes.size() / 2];
    auto& acc = ex::titled_panel(
        fig, 0, 0, ex::format("Test accuracy during training, %zu images", curve_size), "epoch",
        "accuracy (%)");
    auto& gap =
        ex::titled_panel(fig, 0, 1, ex::format("Train − test accuracy, %zu images", curve_size),
                         "epoch", "gap (percentage points)");
    auto& gap_n = ex::titled_panel(fig, 1, 0, "Gap at the end against the training-set size",
                                   "training images", "gap (percentage points)");
    auto& acc_n = ex::titled_panel(fig, 1, 1, "Test accuracy at the end against the size",
                                   "training images", "accuracy (%)");
    std::vector<double> x_sizes(s.sizes.begin(), s.sizes.end());
    for (std::size_t c = 0; c < configs.size(); ++c) {
        std::vector<std::vector<double>> test_curve, gap_curve;
        std::vector<double> x_epochs;
        for (const Run* r : runs_of(runs, curve_size, c)) {
            test_curve.emplace_back();
            gap_curve.emplace_back();
            x_epochs.clear();
            for (std::size_t k = 0; k < r->steps.size(); ++k) {
                x_epochs.push_back(epochs_at(r->steps[k], r->size, s.sgd.batch_size));
                test_curve.back().push_back(100 * r->test[k].accuracy);
                gap_curve.back().push_back(100 * (r->train[k].accuracy - r->test[k].accuracy));
            }
        }
        ex::add_spread(acc, x_epochs, test_curve, configs[c].name, configs[c].colour);
        ex::add_spread(gap, x_epochs, gap_curve, configs[c].name, configs[c].colour);
        // [seed][size]: the end of each run.
        std::vector<std::vector<double>> end_gap, end_acc;
        for (std::size_t i = 0; i < s.sizes.size(); ++i) {
            const auto sel = runs_of(runs, s.sizes[i], c);
            end_gap.resize(sel.size(), std::vector<double>(s.sizes.size()));
            end_acc.resize(sel.size(), std::vector<double>(s.sizes.size()));
            for (std::size_t k = 0; k < sel.size(); ++k) {
                end_gap[k][i] =
                    100 * (sel[k]->train.back().accuracy - sel[k]->test.back().accuracy);
                end_acc[k][i] = 100 * sel[k]->test.back().accuracy;
            }
        }
        ex::add_spread(gap_n, x_sizes, end_gap, configs[c].name, configs[c].colour);
        ex::add_spread(acc_n, x_sizes, end_acc, configs[c].name, configs[c].colour);
    }
    ex::log_x(gap_n, x_sizes);
    ex::log_x(acc_n, x_sizes);
    // One legend for the figure (same colours everywhere): the gaps fill the other corners.
    acc.legend = "bottom right";
    acc.legend_room = true;  // its own room below the curves
    gap.legend = gap_n.legend = acc_n.legend = "";
    ex::seeds_note_in_title(fig);  // a legend short enough for its panel
    ex::save_figure(fig, out / "ch310_regularisation.png");
}

}  // namespace

int main(int argc, char** argv) {
    ex::Cli cli("ch310_regularisation",
                "Experiment 4, \"BN regularises mildly, often making Dropout unnecessary\": BN "
                "alone, Dropout alone, both and neither, on training subsets from small enough "
                "to overfit to the whole set; train and test accuracy and their gap, over "
                "several seeds.");
    ex::CommonFlags& common = cli.add_common({.seeds = 3});
    Settings s;
    add_flags(cli, s);
    if (const auto exit_code = cli.parse(argc, argv)) return *exit_code;

    try {
        const fs::path out = cli.prepare();
        apply_mode(cli, s);
        const std::size_t largest = *std::max_element(s.sizes.begin(), s.sizes.end());
        const ex::Data data = ex::load_data(common, std::max<std::size_t>(largest, 1000), 500);
        if (largest > data.train->size())
            throw std::invalid_argument("--train-sizes " + std::to_string(largest) + " but " +
                                        data.train->name + " has " +
                                        std::to_string(data.train->size()) + " images");
        const std::vector<Config> configs = {{"neither", false, 0.0, ex::kWithoutBn},
                                             {"BN", true, 0.0, ex::kWithBn},
                                             {"Dropout", false, s.dropout, ex::kFifth},
                                             {"BN + Dropout", true, s.dropout, ex::kFourth}};
        const auto seeds = common.seed_list();
        std::printf(
            "%s: training subsets of %s images, %zu test images\n%zu steps of %zu per run "
            "(SGD lr %g, momentum %g), scored %zu times;\n4 models x %zu sizes x %zu seeds\n\n",
            data.name.c_str(), join(s.sizes).c_str(), data.test->size(), s.steps, s.sgd.batch_size,
            s.sgd.lr, s.sgd.momentum, s.evals, s.sizes.size(), seeds.size());
        const std::vector<Run> runs = run_all(data, s, configs, seeds);
        write_csvs(out, s, configs, runs);
        print_table(s, configs, seeds, runs);
        draw(out,
             ex::format("BN and Dropout as regularisers: %s, %zu steps of %zu, SGD lr %g, "
                        "momentum %g, Dropout p %g, %zu seeds",
                        data.name.c_str(), s.steps, s.sgd.batch_size, s.sgd.lr, s.sgd.momentum,
                        s.dropout, seeds.size()),
             s, configs, runs);
    } catch (const std::exception& e) {
        std::cerr << "ch310_regularisation: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
