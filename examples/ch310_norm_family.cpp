// ch310_norm_family — BatchNorm, LayerNorm, GroupNorm, InstanceNorm and RMSNorm on the same skewed
// feature map, side by side: the article's comparison table, measured here.
//
// The input x [N, C, H, W] = [4, 64, 28, 28] has channel c drawn from N(μ_c, s_c²) with the
// channel means μ_c spread over −3..3 and the stds s_c over 0.5..5 (a badly scaled layer).
// Each normalisation takes a different set of values as "one set" with its own μ and σ:
//   BatchNorm2d(64)         per channel c, over (N, H, W)        — across the batch
//   LayerNorm([64, 28, 28]) per example n, over (C, H, W)        — one example at a time
//   GroupNorm(8, 64)        per example n and group of 8 channels, over (C/G, H, W)
//   InstanceNorm2d(64)      per example n and channel c, over (H, W)
//   RMSNorm([64, 28, 28])   LayerNorm's sets, divided by their root mean square, not centred
// Printed per layer: the mean and std of the whole output, the range of the per-channel means
// and stds that remain (LayerNorm keeps the channels' skew: it shifts and scales them all
// together), whether it depends on the rest of the batch, the difference between its training
// and eval outputs, and its forward time at batch 2 and 64. Figure: which values form one set
// (the well-known cube picture, drawn from the shapes).
//
//     ./build/release/examples/ch310_norm_family          # --quick: fewer timing repeats
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/cli.hpp"
#include "common/compare.hpp"
#include "gotchas/facts.hpp"
#include "tapegrad/nn/nn.hpp"
#include "tapegrad/random.hpp"
#include "tapegrad/tape.hpp"
#include "tapegrad/viz/viz.hpp"

namespace fs = std::filesystem;
using tg::Array;
using tg::Tensor;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t C = 64, H = 28, W = 28;

// x [N, C, H, W]: channel c ~ N(μ_c, s_c²), μ_c = −3 + 6c/(C−1), s_c = 0.5 + 4.5c/(C−1).
Array skewed_input(std::size_t N, tg::Generator& gen) {
    Array x = Array::from_shape({N, C, H, W});
    for (std::size_t n = 0; n < N; ++n)
        for (std::size_t c = 0; c < C; ++c) {
            const double t = static_cast<double>(c) / static_cast<double>(C - 1);
            const double mu = -3.0 + 6.0 * t, s = 0.5 + 4.5 * t;
            tg::real* plane = x.data() + (n * C + c) * H * W;
            for (std::size_t i = 0; i < H * W; ++i)
                plane[i] = static_cast<tg::real>(gen.normal(mu, s));
        }
    return x;
}

struct Stats {
    double mean = 0, std = 0;               // of every value
    double ch_mean_lo = 0, ch_mean_hi = 0;  // range of the per-channel means (over n, h, w)
    double ch_std_lo = 0, ch_std_hi = 0;    // range of the per-channel stds
};

Stats stats(const Array& y) {
    const std::size_t N = y.shape()[0];
    Stats s;
    double sum = 0, sq = 0;
    for (auto v : y) {
        sum += v;
        sq += static_cast<double>(v) * v;
    }
    const double count = static_cast<double>(y.size());
    s.mean = sum / count;
    s.std = std::sqrt(std::max(0.0, sq / count - s.mean * s.mean));
    s.ch_mean_lo = s.ch_std_lo = 1e300;
    s.ch_mean_hi = s.ch_std_hi = -1e300;
    for (std::size_t c = 0; c < C; ++c) {
        double cs = 0, cq = 0;
        for (std::size_t n = 0; n < N; ++n) {
            const tg::real* p = y.data() + (n * C + c) * H * W;
            for (std::size_t i = 0; i < H * W; ++i) {
                cs += p[i];
                cq += static_cast<double>(p[i]) * p[i];
            }
        }
        const double m = cs / static_cast<double>(N * H * W);
        const double sd = std::sqrt(std::max(0.0, cq / static_cast<double>(N * H * W) - m * m));
        s.ch_mean_lo = std::min(s.ch_mean_lo, m);
        s.ch_mean_hi = std::max(s.ch_mean_hi, m);
        s.ch_std_lo = std::min(s.ch_std_lo, sd);
        s.ch_std_hi = std::max(s.ch_std_hi, sd);
    }
    return s;
}

using tg::examples::max_abs_diff;  // examples/common/compare.hpp

struct Layer {
    std::string name, key, set;  // printed name, facts key, what one set is
    std::function<std::unique_ptr<tg::nn::Module>()> make;
};

// Forward milliseconds of `layer` on x (median of `repeats`, no tape).
double forward_ms(tg::nn::Module& layer, const Tensor& x, std::size_t repeats) {
    std::vector<double> ms;
    for (std::size_t r = 0; r < repeats; ++r) {
        const auto t0 = Clock::now();
        const Tensor y = layer(x);
        ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
}

// ---- the cube picture ----------------------------------------------------------------------
// Oblique projection of (c, s, n) — channel to the right, spatial (H, W) up, batch into the
// depth — as in Wu & He's Group Normalization figure.
struct P2 {
    double x, y;
};
P2 project(double c, double s, double n) {
    return {c + 0.55 * n, s + 0.45 * n};
}

// Draws the cube [0, Cw] x [0, Sh] x [0, Nd] as lines and the box of one set as filled faces.
void cube_panel(tg::viz::Panel& p, const std::string& title, double c0, double c1, double n0,
                double n1, std::size_t object_base) {
    const double Cw = 8, Sh = 5, Nd = 4;  // drawn sizes: 8 channel slices, 4 examples
    p.set_title(title);
    p.legend = "";
    p.set_xrange(-0.5, Cw + 0.55 * Nd + 0.5).set_yrange(-0.5, Sh + 0.45 * Nd + 0.5);
    p.extra = {"unset object", "unset xtics", "unset ytics", "unset border"};
    // The set: channels [c0, c1), every spatial position, examples [n0, n1); its visible
    // faces (front, top, and the right side when it is on the cube's surface), filled.
    auto poly = [&](std::vector<P2> pts, const char* colour) {
        std::string cmd = "set object " + std::to_string(object_base++) + " polygon from ";
        for (std::size_t i = 0; i <= pts.size(); ++i) {
            const P2 q = pts[i % pts.size()];
            cmd += (i ? " to " : "") + std::to_string(q.x) + "," + std::to_string(q.y);
        }
        cmd += std::string(" fillstyle solid 1.0 noborder fillcolor rgb \"") + colour + "\" behind";
        p.extra.push_back(cmd);
    };
    poly({project(c0, 0, n0), project(c1, 0, n0), project(c1, Sh, n0), project(c0, Sh, n0)},
         "#70B6E5");
    poly({project(c0, Sh, n0), project(c1, Sh, n0), project(c1, Sh, n1), project(c0, Sh, n1)},
         "#A9D3F0");
    if (c1 >= Cw) {  // the right side shows only when the set reaches the last channel
        poly({project(c1, 0, n0), project(c1, 0, n1), project(c1, Sh, n1), project(c1, Sh, n0)},
             "#4F97C9");
    }
    // The cube's grid lines: channel slices on the front and top, example slices on top and
    // the right side.
    auto seg = [&](P2 a, P2 b) { p.line({a.x, b.x}, {a.y, b.y}, {}, "#333333"); };
    for (double c = 0; c <= Cw; ++c) {
        seg(project(c, 0, 0), project(c, Sh, 0));
        seg(project(c, Sh, 0), project(c, Sh, Nd));
    }
    for (double n = 0; n <= Nd; ++n) {
        seg(project(0, Sh, n), project(Cw, Sh, n));
        seg(project(Cw, 0, n), project(Cw, Sh, n));
    }
    seg(project(0, 0, 0), project(Cw, 0, 0));
    seg(project(Cw, 0, 0), project(Cw, 0, Nd));
    for (auto& s : p.series)
        s.line_width = 1.2;
    p.extra.push_back("set label 1 \"C\" at " + std::to_string(Cw / 2) + ",-0.35 center");
    p.extra.push_back("set label 2 \"H, W\" at -0.35," + std::to_string(Sh / 2) + " right");
    p.extra.push_back("set label 3 \"N\" at " + std::to_string(Cw + 0.55 * Nd / 2 + 0.3) + "," +
                      std::to_string(0.45 * Nd / 2 - 0.1) + " left");
}

// ---- the experiment's steps -----------------------------------------------------------------

// The skewed map x [4, C, H, W], and the batches of 2 and 64 the forward times are taken on.
struct Inputs {
    Tensor x, x2, x64;
};

Inputs make_inputs(std::uint64_t seed) {
    tg::Generator gen(seed);
    Inputs in{Tensor(skewed_input(4, gen)), Tensor(skewed_input(2, gen)),
              Tensor(skewed_input(64, gen))};
    const Stats s = stats(in.x.value());
    std::printf(
        "Input [4, 64, 28, 28]: mean %.3f, std %.3f; channel means %.2f..%.2f, "
        "channel stds %.2f..%.2f\n\n",
        s.mean, s.std, s.ch_mean_lo, s.ch_mean_hi, s.ch_std_lo, s.ch_std_hi);
    return in;
}

// The normalisations compared, one row of the table each.
std::vector<Layer> norm_layers() {
    return {
        {"BatchNorm2d(64)", "batchnorm", "(N, H, W) per channel",
         [] { return std::make_unique<tg::nn::BatchNorm2d>(C); }},
        {"LayerNorm([64,28,28])", "layernorm", "(C, H, W) per example",
         [] {
             return std::make_unique<tg::nn::LayerNorm>(tg::Shape{C, H, W});
         }},
        {"GroupNorm(8, 64)", "groupnorm", "(C/8, H, W) per example, group",
         [] { return std::make_unique<tg::nn::GroupNorm>(8, C); }},
        {"InstanceNorm2d(64)", "instancenorm", "(H, W) per example, channel",
         [] { return std::make_unique<tg::nn::InstanceNorm2d>(C); }},
        {"RMSNorm([64,28,28])", "rmsnorm", "(C, H, W) per example, no mean",
         [] {
             return std::make_unique<tg::nn::RMSNorm>(tg::Shape{C, H, W});
         }},
    };
}

// What the table shows of one layer.
struct Row {
    Stats s;                   // of its training-mode output on x
    double batch_dep = 0;      // largest change of example 0's output with another partner
    double train_eval = 0;     // largest |train-mode output − eval-mode output|
    double ms2 = 0, ms64 = 0;  // forward milliseconds at N = 2 and N = 64
};

Row measure(const Layer& l, const Inputs& in, std::size_t repeats) {
    auto layer = l.make();
    Row row;
    layer->train();
    const Array y_train = (*layer)(in.x).value();
    row.s = stats(y_train);
    // Depends on the batch: example 0 alone (with example 1, as BN needs 2) vs in x.
    Array pair = Array::from_shape({2, C, H, W});
    std::copy(in.x.value().data(), in.x.value().data() + 2 * C * H * W, pair.data());
    for (std::size_t i = 0; i < C * H * W; ++i)
        pair.data()[C * H * W + i] = -pair.data()[C * H * W + i];  // another partner
    const Array y_pair = (*layer)(Tensor(pair)).value();
    for (std::size_t i = 0; i < C * H * W; ++i)
        row.batch_dep = std::max(
            row.batch_dep, std::abs(static_cast<double>(y_pair.data()[i]) - y_train.data()[i]));
    layer->eval();
    row.train_eval = max_abs_diff((*layer)(in.x).value(), y_train);
    layer->train();
    row.ms2 = forward_ms(*layer, in.x2, repeats);
    row.ms64 = forward_ms(*layer, in.x64, repeats);
    return row;
}

void print_header() {
    std::printf("  %-22s %-31s %7s %6s  %-13s %-12s %9s %9s %9s %9s\n", "layer",
                "one set = values over", "mean", "std", "channel means", "channel stds",
                "batch dep", "|train−eval|", "ms @ N=2", "ms @ N=64");
}

// Prints the layer's row and notes it in the facts.
void report(const Layer& l, const Row& r, gotchas::Facts& facts) {
    char means[32], stds[32];
    std::snprintf(means, sizeof means, "%.2f..%.2f", r.s.ch_mean_lo, r.s.ch_mean_hi);
    std::snprintf(stds, sizeof stds, "%.2f..%.2f", r.s.ch_std_lo, r.s.ch_std_hi);
    std::printf("  %-22s %-31s %7.3f %6.3f  %-13s %-12s %9.3g %9.3g %9.3f %9.3f\n", l.name.c_str(),
                l.set.c_str(), r.s.mean, r.s.std, means, stds, r.batch_dep, r.train_eval, r.ms2,
                r.ms64);
    const std::pair<const char*, double> numbers[] = {
        {"_mean", r.s.mean},
        {"_std", r.s.std},
        {"_channel_mean_lo", r.s.ch_mean_lo},
        {"_channel_mean_hi", r.s.ch_mean_hi},
        {"_channel_std_lo", r.s.ch_std_lo},
        {"_channel_std_hi", r.s.ch_std_hi},
        {"_batch_dependence", r.batch_dep},
        {"_train_eval_diff", r.train_eval},
        {"_ms_batch2", r.ms2},
        {"_ms_batch64", r.ms64},
    };
    for (const auto& [suffix, value] : numbers)
        facts.number(l.key + suffix, value);
}

void print_footnote() {
    std::printf(
        "\nBatch dep: the largest change of example 0's output when its batch partner "
        "changes\n(only BatchNorm's output depends on the rest of the batch). |train−eval|: "
        "BatchNorm's eval mode uses\nrunning statistics (here after one update from "
        "0 and 1), the others compute the same thing in both modes.\nLayerNorm leaves "
        "the channel means skewed: it normalises each example's (C, H, W) values together.\n"
        "RMSNorm divides the same values by their root mean square and subtracts nothing: "
        "the output's\nmean square is 1, its mean is the input's mean over its RMS.\n");
}

// The figure: which values form one set, one cube per normalisation.
std::string draw_axes(const std::string& out) {
    tg::viz::Figure fig(1, 5, 2100, 470);
    fig.suptitle =
        "Which values are normalised together (one set shaded): N examples, "
        "C channels, H, W positions";
    cube_panel(fig.panel(0, 0), "BatchNorm", 2, 3, 0, 4, 10);
    cube_panel(fig.panel(0, 1), "LayerNorm", 0, 8, 0, 1, 20);
    cube_panel(fig.panel(0, 2), "GroupNorm (4 groups drawn)", 2, 4, 0, 1, 30);
    cube_panel(fig.panel(0, 3), "InstanceNorm", 2, 3, 0, 1, 40);
    cube_panel(fig.panel(0, 4), "RMSNorm (LayerNorm's set, no centring)", 0, 8, 0, 1, 50);
    return fig.save(fs::path(out) / "ch310_norm_axes.png").message;
}

}  // namespace

int main(int argc, char** argv) {
    tg::examples::Cli cli(
        "ch310_norm_family",
        "BatchNorm, LayerNorm, GroupNorm, InstanceNorm and RMSNorm on the same skewed feature map "
        "[4, 64, 28, 28]: output statistics, axes, train/eval difference, forward time.");
    auto& common = cli.add_common({}, /*with_seeds=*/false,
                                  /*with_dataset=*/false);
    std::size_t repeats = 21;
    cli.option("--repeats", repeats, "timed forward passes per layer and batch size (median)",
               tg::examples::between(1, 1000));
    cli.quick_help("3 timing repeats (for the tests)");
    cli.outputs(
        "ch310_norm_axes.png (+ .gp, CSV) and ch310_norm_family_facts.json. Forward times are "
        "this machine's, and noisy when it is loaded.");
    if (const auto exit_code = cli.parse(argc, argv)) return *exit_code;

    try {
        cli.prepare();  // --threads applied, --out created and checked writable
        if (common.quick) repeats = std::min<std::size_t>(repeats, 3);
        const Inputs in = make_inputs(common.seed);
        gotchas::Facts facts;
        print_header();
        tg::NoGradGuard no_grad;
        for (const Layer& l : norm_layers())
            report(l, measure(l, in, repeats), facts);
        print_footnote();
        std::cout << "\n" << draw_axes(common.out) << "\n";
        std::cout << "Facts: " << facts.save(common.out, "ch310_norm_family").string() << "\n";
    } catch (const std::exception& e) {
        std::cerr << "ch310_norm_family: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
