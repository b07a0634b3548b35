// ch310_finetune — experiment 7 of the chapter's claims: "frozen BN is the right choice when
// fine-tuning on a small dataset".
//
// The chapter's CNN with BatchNorm is trained on the digits 0–4 (the pretrained model), then
// fine-tuned on a small set of 5–9 (default 100 images) three ways, each from the same
// pretrained weights on the same batches:
//   frozen        tg::nn::freeze_batchnorm(model): every BatchNorm in eval mode (normalising
//                 with the running statistics of 0–4, never updating them), γ and β fixed;
//   recalibrated  tg::nn::update_bn(model, new data) first (the running statistics recomputed
//                 from one pass over the fine-tuning set), then frozen as above;
//   full          BatchNorm trained as usual: batch statistics, running statistics updated,
//                 γ and β learned.
// Afterwards the test digits 5–9 (what was learned) and 0–4 (what was known) are scored in
// eval mode. The classifier keeps its 10 outputs, so nothing stops fine-tuning on 5–9 from
// overwriting 0–4: the second number shows how much each way forgets.
//
// Output (in --out, default out/ch310): ch310_finetune.png (accuracy on 5–9 and on 0–4 during
// fine-tuning), ch310_finetune.csv (per run: mode 0 = frozen, 1 = recalibrated, 2 = full; seed,
// accuracy on 0–4 after pretraining, on 5–9 and 0–4 after fine-tuning, whether BN's running
// statistics moved), ch310_finetune_curve.csv (every evaluation).
//
//     ./build/release/examples/ch310_finetune
//     ./build/release/examples/ch310_finetune --finetune-size 30 --seeds 5
#include <cmath>
#include <cstdio>
#include <iostream>

#include "common/cli.hpp"
#include "common/experiment.hpp"
#include "tapegrad/nn/batchnorm_utils.hpp"

namespace fs = std::filesystem;
namespace ex = tg::examples;

namespace {

// Every running statistic of every BatchNorm of `model`, one after another.
std::vector<double> running_stats(const tg::nn::Module& model) {
    std::vector<double> v;
    for (const auto& [name, b] : model.named_buffers())
        if (name.ends_with("running_mean") || name.ends_with("running_var"))
            v.insert(v.end(), b.value().begin(), b.value().end());
    return v;
}

}  // namespace

int main(int argc, char** argv) {
    ex::Cli cli("ch310_finetune",
                "Experiment 7, \"frozen BN is the right choice when fine-tuning on a small "
                "dataset\": pretrain on digits 0-4, fine-tune on a few 5-9 with BN frozen, "
                "recalibrated (update_bn) or fully trained, over several seeds.");
    ex::CommonFlags& common = cli.add_common({.seeds = 3});
    std::size_t pretrain_epochs = 2, finetune_size = 100, finetune_epochs = 20, batch_size = 64,
                finetune_batch = 20, eval_every = 10;
    double pretrain_lr = 0.05, finetune_lr = 0.01, momentum = 0.9;
    cli.option("--pretrain-epochs", pretrain_epochs, "passes over the training digits 0-4",
               ex::between(1, 1000));
    cli.option("--pretrain-lr", pretrain_lr, "SGD learning rate for pretraining",
               ex::greater_than(0, 1e6));
    cli.option("--finetune-size", finetune_size, "training images of 5-9 to fine-tune on",
               ex::between(2, 60000));
    cli.option("--finetune-epochs", finetune_epochs, "passes over them", ex::between(1, 1000));
    cli.option("--finetune-lr", finetune_lr, "SGD learning rate for fine-tuning",
               ex::greater_than(0, 1e6));
    cli.option("--batch-size", batch_size, "examples per pretraining step", ex::between(2, 60000));
    cli.option("--finetune-batch", finetune_batch, "examples per fine-tuning step",
               ex::between(2, 60000));
    cli.option("--eval-every", eval_every,
               "score the test digits every this many fine-tuning steps", ex::between(1, 1000000));
    cli.option("--momentum", momentum, "SGD momentum", ex::between(0, 0.999));
    cli.quick_help(
        "a few-second run for the tests: 1 epoch of pretraining on 0-4 of the first "
        "1,000 training images, 40 images of 5-9, 4 epochs, 500 test images");
    cli.outputs(
        "ch310_finetune.png (test accuracy on 5-9 and 0-4 during fine-tuning), "
        "ch310_finetune.csv (per run: mode 0 = frozen, 1 = recalibrated, 2 = full; seed, "
        "accuracy on 0-4 after pretraining, on 5-9 and 0-4 after fine-tuning, "
        "bn_stats_changed 1/0), ch310_finetune_curve.csv (every evaluation).");
    if (const auto exit_code = cli.parse(argc, argv)) return *exit_code;

    try {
        const fs::path out = cli.prepare();
        if (common.quick) {
            pretrain_epochs = 1;
            finetune_size = std::min<std::size_t>(finetune_size, 40);
            finetune_epochs = std::min<std::size_t>(finetune_epochs, 4);
            eval_every = 2;
        }
        const ex::Data all = ex::load_data(common, 1000, 500);
        const auto old_digit = [](int y) { return y <= 4; };
        const auto new_digit = [](int y) { return y >= 5; };
        using DatasetPtr = std::shared_ptr<const tg::data::Dataset>;
        const DatasetPtr old_train = std::make_shared<const tg::data::Dataset>(
            ex::filter_labels(*all.train, old_digit, "0-4"));
        const tg::data::Dataset new_train_all = ex::filter_labels(*all.train, new_digit, "5-9");
        if (finetune_size > new_train_all.size())
            throw std::invalid_argument("--finetune-size " + std::to_string(finetune_size) +
                                        " but there are " + std::to_string(new_train_all.size()) +
                                        " training images of 5-9");
        const DatasetPtr new_train =
            std::make_shared<const tg::data::Dataset>(new_train_all.slice(0, finetune_size));
        const DatasetPtr old_test = std::make_shared<const tg::data::Dataset>(
            ex::filter_labels(*all.test, old_digit, "0-4"));
        const DatasetPtr new_test = std::make_shared<const tg::data::Dataset>(
            ex::filter_labels(*all.test, new_digit, "5-9"));
        // One normalisation for all (the full training set's pixel statistics); fine-tuning
        // runs score the new digits as their "test set".
        ex::Data data = all;
        data.test = new_test;
        batch_size = ex::cap_batch_size("ch310_finetune", "--batch-size", batch_size,
                                        old_train->size(), "training images of 0-4");
        finetune_batch = ex::cap_batch_size("ch310_finetune", "--finetune-batch", finetune_batch,
                                            finetune_size, "fine-tuning images (--finetune-size)");
        const std::size_t pre_steps =
            pretrain_epochs * ((old_train->size() + batch_size - 1) / batch_size);
        const std::size_t ft_steps =
            finetune_epochs * ((finetune_size + finetune_batch - 1) / finetune_batch);
        const auto seeds = common.seed_list();
        std::printf(
            "%s: pretraining on %zu images of 0-4 (%zu steps of %zu, lr %g)\n"
            "fine-tuning on %zu images of 5-9 (%zu steps of %zu, lr %g), momentum %g\n"
            "test: %zu images of 0-4, %zu of 5-9; 3 ways x %zu seeds\n\n",
            data.name.c_str(), old_train->size(), pre_steps, batch_size, pretrain_lr, finetune_size,
            ft_steps, finetune_batch, finetune_lr, momentum, old_test->size(), new_test->size(),
            seeds.size());

        const std::vector<std::string> modes = {"frozen", "recalibrated", "full"};
        const char* colours[] = {ex::kWithBn, ex::kThird, ex::kWithoutBn};
        std::vector<double> c_mode, c_seed, c_pre_old, c_pre_new, c_new, c_old, c_changed;
        std::vector<double> e_mode, e_seed, e_step, e_new, e_old;
        std::vector<std::vector<std::vector<double>>> new_curve(3), old_curve(3);
        std::vector<double> eval_x;
        ex::SweepProgress progress(4 * seeds.size());
        std::size_t run = 0;
        for (const std::uint64_t seed : seeds) {
            progress.start(
                run++, ex::format("pretrain 0-4 seed %llu", static_cast<unsigned long long>(seed)));
            tg::nn::Sequential pretrained = ex::make_cnn({.norm = ex::Norm::batch}, seed);
            ex::train(pretrained, data, old_train,
                      {.lr = pretrain_lr,
                       .momentum = momentum,
                       .batch_size = batch_size,
                       .steps = pre_steps,
                       .seed = seed},
                      progress.on_step());
            const double pre_old = ex::evaluate(pretrained, data, old_test).accuracy;
            const double pre_new = ex::evaluate(pretrained, data, new_test).accuracy;
            progress.finish(ex::format("0-4 %.1f%%, 5-9 %.1f%%", 100 * pre_old, 100 * pre_new));
            const std::vector<double> stats_before = running_stats(pretrained);

            for (std::size_t m = 0; m < modes.size(); ++m) {
                progress.start(run++, ex::format("%s seed %llu", modes[m].c_str(),
                                                 static_cast<unsigned long long>(seed)));
                // A copy of the pretrained network: same architecture, its values loaded.
                tg::nn::Sequential model = ex::make_cnn({.norm = ex::Norm::batch}, seed);
                model.load_state_dict(pretrained.state_dict());
                if (m == 1) {
                    // Running statistics from one pass over the fine-tuning images (batches
                    // as in fine-tuning, file order), then frozen.
                    tg::nn::update_bn(
                        model, ex::make_loader(data, new_train, finetune_batch, false).epoch(0));
                }
                if (m != 2) tg::nn::freeze_batchnorm(model);
                std::vector<double> curve_new, curve_old;
                const ex::TrainResult r = ex::train(
                    model, data, new_train,
                    {.lr = finetune_lr,
                     .momentum = momentum,
                     .batch_size = finetune_batch,
                     .steps = ft_steps,
                     .seed = seed + 1000,  // fine-tuning batch order, the same for each way
                     .eval_every = eval_every,
                     .on_eval =
                         [&](std::size_t) {
                             curve_old.push_back(100.0 *
                                                 ex::evaluate(model, data, old_test).accuracy);
                         }},
                    progress.on_step());
                for (std::size_t k = 0; k < r.evals.size(); ++k) {
                    curve_new.push_back(100.0 * r.evals[k].accuracy);
                    e_mode.push_back(static_cast<double>(m));
                    e_seed.push_back(static_cast<double>(seed));
                    e_step.push_back(static_cast<double>(r.eval_step[k]));
                    e_new.push_back(r.evals[k].accuracy);
                    e_old.push_back(curve_old[k] / 100.0);
                    if (run == 2) eval_x.push_back(static_cast<double>(r.eval_step[k]));
                }
                const std::size_t evals = (ft_steps + eval_every - 1) / eval_every;
                curve_new.resize(evals, std::nan(""));  // a diverged run stops early
                curve_old.resize(evals, std::nan(""));
                new_curve[m].push_back(curve_new);
                old_curve[m].push_back(curve_old);
                const double acc_new = ex::evaluate(model, data, new_test).accuracy;
                const double acc_old = ex::evaluate(model, data, old_test).accuracy;
                c_mode.push_back(static_cast<double>(m));
                c_seed.push_back(static_cast<double>(seed));
                c_pre_old.push_back(pre_old);
                c_pre_new.push_back(pre_new);
                c_new.push_back(acc_new);
                c_old.push_back(acc_old);
                c_changed.push_back(running_stats(model) != stats_before ? 1 : 0);
                progress.finish(ex::format("5-9 %.1f%%, 0-4 %.1f%%", 100 * acc_new, 100 * acc_old));
            }
        }
        progress.done();
        tg::viz::write_csv(out / "ch310_finetune.csv", {{"mode", c_mode},
                                                        {"seed", c_seed},
                                                        {"pretrain_acc_old", c_pre_old},
                                                        {"pretrain_acc_new", c_pre_new},
                                                        {"acc_new", c_new},
                                                        {"acc_old", c_old},
                                                        {"bn_stats_changed", c_changed}});
        tg::viz::write_csv(out / "ch310_finetune_curve.csv", {{"mode", e_mode},
                                                              {"seed", e_seed},
                                                              {"step", e_step},
                                                              {"acc_new", e_new},
                                                              {"acc_old", e_old}});

        ex::Table table({"BN while fine-tuning", "5-9 test %", "0-4 test %", "stats moved"});
        std::vector<double> pre;
        for (std::size_t i = 0; i < c_mode.size(); i += 3)
            pre.push_back(c_pre_old[i]);
        table.add(
            {"(pretrained, before)", "-", ex::format_mean_sd(ex::mean_sd(pre), 2, true), "-"});
        for (std::size_t m = 0; m < modes.size(); ++m) {
            std::vector<double> a_new, a_old;
            std::size_t changed = 0;
            for (std::size_t i = 0; i < c_mode.size(); ++i) {
                if (c_mode[i] != static_cast<double>(m)) continue;
                a_new.push_back(c_new[i]);
                a_old.push_back(c_old[i]);
                changed += c_changed[i] != 0;
            }
            table.add({modes[m], ex::format_mean_sd(ex::mean_sd(a_new), 2, true),
                       ex::format_mean_sd(ex::mean_sd(a_old), 2, true),
                       ex::format("%zu/%zu", changed, a_new.size())});
        }
        std::printf("\nAfter fine-tuning on %zu images of 5-9, eval mode, mean ± sd over %s\n\n",
                    finetune_size, ex::count_of(seeds.size(), "seed").c_str());
        table.print();

        tg::viz::Figure fig(1, 2, 1400, 540);
        fig.suptitle = ex::format(
            "Fine-tuning with BatchNorm frozen, recalibrated or trained: pretrained on 0-4, "
            "%zu images of 5-9, lr %g, batch %zu, %zu seeds",
            finetune_size, finetune_lr, finetune_batch, seeds.size());
        auto& left = fig.panel(0, 0)
                         .set_title("Test accuracy on the new digits 5-9")
                         .set_xlabel("fine-tuning steps")
                         .set_ylabel("accuracy (%)");
        auto& right = fig.panel(0, 1)
                          .set_title("Test accuracy on the old digits 0-4 (forgetting)")
                          .set_xlabel("fine-tuning steps")
                          .set_ylabel("accuracy (%)");
        for (std::size_t m = 0; m < modes.size(); ++m) {
            ex::add_spread(left, eval_x, new_curve[m], modes[m], colours[m]);
            ex::add_spread(right, eval_x, old_curve[m], modes[m], colours[m]);
        }
        left.legend = "bottom right";
        right.legend = "top right";
        ex::save_figure(fig, out / "ch310_finetune.png");
    } catch (const std::exception& e) {
        std::cerr << "ch310_finetune: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
