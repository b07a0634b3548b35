// tape_demo — a two-layer MLP trained by hand on the tape, to watch the tape at work.
//
// Synthetic data: three Gaussian blobs in the plane (classes 0, 1, 2). Model:
//   logits [N, 3] = relu(x [N, 2] W1 [2, H] + b1 [H]) W2 [H, 3] + b2 [3]
// Loss: cross-entropy. Plain gradient descent, written out: one Tape per step, backward,
// p -= lr * dL/dp, zero_grad. At the end the last step's tape is printed and written as
// Graphviz into --out (default out/tape_demo; render with `dot -Tsvg tape.dot -o tape.svg`).
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <iostream>
#include <numbers>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/cli.hpp"
#include "tapegrad/kernels.hpp"
#include "tapegrad/metrics.hpp"
#include "tapegrad/ops/activation.hpp"
#include "tapegrad/ops/elementwise.hpp"
#include "tapegrad/ops/linalg.hpp"
#include "tapegrad/ops/loss.hpp"
#include "tapegrad/random.hpp"
#include "tapegrad/tape.hpp"
#include "tapegrad/viz/csv.hpp"

namespace fs = std::filesystem;

namespace {

struct Data {
    tg::Tensor x;  // [N, 2]
    tg::Labels y;  // [N], in {0, 1, 2}
};

// n points per class around three centres on a circle of radius 2, standard deviation 1.
Data make_blobs(std::size_t n_per_class, tg::Generator& gen) {
    const std::size_t classes = 3, N = classes * n_per_class;
    tg::Array x = tg::Array::from_shape({N, 2});
    tg::Labels y(N);
    for (std::size_t i = 0; i < N; ++i) {
        const std::size_t c = i % classes;
        const double angle = 2.0 * std::numbers::pi * static_cast<double>(c) / classes;
        x(i, 0) = static_cast<tg::real>(2.0 * std::cos(angle) + gen.normal(0.0, 1.0));
        x(i, 1) = static_cast<tg::real>(2.0 * std::sin(angle) + gen.normal(0.0, 1.0));
        y[i] = static_cast<std::int64_t>(c);
    }
    return {tg::Tensor(std::move(x), false, "x"), std::move(y)};
}

// A parameter [fan_in, fan_out] drawn from N(0, 2 / fan_in) (He initialisation, for relu).
tg::Tensor weight(std::size_t fan_in, std::size_t fan_out, tg::Generator& gen, const char* name) {
    return tg::Tensor(tg::normal({fan_in, fan_out}, 0.0, std::sqrt(2.0 / fan_in), gen), true, name);
}

}  // namespace

int main(int argc, char** argv) try {
    tg::examples::Cli cli("tape_demo", "Train a tiny MLP by hand on the tape, then show the tape.");
    // No --dataset (it makes its own data from --seed) and no --seeds (one run).
    const tg::examples::CommonFlags& flags =
        cli.add_common({.out = "out/tape_demo"}, /*with_seeds=*/false, /*with_dataset=*/false);
    int steps = 200;
    double lr = 0.1;
    std::size_t hidden = 16;
    cli.quick_help("20 steps instead of --steps (the tests' few-second mode)");
    cli.option("--steps", steps, "gradient-descent steps", tg::examples::between(1, 1000000));
    cli.option("--lr", lr, "learning rate", tg::examples::greater_than(0, 1e6));
    cli.option("--hidden", hidden, "hidden units", tg::examples::between(1, 4096));
    cli.outputs("tape.dot, the last step's tape as Graphviz (dot -Tsvg tape.dot -o tape.svg)");
    if (const auto exit_code = cli.parse(argc, argv)) return *exit_code;
    const fs::path out = cli.prepare();  // --threads applied, --out created and writable
    if (flags.quick) steps = 20;
    const std::string dot_path = (out / "tape.dot").string();
    const std::uint64_t seed = flags.seed;

    tg::Generator gen(seed);
    const Data data = make_blobs(100, gen);
    tg::Tensor W1 = weight(2, hidden, gen, "W1");
    tg::Tensor b1 = tg::Tensor::zeros({hidden}, true).set_name("b1");
    tg::Tensor W2 = weight(hidden, 3, gen, "W2");
    tg::Tensor b2 = tg::Tensor::zeros({3}, true).set_name("b2");
    std::vector<tg::Tensor> params{W1, b1, W2, b2};

    std::cout << "3 blobs, " << data.y.size() << " points; MLP 2 -> " << hidden
              << " -> 3; gradient descent, lr " << lr << "\n";
    for (int step = 1; step <= steps; ++step) {
        tg::Tape tape;  // records this step's forward pass
        const tg::Tensor h = tg::relu(tg::matmul(data.x, W1) + b1);  // [N, H]
        const tg::Tensor logits = tg::matmul(h, W2) + b2;            // [N, 3]
        const tg::Tensor loss = tg::cross_entropy(logits, data.y);
        if (!std::isfinite(loss.item())) {  // diverged: every later step would be NaN too
            throw std::runtime_error(tg::examples::diverged_message(
                static_cast<std::size_t>(step), static_cast<std::size_t>(step), loss.item()));
        }
        tape.backward(loss);  // dL/dp for every parameter p

        for (auto& p : params) {
            p.value() -= static_cast<tg::real>(lr) * p.grad();  // p <- p - lr dL/dp
            p.zero_grad();
        }

        if (step == 1 || step % 20 == 0 || step == steps) {
            std::cout << "step " << step << "  loss " << loss.item() << "  accuracy "
                      << tg::accuracy(logits, data.y) << "\n";
        }
        if (step == steps) {
            std::cout << "\nThe last step's tape:\n";
            tape.print(std::cout);
            tg::viz::write_text_atomically(dot_path, tape.to_dot());
            std::cout << "Graphviz description written to " << dot_path << "\n";
        }
    }
    return 0;
} catch (const std::exception& e) {
    std::cerr << "tape_demo: " << e.what() << "\n";
    return 1;
}
