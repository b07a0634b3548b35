// ch310_train_cnn — a LeNet-style CNN trained on MNIST twice, with and without BatchNorm, at
// the same learning rate, from the same initial weights, on the same batches.
//
// The two models differ only in the BatchNorm2d after each convolution:
//
//   [N, 1, 28, 28] → Conv2d(1, 6, 5, padding 2) → [N, 6, 28, 28] → (BatchNorm2d(6))  → ReLU
//                  → MaxPool2d(2) → [N, 6, 14, 14]
//                  → Conv2d(6, 16, 5)          → [N, 16, 10, 10] → (BatchNorm2d(16)) → ReLU
//                  → MaxPool2d(2) → [N, 16, 5, 5]
//                  → Flatten → Linear(400, 120) → ReLU → Linear(120, 84) → ReLU → Linear(84, 10)
// (LeNet-5's layout; the padding stands in for its 32 x 32 input.)
//
// Training: SGD with momentum 0.9 on the cross-entropy loss, the learning rate annealed from
// --lr to 0 along a cosine. The default lr, 0.1, is high for a network without BN: the chapter's
// claim is that BN lets it train well there, and the plain network trains worse (with some
// seeds not at all). In training mode BatchNorm2d
// normalises each channel with the batch's own mean and variance and updates its running
// estimates; after each epoch the test set is scored in evaluation mode (tg::nn::EvalGuard),
// where BatchNorm2d uses those running estimates instead.
//
// Output (in --out, default out/ch310): ch310_training.png (loss and accuracy curves of both
// runs, drawn by gnuplot from ch310_training.gp and its CSV files), ch310_training_history.csv
// (per epoch) and ch310_training_steps.csv (per step), and the trained models' checkpoints
// cnn_bn.tgstate and cnn_nobn.tgstate (tg::nn::Module::load_state reads them back).
//
// The same seed gives the same printed numbers; only the lines with "ex/s" (timings) differ.
//
//     ./build/release/examples/ch310_train_cnn                        # the bundled digits
//     ./build/release/examples/ch310_train_cnn --dataset fashion-mnist --epochs 10
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <numbers>
#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "common/cli.hpp"
#include "common/experiment.hpp"
#include "common/progress.hpp"

#include "tapegrad/data/dataset.hpp"
#include "tapegrad/data/loader.hpp"
#include "tapegrad/kernels.hpp"
#include "tapegrad/memory.hpp"
#include "tapegrad/metrics.hpp"
#include "tapegrad/nn/nn.hpp"
#include "tapegrad/ops/loss.hpp"
#include "tapegrad/optim/sgd.hpp"
#include "tapegrad/tape.hpp"
#include "tapegrad/viz/viz.hpp"

namespace fs = std::filesystem;
namespace viz = tg::viz;

namespace {

struct Settings {
    std::size_t epochs = 6;
    std::size_t batch_size = 64;
    double lr = 0.1;
    double momentum = 0.9;
    double weight_decay = 0.0;
    std::string schedule = "cosine";
    std::uint64_t seed = 0;
    std::string dataset = "mnist";
    std::string out = "out/ch310";
    bool quick = false;
};

// What one run records: the loss of every step, and per epoch the training loss and accuracy
// (averaged over the epoch's batches, in training mode) and the test loss and accuracy (eval).
struct History {
    std::vector<double> step_loss;
    std::vector<double> train_loss, train_acc, test_loss, test_acc;
    double seconds = 0.0;  // training time, without the evaluations
};

// The mean cross-entropy and the accuracy of `model` on every batch of `data`, in evaluation
// mode (BatchNorm uses its running statistics) and without recording a tape.
std::pair<double, double> evaluate(tg::nn::Module& model, const tg::data::DataLoader& data) {
    tg::nn::EvalGuard eval(model);  // back to training mode when it goes out of scope
    tg::NoGradGuard no_grad;
    double loss_sum = 0.0;
    std::size_t right = 0, seen = 0;
    for (const auto& [images, labels] : data.epoch(0)) {
        const tg::Tensor logits = model(images);
        loss_sum += tg::cross_entropy(logits, labels).item() * static_cast<double>(labels.size());
        right += tg::num_correct(logits, labels);
        seen += labels.size();
    }
    return {loss_sum / static_cast<double>(seen), static_cast<double>(right) / seen};
}

// The learning rate of step t of T (from 0): constant, or cosine annealing from lr down to 0,
// lr_t = lr · (1 + cos(π t / T)) / 2: large steps early, small ones to settle at the end.
double learning_rate(const Settings& s, std::size_t t, std::size_t T) {
    if (s.schedule == "constant") return s.lr;
    return s.lr * 0.5 * (1.0 + std::cos(std::numbers::pi * static_cast<double>(t) / T));
}

// Trains `model` for s.epochs epochs of `train`, scoring `test` after each; returns the history.
History fit(const std::string& run, tg::nn::Sequential& model, const tg::data::DataLoader& train,
            const tg::data::DataLoader& test, const Settings& s) {
    tg::optim::SGD opt(model.parameters(),
                       {.lr = s.lr, .momentum = s.momentum, .weight_decay = s.weight_decay});
    tg::nn::CrossEntropyLoss criterion;
    History h;
    const std::size_t total_steps = s.epochs * train.num_batches();
    model.train();  // BatchNorm: batch statistics, running estimates updated
    for (std::size_t epoch = 0; epoch < s.epochs; ++epoch) {
        tg::examples::EpochProgress bar(run, epoch + 1, s.epochs, train.num_batches());
        double loss_sum = 0.0;
        std::size_t right = 0, seen = 0, done = 0;
        for (const auto& [images, labels] : train.epoch(epoch)) {
            opt.options().lr = learning_rate(s, h.step_loss.size(), total_steps);
            tg::Tape tape;  // records this step's forward pass
            // Each BatchNorm2d in the model normalises its input with this batch's per-channel
            // mean and variance (training mode): step in here to reach tg::batch_norm.
            const tg::Tensor logits = model(images);
            const tg::Tensor loss = criterion(logits, labels);
            const double l = loss.item();
            // A loss of nan or inf: every later step would print nan; stop with one line.
            if (!std::isfinite(l)) {
                throw std::runtime_error(
                    run + " run: " +
                    tg::examples::diverged_message(h.step_loss.size() + 1, epoch + 1, l));
            }
            opt.zero_grad();
            tape.backward(loss);  // dL/dp for every parameter p
            opt.step();           // p ← p − lr·(momentum-smoothed dL/dp)

            h.step_loss.push_back(l);
            loss_sum += l * static_cast<double>(labels.size());
            right += tg::num_correct(logits, labels);
            seen += labels.size();
            bar.update(++done, loss_sum / seen, static_cast<double>(right) / seen, seen);
        }
        const double seconds = bar.elapsed();
        h.seconds += seconds;
        h.train_loss.push_back(loss_sum / seen);
        h.train_acc.push_back(static_cast<double>(right) / seen);
        const auto [test_loss, test_acc] = evaluate(model, test);
        h.test_loss.push_back(test_loss);
        h.test_acc.push_back(test_acc);
        bar.finish(h.train_loss.back(), h.train_acc.back(), test_loss, test_acc, seen, seconds);
    }
    return h;
}

// y[i] = the mean of y over the window of `w` values ending at i: the per-step loss smoothed.
std::vector<double> running_mean(const std::vector<double>& y, std::size_t w) {
    std::vector<double> out(y.size());
    double sum = 0.0;
    for (std::size_t i = 0; i < y.size(); ++i) {
        sum += y[i];
        if (i >= w) sum -= y[i - w];
        out[i] = sum / static_cast<double>(std::min(i + 1, w));
    }
    return out;
}

std::vector<double> percent(std::vector<double> v) {
    for (auto& x : v)
        x *= 100.0;
    return v;
}

// Loss per step (left) and accuracy per epoch (right) of both runs.
viz::RenderResult plot(const History& bn, const History& plain, std::size_t steps_per_epoch,
                       const Settings& s, const std::string& data_name, const fs::path& png) {
    viz::Figure fig(1, 2, 1400, 540);
    char title[200];
    std::snprintf(title, sizeof title,
                  "LeNet-style CNN on %s, with and without BatchNorm (SGD lr %g %s, momentum %g, "
                  "batch %zu, seed %llu)",
                  data_name.c_str(), s.lr, s.schedule.c_str(), s.momentum, s.batch_size,
                  static_cast<unsigned long long>(s.seed));
    fig.suptitle = title;

    // x in epochs: step k (from 0) ends at (k + 1) / steps_per_epoch.
    std::vector<double> x(bn.step_loss.size());
    for (std::size_t k = 0; k < x.size(); ++k)
        x[k] = static_cast<double>(k + 1) / static_cast<double>(steps_per_epoch);
    const std::size_t w = std::max<std::size_t>(1, steps_per_epoch / 10);
    auto& loss = fig.panel(0, 0);
    loss.set_title("Training loss (mean of the last " + std::to_string(w) + " steps)")
        .set_xlabel("epoch")
        .set_ylabel("cross-entropy")
        .line(x, running_mean(plain.step_loss, w), "without BN", viz::kRed)
        .line(x, running_mean(bn.step_loss, w), "with BN", viz::kBlue);
    loss.logy = true;

    fig.panel(0, 1)
        .set_title("Accuracy after each epoch")
        .set_xlabel("epoch")
        .set_ylabel("accuracy (%)")
        .curve(percent(plain.train_acc), "without BN, train", viz::kRed, /*dashed=*/true)
        .curve(percent(plain.test_acc), "without BN, test (eval mode)", viz::kRed)
        .curve(percent(bn.train_acc), "with BN, train", viz::kBlue, /*dashed=*/true)
        .curve(percent(bn.test_acc), "with BN, test (eval mode)", viz::kBlue)
        .legend = "bottom right";
    return fig.save(png);
}

void write_history(const History& bn, const History& plain, const fs::path& out) {
    std::vector<double> epoch(bn.train_loss.size()), step(bn.step_loss.size());
    for (std::size_t i = 0; i < epoch.size(); ++i)
        epoch[i] = static_cast<double>(i + 1);
    for (std::size_t i = 0; i < step.size(); ++i)
        step[i] = static_cast<double>(i + 1);
    viz::write_csv(out / "ch310_training_history.csv", {{"epoch", epoch},
                                                        {"bn_train_loss", bn.train_loss},
                                                        {"bn_train_acc", bn.train_acc},
                                                        {"bn_test_loss", bn.test_loss},
                                                        {"bn_test_acc", bn.test_acc},
                                                        {"nobn_train_loss", plain.train_loss},
                                                        {"nobn_train_acc", plain.train_acc},
                                                        {"nobn_test_loss", plain.test_loss},
                                                        {"nobn_test_acc", plain.test_acc}});
    viz::write_csv(out / "ch310_training_steps.csv",
                   {{"step", step}, {"bn_loss", bn.step_loss}, {"nobn_loss", plain.step_loss}});
}

// The flags of this program, read into `s`; returns the common ones (--seed, --dataset, --out,
// --quick, ...), which main copies into `s` after parsing.
tg::examples::CommonFlags& add_flags(tg::examples::Cli& cli, Settings& s) {
    tg::examples::CommonFlags& flags = cli.add_common({}, /*with_seeds=*/false);
    cli.option("--epochs", s.epochs, "passes over the training set",
               tg::examples::between(1, 1000));
    cli.option("--batch-size", s.batch_size, "examples per training step",
               tg::examples::between(2, 60000));
    cli.option("--lr", s.lr, "SGD learning rate, the same for both runs",
               tg::examples::greater_than(0, 1e6));
    cli.option("--weight-decay", s.weight_decay, "SGD weight decay (L2 penalty)",
               tg::examples::between(0, 10));
    cli.choice("--schedule", s.schedule,
               "learning rate over the run: cosine (annealed from --lr to 0) or constant",
               {"cosine", "constant"});
    cli.option("--momentum", s.momentum, "SGD momentum", tg::examples::between(0, 0.999));
    cli.quick_help(
        "a fast run for the tests: 2 epochs on the first 2,000 training and 500 test examples");
    cli.outputs(
        "ch310_training.png (loss and accuracy of both runs) with its gnuplot script and data, "
        "ch310_training_history.csv (per epoch), ch310_training_steps.csv (loss per step), and "
        "checkpoints cnn_bn.tgstate, cnn_nobn.tgstate (tg::nn::Module::load_state). Timings are "
        "on the lines with \"ex/s\"; every other printed number is the same for the same seed.");
    return flags;
}

// The training and test loaders both runs share, and the data set's name.
struct Loaders {
    tg::data::DataLoader train, test;
    std::string data_name;  // "mnist (bundled)"
};

// --dataset's training and test sets (--quick: the first 2,000 and 500, 2 epochs), inputs
// normalised with the training set's pixel mean and std: x = (p/255 − mean) / std. Both runs
// see the same batches: the order of epoch k depends on (seed, k) only.
Loaders load_mnist(Settings& s) {
    tg::data::Dataset train_set = tg::data::load_dataset(s.dataset, tg::data::Split::train);
    tg::data::Dataset test_set = tg::data::load_dataset(s.dataset, tg::data::Split::test);
    if (s.quick) {
        s.epochs = std::min<std::size_t>(s.epochs, 2);
        train_set = train_set.slice(0, std::min<std::size_t>(train_set.size(), 2000));
        test_set = test_set.slice(0, std::min<std::size_t>(test_set.size(), 500));
    }
    s.batch_size = tg::examples::cap_batch_size("ch310_train_cnn", "--batch-size", s.batch_size,
                                                train_set.size(), "training images");
    // "mnist (bundled) train" → "mnist (bundled)"
    std::string data_name = train_set.name;
    if (data_name.ends_with(" train")) data_name.resize(data_name.size() - 6);
    const auto [pixel_mean, pixel_std] = tg::data::pixel_mean_std(train_set);
    Loaders d{tg::data::DataLoader(std::move(train_set), {.batch_size = s.batch_size,
                                                          .shuffle = true,
                                                          .seed = s.seed,
                                                          .mean = pixel_mean,
                                                          .std = pixel_std,
                                                          .prefetch = true}),
              tg::data::DataLoader(std::move(test_set),
                                   {.batch_size = 500, .mean = pixel_mean, .std = pixel_std}),
              data_name};
    std::printf("%s:\n  %zu training and %zu test images, %zu batches of %zu per epoch\n",
                d.data_name.c_str(), d.train.dataset().size(), d.test.dataset().size(),
                d.train.num_batches(), s.batch_size);
    std::printf("SGD lr %g (%s), momentum %g, weight decay %g, %zu epochs, seed %llu\n\n", s.lr,
                s.schedule.c_str(), s.momentum, s.weight_decay, s.epochs,
                static_cast<unsigned long long>(s.seed));
    return d;
}

// The test accuracy of both runs after each epoch, and their training times.
void print_comparison(const History& bn, const History& plain, const Settings& s,
                      std::size_t train_size) {
    std::printf("\nTest accuracy (eval mode) after each epoch, the same lr %g for both:\n", s.lr);
    std::printf("  %-8s", "epoch");
    for (std::size_t e = 1; e <= s.epochs; ++e)
        std::printf(" %7zu", e);
    std::printf("\n");
    for (const auto& [name, h] : {std::pair{"BN", &bn}, std::pair{"no BN", &plain}}) {
        std::printf("  %-8s", name);
        for (const double a : h->test_acc)
            std::printf(" %6.2f%%", 100.0 * a);
        std::printf("\n");
    }
    const double examples = static_cast<double>(s.epochs * train_size);
    std::printf("Training time: BN %.1f s (%.0f ex/s), no BN %.1f s (%.0f ex/s)\n", bn.seconds,
                examples / bn.seconds, plain.seconds, examples / plain.seconds);
}

// The trained models' checkpoints, cnn_bn.tgstate and cnn_nobn.tgstate.
void save_checkpoints(const tg::nn::Sequential& with_bn, const tg::nn::Sequential& without_bn,
                      const fs::path& out) {
    with_bn.save_state((out / "cnn_bn.tgstate").string());
    without_bn.save_state((out / "cnn_nobn.tgstate").string());
    std::cout << "\nCheckpoints: " << (out / "cnn_bn.tgstate").string() << ", "
              << (out / "cnn_nobn.tgstate").string() << "\n";
}

}  // namespace

int main(int argc, char** argv) {
    tg::examples::Cli cli("ch310_train_cnn",
                          "Train a LeNet-style CNN on MNIST with and without BatchNorm (same "
                          "learning rate, initial weights and batches) and compare them.");
    Settings s;
    const tg::examples::CommonFlags& flags = add_flags(cli, s);
    if (const auto exit_code = cli.parse(argc, argv)) return *exit_code;
    s.seed = flags.seed;
    s.dataset = flags.dataset;
    s.out = flags.out;
    s.quick = flags.quick;

    try {
        const fs::path out = cli.prepare();  // --threads applied, --out created and writable
        tg::tune_allocator_for_training();   // keep freed memory for the next step
        const Loaders data = load_mnist(s);

        // The CNN above (examples/common's make_cnn), with and without BatchNorm2d. Its weights
        // are drawn in layer order from a generator seeded with --seed, and BatchNorm2d draws
        // nothing (γ = 1, β = 0): both start from the same convolution and linear weights.
        tg::nn::Sequential with_bn =
            tg::examples::make_cnn({.norm = tg::examples::Norm::batch}, s.seed);
        tg::nn::Sequential without_bn =
            tg::examples::make_cnn({.norm = tg::examples::Norm::none}, s.seed);
        std::cout << "With BatchNorm:\n" << with_bn << "\n";

        const History bn = fit("BN", with_bn, data.train, data.test, s);
        std::cout << "\n";
        const History plain = fit("no BN", without_bn, data.train, data.test, s);

        print_comparison(bn, plain, s, data.train.dataset().size());
        write_history(bn, plain, out);
        save_checkpoints(with_bn, without_bn, out);
        const auto result = plot(bn, plain, data.train.num_batches(), s, data.data_name,
                                 out / "ch310_training.png");
        std::cout << result.message << "\n";
    } catch (const std::exception& e) {
        std::cerr << "ch310_train_cnn: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
