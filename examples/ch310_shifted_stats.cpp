// ch310_shifted_stats — running statistics under a shifted input distribution, and
// recalibrating them with tg::nn::update_bn.
//
// A small BatchNorm CNN is trained on MNIST. In eval mode each BatchNorm normalises with the
// running mean and variance it collected in training — statistics of MNIST as the training
// images look. Then the test images are shifted: contrast and brightness changed
// (p' = a·p + b on the 0..255 grey levels), or inverted (p' = 255 − p). The weights are as
// good as before, but the first BatchNorm now sees activations with another mean and
// variance, normalises them with the wrong numbers, and accuracy collapses.
//
// tg::nn::update_bn(model, loader) (torch.optim.swa_utils.update_bn) resets every BatchNorm's
// running statistics and recomputes them as a cumulative average over one pass of unlabelled
// shifted images (here: shifted training images, no labels used). A contrast/brightness
// change is affine per pixel, so after the first convolution it is affine per channel, and
// recalibrated statistics undo it: accuracy comes back. Inversion flips the sign of every
// channel, which normalisation cannot undo (γ has the wrong sign for it): accuracy stays low.
//
//     ./build/release/examples/ch310_shifted_stats          # --quick: less training
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <numeric>
#include <string>
#include <vector>

#include "common/cli.hpp"
#include "gotchas/facts.hpp"
#include "gotchas/small_cnn.hpp"
#include "tapegrad/data/dataset.hpp"
#include "tapegrad/data/loader.hpp"
#include "tapegrad/nn/nn.hpp"
#include "tapegrad/viz/viz.hpp"

namespace fs = std::filesystem;
using tg::Array;
using tg::Tensor;

namespace {

// The dataset with every grey level p replaced by shift(p).
tg::data::Dataset shifted(const tg::data::Dataset& d, const std::function<int(int)>& shift,
                          const std::string& what) {
    tg::data::Dataset s = d;
    for (auto& p : s.images)
        p = static_cast<std::uint8_t>(std::clamp(shift(p), 0, 255));
    s.name = d.name + " (" + what + ")";
    return s;
}

struct Shift {
    std::string name, key;
    std::function<int(int)> f;
};

// The five test-time shifts, from none to inversion.
std::vector<Shift> the_shifts() {
    return {
        {"none", "none", [](int p) { return p; }},
        {"contrast 0.5, +100", "contrast", [](int p) { return p / 2 + 100; }},
        {"brighter (+80)", "bright", [](int p) { return p + 80; }},
        {"contrast 2, -60", "strong", [](int p) { return 2 * p - 60; }},
        {"inverted (255 - p)", "inverted", [](int p) { return 255 - p; }},
    };
}

// The calibration images update_bn sees: the training images the model did not train on when
// there are any (the bundled set has 8,000), else the first ones; no labels used. Prints what
// was trained and which images calibrate.
tg::data::Dataset calibration_images(const gotchas::TrainedSmallCnn& trained,
                                     std::size_t calibration, const std::string& dataset) {
    const tg::data::Dataset& train_all = trained.train_all;
    const std::size_t n_train = trained.train.dataset().size();
    const std::size_t cal_first = train_all.size() >= n_train + calibration ? n_train : 0;
    tg::data::Dataset cal_source =
        train_all.slice(cal_first, std::min(calibration, train_all.size() - cal_first));
    std::printf(
        "Trained %zu epoch(s) on %zu %s images (inputs normalised with their pixel "
        "mean %.3f, std %.3f).\n",
        trained.epochs, n_train, dataset.c_str(), trained.mean, trained.std);
    std::printf(
        "Calibration: %zu unlabelled shifted training images (examples %zu..%zu), "
        "batches of 64.\n\n",
        cal_source.size(), cal_first, cal_first + cal_source.size() - 1);
    return cal_source;
}

// Eval accuracy on the shifted test images with the training statistics, and after update_bn.
struct Accuracies {
    std::vector<double> before, after;  // in percent, one per shift
};

// For each shift: the trained state restored, the shifted test set scored in eval mode, the
// running statistics recalibrated by update_bn on shifted calibration images, scored again.
Accuracies recalibrate_each_shift(gotchas::TrainedSmallCnn& trained,
                                  const tg::data::Dataset& cal_source,
                                  const std::vector<Shift>& shifts, gotchas::Facts& facts) {
    tg::nn::Sequential& model = trained.model;
    const double pm = trained.mean, ps = trained.std;
    const tg::data::DataLoaderOptions eval_opts{.batch_size = 256, .mean = pm, .std = ps};
    Accuracies acc;
    auto& bn1 = model.at<tg::nn::BatchNorm2d>(1);
    // The statistics trained on the original images; restored before each shift.
    const tg::nn::NamedTensors trained_state = [&] {
        tg::nn::NamedTensors copy;
        for (const auto& [name, t] : model.state_dict())
            copy.emplace_back(name, Tensor(Array(t.value())));
        return copy;
    }();
    std::printf("  %-20s %16s %16s   %-31s\n", "test images", "eval accuracy", "after update_bn",
                "layer 1 running_mean[0], var[0]");
    for (const Shift& s : shifts) {
        model.load_state_dict(trained_state);
        const tg::data::DataLoader test(shifted(trained.test, s.f, s.name), eval_opts);
        std::vector<std::size_t> order(test.dataset().size());
        std::iota(order.begin(), order.end(), 0);
        model.eval();
        const double acc_before = gotchas::accuracy(model, test, order, 256);
        const double mean0 = bn1.running_mean.value()(0), var0 = bn1.running_var.value()(0);

        // Recalibrate on shifted, unlabelled images (a loader of the calibration set).
        const tg::data::DataLoader cal(shifted(cal_source, s.f, s.name),
                                       {.batch_size = 64, .mean = pm, .std = ps});
        tg::nn::update_bn(model, cal.epoch(0));
        const double acc_after = gotchas::accuracy(model, test, order, 256);
        std::printf("  %-20s %15.2f%% %15.2f%%   %8.3f, %8.3f -> %8.3f, %8.3f\n", s.name.c_str(),
                    100 * acc_before, 100 * acc_after, mean0, var0, bn1.running_mean.value()(0),
                    bn1.running_var.value()(0));
        acc.before.push_back(100 * acc_before);
        acc.after.push_back(100 * acc_after);
        facts.number("acc_before_" + s.key, acc_before);
        facts.number("acc_after_" + s.key, acc_after);
        facts.number("tracked_after_" + s.key, bn1.num_batches_tracked.item());
        facts.flag("eval_mode_kept_" + s.key, !model.is_training() && !bn1.is_training());
        facts.flag("momentum_kept_" + s.key,
                   bn1.options.momentum.has_value() && *bn1.options.momentum == 0.1);
    }
    facts.number("calibration_batches", std::ceil(static_cast<double>(cal_source.size()) / 64.0));
    std::printf(
        "\nupdate_bn left the model in eval mode with momentum 0.1 (it restores both); "
        "num_batches_tracked = %.0f,\nthe calibration batches. Contrast and brightness "
        "changes are undone by recalibrated statistics;\ninversion is not (it flips "
        "the sign of every first-layer channel).\n",
        bn1.num_batches_tracked.item());
    return acc;
}

// ch310_shifted_stats.png (+ .gp) and .csv: accuracy per shift, before and after update_bn.
void draw_accuracy_figure(const Accuracies& acc, const std::vector<Shift>& shifts,
                          const fs::path& dir) {
    tg::viz::Figure fig(1, 1, 1000, 560);
    fig.suptitle = "Eval accuracy on shifted test images: training statistics vs update_bn";
    std::vector<double> x(shifts.size());
    std::iota(x.begin(), x.end(), 0.0);
    std::string tics = "set xtics (";
    for (std::size_t i = 0; i < shifts.size(); ++i)
        tics += (i ? ", \"" : "\"") + shifts[i].name + "\" " + std::to_string(i);
    tics += ")";
    auto& p = fig.panel(0, 0)
                  .set_ylabel("test accuracy (%)")
                  .set_xrange(-0.5, static_cast<double>(shifts.size()) - 0.5)
                  .set_yrange(0, 100)
                  .line(x, acc.before, "running statistics from training", tg::viz::kRed)
                  .markers()
                  .line(x, acc.after, "after update_bn on shifted images", tg::viz::kBlue)
                  .markers();
    p.extra = {tics};
    p.legend = "bottom left";
    for (auto& s : p.series)
        s.line_width = 3;
    tg::viz::write_csv(dir / "ch310_shifted_stats.csv",
                       {{"shift", x}, {"acc_before", acc.before}, {"acc_after", acc.after}});
    std::cout << "\n" << fig.save(dir / "ch310_shifted_stats.png").message << "\n";
}

}  // namespace

int main(int argc, char** argv) {
    tg::examples::Cli cli(
        "ch310_shifted_stats",
        "A BatchNorm CNN evaluated on shifted inputs: eval accuracy collapses with the training "
        "running statistics; tg::nn::update_bn on unlabelled shifted data recovers it.");
    const gotchas::SmallCnnFlags flags(cli);  // the common flags and --epochs
    std::size_t calibration = 2000;
    cli.option("--calibration", calibration, "unlabelled shifted training images update_bn sees",
               tg::examples::between(64, 60000));
    cli.quick_help("2 epochs on 2,000 examples, 1,024 test images, 512 calibration images");
    cli.outputs("ch310_shifted_stats.png (+ .gp, CSV) and ch310_shifted_stats_facts.json.");
    if (const auto exit_code = cli.parse(argc, argv)) return *exit_code;
    const std::string out = flags.common.out;

    try {
        cli.prepare();  // --threads applied, --out created and checked writable
        if (flags.common.quick) calibration = 512;
        gotchas::TrainedSmallCnn trained = gotchas::train_small_cnn(flags);
        const tg::data::Dataset cal_source =
            calibration_images(trained, calibration, flags.common.dataset);
        const std::vector<Shift> shifts = the_shifts();
        gotchas::Facts facts;
        const Accuracies acc = recalibrate_each_shift(trained, cal_source, shifts, facts);
        draw_accuracy_figure(acc, shifts, out);
        std::cout << "Facts: " << facts.save(out, "ch310_shifted_stats").string() << "\n";
    } catch (const std::exception& e) {
        std::cerr << "ch310_shifted_stats: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
