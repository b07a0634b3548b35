// ch310_manual_batchnorm — the chapter's from-scratch BatchNorm, written here from primitive
// ops (mean, subtract, multiply, sqrt, divide), against the library's tg::nn::BatchNorm1d: the
// article's smoke test, in C++.
//
// The manual layer, for x [N, C] (one set of N values per feature c):
//   training:  μ = mean(x, axis 0)                 σ² = mean((x − μ)², axis 0)   (biased)
//              x̂ = (x − μ) / sqrt(σ² + ε)          y = γ x̂ + β
//              running_mean ← (1 − m) running_mean + m μ
//              running_var  ← (1 − m) running_var  + m σ² · N/(N − 1)          (unbiased)
//   eval:      x̂ = (x − running_mean) / sqrt(running_var + ε)
// Both layers see the same batches; the program prints the largest difference of their
// outputs and gradients (training), of their outputs in eval mode, and their running
// statistics side by side. Everything is float32, so "equal" means within rounding: the
// differences, relative to the values' scale (max(1, max |value|)), are of order 1e-7.
// --scale multiplies the features' means and spreads; where float32 overflows (1e38) the loss
// Σ y·dy is not finite and the program stops at that step in one line (exit 1) instead of
// comparing NaNs; a NaN difference anywhere else makes the verdict FAIL.
//
//     ./build/release/examples/ch310_manual_batchnorm            # --quick: fewer steps
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/cli.hpp"
#include "common/experiment.hpp"
#include "gotchas/facts.hpp"
#include "tapegrad/nn/nn.hpp"
#include "tapegrad/ops/elementwise.hpp"
#include "tapegrad/ops/reduce.hpp"
#include "tapegrad/random.hpp"
#include "tapegrad/tape.hpp"

namespace fs = std::filesystem;
using tg::Array;
using tg::Tensor;

namespace {

// The chapter's BatchNorm from scratch, on x [N, C].
struct ManualBatchNorm {
    explicit ManualBatchNorm(std::size_t C)
        : gamma(Tensor::ones({C}, true)),
          beta(Tensor::zeros({C}, true)),
          running_mean(Array::from_shape({C})),
          running_var(Array::from_shape({C})) {
        running_mean.fill(0);
        running_var.fill(1);
    }

    Tensor forward(const Tensor& x) {
        const std::size_t N = x.size(0);
        Tensor mu, var;
        if (training) {
            mu = tg::mean(x, {0}, /*keepdim=*/true);                   // [1, C]
            const Tensor centred = x - mu;                             // x − μ
            var = tg::mean(centred * centred, {0}, /*keepdim=*/true);  // biased σ²
            // The running statistics are plain numbers: no gradient flows into them.
            for (std::size_t c = 0; c < running_mean.size(); ++c) {
                const double m = mu.value().flat(c), v = var.value().flat(c);
                running_mean(c) =
                    static_cast<tg::real>((1 - momentum) * running_mean(c) + momentum * m);
                running_var(c) = static_cast<tg::real>((1 - momentum) * running_var(c) +
                                                       momentum * v * static_cast<double>(N) /
                                                           static_cast<double>(N - 1));
            }
        } else {
            mu = Tensor(Array(running_mean));
            var = Tensor(Array(running_var));
        }
        const Tensor xhat = (x - mu) / tg::sqrt(var + static_cast<tg::real>(eps));
        return gamma * xhat + beta;  // γ, β [C] broadcast over the batch
    }

    Tensor gamma, beta;
    Array running_mean, running_var;
    double momentum = 0.1, eps = 1e-5;
    bool training = true;
};

// max |a − b| / max(1, max |b|): the largest difference relative to the values' scale (a
// gradient summed over the batch is in the hundreds here, and float32 keeps ~7 digits).
// A NaN anywhere is the answer (std::max would drop it and report the rest as equal).
double max_abs_diff(const Array& a, const Array& b) {
    double d = 0.0, scale = 1.0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const double diff = std::abs(static_cast<double>(a.flat(i)) - b.flat(i));
        if (std::isnan(diff)) return diff;
        d = std::max(d, diff);
        scale = std::max(scale, std::abs(static_cast<double>(b.flat(i))));
    }
    return d / scale;
}

// The larger of a and b, NaN if either is (std::max returns its first argument against a NaN).
double larger(double a, double b) {
    return std::isnan(b) ? b : std::max(a, b);
}

struct Settings {
    std::size_t steps = 20, batch = 32, features = 6;
    double scale = 1;  // of the features' means and standard deviations
};

Array random_batch(const Settings& s, tg::Generator& gen) {
    // Features with different scales and offsets, as real activations have.
    Array x = Array::from_shape({s.batch, s.features});
    for (std::size_t n = 0; n < s.batch; ++n)
        for (std::size_t c = 0; c < s.features; ++c)
            x(n, c) =
                static_cast<tg::real>(gen.normal(s.scale * (2.0 * static_cast<double>(c) - 5.0),
                                                 s.scale * (0.5 + static_cast<double>(c))));
    return x;
}

// The two layers, with the same non-trivial γ, β (momentum 0.1, eps 1e-5 in both).
struct Layers {
    Layers(std::size_t C, tg::Generator& gen) : manual(C), builtin(C) {
        for (std::size_t c = 0; c < C; ++c) {
            const auto g = static_cast<tg::real>(gen.uniform(0.5, 1.5));
            const auto b = static_cast<tg::real>(gen.uniform(-1.0, 1.0));
            manual.gamma.value()(c) = builtin.weight.value()(c) = g;
            manual.beta.value()(c) = builtin.bias.value()(c) = b;
        }
    }
    ManualBatchNorm manual;
    tg::nn::BatchNorm1d builtin;
};

// The largest differences, manual vs built-in, relative to the values' scale.
struct Differences {
    double train_y = 0, train_grad = 0, eval_y = 0, mean = 0, var = 0;
    double worst() const {
        return larger(larger(larger(larger(train_y, train_grad), eval_y), mean), var);
    }
};

// --steps, --batch-size, --scale, and what --quick does and the program writes.
void add_flags(tg::examples::Cli& cli, Settings& s) {
    cli.option("--steps", s.steps, "training steps (batches) compared",
               tg::examples::between(1, 100000));
    cli.option("--batch-size", s.batch, "examples per batch", tg::examples::between(2, 100000));
    cli.option("--scale", s.scale,
               "the features' scale: feature c ~ N(scale (2c - 5), scale (0.5 + c))",
               tg::examples::greater_than(0, 1e18));
    cli.quick_help("5 steps (for the tests)");
    cli.outputs("ch310_manual_batchnorm_facts.json (the differences it prints).");
}

// Training mode: both layers on the same batches, L = Σ y·dy with the same dy ~ N(0, 1); the
// differences of y and of dx, dγ, dβ, a line for the first three steps and the last. A loss
// that is not finite (float32 overflowed) stops the program: every later number would be NaN.
void train_both(Layers& l, const Settings& s, tg::Generator& gen, Differences& d) {
    std::printf("%zu training steps on batches [%zu, %zu] (float32), then eval:\n", s.steps,
                s.batch, s.features);
    std::printf("  %-5s %14s %14s %14s %14s\n", "step", "|Δy| max", "|Δdx| max", "|Δdγ| max",
                "|Δdβ| max");
    for (std::size_t step = 0; step < s.steps; ++step) {
        const Array xv = random_batch(s, gen);
        Array dy = Array::from_shape({s.batch, s.features});  // dL/dy ~ N(0, 1): L = Σ y·dy
        for (auto& v : dy)
            v = static_cast<tg::real>(gen.normal());
        const Tensor x1(xv, true), x2(xv, true);
        tg::Tape tape;
        const Tensor y1 = l.manual.forward(x1), y2 = l.builtin(x2);
        const Tensor loss = tg::sum(y1 * Tensor(dy)) + tg::sum(y2 * Tensor(dy));
        if (!std::isfinite(loss.item())) {
            throw std::runtime_error("step " + std::to_string(step + 1) + ": the loss Σ y·dy is " +
                                     std::to_string(loss.item()) + ": the inputs of --scale " +
                                     tg::examples::format("%g", s.scale) +
                                     " overflow float32; try a smaller --scale");
        }
        l.manual.gamma.zero_grad(true);
        l.manual.beta.zero_grad(true);
        l.builtin.zero_grad(true);
        tape.backward(loss);
        const double dyv = max_abs_diff(y1.value(), y2.value());
        const double dx = max_abs_diff(x1.grad(), x2.grad());
        const double dg = max_abs_diff(l.manual.gamma.grad(), l.builtin.weight.grad());
        const double db = max_abs_diff(l.manual.beta.grad(), l.builtin.bias.grad());
        d.train_y = larger(d.train_y, dyv);
        d.train_grad = larger(larger(larger(d.train_grad, dx), dg), db);
        if (step < 3 || step + 1 == s.steps)
            std::printf("  %-5zu %14.3g %14.3g %14.3g %14.3g\n", step + 1, dyv, dx, dg, db);
        else if (step == 3)
            std::printf("  ...\n");
    }
}

// Eval mode: both layers on one more batch, with their running statistics; those compared too.
void eval_both(Layers& l, const Settings& s, tg::Generator& gen, Differences& d) {
    l.manual.training = false;
    l.builtin.eval();
    const Array xe = random_batch(s, gen);
    tg::NoGradGuard no_grad;
    d.eval_y = max_abs_diff(l.manual.forward(Tensor(xe)).value(), l.builtin(Tensor(xe)).value());
    d.mean = max_abs_diff(l.manual.running_mean, l.builtin.running_mean.value());
    d.var = max_abs_diff(l.manual.running_var, l.builtin.running_var.value());
}

// The running statistics side by side, the differences and the verdict.
void print_results(const Layers& l, const Settings& s, const Differences& d) {
    std::printf("\nRunning statistics after %zu steps:\n", s.steps);
    std::printf("  %-3s %14s %14s   %14s %14s\n", "c", "mean (manual)", "mean (BN1d)",
                "var (manual)", "var (BN1d)");
    for (std::size_t c = 0; c < s.features; ++c)
        std::printf("  %-3zu %14.7f %14.7f   %14.7f %14.7f\n", c, l.manual.running_mean(c),
                    l.builtin.running_mean.value()(c), l.manual.running_var(c),
                    l.builtin.running_var.value()(c));
    std::printf("\nLargest differences, manual vs built-in (relative to max(1, max |value|)):\n");
    std::printf("  training output          %.3g\n", d.train_y);
    std::printf("  training gradients       %.3g  (dx, dγ, dβ)\n", d.train_grad);
    std::printf("  eval output              %.3g\n", d.eval_y);
    std::printf("  running_mean / var       %.3g / %.3g\n", d.mean, d.var);
    const bool pass = d.worst() < 1e-6;
    std::printf("%s: every difference %s 1e-6\n", pass ? "PASS" : "FAIL",
                pass ? "below" : "NOT below");
}

fs::path save_facts(const std::string& out, const Settings& s, const Differences& d) {
    gotchas::Facts facts;
    facts.number("steps", static_cast<double>(s.steps));
    facts.number("train_output_max_diff", d.train_y);
    facts.number("train_grad_max_diff", d.train_grad);
    facts.number("eval_output_max_diff", d.eval_y);
    facts.number("running_mean_max_diff", d.mean);
    facts.number("running_var_max_diff", d.var);
    return facts.save(out, "ch310_manual_batchnorm");
}

}  // namespace

int main(int argc, char** argv) {
    tg::examples::Cli cli(
        "ch310_manual_batchnorm",
        "The chapter's from-scratch BatchNorm (primitive ops) against tg::nn::BatchNorm1d: "
        "outputs, gradients and running statistics, in training and eval mode.");
    auto& common = cli.add_common({}, /*with_seeds=*/false, /*with_dataset=*/false);
    Settings s;
    add_flags(cli, s);
    if (const auto exit_code = cli.parse(argc, argv)) return *exit_code;

    try {
        cli.prepare();  // --threads applied, --out created and checked writable
        if (common.quick) s.steps = std::min<std::size_t>(s.steps, 5);
        tg::Generator gen(common.seed);
        Layers layers(s.features, gen);
        Differences d;
        train_both(layers, s, gen, d);
        eval_both(layers, s, gen, d);
        print_results(layers, s, d);
        std::cout << "Facts: " << save_facts(common.out, s, d).string() << "\n";
        return d.worst() < 1e-6 ? 0 : 1;
    } catch (const std::exception& e) {
        std::cerr << "ch310_manual_batchnorm: " << e.what() << "\n";
        return 1;
    }
}
