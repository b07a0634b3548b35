// ch310_train_vs_eval — what happens when model.eval() is forgotten, and the guard that
// prevents it.
//
// A small CNN with BatchNorm2d after each convolution and a BatchNorm1d in its classifier is
// trained briefly on MNIST; then:
//   1. the same test image in two different batches: in training mode BatchNorm normalises
//      with each batch's statistics, so its logits differ; in eval mode they are identical;
//   2. one example in training mode: BatchNorm1d has one value per channel and raises
//      PyTorch's error (the library's text: "expected more than 1 value per channel when
//      training"), caught and shown;
//   3. the trained model scored in training mode, at batch sizes 2, 8 and 64, on shuffled
//      and on class-sorted batches, against eval mode: the accuracy lost, measured (running
//      statistics frozen with tg::NoStatsUpdateGuard, so only the normalisation differs);
//   4. an evaluation loop that forgot eval(): the running statistics drift towards the test
//      batches (printed before/after), and model.train() does not undo it;
//   5. tg::nn::EvalGuard: eval mode inside the scope, every module's mode restored on exit,
//      also when an exception escapes.
//
//     ./build/release/examples/ch310_train_vs_eval          # --quick: less training
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/cli.hpp"
#include "gotchas/facts.hpp"
#include "gotchas/small_cnn.hpp"
#include "tapegrad/checkpoint.hpp"
#include "tapegrad/data/dataset.hpp"
#include "tapegrad/data/loader.hpp"
#include "tapegrad/nn/nn.hpp"
#include "tapegrad/ops/loss.hpp"
#include "tapegrad/optim/sgd.hpp"
#include "tapegrad/random.hpp"
#include "tapegrad/tape.hpp"
#include "tapegrad/viz/viz.hpp"

namespace fs = std::filesystem;
using tg::Array;
using tg::Tensor;

namespace {

double max_abs_diff_row(const Array& a, std::size_t ra, const Array& b, std::size_t rb) {
    const std::size_t C = a.shape()[1];
    double m = 0;
    for (std::size_t k = 0; k < C; ++k)
        m = std::max(m, std::abs(static_cast<double>(a(ra, k)) - b(rb, k)));
    return m;
}

// The test set in two orders: shuffled (Fisher–Yates, seeded by seed + 7) and sorted by class.
struct TestOrders {
    std::vector<std::size_t> shuffled, sorted;
};

TestOrders test_orders(const tg::data::DataLoader& test, std::uint64_t seed) {
    TestOrders o{test.order(0), test.order(0)};
    tg::Generator shuffle_gen(seed + 7);
    for (std::size_t i = o.shuffled.size(); i > 1; --i)  // Fisher–Yates
        std::swap(o.shuffled[i - 1], o.shuffled[shuffle_gen.randint(i)]);
    std::stable_sort(o.sorted.begin(), o.sorted.end(), [&](std::size_t a, std::size_t b) {
        return test.dataset().label(a) < test.dataset().label(b);
    });
    return o;
}

// 1. The same test image in two batches of 8: its logits depend on the batch in training mode,
// not in eval mode.
void same_image_in_two_batches(tg::nn::Sequential& model, const tg::data::DataLoader& test,
                               gotchas::Facts& facts) {
    std::vector<std::size_t> a(8), b(8);
    std::iota(a.begin(), a.end(), 0);  // image 0 with images 1..7
    std::iota(b.begin(), b.end(), 8);  // image 0 with images 9..15
    b[0] = 0;
    const auto ba = test.make_batch(a.data(), a.size());
    const auto bb = test.make_batch(b.data(), b.size());
    tg::NoGradGuard no_grad;
    const tg::NoStatsUpdateGuard frozen;
    const Array ta = model(ba.images).value(), tb = model(bb.images).value();
    Array ea, eb;
    {
        tg::nn::EvalGuard eval(model);
        ea = model(ba.images).value();
        eb = model(bb.images).value();
    }
    std::printf(
        "1. Test image 0 (label %lld) in two different batches of 8, logits of "
        "classes 0..4:\n",
        static_cast<long long>(ba.labels[0]));
    std::printf("   %-26s", "training mode, batch A");
    for (std::size_t k = 0; k < 5; ++k)
        std::printf(" %8.4f", ta(0, k));
    std::printf("\n   %-26s", "training mode, batch B");
    for (std::size_t k = 0; k < 5; ++k)
        std::printf(" %8.4f", tb(0, k));
    std::printf("\n   %-26s", "eval mode, batch A");
    for (std::size_t k = 0; k < 5; ++k)
        std::printf(" %8.4f", ea(0, k));
    std::printf("\n   %-26s", "eval mode, batch B");
    for (std::size_t k = 0; k < 5; ++k)
        std::printf(" %8.4f", eb(0, k));
    const double train_diff = max_abs_diff_row(ta, 0, tb, 0);
    const double eval_diff = max_abs_diff_row(ea, 0, eb, 0);
    std::printf("\n   largest difference over the 10 logits: training %.4g, eval %.4g\n\n",
                train_diff, eval_diff);
    facts.number("same_input_train_diff", train_diff);
    facts.number("same_input_eval_diff", eval_diff);
}

// 2. One example in training mode: the BatchNorm1d has one value per channel and refuses.
void batch_of_one(tg::nn::Sequential& model, const tg::data::DataLoader& test,
                  gotchas::Facts& facts) {
    const std::size_t first = 0;
    const auto one = test.make_batch(&first, 1);
    std::string error = "(no error)";
    try {
        tg::NoGradGuard no_grad;
        model(one.images);
    } catch (const std::invalid_argument& e) {
        error = e.what();
    }
    std::printf("2. One example [1, 1, 28, 28] in training mode:\n   caught: %s\n", error.c_str());
    std::printf(
        "   (BatchNorm2d still has 26·26 values per channel; the BatchNorm1d "
        "after Linear has 1.)\n\n");
    facts.text("batch_of_one_error", error);
}

// The test accuracy in eval mode and, at each batch size, in training mode on shuffled and on
// class-sorted batches.
struct TrainModeAccuracy {
    std::vector<double> sizes{2, 8, 64}, shuffled, sorted;
    double eval = 0.0;
};

// 3. The trained model scored in training mode (running statistics frozen by
// gotchas::accuracy) against eval mode.
TrainModeAccuracy accuracy_lost_in_training_mode(tg::nn::Sequential& model,
                                                 const tg::data::DataLoader& test,
                                                 const TestOrders& orders, gotchas::Facts& facts) {
    TrainModeAccuracy acc;
    {
        tg::nn::EvalGuard eval(model);
        acc.eval = gotchas::accuracy(model, test, orders.shuffled, 64);
    }
    std::printf("3. Test accuracy: eval mode %.2f%%. In training mode (batch statistics):\n",
                100 * acc.eval);
    std::printf("   %-6s %12s %14s\n", "batch", "shuffled", "class-sorted");
    for (double s : acc.sizes) {
        const auto B = static_cast<std::size_t>(s);
        acc.shuffled.push_back(gotchas::accuracy(model, test, orders.shuffled, B));
        acc.sorted.push_back(gotchas::accuracy(model, test, orders.sorted, B));
        std::printf("   %-6zu %11.2f%% %13.2f%%\n", B, 100 * acc.shuffled.back(),
                    100 * acc.sorted.back());
        facts.number("acc_train_mode_shuffled_B" + std::to_string(B), acc.shuffled.back());
        facts.number("acc_train_mode_sorted_B" + std::to_string(B), acc.sorted.back());
    }
    std::printf("   (batch 1 is not allowed in training mode: see 2.)\n\n");
    facts.number("acc_eval", acc.eval);
    return acc;
}

// 4. An evaluation loop that forgot eval(): the running statistics drift towards the
// class-sorted test batches, and model.train() does not undo it.
void running_statistics_drift(tg::nn::Sequential& model, const tg::data::DataLoader& test,
                              const TestOrders& orders, double eval_acc, gotchas::Facts& facts) {
    auto& bn = model.at<tg::nn::BatchNorm2d>(1);
    const Array mean_before = bn.running_mean.value();
    const auto tracked_before = bn.num_batches_tracked.item();
    {
        tg::NoGradGuard no_grad;  // ... but no eval(): a training-mode "evaluation"
        for (std::size_t i = 0; i + 8 <= orders.sorted.size(); i += 8) {
            const auto b = test.make_batch(orders.sorted.data() + i, 8);
            model(b.images);
        }
    }
    model.train();  // does not reset anything
    std::printf(
        "4. An evaluation loop without eval() on class-sorted batches of 8, then "
        "model.train():\n");
    std::printf(
        "   layer 1 (BatchNorm2d) running_mean[0..3] before %8.4f %8.4f %8.4f %8.4f "
        "(num_batches_tracked %.0f)\n",
        mean_before(0), mean_before(1), mean_before(2), mean_before(3), tracked_before);
    const Array& after = bn.running_mean.value();
    std::printf(
        "                                       after  %8.4f %8.4f %8.4f %8.4f "
        "(num_batches_tracked %.0f)\n",
        after(0), after(1), after(2), after(3), bn.num_batches_tracked.item());
    double drift = 0;
    for (std::size_t c = 0; c < after.size(); ++c)
        drift = std::max(drift, std::abs(static_cast<double>(after(c)) - mean_before(c)));
    double eval_after = 0;
    {
        tg::nn::EvalGuard eval(model);
        eval_after = gotchas::accuracy(model, test, orders.shuffled, 64);
    }
    std::printf(
        "   largest running_mean change %.4g; eval accuracy now %.2f%% (was "
        "%.2f%%): the statistics\n   now describe the last class-sorted "
        "batches, and only update_bn or retraining recovers them.\n\n",
        drift, 100 * eval_after, 100 * eval_acc);
    facts.number("drift_running_mean", drift);
    facts.number("drift_batches_counted", bn.num_batches_tracked.item() - tracked_before);
    facts.number("acc_eval_after_drift", eval_after);
}

// 5. tg::nn::EvalGuard: eval mode inside the scope, every module's mode restored on exit, also
// when an exception escapes.
void eval_guard(tg::nn::Sequential& model, gotchas::Facts& facts) {
    model.train();
    bool inside = true, after_throw = false;
    try {
        tg::nn::EvalGuard eval(model);
        inside = model.is_training() || model[1].is_training();
        throw std::runtime_error("an error in the middle of evaluation");
    } catch (const std::runtime_error& e) {
        after_throw = model.is_training() && model[1].is_training() && model[10].is_training();
        std::printf(
            "5. EvalGuard: inside the scope training=%s; after \"%s\" escaped "
            "it, training=%s for every module\n",
            inside ? "true" : "false", e.what(), after_throw ? "true" : "false");
    }
    facts.flag("guard_eval_inside", !inside);
    facts.flag("guard_restored_after_throw", after_throw);
}

// ch310_train_vs_eval.png (+ .gp) and .csv: accuracy against batch size in both modes.
void draw_accuracy_figure(const TrainModeAccuracy& acc, const fs::path& dir) {
    tg::viz::Figure fig(1, 1, 900, 560);
    fig.suptitle = "Scoring a trained model in training mode (forgotten eval())";
    std::vector<double> pct_sh, pct_so, pct_ev;
    for (std::size_t i = 0; i < acc.sizes.size(); ++i) {
        pct_sh.push_back(100 * acc.shuffled[i]);
        pct_so.push_back(100 * acc.sorted[i]);
        pct_ev.push_back(100 * acc.eval);
    }
    auto& p = fig.panel(0, 0)
                  .set_xlabel("batch size")
                  .set_ylabel("test accuracy (%)")
                  .set_xrange(1.6, 80)
                  .set_yrange(0, 100)
                  .line(acc.sizes, pct_ev, "eval mode", "black", true)
                  .line(acc.sizes, pct_sh, "training mode, shuffled batches", tg::viz::kBlue)
                  .markers()
                  .line(acc.sizes, pct_so, "training mode, class-sorted batches", tg::viz::kRed)
                  .markers();
    p.extra = {"set logscale x 2", "set xtics (2, 8, 64)"};
    p.legend = "bottom right";
    tg::viz::write_csv(dir / "ch310_train_vs_eval.csv", {{"batch", acc.sizes},
                                                         {"acc_train_mode_shuffled", acc.shuffled},
                                                         {"acc_train_mode_sorted", acc.sorted}});
    std::cout << fig.save(dir / "ch310_train_vs_eval.png").message << "\n";
}

}  // namespace

int main(int argc, char** argv) {
    tg::examples::Cli cli(
        "ch310_train_vs_eval",
        "Forgetting model.eval(): batch-dependent outputs, the batch-of-one error, accuracy "
        "lost in training mode, drifting running statistics; EvalGuard.");
    const gotchas::SmallCnnFlags flags(cli);  // the common flags and --epochs
    cli.quick_help("2 epochs on 2,000 examples, 1,024 test examples (for tests)");
    cli.outputs("ch310_train_vs_eval.png (+ .gp, CSV) and ch310_train_vs_eval_facts.json.");
    if (const auto exit_code = cli.parse(argc, argv)) return *exit_code;
    const std::string out = flags.common.out;

    try {
        cli.prepare();  // --threads applied, --out created and checked writable
        // A short training run, then the test set in batches of 256 (shuffled / class-sorted).
        gotchas::TrainedSmallCnn trained = gotchas::train_small_cnn(flags);
        tg::nn::Sequential& model = trained.model;
        const tg::data::DataLoader& train = trained.train;
        const tg::data::DataLoader test(
            std::move(trained.test), {.batch_size = 256, .mean = trained.mean, .std = trained.std});
        const TestOrders orders = test_orders(test, flags.common.seed);
        std::printf("Trained %zu epoch(s) on %zu %s images; %zu test images.\n\n", trained.epochs,
                    train.dataset().size(), flags.common.dataset.c_str(), test.dataset().size());

        gotchas::Facts facts;
        same_image_in_two_batches(model, test, facts);
        batch_of_one(model, test, facts);
        const TrainModeAccuracy acc = accuracy_lost_in_training_mode(model, test, orders, facts);
        running_statistics_drift(model, test, orders, acc.eval, facts);
        eval_guard(model, facts);
        draw_accuracy_figure(acc, out);
        std::cout << "Facts: " << facts.save(out, "ch310_train_vs_eval").string() << "\n";
    } catch (const std::exception& e) {
        std::cerr << "ch310_train_vs_eval: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
