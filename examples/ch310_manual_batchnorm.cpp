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
//
//     ./build/release/examples/ch310_manual_batchnorm            # --quick: fewer steps
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
double max_abs_diff(const Array& a, const Array& b) {
    double d = 0.0, scale = 1.0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        d = std::max(d, std::abs(static_cast<double>(a.flat(i)) - b.flat(i)));
        scale = std::max(scale, std::abs(static_cast<double>(b.flat(i))));
    }
    return d / scale;
}

Array random_batch(std::size_t N, std::size_t C, tg::Generator& gen) {
    // Features with different scales and offsets, as real activations have.
    Array x = Array::from_shape({N, C});
    for (std::size_t n = 0; n < N; ++n)
        for (std::size_t c = 0; c < C; ++c)
            x(n, c) = static_cast<tg::real>(
                gen.normal(2.0 * static_cast<double>(c) - 5.0, 0.5 + static_cast<double>(c)));
    return x;
}

}  // namespace

int main(int argc, char** argv) {
    tg::examples::Cli cli(
        "ch310_manual_batchnorm",
        "The chapter's from-scratch BatchNorm (primitive ops) against tg::nn::BatchNorm1d: "
        "outputs, gradients and running statistics, in training and eval mode.");
    auto& common = cli.add_common({}, /*with_seeds=*/false,
                                  /*with_dataset=*/false);
    std::size_t steps = 20, batch = 32, features = 6;
    cli.option("--steps", steps, "training steps (batches) compared",
               tg::examples::between(1, 100000));
    cli.option("--batch-size", batch, "examples per batch", tg::examples::between(2, 100000));
    cli.quick_help("5 steps (for the tests)");
    cli.outputs("ch310_manual_batchnorm_facts.json (the differences it prints).");
    if (const auto exit_code = cli.parse(argc, argv)) return *exit_code;
    const std::uint64_t seed = common.seed;
    const std::string out = common.out;
    const bool quick = common.quick;

    try {
        cli.prepare();  // --threads applied, --out created and checked writable
        if (quick) steps = std::min<std::size_t>(steps, 5);
        tg::Generator gen(seed);
        ManualBatchNorm manual(features);
        tg::nn::BatchNorm1d builtin(features);  // momentum 0.1, eps 1e-5: the same settings
        // The same non-trivial γ, β in both.
        for (std::size_t c = 0; c < features; ++c) {
            const auto g = static_cast<tg::real>(gen.uniform(0.5, 1.5));
            const auto b = static_cast<tg::real>(gen.uniform(-1.0, 1.0));
            manual.gamma.value()(c) = builtin.weight.value()(c) = g;
            manual.beta.value()(c) = builtin.bias.value()(c) = b;
        }

        std::printf("%zu training steps on batches [%zu, %zu] (float32), then eval:\n", steps,
                    batch, features);
        std::printf("  %-5s %14s %14s %14s %14s\n", "step", "|Δy| max", "|Δdx| max", "|Δdγ| max",
                    "|Δdβ| max");
        double train_y = 0.0, train_grad = 0.0;
        for (std::size_t s = 0; s < steps; ++s) {
            const Array xv = random_batch(batch, features, gen);
            Array dy = Array::from_shape({batch, features});  // dL/dy ~ N(0, 1): L = Σ y·dy
            for (auto& v : dy)
                v = static_cast<tg::real>(gen.normal());
            const Tensor x1(xv, true), x2(xv, true);
            tg::Tape tape;
            const Tensor y1 = manual.forward(x1), y2 = builtin(x2);
            const Tensor loss = tg::sum(y1 * Tensor(dy)) + tg::sum(y2 * Tensor(dy));
            manual.gamma.zero_grad(true);
            manual.beta.zero_grad(true);
            builtin.zero_grad(true);
            tape.backward(loss);
            const double dyv = max_abs_diff(y1.value(), y2.value());
            const double dx = max_abs_diff(x1.grad(), x2.grad());
            const double dg = max_abs_diff(manual.gamma.grad(), builtin.weight.grad());
            const double db = max_abs_diff(manual.beta.grad(), builtin.bias.grad());
            train_y = std::max(train_y, dyv);
            train_grad = std::max({train_grad, dx, dg, db});
            if (s < 3 || s + 1 == steps)
                std::printf("  %-5zu %14.3g %14.3g %14.3g %14.3g\n", s + 1, dyv, dx, dg, db);
            else if (s == 3)
                std::printf("  ...\n");
        }

        manual.training = false;
        builtin.eval();
        const Array xe = random_batch(batch, features, gen);
        tg::NoGradGuard no_grad;
        const double eval_y =
            max_abs_diff(manual.forward(Tensor(xe)).value(), builtin(Tensor(xe)).value());
        const double mean_diff = max_abs_diff(manual.running_mean, builtin.running_mean.value());
        const double var_diff = max_abs_diff(manual.running_var, builtin.running_var.value());

        std::printf("\nRunning statistics after %zu steps:\n", steps);
        std::printf("  %-3s %14s %14s   %14s %14s\n", "c", "mean (manual)", "mean (BN1d)",
                    "var (manual)", "var (BN1d)");
        for (std::size_t c = 0; c < features; ++c)
            std::printf("  %-3zu %14.7f %14.7f   %14.7f %14.7f\n", c, manual.running_mean(c),
                        builtin.running_mean.value()(c), manual.running_var(c),
                        builtin.running_var.value()(c));
        std::printf(
            "\nLargest differences, manual vs built-in (relative to max(1, max |value|)):\n");
        std::printf("  training output          %.3g\n", train_y);
        std::printf("  training gradients       %.3g  (dx, dγ, dβ)\n", train_grad);
        std::printf("  eval output              %.3g\n", eval_y);
        std::printf("  running_mean / var       %.3g / %.3g\n", mean_diff, var_diff);
        const double worst = std::max({train_y, train_grad, eval_y, mean_diff, var_diff});
        std::printf("%s: every difference %s 1e-6\n", worst < 1e-6 ? "PASS" : "FAIL",
                    worst < 1e-6 ? "below" : "NOT below");

        gotchas::Facts facts;
        facts.number("steps", static_cast<double>(steps));
        facts.number("train_output_max_diff", train_y);
        facts.number("train_grad_max_diff", train_grad);
        facts.number("eval_output_max_diff", eval_y);
        facts.number("running_mean_max_diff", mean_diff);
        facts.number("running_var_max_diff", var_diff);
        std::cout << "Facts: " << facts.save(out, "ch310_manual_batchnorm").string() << "\n";
        return worst < 1e-6 ? 0 : 1;
    } catch (const std::exception& e) {
        std::cerr << "ch310_manual_batchnorm: " << e.what() << "\n";
        return 1;
    }
}
