// ch310_variance_convention — biased or unbiased variance: which one BatchNorm uses where, and
// what goes wrong, measured, when an implementation swaps them (batch sizes 2 to 512).
//
// PyTorch's convention (and tapegrad's, tg::batch_norm):
//   normalise with the BIASED batch variance       σ²_B = 1/B Σ (x − μ)²
//   store the UNBIASED one in running_var          running_var ← (1−m) running_var + m σ²_B·B/(B−1)
// Each is right for its job: x̂ = (x − μ)/σ_B has exactly mean 0 and variance 1 over the batch,
// and running_var estimates the population variance σ² that eval mode divides by.
// Two mistakes, each measured here on features x ~ N(3, 2²):
//   (a) normalising with the unbiased variance: the training output has variance (B−1)/B
//       instead of 1 (0.5 at B = 2);
//   (b) storing the biased variance: running_var → σ²·(B−1)/B, too small, so in eval mode the
//       outputs have variance B/(B−1) (2 at B = 2): train and eval disagree.
// Both vanish as B grows; at the small batches where BN is used in detection and segmentation
// they are large.
//
//     ./build/release/examples/ch310_variance_convention        # --quick: fewer batch sizes
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "common/cli.hpp"
#include "gotchas/facts.hpp"
#include "tapegrad/nn/nn.hpp"
#include "tapegrad/random.hpp"
#include "tapegrad/tape.hpp"
#include "tapegrad/viz/viz.hpp"

namespace fs = std::filesystem;
using tg::Array;
using tg::Tensor;

namespace {

constexpr double kMean = 3.0, kStd = 2.0;  // the features' true distribution
constexpr std::size_t C = 16;              // features (the measured numbers average over them)

Array features(std::size_t N, tg::Generator& gen) {
    Array x = Array::from_shape({N, C});
    for (auto& v : x)
        v = static_cast<tg::real>(gen.normal(kMean, kStd));
    return x;
}

struct Moments {
    std::vector<double> mean, var;  // per feature; var biased
};

Moments moments(const Array& x) {
    const std::size_t N = x.shape()[0];
    Moments m{std::vector<double>(C, 0.0), std::vector<double>(C, 0.0)};
    for (std::size_t c = 0; c < C; ++c) {
        for (std::size_t n = 0; n < N; ++n)
            m.mean[c] += x(n, c);
        m.mean[c] /= static_cast<double>(N);
        for (std::size_t n = 0; n < N; ++n)
            m.var[c] += (x(n, c) - m.mean[c]) * (x(n, c) - m.mean[c]);
        m.var[c] /= static_cast<double>(N);
    }
    return m;
}

double average(const std::vector<double>& v) {
    double s = 0.0;
    for (double x : v)
        s += x;
    return s / static_cast<double>(v.size());
}

struct Row {
    std::size_t B;
    double train_var_pytorch, train_var_unbiased;  // (a): output variance in training
    double running_pytorch, running_biased;        // running_var / σ² after the steps
    double eval_var_pytorch, eval_var_biased;      // (b): output variance in eval
    double one_step_running_vs_unbiased;           // convention check, see below
};

// One batch size: `steps` training steps of a BatchNorm1d (PyTorch's convention) beside a
// biased running variance kept by hand (mistake b), then eval mode on 4096 fresh examples.
Row measure_batch_size(std::size_t B, std::size_t steps, tg::Generator& gen) {
    const double sigma2 = kStd * kStd;
    Row r{};
    r.B = B;
    tg::nn::BatchNorm1d bn(C, {.affine = false});  // PyTorch's convention
    std::vector<double> biased_running(C, 1.0);    // mistake (b): the biased σ²_B stored
    const double m = 0.1;
    tg::NoGradGuard no_grad;
    for (std::size_t s = 0; s < steps; ++s) {
        const Array x = features(B, gen);
        const Tensor y = bn(Tensor(x));
        const Moments mx = moments(x);
        for (std::size_t c = 0; c < C; ++c)
            biased_running[c] = (1 - m) * biased_running[c] + m * mx.var[c];
        if (s + 1 == steps) {
            // (a) the training output's variance over the batch, per feature
            r.train_var_pytorch = average(moments(y.value()).var);
            // normalised with the unbiased variance instead: x̂ = (x − μ)/sqrt(σ²_B·B/(B−1))
            // has variance σ²_B / (σ²_B·B/(B−1) + ε) ≈ (B−1)/B
            std::vector<double> v(C);
            for (std::size_t c = 0; c < C; ++c)
                v[c] =
                    mx.var[c] / (mx.var[c] * static_cast<double>(B) / static_cast<double>(B - 1) +
                                 bn.options.eps);
            r.train_var_unbiased = average(v);
        }
    }
    std::vector<double> rp(C), rb(C);
    for (std::size_t c = 0; c < C; ++c) {
        rp[c] = bn.running_var.value()(c) / sigma2;
        rb[c] = biased_running[c] / sigma2;
    }
    r.running_pytorch = average(rp);
    r.running_biased = average(rb);

    // (b) eval mode on fresh data: x̂ = (x − running_mean)/sqrt(running_var + ε).
    bn.eval();
    const Array fresh = features(4096, gen);
    r.eval_var_pytorch = average(moments(bn(Tensor(fresh)).value()).var);
    std::vector<double> eb(C);
    const Moments mf = moments(fresh);
    for (std::size_t c = 0; c < C; ++c)
        eb[c] = mf.var[c] / (biased_running[c] + bn.options.eps);
    r.eval_var_biased = average(eb);

    // The convention itself: one step with momentum 1 stores exactly the unbiased
    // variance of that batch (largest relative difference over the features).
    tg::nn::BatchNorm1d one(C, {.momentum = 1.0, .affine = false});
    const Array x = features(B, gen);
    one(Tensor(x));
    const Moments mx = moments(x);
    double worst = 0.0;
    for (std::size_t c = 0; c < C; ++c) {
        const double unbiased = mx.var[c] * static_cast<double>(B) / (B - 1.0);
        worst = std::max(worst, std::abs(one.running_var.value()(c) - unbiased) / unbiased);
    }
    r.one_step_running_vs_unbiased = worst;
    return r;
}

// The table of the three variances per batch size; returns the largest one-step difference
// between running_var and the unbiased batch variance over all batch sizes.
double print_table(const std::vector<Row>& rows, std::size_t steps) {
    std::printf(
        "Features x ~ N(%g, %g²), %zu features, %zu training steps per batch size "
        "(momentum 0.1), eval on 4096 fresh examples.\n",
        kMean, kStd, C, steps);
    std::printf("Variances are averaged over the features; the right value is 1 everywhere.\n\n");
    // %-25s: "σ²" is 4 bytes in UTF-8 but 2 columns on screen.
    std::printf("  %5s | %-23s | %-25s | %s\n", "", "training output var", "running_var / σ²",
                "eval output var");
    std::printf("  %5s | %11s %11s | %11s %11s | %11s %11s\n", "B", "PyTorch", "unbiased(a)",
                "PyTorch", "biased(b)", "PyTorch", "biased(b)");
    for (const Row& r : rows)
        std::printf("  %5zu | %11.4f %11.4f | %11.4f %11.4f | %11.4f %11.4f\n", r.B,
                    r.train_var_pytorch, r.train_var_unbiased, r.running_pytorch, r.running_biased,
                    r.eval_var_pytorch, r.eval_var_biased);
    std::printf(
        "\n(a) normalising with the unbiased variance: training variance (B−1)/B.\n"
        "(b) storing the biased variance: running_var ≈ σ²(B−1)/B, eval variance "
        "≈ B/(B−1).\n");
    double worst_convention = 0.0;
    for (const Row& r : rows)
        worst_convention = std::max(worst_convention, r.one_step_running_vs_unbiased);
    std::printf(
        "BatchNorm1d stores the unbiased batch variance (one step, momentum 1): "
        "largest relative difference %.2g\n",
        worst_convention);
    return worst_convention;
}

// ch310_variance_convention.csv, its three-panel figure and the facts the tests check.
void write_results(const std::vector<Row>& rows, double worst_convention, const fs::path& dir) {
    std::vector<double> xs, a_pt, a_ub, b_pt, b_bi, e_pt, e_bi;
    gotchas::Facts facts;
    for (const Row& r : rows) {
        xs.push_back(static_cast<double>(r.B));
        a_pt.push_back(r.train_var_pytorch);
        a_ub.push_back(r.train_var_unbiased);
        b_pt.push_back(r.running_pytorch);
        b_bi.push_back(r.running_biased);
        e_pt.push_back(r.eval_var_pytorch);
        e_bi.push_back(r.eval_var_biased);
        const std::string k = "B" + std::to_string(r.B) + "_";
        facts.number(k + "train_var_pytorch", r.train_var_pytorch);
        facts.number(k + "train_var_unbiased", r.train_var_unbiased);
        facts.number(k + "running_over_sigma2_pytorch", r.running_pytorch);
        facts.number(k + "running_over_sigma2_biased", r.running_biased);
        facts.number(k + "eval_var_pytorch", r.eval_var_pytorch);
        facts.number(k + "eval_var_biased", r.eval_var_biased);
        facts.number(k + "one_step_running_vs_unbiased", r.one_step_running_vs_unbiased);
    }
    tg::viz::write_csv(dir / "ch310_variance_convention.csv",
                       {{"B", xs},
                        {"train_var_pytorch", a_pt},
                        {"train_var_unbiased", a_ub},
                        {"running_over_sigma2_pytorch", b_pt},
                        {"running_over_sigma2_biased", b_bi},
                        {"eval_var_pytorch", e_pt},
                        {"eval_var_biased", e_bi}});
    tg::viz::Figure fig(1, 3, 1680, 520);
    fig.suptitle = "BatchNorm's variance conventions: PyTorch's against the two mistakes";
    const std::vector<std::string> logx{"set logscale x 2", "set xtics (2, 8, 32, 128, 512)"};
    auto& p0 = fig.panel(0, 0)
                   .set_title("(a) training output variance")
                   .set_xlabel("batch size B")
                   .set_xrange(1.6, 640)
                   .set_ylabel("variance")
                   .line(xs, a_pt, "biased batch σ² (PyTorch)", tg::viz::kBlue)
                   .markers()
                   .line(xs, a_ub, "unbiased batch σ² (mistake)", tg::viz::kRed, true)
                   .markers();
    p0.extra = logx;
    p0.legend = "bottom right";
    auto& p1 = fig.panel(0, 1)
                   .set_title("running_var / true σ²")
                   .set_xlabel("batch size B")
                   .set_xrange(1.6, 640)
                   .set_ylabel("ratio")
                   .line(xs, b_pt, "unbiased stored (PyTorch)", tg::viz::kBlue)
                   .markers()
                   .line(xs, b_bi, "biased stored (mistake)", tg::viz::kRed, true)
                   .markers();
    p1.extra = logx;
    p1.legend = "bottom right";
    auto& p2 = fig.panel(0, 2)
                   .set_title("(b) eval output variance")
                   .set_xlabel("batch size B")
                   .set_xrange(1.6, 640)
                   .set_ylabel("variance")
                   .line(xs, e_pt, "unbiased stored (PyTorch)", tg::viz::kBlue)
                   .markers()
                   .line(xs, e_bi, "biased stored (mistake)", tg::viz::kRed, true)
                   .markers();
    p2.extra = logx;
    p2.legend = "center right";
    std::cout << "\n" << fig.save(dir / "ch310_variance_convention.png").message << "\n";
    facts.number("worst_convention", worst_convention);
    std::cout << "Facts: " << facts.save(dir, "ch310_variance_convention").string() << "\n";
}

}  // namespace

int main(int argc, char** argv) {
    tg::examples::Cli cli(
        "ch310_variance_convention",
        "Biased vs unbiased variance in BatchNorm: PyTorch's convention against the two "
        "mistakes, measured at batch sizes 2 to 512.");
    auto& common = cli.add_common({}, /*with_seeds=*/false,
                                  /*with_dataset=*/false);
    std::size_t steps = 200;
    cli.option("--steps", steps, "training steps per batch size (running statistics)",
               tg::examples::between(50, 100000));
    cli.quick_help("batch sizes 2, 8, 64, 512 and 150 steps (for the tests)");
    cli.outputs(
        "ch310_variance_convention.png (+ .gp, CSV) and ch310_variance_convention_facts.json.");
    if (const auto exit_code = cli.parse(argc, argv)) return *exit_code;

    try {
        cli.prepare();  // --threads applied, --out created and checked writable
        std::vector<std::size_t> sizes{2, 4, 8, 16, 32, 64, 128, 256, 512};
        if (common.quick) {
            sizes = {2, 8, 64, 512};
            steps = std::min<std::size_t>(steps, 150);
        }
        tg::Generator gen(common.seed);
        std::vector<Row> rows;
        for (const std::size_t B : sizes)
            rows.push_back(measure_batch_size(B, steps, gen));
        const double worst_convention = print_table(rows, steps);
        write_results(rows, worst_convention, common.out);
    } catch (const std::exception& e) {
        std::cerr << "ch310_variance_convention: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
