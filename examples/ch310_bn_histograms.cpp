// ch310_bn_histograms — the chapter's figure: what Batch Normalisation does to the
// distribution of activations, for batch sizes B = 8, 32, 128 and 512.
//
// Three parts (--figures; all by default):
//
//   synthetic  The chapter's figure. A batch of B examples with 64 features each, every value
//              drawn from N(5, 3²): x [B, 64]. Batch normalisation in training mode, without
//              γ and β (the chapter's figure), per feature j over the batch:
//                  μ_j = 1/B Σ_n x[n, j]      σ²_j = 1/B Σ_n (x[n, j] − μ_j)²
//                  y[n, j] = (x[n, j] − μ_j) / sqrt(σ²_j + ε)
//              Top row: the histogram of all B·64 values of x (red); bottom row: of y (blue).
//
//   noise      μ_j and σ²_j are estimates from B examples, not the population's 5 and 9. Over
//              many batches their spread is σ/√B and σ²·√(2/(B−1)): the noise the chapter
//              warns about at B = 8, falling as B grows. A table and a log-log figure.
//
//   cnn        The same 2 x 4 figure from real activations: a small CNN on the bundled MNIST
//              digits, briefly trained; forward hooks record the output of its first conv layer
//              (before BN) and of the BatchNorm2d after it, for one batch of each size.
//
// Every figure is a PNG drawn by gnuplot, next to its script (<name>.gp, edit and re-run
// `gnuplot <name>.gp` to restyle it) and its data (<name>_r<row>c<col>_s0.csv). The
// per-feature statistics after BN are written to <name>_stats.csv (the tests check them).
//
//     ./build/release/examples/ch310_bn_histograms              # all three, into out/ch310
//     ./build/release/examples/ch310_bn_histograms --figures synthetic --seed 7
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "common/cli.hpp"
#include "common/experiment.hpp"

#include "tapegrad/data/dataset.hpp"
#include "tapegrad/data/loader.hpp"
#include "tapegrad/kernels.hpp"
#include "tapegrad/memory.hpp"
#include "tapegrad/nn/nn.hpp"
#include "tapegrad/ops/loss.hpp"
#include "tapegrad/ops/normalization.hpp"
#include "tapegrad/optim/sgd.hpp"
#include "tapegrad/random.hpp"
#include "tapegrad/tape.hpp"
#include "tapegrad/viz/viz.hpp"

namespace fs = std::filesystem;
namespace viz = tg::viz;

namespace {

// The chapter's batch sizes, its 64 features from N(5, 3²), and BatchNorm's default ε.
// The chapter's batch sizes (--batch-sizes changes them): the columns of both 2 x 4 figures.
const std::vector<std::size_t> kDefaultBatchSizes = {8, 32, 128, 512};
constexpr std::size_t kFeatures = 64;
constexpr double kMu = 5.0, kSigma = 3.0;
constexpr double kEps = 1e-5;
constexpr std::size_t kBins = 40;  // the chapter's histograms: 40 bins over the data's range

std::string batch_label(std::size_t B) {
    return "(B=" + std::to_string(B) + ")";
}

// Per-channel mean and biased variance of a [N, C, *] array (a feature is a channel of a
// [N, C] array), over the N examples and every position *, summed in double.
struct ChannelStats {
    std::vector<double> mean, var;
};

ChannelStats channel_stats(const tg::Array& a) {
    const std::size_t N = a.shape()[0], C = a.shape()[1], S = a.size() / (N * C);
    ChannelStats s{std::vector<double>(C, 0.0), std::vector<double>(C, 0.0)};
    const tg::real* p = a.data();
    for (std::size_t n = 0; n < N; ++n)
        for (std::size_t c = 0; c < C; ++c)
            for (std::size_t i = 0; i < S; ++i)
                s.mean[c] += p[(n * C + c) * S + i];
    for (auto& m : s.mean)
        m /= static_cast<double>(N * S);
    for (std::size_t n = 0; n < N; ++n)
        for (std::size_t c = 0; c < C; ++c)
            for (std::size_t i = 0; i < S; ++i) {
                const double d = p[(n * C + c) * S + i] - s.mean[c];
                s.var[c] += d * d;
            }
    for (auto& v : s.var)
        v /= static_cast<double>(N * S);
    return s;
}

// The rows of a *_stats.csv file: one per (batch size, channel).
struct StatsTable {
    std::vector<double> batch, channel, in_mean, in_var, out_mean, out_var, expect_mean, expect_var;

    // Channel c of a batch of size B normalised as y = γ (x − μ) / sqrt(σ² + ε) + β:
    // mean(y) = β and var(y) = γ² σ² / (σ² + ε), exactly, whatever x was.
    void add(std::size_t B, const ChannelStats& in, const ChannelStats& out,
             const std::vector<double>& gamma, const std::vector<double>& beta) {
        for (std::size_t c = 0; c < in.mean.size(); ++c) {
            batch.push_back(static_cast<double>(B));
            channel.push_back(static_cast<double>(c));
            in_mean.push_back(in.mean[c]);
            in_var.push_back(in.var[c]);
            out_mean.push_back(out.mean[c]);
            out_var.push_back(out.var[c]);
            expect_mean.push_back(beta[c]);
            expect_var.push_back(gamma[c] * gamma[c] * in.var[c] / (in.var[c] + kEps));
        }
    }

    void write(const fs::path& path) const {
        viz::write_csv(path, {{"batch_size", batch},
                              {"channel", channel},
                              {"in_mean", in_mean},
                              {"in_var", in_var},
                              {"out_mean", out_mean},
                              {"out_var", out_var},
                              {"expected_out_mean", expect_mean},
                              {"expected_out_var", expect_var}});
    }

    // The largest |mean(y) − β| and |var(y) − γ²σ²/(σ² + ε)| over every row.
    std::pair<double, double> worst() const {
        double dm = 0, dv = 0;
        for (std::size_t i = 0; i < out_mean.size(); ++i) {
            dm = std::max(dm, std::abs(out_mean[i] - expect_mean[i]));
            dv = std::max(dv, std::abs(out_var[i] - expect_var[i]));
        }
        return {dm, dv};
    }
};

// One terminal line per histogram, at most 80 columns: its label, range, shape and peak. The
// sparkline has one character per `merge` adjacent bins (density of the merged bin =
// its count / (N · its width)), at most 30 characters.
void print_spark(const std::string& label, const viz::Histogram& h) {
    const std::size_t merge = (h.bins() + 29) / 30;
    viz::Histogram coarse;
    std::size_t total = 0;
    for (std::size_t c : h.counts)
        total += c;
    for (std::size_t i = 0; i < h.bins(); i += merge) {
        const std::size_t j = std::min(i + merge, h.bins());
        std::size_t count = 0;
        for (std::size_t k = i; k < j; ++k)
            count += h.counts[k];
        coarse.edges.push_back(h.edges[i]);
        coarse.counts.push_back(count);
        coarse.density.push_back(total == 0
                                     ? 0.0
                                     : static_cast<double>(count) / (static_cast<double>(total) *
                                                                     (h.edges[j] - h.edges[i])));
    }
    coarse.edges.push_back(h.hi());
    std::printf("  %-17s %6.2f %s %-6.2f peak %.3f\n", label.c_str(), h.lo(),
                viz::sparkline(coarse).c_str(), h.hi(), h.max_density());
}

// Where the figure went (the library puts the re-render hint on a line of its own), indented.
void report(const viz::RenderResult& r) {
    std::string m = r.message;
    for (auto at = m.find('\n'); at != std::string::npos; at = m.find('\n', at + 3))
        m.insert(at + 1, "  ");
    std::cout << "  " << m << "\n";
}

// ---------------------------------------------------------------------------------------------
// Part 1: the chapter's figure, from N(5, 3²) samples.

void synthetic_figure(std::uint64_t seed, const std::vector<std::size_t>& batch_sizes,
                      const fs::path& out) {
    std::cout << "Synthetic activations: x [B, 64] ~ N(5, 3²),\n"
                 "y = batch_norm(x) in training mode (no γ, β)\n";
    tg::Generator gen(seed);
    viz::Figure fig(2, batch_sizes.size());
    fig.suptitle = "Batch Normalisation: distribution before/after, across batch sizes";
    StatsTable stats;
    for (std::size_t col = 0; col < batch_sizes.size(); ++col) {
        const std::size_t B = batch_sizes[col];
        // x [B, 64]: B examples of 64 features, every value from N(5, 3²).
        const tg::Tensor x(tg::normal({B, kFeatures}, kMu, kSigma, gen));

        // Batch normalisation in training mode: each feature is normalised with this batch's
        // mean and biased variance. No running statistics and no γ, β (undefined tensors),
        // as in the chapter's figure; momentum is unused without running statistics.
        const tg::Tensor y = tg::batch_norm(x, /*running_mean=*/{}, /*running_var=*/{},
                                            /*weight=*/{}, /*bias=*/{}, /*training=*/true,
                                            /*momentum=*/0.1, kEps);

        // All B·64 values pooled into one histogram per panel, 40 bins over their range.
        const viz::Histogram before = viz::histogram(x.value(), kBins);
        const viz::Histogram after = viz::histogram(y.value(), kBins);
        fig.panel(0, col)
            .set_title("Before BN " + batch_label(B))
            .set_xlabel("x (feature value)")
            .set_xrange(-5, 15)
            .bars(before, viz::kRed);
        fig.panel(1, col)
            .set_title("After BN " + batch_label(B))
            .set_xlabel("x̂ = (x − μ_B) / √(σ²_B + ε)")
            .set_xrange(-4, 4)
            .bars(after, viz::kBlue);
        print_spark("before BN " + batch_label(B), before);
        print_spark("after BN  " + batch_label(B), after);

        const std::vector<double> gamma(kFeatures, 1.0), beta(kFeatures, 0.0);
        stats.add(B, channel_stats(x.value()), channel_stats(y.value()), gamma, beta);
    }
    fig.panel(0, 0).set_ylabel("Density (before BN)");
    fig.panel(1, 0).set_ylabel("Density (after BN)");

    const auto [dm, dv] = stats.worst();
    std::printf(
        "  after BN, every feature of every batch: |mean| <= %.1e,\n"
        "  |var - σ²/(σ² + ε)| <= %.1e\n",
        dm, dv);
    stats.write(out / "ch310_batchnorm_stats.csv");
    report(fig.save(out / "ch310_batchnorm.png"));
}

// ---------------------------------------------------------------------------------------------
// Part 2: the noise in the batch statistics.

void noise_table(std::uint64_t seed, std::size_t batches, const fs::path& out) {
    const std::vector<std::size_t> sizes = {8, 16, 32, 64, 128, 256, 512};
    tg::Generator gen(seed);
    // With momentum 1 the running statistics batch_norm updates are exactly this batch's:
    //   running_mean = μ_B,  running_var = s²_B = σ²_B · B/(B − 1)  (the unbiased variance)
    // so they read back the statistics BatchNorm computed for the batch.
    tg::Tensor running_mean = tg::Tensor::zeros({kFeatures});
    tg::Tensor running_var = tg::Tensor::ones({kFeatures});

    std::vector<double> col_B, sd_mean, sd_mean_theory, sd_var, sd_var_theory;
    for (const std::size_t B : sizes) {
        double sq_mean = 0, sq_var = 0;  // Σ (μ_B − 5)², Σ (s²_B − 9)² over batches and features
        for (std::size_t b = 0; b < batches; ++b) {
            const tg::Tensor x(tg::normal({B, kFeatures}, kMu, kSigma, gen));
            tg::batch_norm(x, running_mean, running_var, {}, {}, /*training=*/true,
                           /*momentum=*/1.0, kEps);
            for (std::size_t j = 0; j < kFeatures; ++j) {
                const double dm = running_mean.value()(j) - kMu;
                const double dv = running_var.value()(j) - kSigma * kSigma;
                sq_mean += dm * dm;
                sq_var += dv * dv;
            }
        }
        const double n = static_cast<double>(batches * kFeatures);
        col_B.push_back(static_cast<double>(B));
        sd_mean.push_back(std::sqrt(sq_mean / n));
        sd_var.push_back(std::sqrt(sq_var / n));
        // For normal data: sd(μ_B) = σ/√B, sd(s²_B) = σ²·√(2/(B − 1)).
        sd_mean_theory.push_back(kSigma / std::sqrt(static_cast<double>(B)));
        sd_var_theory.push_back(kSigma * kSigma * std::sqrt(2.0 / static_cast<double>(B - 1)));
    }

    std::printf(
        "Noise in the batch statistics: %zu batches of B x %zu features from N(5, 3²)\n"
        "(sd = root-mean-square distance from the population's mean 5 and variance 9,\n"
        " over the %zu x %zu batch means μ_B and unbiased batch variances s²_B)\n\n",
        batches, kFeatures, batches, kFeatures);
    std::printf("      B │ sd(μ_B)   theory σ/√B │ sd(s²_B)  theory σ²√(2/(B−1))   as %% of σ²\n");
    std::printf("  ──────┼───────────────────────┼──────────────────────────────────────────\n");
    for (std::size_t i = 0; i < sizes.size(); ++i) {
        std::printf("  %5zu │ %7.3f   %7.3f     │ %7.3f   %7.3f               %5.1f%%\n", sizes[i],
                    sd_mean[i], sd_mean_theory[i], sd_var[i], sd_var_theory[i],
                    100.0 * sd_var[i] / (kSigma * kSigma));
    }
    std::printf(
        "\n  At B = 8 a batch's mean is typically off by %.2f (a third of σ) and its\n"
        "  variance by %.0f%%: every example's normalised value depends on which 7 others\n"
        "  share its batch. At B = 512 the errors are %.2f and %.0f%%.\n",
        sd_mean[0], 100.0 * sd_var[0] / 9.0, sd_mean.back(), 100.0 * sd_var.back() / 9.0);

    viz::write_csv(out / "ch310_batch_noise.csv", {{"batch_size", col_B},
                                                   {"sd_mean", sd_mean},
                                                   {"sd_mean_theory", sd_mean_theory},
                                                   {"sd_var", sd_var},
                                                   {"sd_var_theory", sd_var_theory}});
    viz::Figure fig(1, 2, 1200, 480);
    fig.suptitle = "Noise in the batch statistics, " + std::to_string(batches) +
                   " batches of 64 features from N(5, 3²)";
    const std::vector<std::string> log_x = {
        "set logscale x 2", "set xtics (8, 16, 32, 64, 128, 256, 512)", "set format x \"%g\""};
    fig.panel(0, 0)
        .set_title("Batch mean μ_B around 5")
        .set_xlabel("batch size B")
        .set_ylabel("sd(μ_B)")
        .set_xrange(6, 680)
        .line(col_B, sd_mean, "measured", viz::kBlue)
        .markers()
        .line(col_B, sd_mean_theory, "σ/√B", "#555555", /*dashed=*/true)
        .logy = true;
    fig.panel(0, 1)
        .set_title("Batch variance s²_B around 9")
        .set_xlabel("batch size B")
        .set_ylabel("sd(s²_B)")
        .set_xrange(6, 680)
        .line(col_B, sd_var, "measured", viz::kRed)
        .markers()
        .line(col_B, sd_var_theory, "σ²·√(2/(B−1))", "#555555", /*dashed=*/true)
        .logy = true;
    fig.panel(0, 0).extra = log_x;
    fig.panel(0, 1).extra = log_x;
    report(fig.save(out / "ch310_batch_noise.png"));
}

// ---------------------------------------------------------------------------------------------
// Part 3: real activations, from the first conv layer of a CNN on MNIST.

// The q-quantile (0 <= q <= 1) of the values of `a`, for axis ranges.
double quantile(const tg::Array& a, double q) {
    std::vector<tg::real> v(a.begin(), a.end());
    const auto k = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1));
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
    return v[k];
}

// An axis range [-r, r], r a whole number, holding all but the outer 0.1% of every batch's
// values.
viz::Range common_range(const std::vector<tg::Array>& batches) {
    double r = 0;
    for (const auto& a : batches)
        r = std::max({r, -quantile(a, 0.001), quantile(a, 0.999)});
    r = std::ceil(r);
    return {-r, r};
}

// How far the per-channel batch statistics of conv1's output (what bn1 normalises with) are
// from the channel's statistics over the whole training set, relative to its σ and σ².
struct ChannelNoise {
    double sd_mean = 0, sd_var = 0;  // RMS of (μ_B − μ)/σ and (σ²_B − σ²)/σ²
};

ChannelNoise conv_noise(tg::nn::Conv2d& conv, const std::shared_ptr<const tg::data::Dataset>& data,
                        const ChannelStats& population, std::size_t B, std::size_t batches,
                        const tg::data::DataLoaderOptions& options) {
    tg::data::DataLoaderOptions o = options;
    o.batch_size = B;
    tg::data::DataLoader loader(data, o);
    double sq_mean = 0, sq_var = 0;
    const std::size_t C = population.mean.size();
    for (std::size_t k = 0; k < batches; ++k) {
        // The first batch of epoch k: B images drawn afresh each time.
        const ChannelStats s = channel_stats(conv(loader.epoch(k).begin()->images).value());
        for (std::size_t c = 0; c < C; ++c) {
            const double dm = (s.mean[c] - population.mean[c]) / std::sqrt(population.var[c]);
            const double dv = (s.var[c] - population.var[c]) / population.var[c];
            sq_mean += dm * dm;
            sq_var += dv * dv;
        }
    }
    const double n = static_cast<double>(batches * C);
    return {std::sqrt(sq_mean / n), std::sqrt(sq_var / n)};
}

// conv's per-channel mean and biased variance over every image of `data`, in chunks of 500.
ChannelStats conv_population(tg::nn::Conv2d& conv,
                             const std::shared_ptr<const tg::data::Dataset>& data,
                             tg::data::DataLoaderOptions options) {
    options.batch_size = 500;
    options.shuffle = false;
    tg::data::DataLoader loader(data, options);
    std::vector<double> sum, sum_sq;
    double count = 0;
    for (const auto& [images, labels] : loader.epoch(0)) {
        const tg::Array y = conv(images).value();  // [N, C, H, W]
        const std::size_t N = y.shape()[0], C = y.shape()[1], S = y.size() / (N * C);
        sum.resize(C, 0.0);
        sum_sq.resize(C, 0.0);
        const tg::real* p = y.data();
        for (std::size_t n = 0; n < N; ++n)
            for (std::size_t c = 0; c < C; ++c)
                for (std::size_t i = 0; i < S; ++i) {
                    const double v = p[(n * C + c) * S + i];
                    sum[c] += v;
                    sum_sq[c] += v * v;
                }
        count += static_cast<double>(N * S);
    }
    ChannelStats s;
    for (std::size_t c = 0; c < sum.size(); ++c) {
        s.mean.push_back(sum[c] / count);
        s.var.push_back(sum_sq[c] / count - s.mean[c] * s.mean[c]);
    }
    return s;
}

void cnn_figure(std::uint64_t seed, std::size_t train_steps, std::size_t noise_batches,
                std::vector<std::size_t> batch_sizes, const std::string& dataset,
                const fs::path& out) {
    // The LeNet-style CNN of ch310_train_cnn with BatchNorm (examples/common):
    //   [N, 1, 28, 28] → conv 5x5 pad 2 → [N, 6, 28, 28] → BN → ReLU → pool → [N, 6, 14, 14]
    //   → conv 5x5 → [N, 16, 10, 10] → BN → ReLU → pool → [N, 16, 5, 5] → 400 → 120 → 84 → 10
    tg::nn::Sequential model = tg::examples::make_cnn({.norm = tg::examples::Norm::batch}, seed);
    auto& conv1 = model.at<tg::nn::Conv2d>(0);
    auto& bn1 = model.at<tg::nn::BatchNorm2d>(1);

    const auto train = std::make_shared<const tg::data::Dataset>(
        tg::data::load_dataset(dataset, tg::data::Split::train));
    // The synthetic figures draw any batch size; real batches are at most the training set.
    for (std::size_t& B : batch_sizes) {
        B = tg::examples::cap_batch_size("ch310_bn_histograms", "--batch-sizes", B, train->size(),
                                         "training images");
    }
    const auto [pixel_mean, pixel_std] = tg::data::pixel_mean_std(*train);
    const tg::data::DataLoaderOptions inputs{
        .batch_size = 64, .shuffle = true, .seed = seed, .mean = pixel_mean, .std = pixel_std};

    // A short training run, so the filters are digit features rather than random weights.
    if (train_steps > 0) {
        tg::data::DataLoader loader(train, inputs);
        tg::optim::SGD opt(model.parameters(), {.lr = 0.05, .momentum = 0.9});
        std::size_t step = 0;
        double first_loss = 0, last_loss = 0;
        for (std::size_t epoch = 0; step < train_steps; ++epoch) {
            for (const auto& [images, labels] : loader.epoch(epoch)) {
                if (step == train_steps) break;
                tg::Tape tape;
                const tg::Tensor loss = tg::cross_entropy(model(images), labels);
                if (!std::isfinite(loss.item())) {  // diverged: stop, saying so
                    throw std::runtime_error(
                        tg::examples::diverged_message(step + 1, epoch + 1, loss.item()));
                }
                opt.zero_grad();
                tape.backward(loss);
                opt.step();
                if (step == 0) first_loss = loss.item();
                last_loss = loss.item();
                ++step;
            }
        }
        std::printf(
            "Real activations: a CNN trained for %zu steps on %s\n(batch 64, SGD lr 0.05, "
            "momentum 0.9; loss %.3f → %.3f);\nits first layers are Conv2d(1, 6, 5) → "
            "BatchNorm2d(6)\n",
            train_steps, train->name.c_str(), first_loss, last_loss);
    } else {
        std::printf(
            "Real activations: an untrained CNN; its first layers are Conv2d(1, 6, 5) → "
            "BatchNorm2d(6)\n");
    }
    const auto to_vector = [](const tg::Tensor& t) {
        return std::vector<double>(t.value().begin(), t.value().end());
    };
    const std::vector<double> gamma = to_vector(bn1.weight), beta = to_vector(bn1.bias);
    std::printf("  bn1's learned γ in [%.3f, %.3f], β in [%.3f, %.3f]:\n  after BN is γ x̂ + β\n",
                *std::min_element(gamma.begin(), gamma.end()),
                *std::max_element(gamma.begin(), gamma.end()),
                *std::min_element(beta.begin(), beta.end()),
                *std::max_element(beta.begin(), beta.end()));

    // Forward hooks record what the first conv layer and its BatchNorm2d return.
    tg::Array pre_bn, post_bn;
    auto pre_hook = conv1.register_forward_hook(
        [&](const std::string&, const tg::Tensor&, const tg::Tensor& y) {
            pre_bn = y.value();  // [B, 6, 28, 28]
        });
    auto post_hook =
        bn1.register_forward_hook([&](const std::string&, const tg::Tensor&, const tg::Tensor& y) {
            post_bn = y.value();  // [B, 6, 28, 28]: γ (x − μ_B) / sqrt(σ²_B + ε) + β per channel
        });

    // One batch of each size through the model in training mode: bn1 normalises each channel
    // with the batch's own statistics, over B·28·28 values.
    tg::NoGradGuard no_grad;  // from here on only activations are wanted, not a tape
    model.train();
    std::vector<tg::Array> before, after;
    StatsTable stats;
    for (const std::size_t B : batch_sizes) {
        tg::data::DataLoaderOptions o = inputs;
        o.batch_size = B;
        o.seed = seed + B;
        const tg::data::DataLoader loader(train, o);
        model(loader.epoch(0).begin()->images);  // the hooks fill pre_bn and post_bn
        stats.add(B, channel_stats(pre_bn), channel_stats(post_bn), gamma, beta);
        before.push_back(pre_bn);
        after.push_back(post_bn);
    }
    pre_hook.remove();
    post_hook.remove();

    const viz::Range xb = common_range(before), xa = common_range(after);
    viz::Figure fig(2, batch_sizes.size());
    fig.suptitle =
        "Real activations: conv1 of a CNN on MNIST" +
        (train_steps > 0 ? " (trained " + std::to_string(train_steps) + " steps)"
                         : std::string(" (untrained)")) +
        ", before and after its BatchNorm2d in training mode; 6 channels x 28x28 positions pooled";
    for (std::size_t col = 0; col < batch_sizes.size(); ++col) {
        const std::string b = batch_label(batch_sizes[col]);
        const viz::Histogram hb = viz::histogram(before[col], 60, xb.lo, xb.hi);
        const viz::Histogram ha = viz::histogram(after[col], 60, xa.lo, xa.hi);
        fig.panel(0, col)
            .set_title("Before BN " + b)
            .set_xlabel("conv1 output")
            .set_xrange(xb.lo, xb.hi)
            .bars(hb, viz::kRed);
        fig.panel(1, col)
            .set_title("After BN " + b)
            .set_xlabel("bn1 output, γ x̂ + β")
            .set_xrange(xa.lo, xa.hi)
            .bars(ha, viz::kBlue);
        print_spark("before BN " + b, hb);
        print_spark("after BN  " + b, ha);
    }
    fig.panel(0, 0).set_ylabel("Density (conv1 output)");
    fig.panel(1, 0).set_ylabel("Density (bn1 output)");

    const auto [dm, dv] = stats.worst();
    std::printf(
        "  after BN, every channel of every batch: |mean - β| <= %.1e,\n"
        "  |var - γ²σ²/(σ² + ε)| <= %.1e\n",
        dm, dv);
    stats.write(out / "ch310_batchnorm_cnn_stats.csv");
    report(fig.save(out / "ch310_batchnorm_cnn.png"));

    // The noise of these statistics. A channel's μ_B and σ²_B pool B·28·28 values, not B; but
    // neighbouring positions of one image are alike, so they count for fewer independent values.
    const ChannelStats population = conv_population(conv1, train, inputs);
    std::printf(
        "\n  Noise in bn1's batch statistics, %zu batches of each size; per channel\n"
        "  relative to its statistics over all %zu training images (σ: its standard\n"
        "  deviation there). n: values per channel; n_eff: as many independent values\n\n",
        noise_batches, train->size());
    std::printf("      B │        n │ sd(μ_B)/σ     1/√n │ sd(σ²_B)/σ² │  n_eff (per image)\n");
    std::printf("  ──────┼──────────┼────────────────────┼─────────────┼───────────────────\n");
    std::vector<double> col_B, col_n, sd_mean, sd_var;
    const std::size_t positions = pre_bn.shape()[2] * pre_bn.shape()[3];  // 28·28
    for (const std::size_t B : batch_sizes) {
        const ChannelNoise noise = conv_noise(conv1, train, population, B, noise_batches, inputs);
        const double n = static_cast<double>(B * positions);
        // n independent values would give sd(μ_B)/σ = 1/√n; the measured spread is that of
        // 1 / (sd(μ_B)/σ)² independent values.
        const double n_eff = 1.0 / (noise.sd_mean * noise.sd_mean);
        std::printf("  %5zu │ %8.0f │ %9.4f %8.4f │ %11.4f │ %6.0f (%4.0f)\n", B, n, noise.sd_mean,
                    1.0 / std::sqrt(n), noise.sd_var, n_eff, n_eff / static_cast<double>(B));
        col_B.push_back(static_cast<double>(B));
        col_n.push_back(n);
        sd_mean.push_back(noise.sd_mean);
        sd_var.push_back(noise.sd_var);
    }
    double per_image = 0;  // the mean over the batch sizes of n_eff / B
    for (std::size_t i = 0; i < col_B.size(); ++i)
        per_image += 1.0 / (sd_mean[i] * sd_mean[i] * col_B[i] * batch_sizes.size());
    const double B0 = col_B[0], synthetic = 1.0 / std::sqrt(B0);  // sd(μ_B)/σ of B values
    std::printf(
        "\n  Each image's 28x28 positions count as about %.0f independent values:\n"
        "  neighbours are alike. Still, at B = %.0f the channel means are %.0fx steadier\n"
        "  than the synthetic features' (sd(μ_B)/σ = 1/√%.0f = %.3f there, %.3f here).\n",
        per_image, B0, synthetic / sd_mean[0], B0, synthetic, sd_mean[0]);
    viz::write_csv(out / "ch310_batchnorm_cnn_noise.csv", {{"batch_size", col_B},
                                                           {"values_per_channel", col_n},
                                                           {"sd_mean_relative", sd_mean},
                                                           {"sd_var_relative", sd_var}});
}

// What to make and how much: --figures, --batch-sizes, --noise-batches, --cnn-steps.
struct Options {
    std::vector<std::string> figures = {"synthetic", "noise", "cnn"};
    std::vector<std::size_t> batch_sizes = kDefaultBatchSizes;
    std::size_t noise_batches = 200;
    std::size_t cnn_steps = 100;
};

// The flags of this program, read into `o`; returns the common ones (--seed, --dataset, ...).
tg::examples::CommonFlags& add_flags(tg::examples::Cli& cli, Options& o) {
    tg::examples::CommonFlags& flags = cli.add_common({}, /*with_seeds=*/false);
    cli.choices("--figures", o.figures,
                "which parts to make, comma-separated: synthetic (the chapter's figure), "
                "noise (spread of the batch statistics), cnn (real activations, from "
                "--dataset)",
                {"synthetic", "noise", "cnn"});
    cli.list("--batch-sizes", o.batch_sizes,
             "the batch sizes of the two histogram figures, one column each, comma-separated",
             tg::examples::between(2, 60000));
    cli.option("--noise-batches", o.noise_batches,
               "batches drawn per batch size for the noise table (the CNN's uses half as many)",
               tg::examples::between(1, 100000));
    cli.option("--cnn-steps", o.cnn_steps,
               "training steps of the CNN before its activations are recorded (0: untrained)",
               tg::examples::between(0, 100000));
    cli.quick_help("a fast run for the tests: 20 noise batches, 10 CNN steps");
    cli.outputs(
        "ch310_batchnorm.png (the chapter's figure), ch310_batch_noise.png, "
        "ch310_batchnorm_cnn.png; next to each PNG its gnuplot script (.gp: edit it, then run "
        "gnuplot on it) and the data it plots (.csv); the per-channel statistics after BN "
        "(*_stats.csv) and the noise tables (ch310_batch_noise.csv, "
        "ch310_batchnorm_cnn_noise.csv).");
    return flags;
}

}  // namespace

int main(int argc, char** argv) {
    tg::examples::Cli cli(
        "ch310_bn_histograms",
        "Histograms of activations before and after Batch Normalisation, for batch sizes 8, 32, "
        "128 and 512 (the chapter's figure), the noise in the batch statistics, and the same "
        "figure from a CNN's first layer on MNIST.");
    Options o;
    const tg::examples::CommonFlags& flags = add_flags(cli, o);
    if (const auto exit_code = cli.parse(argc, argv)) return *exit_code;
    if (o.batch_sizes.empty()) {
        std::cerr << "ch310_bn_histograms: --batch-sizes needs at least one batch size\n";
        return 2;
    }
    try {
        const fs::path out = cli.prepare();  // --threads applied, --out created and writable
        tg::tune_allocator_for_training();   // keep freed memory for the next step
        if (flags.quick) {
            o.noise_batches = std::min<std::size_t>(o.noise_batches, 20);
            o.cnn_steps = std::min<std::size_t>(o.cnn_steps, 10);
        }
        const auto wants = [&](const char* part) {
            return std::find(o.figures.begin(), o.figures.end(), part) != o.figures.end();
        };
        const std::uint64_t seed = flags.seed;
        // Each part has its own generator, so making one part does not change another's numbers.
        if (wants("synthetic")) synthetic_figure(seed, o.batch_sizes, out);
        if (wants("noise")) {
            std::cout << "\n";
            noise_table(seed + 1, o.noise_batches, out);
        }
        if (wants("cnn")) {
            std::cout << "\n";
            cnn_figure(seed + 2, o.cnn_steps, std::max<std::size_t>(5, o.noise_batches / 2),
                       o.batch_sizes, flags.dataset, out);
        }
    } catch (const std::exception& e) {
        std::cerr << "ch310_bn_histograms: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
