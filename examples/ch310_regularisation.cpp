// ch310_regularisation — experiment 4 of the chapter's claims: BN "regularises mildly, often
// making Dropout unnecessary".
//
// The chapter's CNN four ways: neither BN nor Dropout, BN alone (after each convolution),
// Dropout alone (p = 0.5 after each hidden Linear's ReLU), both. Each trained on a training
// subset small enough to overfit (default 1,000 images, 30 epochs; SGD, momentum 0.9,
// constant lr, batch 64) from the same initial weights on the same batches. Every few epochs
// the training subset and the test set are scored in eval mode; the gap between them is how
// much the network overfits. A regulariser lowers the gap and, if it helps, raises the test
// accuracy.
//
// Output (in --out, default out/ch310): ch310_regularisation.png (test accuracy and train −
// test gap during training), ch310_regularisation.csv (per run at the end: bn 1/0, dropout p,
// seed, train and test loss and accuracy, gap), ch310_regularisation_curve.csv (per
// evaluation).
//
//     ./build/release/examples/ch310_regularisation
//     ./build/release/examples/ch310_regularisation --train-size 500 --epochs 80 --dropout 0.3
#include <cmath>
#include <cstdio>
#include <iostream>

#include "common/cli.hpp"
#include "common/experiment.hpp"

namespace fs = std::filesystem;
namespace ex = tg::examples;

int main(int argc, char** argv) {
    ex::Cli cli("ch310_regularisation",
                "Experiment 4, \"BN regularises mildly, often making Dropout unnecessary\": BN "
                "alone, Dropout alone, both and neither, on a training subset small enough to "
                "overfit; train and test accuracy and their gap, over several seeds.");
    ex::CommonFlags& common = cli.add_common({.seeds = 3});
    std::size_t train_size = 1000, epochs = 30, eval_epochs = 5;
    double dropout = 0.5;
    ex::TrainOptions sgd;  // lr 0.01, momentum 0.9, batch 64
    cli.option("--train-size", train_size, "training images used (the first ones)",
               ex::between(10, 1000000));
    cli.option("--epochs", epochs, "passes over the training subset", ex::between(1, 1000));
    cli.option("--eval-epochs", eval_epochs, "score train and test sets every this many epochs",
               ex::between(1, 1000));
    cli.option("--dropout", dropout, "Dropout probability p where Dropout is used",
               ex::between(0.01, 0.95));
    ex::add_sgd_flags(cli, sgd);
    cli.quick_help(
        "a few-second run for the tests: 200 training images, 4 epochs, scored every "
        "2, 500 test images");
    cli.outputs(
        "ch310_regularisation.png (test accuracy and train-test gap during training), "
        "ch310_regularisation.csv (per run at the end: bn 1/0, dropout p, seed, train "
        "and test loss and accuracy, gap), ch310_regularisation_curve.csv (every "
        "evaluation: bn, dropout, seed, epoch, train and test accuracy).");
    if (const auto exit_code = cli.parse(argc, argv)) return *exit_code;

    try {
        const fs::path out = cli.prepare();
        const double lr = sgd.lr, momentum = sgd.momentum;
        std::size_t batch_size = sgd.batch_size;
        if (common.quick) {
            train_size = std::min<std::size_t>(train_size, 200);
            epochs = std::min<std::size_t>(epochs, 4);
            eval_epochs = 2;
        }
        ex::Data data = ex::load_data(common, train_size, 500);
        if (train_size > data.train->size())
            throw std::invalid_argument("--train-size " + std::to_string(train_size) + " but " +
                                        data.train->name + " has " +
                                        std::to_string(data.train->size()) + " images");
        data.train = std::make_shared<const tg::data::Dataset>(data.train->slice(0, train_size));
        batch_size = ex::cap_batch_size("ch310_regularisation", "--batch-size", batch_size,
                                        train_size, "training images");
        sgd.batch_size = batch_size;
        const std::size_t per_epoch = (train_size + batch_size - 1) / batch_size;
        const std::size_t steps = epochs * per_epoch;
        const auto seeds = common.seed_list();
        std::printf(
            "%s: the first %zu training images, %zu test images\n%zu epochs of %zu "
            "steps of %zu\n(SGD lr %g, momentum %g), scored every %zu epochs; 4 models x "
            "%zu seeds\n\n",
            data.name.c_str(), train_size, data.test->size(), epochs, per_epoch, batch_size, lr,
            momentum, eval_epochs, seeds.size());

        struct Config {
            std::string name;
            bool bn;
            double p;
            const char* colour;
        };
        const std::vector<Config> configs = {{"neither", false, 0.0, ex::kWithoutBn},
                                             {"BN", true, 0.0, ex::kWithBn},
                                             {"Dropout", false, dropout, ex::kFifth},
                                             {"BN + Dropout", true, dropout, ex::kFourth}};
        std::vector<double> c_bn, c_p, c_seed, c_train_loss, c_train_acc, c_test_loss, c_test_acc,
            c_gap;
        std::vector<double> e_bn, e_p, e_seed, e_epoch, e_train, e_test;
        std::vector<std::vector<std::vector<double>>> test_curve(configs.size()),
            gap_curve(configs.size());
        std::vector<double> eval_x;
        ex::SweepProgress progress(configs.size() * seeds.size());
        std::size_t run = 0;
        for (std::size_t c = 0; c < configs.size(); ++c) {
            for (const std::uint64_t seed : seeds) {
                progress.start(run++, ex::format("%s seed %llu", configs[c].name.c_str(),
                                                 static_cast<unsigned long long>(seed)));
                tg::nn::Sequential model =
                    ex::make_cnn({.norm = configs[c].bn ? ex::Norm::batch : ex::Norm::none,
                                  .dropout = configs[c].p},
                                 seed);
                const ex::TrainResult r = ex::train(model, data, data.train,
                                                    {.lr = lr,
                                                     .momentum = momentum,
                                                     .batch_size = batch_size,
                                                     .steps = steps,
                                                     .seed = seed,
                                                     .eval_every = eval_epochs * per_epoch,
                                                     .eval_train_too = true},
                                                    progress.on_step());
                std::vector<double> test_pct, gap_pct;
                for (std::size_t k = 0; k < r.evals.size(); ++k) {
                    const double epoch = static_cast<double>(r.eval_step[k]) / per_epoch;
                    e_bn.push_back(configs[c].bn);
                    e_p.push_back(configs[c].p);
                    e_seed.push_back(static_cast<double>(seed));
                    e_epoch.push_back(epoch);
                    e_train.push_back(r.train_evals[k].accuracy);
                    e_test.push_back(r.evals[k].accuracy);
                    test_pct.push_back(100.0 * r.evals[k].accuracy);
                    gap_pct.push_back(100.0 * (r.train_evals[k].accuracy - r.evals[k].accuracy));
                    if (c == 0 && seed == seeds.front()) eval_x.push_back(epoch);
                }
                const std::size_t evals =
                    (steps + eval_epochs * per_epoch - 1) / (eval_epochs * per_epoch);
                test_pct.resize(evals, std::nan(""));  // a diverged run stops early
                gap_pct.resize(evals, std::nan(""));
                test_curve[c].push_back(test_pct);
                gap_curve[c].push_back(gap_pct);
                const ex::Score tr = r.train_evals.empty() ? ex::Score{std::nan(""), std::nan("")}
                                                           : r.train_evals.back();
                const ex::Score te =
                    r.evals.empty() ? ex::Score{std::nan(""), std::nan("")} : r.evals.back();
                c_bn.push_back(configs[c].bn);
                c_p.push_back(configs[c].p);
                c_seed.push_back(static_cast<double>(seed));
                c_train_loss.push_back(tr.loss);
                c_train_acc.push_back(tr.accuracy);
                c_test_loss.push_back(te.loss);
                c_test_acc.push_back(te.accuracy);
                c_gap.push_back(tr.accuracy - te.accuracy);
                progress.finish(ex::format("train %.1f%% test %.1f%%", 100.0 * tr.accuracy,
                                           100.0 * te.accuracy));
            }
        }
        progress.done();
        tg::viz::write_csv(out / "ch310_regularisation.csv", {{"bn", c_bn},
                                                              {"dropout", c_p},
                                                              {"seed", c_seed},
                                                              {"train_loss", c_train_loss},
                                                              {"train_acc", c_train_acc},
                                                              {"test_loss", c_test_loss},
                                                              {"test_acc", c_test_acc},
                                                              {"gap", c_gap}});
        tg::viz::write_csv(out / "ch310_regularisation_curve.csv", {{"bn", e_bn},
                                                                    {"dropout", e_p},
                                                                    {"seed", e_seed},
                                                                    {"epoch", e_epoch},
                                                                    {"train_acc", e_train},
                                                                    {"test_acc", e_test}});

        ex::Table table({"model", "train %", "test %", "gap (points)", "test loss"});
        for (std::size_t c = 0; c < configs.size(); ++c) {
            std::vector<double> tr, te, gap, loss;
            for (std::size_t i = 0; i < c_bn.size(); ++i) {
                if (i / seeds.size() != c) continue;
                tr.push_back(c_train_acc[i]);
                te.push_back(c_test_acc[i]);
                gap.push_back(c_gap[i]);
                loss.push_back(c_test_loss[i]);
            }
            table.add({configs[c].name, ex::format_mean_sd(ex::mean_sd(tr), 2, true),
                       ex::format_mean_sd(ex::mean_sd(te), 2, true),
                       ex::format_mean_sd(ex::mean_sd(gap), 2, true),
                       ex::format_mean_sd(ex::mean_sd(loss), 3)});
        }
        std::printf(
            "\nAfter %zu epochs on %zu images, eval mode, mean ± sd over %s\n"
            "(gap = train − test)\n\n",
            epochs, train_size, ex::count_of(seeds.size(), "seed").c_str());
        table.print();

        tg::viz::Figure fig(1, 2, 1400, 540);
        fig.suptitle = ex::format(
            "BN and Dropout as regularisers: %s, first %zu training images, "
            "SGD lr %g, momentum %g, Dropout p %g, %zu seeds",
            data.name.c_str(), train_size, lr, momentum, dropout, seeds.size());
        auto& left =
            ex::titled_panel(fig, 0, 0, "Test accuracy (eval mode)", "epoch", "accuracy (%)");
        auto& right = ex::titled_panel(fig, 0, 1, "Train − test accuracy: overfitting", "epoch",
                                       "gap (percentage points)");
        for (std::size_t c = 0; c < configs.size(); ++c) {
            ex::add_spread(left, eval_x, test_curve[c], configs[c].name, configs[c].colour);
            ex::add_spread(right, eval_x, gap_curve[c], configs[c].name, configs[c].colour);
        }
        // One legend for both panels (same colours): the gaps' early values fill the right
        // panel's corners.
        left.legend = "bottom right";
        right.legend = "";
        ex::save_figure(fig, out / "ch310_regularisation.png");
    } catch (const std::exception& e) {
        std::cerr << "ch310_regularisation: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
