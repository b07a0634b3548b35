// ch306_tape_backprop — backpropagation on the tape, seen and checked, in float64.
//
// A small network, x [8, 4] → Linear(4, 5) → BatchNorm1d(5) → ReLU → Linear(5, 3) →
// cross-entropy, run once on a tg::Tape. The program
//   1. prints the tape (one entry per op, in execution order: backward walks it in reverse)
//      and draws it with Graphviz (ch306_tape.dot → ch306_tape.png by `dot -Tpng`);
//   2. checks the gradient of every parameter and of the input against central finite
//      differences, (L(θ + h) − L(θ − h)) / 2h (tg::gradcheck);
//   3. checks the BatchNorm backward formula term by term. With x̂ = (x − μ)/σ, y = γ x̂ + β,
//      dx̂ = dy·γ, per channel over its B values:
//          dx = 1/(B σ) · ( B·dx̂  −  Σ dx̂  −  x̂ · Σ(dx̂ · x̂) )
//               term 1: the direct path   term 2: through μ   term 3: through σ²
//      computed here by hand, against the tape's gradient of BatchNorm composed from
//      primitive ops (mean, subtract, multiply, add, sqrt, divide: one entry each) and against the
//      library's fused batch_norm (one entry).
// This program is built against the float64 library (tapegrad_f64), so the differences are
// rounding in the 15th digit, not float32's 7th.
//
//     ./build/release/examples/ch306_tape_backprop         # writes out/ch306/
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/cli.hpp"
#include "common/compare.hpp"
#include "gotchas/facts.hpp"
#include "tapegrad/atomic_file.hpp"
#include "tapegrad/gradcheck.hpp"
#include "tapegrad/nn/nn.hpp"
#include "tapegrad/ops/elementwise.hpp"
#include "tapegrad/ops/loss.hpp"
#include "tapegrad/ops/normalization.hpp"
#include "tapegrad/ops/reduce.hpp"
#include "tapegrad/random.hpp"
#include "tapegrad/tape.hpp"
#include "tapegrad/viz/figure.hpp"

namespace fs = std::filesystem;
using tg::Array;
using tg::Tensor;

static_assert(tg::is_double, "ch306_tape_backprop is built against tapegrad_f64");

namespace {

Array randn(const tg::Shape& shape, tg::Generator& gen, double mean = 0.0, double std = 1.0) {
    Array a = Array::from_shape(shape);
    for (auto& v : a)
        v = gen.normal(mean, std);
    return a;
}

using tg::examples::max_abs_diff;  // examples/common/compare.hpp

// The network x [8, 4] → Linear(4, 5) → BatchNorm1d(5) → ReLU → Linear(5, 3), its weights
// drawn from `gen`; γ, β drawn away from 1, 0 so every term of BatchNorm's backward shows.
tg::nn::Sequential make_network(tg::Generator& gen) {
    tg::nn::Sequential model(tg::nn::Linear(4, 5, {.generator = &gen}), tg::nn::BatchNorm1d(5),
                             tg::nn::ReLU(), tg::nn::Linear(5, 3, {.generator = &gen}));
    auto& bn = model.at<tg::nn::BatchNorm1d>(1);
    for (std::size_t c = 0; c < 5; ++c) {
        bn.weight.value()(c) = gen.uniform(0.5, 1.5);
        bn.bias.value()(c) = gen.uniform(-0.5, 0.5);
    }
    return model;
}

// 1. The tape: printed, written as ch306_tape.dot and drawn by Graphviz's dot when installed.
void print_and_draw_tape(tg::nn::Sequential& model, const Tensor& x, const tg::Labels& labels,
                         const fs::path& dir, gotchas::Facts& facts) {
    {
        tg::Tape tape;
        const Tensor loss = tg::cross_entropy(model(x), labels);
        std::cout << "The forward pass, as recorded (backward walks it bottom-up):\n";
        tape.print(std::cout);
        tg::write_file_atomically((dir / "ch306_tape.dot").string(), tape.to_dot(),
                                  "ch306_tape_backprop");
        facts.number("tape_entries", static_cast<double>(tape.size()));
        tape.backward(loss);
        std::printf("loss %.12f\n", loss.item());
    }
    const auto dot_exe = tg::viz::find_executable("dot");
    if (dot_exe) {
        const std::string cmd = "\"" + dot_exe->string() + "\" -Tpng \"" +
                                (dir / "ch306_tape.dot").string() + "\" -o \"" +
                                (dir / "ch306_tape.png").string() + "\"";
        const int rc = std::system(cmd.c_str());
        std::cout << (rc == 0 ? "wrote " + (dir / "ch306_tape.png").string() : "dot failed: " + cmd)
                  << "\n";
    } else {
        std::cout << "Graphviz's dot not found: apt-get install graphviz, then dot -Tpng "
                  << (dir / "ch306_tape.dot").string() << " -o "
                  << (dir / "ch306_tape.png").string() << "\n";
    }
}

// 2. Finite differences for every parameter and the input (tg::gradcheck).
void check_by_finite_differences(tg::nn::Sequential& model, const Tensor& x,
                                 const tg::Labels& labels, gotchas::Facts& facts) {
    std::vector<Tensor> checked{x};
    for (const auto& p : model.parameters())
        checked.push_back(p);
    const auto gc = tg::gradcheck(
        [&](const std::vector<Tensor>&) { return tg::cross_entropy(model(x), labels); }, checked);
    std::size_t elements = 0;
    for (const auto& t : checked)
        elements += t.numel();
    std::printf(
        "\nFinite differences (central, h = 1e-6) for x and all %zu parameter tensors "
        "(%zu numbers): %s, largest |tape − numeric| %.3g\n",
        checked.size() - 1, elements, gc.ok ? "agree" : "DISAGREE", gc.max_abs_error);
    if (!gc.ok) std::cout << "  " << gc.message << "\n";
    facts.flag("gradcheck_ok", gc.ok);
    facts.number("gradcheck_max_abs_error", gc.max_abs_error);
}

constexpr double kEps = 1e-5;  // BatchNorm's ε in part 3

// 3(a) dL/dh through the library's fused op (one tape entry), L = Σ y·dy so ∂L/∂y = dy.
Array dx_fused_op(const Array& hv, const Array& dy, const Array& gamma, const Array& beta) {
    const Tensor h1(hv, true, "h"), g1(gamma, true, "gamma"), b1(beta, true, "beta");
    tg::Tape tape;
    const Tensor y = tg::batch_norm(h1, {}, {}, g1, b1, true, 0.1, kEps);
    const Tensor loss = tg::sum(y * Tensor(dy, false, "dy"));  // L = Σ y·dy: ∂L/∂y = dy
    tape.backward(loss);  // the tape: sum, multiply, then batch_norm's backward
    return h1.grad();
}

// 3(b) dL/dh through BatchNorm composed from primitive ops: the tape differentiates each one.
// `entries` receives how many tape entries the forward took.
Array dx_composed_ops(const Array& hv, const Array& dy, const Array& gamma, const Array& beta,
                      std::size_t& entries) {
    const Tensor h2(hv, true), g2(gamma, true), b2(beta, true);
    tg::Tape tape;
    const Tensor mu = tg::mean(h2, {0}, true);
    const Tensor centred = h2 - mu;
    const Tensor var = tg::mean(centred * centred, {0}, true);
    const Tensor xhat = centred / tg::sqrt(var + kEps);
    const Tensor y = g2 * xhat + b2;
    entries = tape.size();
    tape.backward(tg::sum(y * Tensor(dy)));
    return h2.grad();
}

// 3(c) The formula by hand, its three terms kept: dx = (term1 − term2 − term3) / (B σ).
struct FormulaTerms {
    Array t1, t3, dx;        // [B, C]: B·dx̂, x̂·Σ(dx̂·x̂), and dx
    std::vector<double> t2;  // [C]: Σ dx̂
    std::vector<double> sigma;
};

FormulaTerms dx_by_formula(const Array& hv, const Array& dy, const Array& gamma) {
    const std::size_t B = hv.shape()[0], C = hv.shape()[1];
    FormulaTerms f{Array::from_shape({B, C}), Array::from_shape({B, C}), Array::from_shape({B, C}),
                   std::vector<double>(C), std::vector<double>(C)};
    for (std::size_t c = 0; c < C; ++c) {
        double mu = 0, var = 0;
        for (std::size_t n = 0; n < B; ++n)
            mu += hv(n, c);
        mu /= B;
        for (std::size_t n = 0; n < B; ++n)
            var += (hv(n, c) - mu) * (hv(n, c) - mu);
        var /= B;
        f.sigma[c] = std::sqrt(var + kEps);
        double sum_dxhat = 0, sum_dxhat_xhat = 0;
        for (std::size_t n = 0; n < B; ++n) {
            const double xhat = (hv(n, c) - mu) / f.sigma[c], dxhat = dy(n, c) * gamma(c);
            sum_dxhat += dxhat;
            sum_dxhat_xhat += dxhat * xhat;
        }
        f.t2[c] = sum_dxhat;
        for (std::size_t n = 0; n < B; ++n) {
            const double xhat = (hv(n, c) - mu) / f.sigma[c], dxhat = dy(n, c) * gamma(c);
            f.t1(n, c) = static_cast<double>(B) * dxhat;
            f.t3(n, c) = xhat * sum_dxhat_xhat;
            f.dx(n, c) =
                (f.t1(n, c) - f.t2[c] - f.t3(n, c)) / (static_cast<double>(B) * f.sigma[c]);
        }
    }
    return f;
}

// 3. BatchNorm's backward, term by term, on h [B, C] = [8, 5] with bn's γ and β: the formula
// against the composed ops' tape gradient and the fused op's; then the formula without term 2
// or term 3 (what forgetting that μ and σ depend on x does).
void batchnorm_backward_term_by_term(const tg::nn::BatchNorm1d& bn, tg::Generator& gen,
                                     gotchas::Facts& facts) {
    const std::size_t B = 8, C = 5;
    const Array hv = randn({B, C}, gen, 1.0, 2.0);
    const Array dy = randn({B, C}, gen);  // dL/dy: L = Σ y·dy
    const Array gamma = bn.weight.value(), beta = bn.bias.value();
    const Array dx_fused = dx_fused_op(hv, dy, gamma, beta);
    std::size_t composed_entries = 0;
    const Array dx_composed = dx_composed_ops(hv, dy, gamma, beta, composed_entries);
    const FormulaTerms f = dx_by_formula(hv, dy, gamma);
    std::printf(
        "\nBatchNorm backward on h [%zu, %zu], channel 0, term by term "
        "(dx = (term1 − term2 − term3) / (B σ), B σ = %.6f):\n",
        B, C, static_cast<double>(B) * f.sigma[0]);
    std::printf("  %-3s %13s %13s %13s   %16s %16s %16s\n", "n", "term1 B·dx̂", "term2 Σdx̂",
                "term3 x̂Σdx̂x̂", "dx formula", "dx composed", "dx fused");
    for (std::size_t n = 0; n < B; ++n)
        std::printf("  %-3zu %13.6f %13.6f %13.6f   %16.12f %16.12f %16.12f\n", n, f.t1(n, 0),
                    f.t2[0], f.t3(n, 0), f.dx(n, 0), dx_composed(n, 0), dx_fused(n, 0));
    const double formula_vs_composed = max_abs_diff(f.dx, dx_composed);
    const double fused_vs_composed = max_abs_diff(dx_fused, dx_composed);
    // Each term alone is not the gradient: dropping term 2 or term 3 is what forgetting
    // that μ and σ depend on x does.
    Array without2 = Array::from_shape({B, C}), without3 = Array::from_shape({B, C});
    for (std::size_t n = 0; n < B; ++n)
        for (std::size_t c = 0; c < C; ++c) {
            without2(n, c) = (f.t1(n, c) - f.t3(n, c)) / (static_cast<double>(B) * f.sigma[c]);
            without3(n, c) = (f.t1(n, c) - f.t2[c]) / (static_cast<double>(B) * f.sigma[c]);
        }
    std::printf(
        "\nAll %zu channels: max |formula − composed| %.3g, max |fused − composed| "
        "%.3g (the composed version is %zu tape entries, the fused one 1)\n",
        C, formula_vs_composed, fused_vs_composed, composed_entries);
    std::printf(
        "Dropping a term (treating μ or σ as constants) is wrong by: without term 2 "
        "%.3g, without term 3 %.3g\n",
        max_abs_diff(without2, dx_composed), max_abs_diff(without3, dx_composed));
    facts.number("bn_formula_vs_composed", formula_vs_composed);
    facts.number("bn_fused_vs_composed", fused_vs_composed);
    facts.number("bn_without_term2_error", max_abs_diff(without2, dx_composed));
    facts.number("bn_without_term3_error", max_abs_diff(without3, dx_composed));
    facts.number("composed_entries", static_cast<double>(composed_entries));
}

}  // namespace

int main(int argc, char** argv) {
    tg::examples::Cli cli(
        "ch306_tape_backprop",
        "Backpropagation on the tape: a small network's tape printed and drawn, its gradient "
        "checked by finite differences (float64), BatchNorm's backward formula term by term.");
    // No --dataset (its input is drawn from --seed) and no --seeds (one network).
    const tg::examples::CommonFlags& flags =
        cli.add_common({.out = "out/ch306"}, /*with_seeds=*/false, /*with_dataset=*/false);
    cli.quick_help("the same run (it takes well under a second); for the tests");
    cli.outputs(
        "ch306_tape.dot, ch306_tape.png (when Graphviz's dot is installed) and "
        "ch306_tape_backprop_facts.json.");
    if (const auto exit_code = cli.parse(argc, argv)) return *exit_code;

    try {
        const fs::path dir = cli.prepare();  // --threads, --kernels applied; --out writable
        tg::Generator gen(flags.seed);
        tg::nn::Sequential model = make_network(gen);
        const Tensor x(randn({8, 4}, gen), /*requires_grad=*/true, "x");
        const tg::Labels labels{0, 1, 2, 0, 1, 2, 0, 1};
        gotchas::Facts facts;
        print_and_draw_tape(model, x, labels, dir, facts);
        check_by_finite_differences(model, x, labels, facts);
        batchnorm_backward_term_by_term(model.at<tg::nn::BatchNorm1d>(1), gen, facts);
        std::cout << "Facts: " << facts.save(dir, "ch306_tape_backprop").string() << "\n";
    } catch (const std::exception& e) {
        std::cerr << "ch306_tape_backprop: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
