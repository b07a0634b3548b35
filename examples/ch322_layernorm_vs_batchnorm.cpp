// ch322_layernorm_vs_batchnorm — why transformers normalise each token with LayerNorm.
//
// A transformer block sees activations x [N, T, d]: N sequences of T tokens, d features each.
// LayerNorm([d]) normalises every token on its own, over its d features:
//     y[n, t, :] = γ (x[n, t, :] − μ_nt) / sqrt(σ²_nt + ε) + β
// so a batch of one sequence, or one token at inference time, is no problem, the result does
// not depend on the other tokens or sequences, and training and eval compute the same thing.
// BatchNorm1d(d) normalises each feature over the batch (and, given [N, d, T], over the T
// positions too):
//   - one token at inference in training mode: one value per feature, PyTorch's error
//     "Expected more than 1 value per channel when training" (caught and shown here);
//   - over the positions of a sequence, token 0's output depends on the tokens after it: with
//     causal attention that leaks the future into the past (measured: changing the last token
//     changes the first token's output);
//   - eval mode uses running statistics: a different function from training's.
//
//     ./build/release/examples/ch322_layernorm_vs_batchnorm
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/cli.hpp"
#include "common/compare.hpp"
#include "gotchas/facts.hpp"
#include "tapegrad/nn/nn.hpp"
#include "tapegrad/ops/shape.hpp"
#include "tapegrad/random.hpp"
#include "tapegrad/tape.hpp"

using tg::Array;
using tg::Tensor;

namespace {

double max_abs_diff_token(const Array& a, const Array& b, std::size_t t, std::size_t d) {
    // a, b [1, T, d]: the largest difference over token t's features.
    double m = 0.0;
    for (std::size_t k = 0; k < d; ++k)
        m = std::max(m, std::abs(static_cast<double>(a.data()[t * d + k]) - b.data()[t * d + k]));
    return m;
}

using tg::examples::max_abs_diff;  // examples/common/compare.hpp

// One sequence [1, T, d]; token t's features with their own offset and scale.
Array one_sequence(std::size_t T, std::size_t d, tg::Generator& gen) {
    Array xs = Array::from_shape({1, T, d});
    for (std::size_t t = 0; t < T; ++t)
        for (std::size_t k = 0; k < d; ++k)
            xs(0, t, k) = static_cast<tg::real>(
                gen.normal(0.5 * static_cast<double>(t), 1.0 + 0.25 * static_cast<double>(k)));
    return xs;
}

// 1. LayerNorm on a batch of one: every token mean 0, std 1. Returns LayerNorm's output.
Array layernorm_per_token(tg::nn::LayerNorm& ln, const Array& xs, gotchas::Facts& facts) {
    const std::size_t T = xs.shape()[1], d = xs.shape()[2];
    const Array y = ln(Tensor(xs)).value();
    double worst_mean = 0.0, worst_std = 0.0;
    std::printf("LayerNorm([%zu]) on one sequence [1, %zu, %zu] (training mode):\n", d, T, d);
    std::printf("  %-6s %10s %10s   ->  %10s %10s\n", "token", "mean in", "std in", "mean out",
                "std out");
    for (std::size_t t = 0; t < T; ++t) {
        double mi = 0, si = 0, mo = 0, so = 0;
        for (std::size_t k = 0; k < d; ++k) {
            mi += xs(0, t, k);
            mo += y(0, t, k);
        }
        mi /= static_cast<double>(d);
        mo /= static_cast<double>(d);
        for (std::size_t k = 0; k < d; ++k) {
            si += (xs(0, t, k) - mi) * (xs(0, t, k) - mi);
            so += (y(0, t, k) - mo) * (y(0, t, k) - mo);
        }
        si = std::sqrt(si / static_cast<double>(d));
        so = std::sqrt(so / static_cast<double>(d));
        worst_mean = std::max(worst_mean, std::abs(mo));
        worst_std = std::max(worst_std, std::abs(so - 1.0));
        std::printf("  %-6zu %10.4f %10.4f   ->  %10.2e %10.6f\n", t, mi, si, mo, so);
    }
    facts.number("layernorm_token_mean_max", worst_mean);
    facts.number("layernorm_token_std_max_dev", worst_std);
    return y;
}

// 2. One token at inference [1, d]: BatchNorm1d in training mode refuses it, LayerNorm gives
// the token's row of the sequence's output.
void one_token_at_inference(tg::nn::LayerNorm& ln, const Array& xs, const Array& y,
                            gotchas::Facts& facts) {
    const std::size_t d = xs.shape()[2];
    tg::nn::BatchNorm1d bn(d);
    std::string error = "(no error)";
    Array first = Array::from_shape({1, d});
    std::copy(xs.data(), xs.data() + d, first.data());
    try {
        bn(Tensor(first));
    } catch (const std::invalid_argument& e) {
        error = e.what();
    }
    std::printf("\nBatchNorm1d(%zu) on one token [1, %zu] in training mode:\n  caught: %s\n", d, d,
                error.c_str());
    facts.text("batchnorm_one_token_error", error);
    const Array ln_one = ln(Tensor(first)).value();
    std::printf(
        "LayerNorm([%zu]) on the same token: fine, and equal to its row in the "
        "sequence's output (max |diff| %.3g)\n",
        d, max_abs_diff_token(ln_one, y, 0, d));
    facts.number("layernorm_one_token_vs_sequence", max_abs_diff_token(ln_one, y, 0, d));
}

// 3. Dependence on the later tokens: change the last token, look at token 0. BatchNorm1d runs
// over the positions, x as [N, C, L] = [1, d, T] (features as channels); returns its output on
// the unchanged sequence, back as [1, T, d].
Array dependence_on_later_tokens(tg::nn::LayerNorm& ln, tg::nn::BatchNorm1d& bn_seq,
                                 const Array& xs, const Array& y, tg::Generator& gen,
                                 gotchas::Facts& facts) {
    const std::size_t T = xs.shape()[1], d = xs.shape()[2];
    Array changed = xs;
    for (std::size_t k = 0; k < d; ++k)
        changed(0, T - 1, k) = static_cast<tg::real>(10.0 + 5.0 * gen.normal());
    const double ln_dep = max_abs_diff_token(ln(Tensor(changed)).value(), y, 0, d);
    const Array b0 = tg::transpose(bn_seq(tg::transpose(Tensor(xs), 1, 2)), 1, 2).value();
    const Array b1 = tg::transpose(bn_seq(tg::transpose(Tensor(changed), 1, 2)), 1, 2).value();
    const double bn_dep = max_abs_diff_token(b1, b0, 0, d);
    std::printf(
        "\nChanging only the LAST token, the FIRST token's output changes by:\n"
        "  LayerNorm                                 %.3g\n"
        "  BatchNorm1d over the sequence's positions  %.3g  (future leaks into the "
        "past)\n",
        ln_dep, bn_dep);
    facts.number("layernorm_first_token_change", ln_dep);
    facts.number("batchnorm_first_token_change", bn_dep);
    return b0;
}

// 4. Train vs eval on the same sequence: LayerNorm computes the same thing, BatchNorm1d's eval
// mode uses the running statistics.
void train_vs_eval(tg::nn::LayerNorm& ln, tg::nn::BatchNorm1d& bn_seq, const Array& xs,
                   const Array& y, const Array& bn_train_out, gotchas::Facts& facts) {
    ln.eval();
    const double ln_train_eval = max_abs_diff(ln(Tensor(xs)).value(), y);
    bn_seq.eval();
    const double bn_train_eval = max_abs_diff(
        tg::transpose(bn_seq(tg::transpose(Tensor(xs), 1, 2)), 1, 2).value(), bn_train_out);
    std::printf(
        "\nTraining vs eval output on the same sequence (max |diff|):\n"
        "  LayerNorm    %.3g  (the same computation in both modes)\n"
        "  BatchNorm1d  %.3g  (eval uses the running statistics)\n",
        ln_train_eval, bn_train_eval);
    facts.number("layernorm_train_eval_diff", ln_train_eval);
    facts.number("batchnorm_train_eval_diff", bn_train_eval);
}

}  // namespace

int main(int argc, char** argv) {
    tg::examples::Cli cli(
        "ch322_layernorm_vs_batchnorm",
        "LayerNorm vs BatchNorm on transformer-shaped activations [N, T, d]: a batch of one, "
        "one token, dependence on other tokens, train vs eval.");
    // --quick changes nothing: every run takes milliseconds.
    auto& common = cli.add_common({.out = "out/ch322"}, /*with_seeds=*/false,
                                  /*with_dataset=*/false);
    std::size_t T = 8, d = 16;
    cli.option("--tokens", T, "tokens per sequence", tg::examples::between(2, 4096));
    cli.quick_help("the same (it takes milliseconds); for the tests");
    cli.outputs("ch322_layernorm_vs_batchnorm_facts.json (the numbers it prints).");
    if (const auto exit_code = cli.parse(argc, argv)) return *exit_code;

    try {
        cli.prepare();  // --threads applied, --out created and checked writable
        tg::Generator gen(common.seed);
        const Array xs = one_sequence(T, d, gen);
        gotchas::Facts facts;
        tg::NoGradGuard no_grad;
        tg::nn::LayerNorm ln(tg::Shape{d});
        tg::nn::BatchNorm1d bn_seq(d);  // over the sequence's positions
        const Array y = layernorm_per_token(ln, xs, facts);
        one_token_at_inference(ln, xs, y, facts);
        const Array bn_out = dependence_on_later_tokens(ln, bn_seq, xs, y, gen, facts);
        train_vs_eval(ln, bn_seq, xs, y, bn_out, facts);
        std::cout << "Facts: " << facts.save(common.out, "ch322_layernorm_vs_batchnorm").string()
                  << "\n";
    } catch (const std::exception& e) {
        std::cerr << "ch322_layernorm_vs_batchnorm: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
