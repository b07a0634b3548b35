// ch310_finetune — experiment 7 of the chapter's claims: "frozen BN is the right choice when
// fine-tuning on a small dataset".
//
// The chapter's CNN with BatchNorm is trained on the digits 0–4 (the pretrained model), then
// fine-tuned on a small set of 5–9 (default 100 images) at each batch size of
// --finetune-batches (default 2 and 20: the chapter's worry is the small batch) three ways,
// each from the same pretrained weights on the same batches:
//   frozen        tg::nn::freeze_batchnorm(model): every BatchNorm in eval mode (normalising
//                 with the running statistics of 0–4, never updating them), γ and β fixed;
//   recalibrated  tg::nn::update_bn(model, new data) first (the running statistics recomputed
//                 from one pass over the fine-tuning set), then frozen as above;
//   full          BatchNorm trained as usual: batch statistics, running statistics updated,
//                 γ and β learned.
// Afterwards the test digits 5–9 (what was learned) and 0–4 (what was known) are scored in
// eval mode. The classifier keeps its 10 outputs, so nothing stops fine-tuning on 5–9 from
// overwriting 0–4: the second number shows how much each way forgets.
// --pretrain DATASET (mnist, fashion-mnist or a directory, as --dataset names one) pretrains on
// all of that dataset's training images instead (Fashion-MNIST: 60,000 of ten classes) and
// fine-tunes on the first --finetune-size training images of --dataset, all its classes: the
// chapter's setting, a broad pretraining set and a small new one. Every image is normalised
// with the pretraining set's pixel mean and std (as a pretrained model's inputs are); "old"
// is then the first 2,000 test images of the pretraining set, "new" --dataset's test set.
//
// Output (in --out, default out/ch310): ch310_finetune.png (accuracy on 5–9 and on 0–4 during
// fine-tuning at the largest and the smallest batch; on 5–9 after it against the batch size),
// ch310_finetune.csv (per run: batch, mode 0 = frozen, 1 = recalibrated, 2 = full; seed,
// accuracy on 0–4 after pretraining, on 5–9 and 0–4 after fine-tuning, whether BN's running
// statistics moved), ch310_finetune_curve.csv (every evaluation).
//
//     ./build/release/examples/ch310_finetune
//     ./build/release/examples/ch310_finetune --finetune-size 30 --finetune-batches 2,10 --seeds 5
//     ./build/release/examples/ch310_finetune --pretrain fashion-mnist --out out/finetune_fashion
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>

#include "common/cli.hpp"
#include "common/experiment.hpp"
#include "tapegrad/nn/batchnorm_utils.hpp"

namespace fs = std::filesystem;
namespace ex = tg::examples;

namespace {

using DatasetPtr = std::shared_ptr<const tg::data::Dataset>;
const char* const kModes[3] = {"frozen", "recalibrated", "full"};
const char* const kColours[3] = {ex::kWithBn, ex::kThird, ex::kWithoutBn};
constexpr std::size_t kOldTest = 2000;  // --pretrain DATASET: its test images scored as "old"

struct Settings {
    std::size_t pretrain_epochs = 2, finetune_size = 100, finetune_epochs = 20, batch_size = 64,
                evals = 4;
    std::vector<std::size_t> batches = {2, 20};
    double pretrain_lr = 0.05, finetune_lr = 0.01, momentum = 0.9;
    std::string pretrain = "0-4";  // or a dataset to pretrain on all of (--pretrain)
};

// The old data to pretrain on (digits 0-4, or a whole dataset), a few new images to fine-tune
// on (5-9, or --dataset's first), the test images of both, and their names: short for the
// table ("0-4", "fashion"), long for the figure ("mnist (bundled) 0-4", "fashion-mnist").
struct Sets {
    ex::Data data;  // its test set: the new images
    DatasetPtr old_train, new_train, old_test, new_test;
    std::string old_label = "0-4", new_label = "5-9", old_name, new_name;
};

// One fine-tuning run.
struct Run {
    std::size_t batch = 0, mode = 0;
    std::uint64_t seed = 0;
    double pre_old = 0, pre_new = 0, acc_new = 0, acc_old = 0;
    bool stats_moved = false;
    std::vector<double> steps, curve_new, curve_old;  // per evaluation; accuracy fractions
};

void add_flags(ex::Cli& cli, Settings& s) {
    cli.option("--pretrain", s.pretrain,
               "what to pretrain on: 0-4 (--dataset's classes 0-4; fine-tune on its 5-9), or "
               "all of a dataset named as for --dataset (fine-tune on --dataset, all classes)");
    cli.option("--pretrain-epochs", s.pretrain_epochs, "passes over the pretraining images",
               ex::between(1, 1000));
    cli.option("--pretrain-lr", s.pretrain_lr, "SGD learning rate for pretraining",
               ex::greater_than(0, 1e6));
    cli.option("--finetune-size", s.finetune_size,
               "training images of 5-9 (or --dataset) to fine-tune on", ex::between(2, 60000));
    cli.option("--finetune-epochs", s.finetune_epochs, "passes over them", ex::between(1, 1000));
    cli.option("--finetune-lr", s.finetune_lr, "SGD learning rate for fine-tuning",
               ex::greater_than(0, 1e6));
    cli.option("--batch-size", s.batch_size, "examples per pretraining step",
               ex::between(2, 60000));
    cli.list("--finetune-batches", s.batches,
             "examples per fine-tuning step, one set of runs each, comma-separated",
             ex::between(2, 60000));
    cli.option("--evals", s.evals, "score the test digits this many times per fine-tuning run",
               ex::between(1, 1000));
    cli.option("--momentum", s.momentum, "SGD momentum", ex::between(0, 0.999));
    cli.full_help(
        "the longer sweep: batches 2, 4, 8, 20 and 50, scored 10 times per run (minutes)");
    cli.quick_help(
        "a few-second run for the tests: 1 epoch of pretraining on 0-4 of the first "
        "1,000 training images, 40 images of 5-9 in batches of 2 and 20, 4 epochs, scored 4 "
        "times, 500 test images");
    cli.outputs(
        "ch310_finetune.png (test accuracy on 5-9 and 0-4 during fine-tuning, on 5-9 after it "
        "against the batch size), ch310_finetune.csv (per run: batch, mode 0 = frozen, 1 = "
        "recalibrated, 2 = full; seed, accuracy on 0-4 after pretraining, on 5-9 and 0-4 after "
        "fine-tuning, bn_stats_changed 1/0), ch310_finetune_curve.csv (every evaluation).");
}

// --quick and --full replace the defaults of the flags not given on the command line.
void apply_mode(const ex::Cli& cli, Settings& s) {
    using Batches = std::vector<std::size_t>;
    cli.mode_value("--pretrain-epochs", s.pretrain_epochs, std::size_t{1}, s.pretrain_epochs);
    cli.mode_value("--finetune-size", s.finetune_size, std::size_t{40}, s.finetune_size);
    cli.mode_value("--finetune-epochs", s.finetune_epochs, std::size_t{4}, s.finetune_epochs);
    cli.mode_value("--finetune-batches", s.batches, Batches{2, 20}, Batches{2, 4, 8, 20, 50});
    cli.mode_value("--evals", s.evals, std::size_t{4}, std::size_t{10});
}

// The short name of a dataset for the table: "digits", "fashion", or "new"/"old".
std::string short_name(const std::string& which, const char* otherwise) {
    if (which == "mnist") return "digits";
    if (which == "fashion-mnist" || which == "fashion") return "fashion";
    return otherwise;
}

// --pretrain DATASET: all of it to pretrain on, the first --finetune-size of --dataset to
// fine-tune on; every image normalised with the pretraining set's statistics.
Sets make_transfer_sets(const ex::CommonFlags& common, const Settings& s) {
    ex::CommonFlags pre_flags = common;
    pre_flags.dataset = s.pretrain;
    const ex::Data pre = ex::load_data(pre_flags, 1000, 500);
    const ex::Data fine = ex::load_data(common, 1000, 500);
    if (pre.name == fine.name)
        throw std::invalid_argument("--pretrain " + s.pretrain + " is --dataset (" + fine.name +
                                    "): fine-tuning needs another dataset, or --pretrain 0-4");
    if (pre.train->num_classes() != fine.train->num_classes())
        throw std::invalid_argument(
            "--pretrain " + s.pretrain + " has " + std::to_string(pre.train->num_classes()) +
            " classes but --dataset has " + std::to_string(fine.train->num_classes()) +
            ": the classifier keeps its outputs, so both need the same number");
    if (s.finetune_size > fine.train->size())
        throw std::invalid_argument("--finetune-size " + std::to_string(s.finetune_size) +
                                    " but --dataset has " + std::to_string(fine.train->size()) +
                                    " training images");
    const auto keep = [](tg::data::Dataset d) {
        return std::make_shared<const tg::data::Dataset>(std::move(d));
    };
    Sets sets{pre,
              pre.train,
              keep(fine.train->slice(0, s.finetune_size)),
              keep(pre.test->slice(0, std::min(pre.test->size(), kOldTest))),
              fine.test,
              short_name(s.pretrain, "old"),
              short_name(common.dataset, "new"),
              pre.name,
              fine.name};
    sets.data.test = sets.new_test;
    return sets;
}

// The default: --dataset's classes 0-4 to pretrain on, a few of its 5-9 to fine-tune on.
Sets make_split_sets(const ex::CommonFlags& common, const Settings& s) {
    const ex::Data all = ex::load_data(common, 1000, 500);
    const auto old_digit = [](int y) { return y <= 4; };
    const auto new_digit = [](int y) { return y >= 5; };
    const auto keep = [](tg::data::Dataset d) {
        return std::make_shared<const tg::data::Dataset>(std::move(d));
    };
    const tg::data::Dataset new_train_all = ex::filter_labels(*all.train, new_digit, "5-9");
    if (s.finetune_size > new_train_all.size())
        throw std::invalid_argument("--finetune-size " + std::to_string(s.finetune_size) +
                                    " but there are " + std::to_string(new_train_all.size()) +
                                    " training images of 5-9");
    Sets sets{all,
              keep(ex::filter_labels(*all.train, old_digit, "0-4")),
              keep(new_train_all.slice(0, s.finetune_size)),
              keep(ex::filter_labels(*all.test, old_digit, "0-4")),
              keep(ex::filter_labels(*all.test, new_digit, "5-9")),
              "0-4",
              "5-9",
              all.name + " 0-4",
              all.name + " 5-9"};
    // One normalisation for all (the full training set's pixel statistics); fine-tuning runs
    // score the new digits as their "test set".
    sets.data.test = sets.new_test;
    return sets;
}

Sets make_sets(const ex::CommonFlags& common, Settings& s) {
    Sets sets = s.pretrain == "0-4" ? make_split_sets(common, s) : make_transfer_sets(common, s);
    s.batch_size = ex::cap_batch_size("ch310_finetune", "--batch-size", s.batch_size,
                                      sets.old_train->size(), "pretraining images");
    for (std::size_t& b : s.batches)
        b = ex::cap_batch_size("ch310_finetune", "--finetune-batches", b, s.finetune_size,
                               "fine-tuning images (--finetune-size)");
    return sets;
}

// Every running statistic of every BatchNorm of `model`, one after another.
std::vector<double> running_stats(const tg::nn::Module& model) {
    std::vector<double> v;
    for (const auto& [name, b] : model.named_buffers())
        if (name.ends_with("running_mean") || name.ends_with("running_var"))
            v.insert(v.end(), b.value().begin(), b.value().end());
    return v;
}

std::size_t steps_per_epoch(std::size_t n, std::size_t batch) {
    return (n + batch - 1) / batch;
}

// A fine-tuning run's steps, and the steps between its evaluations.
std::size_t finetune_steps(const Settings& s, std::size_t batch) {
    return s.finetune_epochs * steps_per_epoch(s.finetune_size, batch);
}
std::size_t eval_every(const Settings& s, std::size_t batch) {
    return (finetune_steps(s, batch) + s.evals - 1) / s.evals;
}

// A copy of `pretrained` fine-tuned on the new digits one way (`mode`) with batches of `batch`.
Run finetune(const Sets& sets, const Settings& s, tg::nn::Sequential& pretrained,
             std::uint64_t seed, std::size_t batch, std::size_t mode, ex::SweepProgress& progress) {
    Run run;
    run.batch = batch;
    run.mode = mode;
    run.seed = seed;
    // Same architecture, the pretrained values loaded.
    tg::nn::Sequential model = ex::make_cnn({.norm = ex::Norm::batch}, seed);
    model.load_state_dict(pretrained.state_dict());
    const std::vector<double> stats_before = running_stats(model);
    if (mode == 1)  // running statistics from one pass over the fine-tuning images (batches as
                    // in fine-tuning, file order), then frozen
        tg::nn::update_bn(model, ex::make_loader(sets.data, sets.new_train, batch, false).epoch(0));
    if (mode != 2) tg::nn::freeze_batchnorm(model);
    const ex::TrainResult r = ex::train(
        model, sets.data, sets.new_train,
        {.lr = s.finetune_lr,
         .momentum = s.momentum,
         .batch_size = batch,
         .steps = finetune_steps(s, batch),
         .seed = seed + 1000,  // fine-tuning batch order, the same for each way
         .eval_every = eval_every(s, batch),
         .on_eval =
             [&](std::size_t) {
                 run.curve_old.push_back(ex::evaluate(model, sets.data, sets.old_test).accuracy);
             }},
        progress.on_step());
    for (std::size_t k = 0; k < r.evals.size(); ++k) {
        run.steps.push_back(static_cast<double>(r.eval_step[k]));
        run.curve_new.push_back(r.evals[k].accuracy);
    }
    run.acc_new = ex::evaluate(model, sets.data, sets.new_test).accuracy;
    run.acc_old = ex::evaluate(model, sets.data, sets.old_test).accuracy;
    run.stats_moved = running_stats(model) != stats_before;
    return run;
}

// Per seed: pretrain once, then fine-tune it at every batch size, three ways each.
std::vector<Run> run_all(const Sets& sets, const Settings& s,
                         const std::vector<std::uint64_t>& seeds) {
    std::vector<Run> runs;
    ex::SweepProgress progress(seeds.size() * (1 + 3 * s.batches.size()));
    std::size_t index = 0;
    for (const std::uint64_t seed : seeds) {
        const auto seed_ull = static_cast<unsigned long long>(seed);
        progress.start(index++,
                       ex::format("pretrain %s seed %llu", sets.old_label.c_str(), seed_ull));
        tg::nn::Sequential pretrained = ex::make_cnn({.norm = ex::Norm::batch}, seed);
        ex::train(
            pretrained, sets.data, sets.old_train,
            {.lr = s.pretrain_lr,
             .momentum = s.momentum,
             .batch_size = s.batch_size,
             .steps = s.pretrain_epochs * steps_per_epoch(sets.old_train->size(), s.batch_size),
             .seed = seed},
            progress.on_step());
        const double pre_old = ex::evaluate(pretrained, sets.data, sets.old_test).accuracy;
        const double pre_new = ex::evaluate(pretrained, sets.data, sets.new_test).accuracy;
        progress.finish(ex::format("%s %.1f%%, %s %.1f%%", sets.old_label.c_str(), 100 * pre_old,
                                   sets.new_label.c_str(), 100 * pre_new));
        for (const std::size_t batch : s.batches)
            for (std::size_t m = 0; m < 3; ++m) {
                progress.start(index++,
                               ex::format("%s batch %zu seed %llu", kModes[m], batch, seed_ull));
                Run run = finetune(sets, s, pretrained, seed, batch, m, progress);
                run.pre_old = pre_old;
                run.pre_new = pre_new;
                progress.finish(ex::format("%s %.1f%%, %s %.1f%%", sets.new_label.c_str(),
                                           100 * run.acc_new, sets.old_label.c_str(),
                                           100 * run.acc_old));
                runs.push_back(std::move(run));
            }
    }
    progress.done();
    return runs;
}

void write_csvs(const fs::path& out, const Settings& s, const std::vector<Run>& runs) {
    std::vector<double> batch, mode, seed, pre_old, pre_new, acc_new, acc_old, moved;
    std::vector<double> e_batch, e_mode, e_seed, e_step, e_epoch, e_new, e_old;
    for (const Run& r : runs) {
        batch.push_back(static_cast<double>(r.batch));
        mode.push_back(static_cast<double>(r.mode));
        seed.push_back(static_cast<double>(r.seed));
        pre_old.push_back(r.pre_old);
        pre_new.push_back(r.pre_new);
        acc_new.push_back(r.acc_new);
        acc_old.push_back(r.acc_old);
        moved.push_back(r.stats_moved ? 1 : 0);
        const double per_epoch = static_cast<double>(steps_per_epoch(s.finetune_size, r.batch));
        for (std::size_t k = 0; k < r.steps.size(); ++k) {
            e_batch.push_back(static_cast<double>(r.batch));
            e_mode.push_back(static_cast<double>(r.mode));
            e_seed.push_back(static_cast<double>(r.seed));
            e_step.push_back(r.steps[k]);
            e_epoch.push_back(r.steps[k] / per_epoch);
            e_new.push_back(r.curve_new[k]);
            e_old.push_back(r.curve_old[k]);
        }
    }
    tg::viz::write_csv(out / "ch310_finetune.csv", {{"batch", batch},
                                                    {"mode", mode},
                                                    {"seed", seed},
                                                    {"pretrain_acc_old", pre_old},
                                                    {"pretrain_acc_new", pre_new},
                                                    {"acc_new", acc_new},
                                                    {"acc_old", acc_old},
                                                    {"bn_stats_changed", moved}});
    tg::viz::write_csv(out / "ch310_finetune_curve.csv", {{"batch", e_batch},
                                                          {"mode", e_mode},
                                                          {"seed", e_seed},
                                                          {"step", e_step},
                                                          {"epoch", e_epoch},
                                                          {"acc_new", e_new},
                                                          {"acc_old", e_old}});
}

void print_settings(const Sets& sets, const Settings& s, std::size_t seeds) {
    std::printf(
        "pretraining on %zu images of %s\n(%zu epochs of %zu, lr %g)\n"
        "fine-tuning on %zu images of %s\n(%zu epochs, batches of %zu to %zu, lr %g), "
        "momentum %g\ntest: %zu images of %s, %zu of %s;\n%zu batch sizes x 3 ways x %zu "
        "seeds\n\n",
        sets.old_train->size(), sets.old_name.c_str(), s.pretrain_epochs, s.batch_size,
        s.pretrain_lr, s.finetune_size, sets.new_name.c_str(), s.finetune_epochs, s.batches.front(),
        s.batches.back(), s.finetune_lr, s.momentum, sets.old_test->size(), sets.old_label.c_str(),
        sets.new_test->size(), sets.new_label.c_str(), s.batches.size(), seeds);
}

void print_table(const Sets& sets, const Settings& s, const std::vector<std::uint64_t>& seeds,
                 const std::vector<Run>& runs) {
    ex::Table table({"batch", "BN while fine-tuning", sets.new_label + " test %",
                     sets.old_label + " test %", "stats moved"});
    std::vector<double> pre;
    for (const Run& r : runs)
        if (r.batch == s.batches.front() && r.mode == 0) pre.push_back(r.pre_old);
    table.add(
        {"", "(pretrained, before)", "-", ex::format_mean_sd(ex::mean_sd(pre), 2, true), "-"});
    for (const std::size_t batch : s.batches)
        for (std::size_t m = 0; m < 3; ++m) {
            std::vector<double> a_new, a_old;
            std::size_t moved = 0;
            for (const Run& r : runs) {
                if (r.batch != batch || r.mode != m) continue;
                a_new.push_back(r.acc_new);
                a_old.push_back(r.acc_old);
                moved += r.stats_moved;
            }
            table.add({m == 0 ? std::to_string(batch) : "", kModes[m],
                       ex::format_mean_sd(ex::mean_sd(a_new), 2, true),
                       ex::format_mean_sd(ex::mean_sd(a_old), 2, true),
                       ex::format("%zu/%zu", moved, a_new.size())});
        }
    std::printf(
        "\nAfter fine-tuning on %zu images of %s for %zu epochs,\neval mode, mean ± sd over "
        "%s\n\n",
        s.finetune_size, sets.new_label.c_str(), s.finetune_epochs,
        ex::count_of(seeds.size(), "seed").c_str());
    table.print();
}

// The curves of one mode at one batch size, [seed][evaluation], in percent; x in epochs.
std::vector<std::vector<double>> curves(const std::vector<Run>& runs, std::size_t batch,
                                        std::size_t mode, bool old_digits, const Settings& s,
                                        std::vector<double>& x) {
    const std::size_t every = eval_every(s, batch);
    const std::size_t n = (finetune_steps(s, batch) + every - 1) / every;
    std::vector<std::vector<double>> c;
    x.clear();
    for (std::size_t k = 1; k <= n; ++k)
        x.push_back(static_cast<double>(std::min(k * every, finetune_steps(s, batch))) /
                    static_cast<double>(steps_per_epoch(s.finetune_size, batch)));
    for (const Run& r : runs) {
        if (r.batch != batch || r.mode != mode) continue;
        c.emplace_back();
        for (std::size_t k = 0; k < r.steps.size(); ++k)
            c.back().push_back(100 * (old_digits ? r.curve_old[k] : r.curve_new[k]));
        c.back().resize(n, std::nan(""));  // a diverged run stops early
    }
    return c;
}

void draw(const fs::path& out, const std::string& title, const Sets& sets, const Settings& s,
          const std::vector<Run>& runs) {
    tg::viz::Figure fig(2, 2, 1400, 1080);
    fig.suptitle = title;
    const std::size_t big = *std::max_element(s.batches.begin(), s.batches.end());
    const std::size_t small = *std::min_element(s.batches.begin(), s.batches.end());
    const char* new_name = sets.new_name.c_str();
    auto& new_big = ex::titled_panel(fig, 0, 0, ex::format("New: %s, batch %zu", new_name, big),
                                     "fine-tuning epochs", "test accuracy (%)");
    auto& old_big = ex::titled_panel(
        fig, 0, 1, ex::format("Old: %s (forgetting), batch %zu", sets.old_name.c_str(), big),
        "fine-tuning epochs", "test accuracy (%)");
    auto& by_batch =
        ex::titled_panel(fig, 1, 0, ex::format("New: %s after fine-tuning, by batch", new_name),
                         "fine-tuning batch size", "test accuracy (%)");
    auto& new_small = ex::titled_panel(fig, 1, 1, ex::format("New: %s, batch %zu", new_name, small),
                                       "fine-tuning epochs", "test accuracy (%)");
    std::vector<double> x, xb(s.batches.begin(), s.batches.end());
    for (std::size_t m = 0; m < 3; ++m) {
        auto c = curves(runs, big, m, false, s, x);
        ex::add_spread(new_big, x, c, kModes[m], kColours[m]);
        c = curves(runs, big, m, true, s, x);
        ex::add_spread(old_big, x, c, kModes[m], kColours[m]);
        c = curves(runs, small, m, false, s, x);
        ex::add_spread(new_small, x, c, kModes[m], kColours[m]);
        std::vector<std::vector<double>> after;  // [seed][batch]
        for (std::size_t i = 0; i < s.batches.size(); ++i) {
            std::size_t k = 0;
            for (const Run& r : runs) {
                if (r.batch != s.batches[i] || r.mode != m) continue;
                if (after.size() <= k) after.emplace_back(s.batches.size(), std::nan(""));
                after[k++][i] = 100 * r.acc_new;
            }
        }
        ex::add_spread(by_batch, xb, after, kModes[m], kColours[m]);
    }
    ex::log_x(by_batch, xb, 2);
    new_big.legend = "bottom right";
    new_big.legend_room = true;  // its own room below the curves
    old_big.legend = new_small.legend = by_batch.legend = "";
    ex::save_figure(fig, out / "ch310_finetune.png");
}

}  // namespace

int main(int argc, char** argv) {
    ex::Cli cli("ch310_finetune",
                "Experiment 7, \"frozen BN is the right choice when fine-tuning on a small "
                "dataset\": pretrain on digits 0-4 (or all of --pretrain), fine-tune on a few 5-9 "
                "(or --dataset) at several batch sizes with BN frozen, recalibrated (update_bn) "
                "or fully trained, over several seeds.");
    ex::CommonFlags& common = cli.add_common({.seeds = 3});
    Settings s;
    add_flags(cli, s);
    if (const auto exit_code = cli.parse(argc, argv)) return *exit_code;

    try {
        apply_mode(cli, s);
        const Sets sets = make_sets(common, s);  // first: a wrong --pretrain leaves no --out
        const fs::path out = cli.prepare();
        const auto seeds = common.seed_list();
        print_settings(sets, s, seeds.size());
        const std::vector<Run> runs = run_all(sets, s, seeds);
        write_csvs(out, s, runs);
        print_table(sets, s, seeds, runs);
        draw(out,
             ex::format("Fine-tuning with BatchNorm frozen, recalibrated or trained: pretrained "
                        "on %s, %zu images of %s, lr %g, %zu seeds",
                        sets.old_name.c_str(), s.finetune_size, sets.new_name.c_str(),
                        s.finetune_lr, seeds.size()),
             sets, s, runs);
    } catch (const std::exception& e) {
        std::cerr << "ch310_finetune: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
