// gdb_fixture — known tensors, arrays, a tape and a model for the gdb printer tests
// (tests/gdb/test_printers.gdb stops in `inspect_here` and prints them; expected text in
// tests/gdb/printers.expected). Not a chapter program: every value here is fixed.
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <limits>

#include <xtensor/xbuilder.hpp>
#include <xtensor/xtensor.hpp>

#include "tapegrad/nn/nn.hpp"
#include "tapegrad/ops/elementwise.hpp"
#include "tapegrad/ops/reduce.hpp"
#include "tapegrad/optim/optim.hpp"
#include "tapegrad/tape.hpp"

namespace {

// The test's breakpoint: everything below is alive when it is reached.
[[gnu::noinline]] void inspect_here(const tg::Tape& tape) {
    std::printf("inspect_here: tape with %zu entries\n", tape.size());
}

}  // namespace

int main() {
    // x [2, 3] with known values; loss = Σ x² + Σ x·w, so dL/dx = 2x + w.
    const tg::Tensor x(tg::Array{{1.0f, -2.5f, 3.0f}, {0.5f, 0.0f, -1.0f}}, true, "x");
    const tg::Tensor w(tg::Array{{0.25f, 0.25f, 0.25f}, {1.0f, 1.0f, 1.0f}}, false, "w");
    tg::Tensor undefined;

    // Arrays of other element types and a large one (printed truncated).
    xt::xarray<double> d = {{1e-6, 2.0}, {3.0, 1e6}};
    xt::xtensor<std::int64_t, 2> ints = {{1, -2, 3}, {40, 50, -60}};
    xt::xarray<float> big = xt::arange<float>(0.0f, 240.0f);
    big.reshape({2, 3, 4, 10});
    tg::Array with_nan = {1.0f, std::numeric_limits<float>::quiet_NaN(), -2.0f,
                          std::numeric_limits<float>::infinity(), 4.0f};

    tg::nn::Sequential model{tg::nn::Conv2d(1, 2, 3, {.padding = 1}), tg::nn::BatchNorm2d(2),
                             tg::nn::ReLU(), tg::nn::Flatten(), tg::nn::Linear(32, 3)};
    tg::nn::BatchNorm1d cumulative(4, {.momentum = std::nullopt});
    tg::optim::SGD sgd(model.parameters(), {.lr = 0.1, .momentum = 0.9});

    tg::Tape tape;
    const tg::Tensor sq = tg::mul(x, x);
    const tg::Tensor xw = tg::mul(x, w);
    const tg::Tensor loss = tg::add(tg::sum(sq), tg::sum(xw));
    tape.backward(loss);

    inspect_here(tape);
    std::printf("%g %g %zu %g\n", d(0, 0), big(0, 0, 0, 1), ints.size(), with_nan(0));
    // The same module and tape as the program itself prints them (Module::print, Tape::print),
    // which gdb_tests.py compares with the printers' text.
    std::cout << "<<model>>\n" << model << "\n<</model>>\n<<tape>>\n";
    tape.print(std::cout);
    std::cout << "<</tape>>\n";
    (void)undefined;
    (void)cumulative;
    (void)sgd;
    return 0;
}
