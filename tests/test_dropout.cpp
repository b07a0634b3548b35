// dropout (src/ops/dropout.cpp).
//
// Sections (TEST_CASE name prefixes, e.g. ./tests_f32 -sf='*test_dropout*' -tc='behaviour*'):
//   vs PyTorch:           none: PyTorch's RNG differs from ours, so masks cannot be compared;
//                         instead (behaviour:) the statistics, the exact scaling, the gradient
//                         and the special cases are checked
//   gradcheck float64:    central finite differences with a fixed mask (float64 binary only)
//   errors:               p outside [0, 1]
//   fast vs reference:    none: dropout has one implementation
#include <cmath>

#include "conv_helpers.hpp"
#include "tapegrad/ops/dropout.hpp"
#include "tapegrad/random.hpp"

using convtest::error_of;
using tg::Tensor;

TEST_CASE(
    "behaviour: dropout keeps a fraction 1 - p, scales survivors by exactly 1/(1-p), dx = mask * "
    "scale") {
    for (double p : {0.1, 0.5, 0.8}) {
        CAPTURE(p);
        tg::Generator gen(42);
        // x in [1, 2): no element is zero, so a zero output means dropped.
        Tensor x(tg::uniform({100, 1000}, 1, 2, gen), true);
        tg::Tape tape;
        Tensor y = tg::dropout(x, p, /*training=*/true, gen);
        const tg::Array gy = tg::normal(y.shape(), 0, 1, gen);
        tape.backward(y, gy);

        const tg::real scale = static_cast<tg::real>(1.0 / (1.0 - p));
        std::size_t kept = 0;
        bool exact = true;
        for (std::size_t i = 0; i < x.numel(); ++i) {
            const tg::real yi = y.value().flat(i), gi = x.grad().flat(i);
            if (yi != 0) {
                ++kept;
                exact = exact && yi == x.value().flat(i) * scale && gi == gy.flat(i) * scale;
            } else {
                exact = exact && gi == 0;  // a dropped element gets no gradient
            }
        }
        CHECK(exact);
        // 1e5 Bernoulli(1 - p) draws: the kept fraction's standard deviation is <= 0.0016.
        const double frac = static_cast<double>(kept) / static_cast<double>(x.numel());
        CHECK(std::abs(frac - (1.0 - p)) < 0.01);
    }
}

TEST_CASE("behaviour: dropout, the same seed gives the same mask, another seed another one") {
    const Tensor x = Tensor::ones({50, 40});
    tg::Generator g1(7), g2(7), g3(8);
    const tg::Array a = tg::dropout(x, 0.5, true, g1).value();
    CHECK(a == tg::dropout(x, 0.5, true, g2).value());
    CHECK(a != tg::dropout(x, 0.5, true, g3).value());
    CHECK(a != tg::dropout(x, 0.5, true, g1).value());  // the generator moved on
}

TEST_CASE("behaviour: dropout in eval mode and with p = 0 returns the input itself") {
    Tensor x(tg::Array{{1, 2}, {3, 4}}, true);
    tg::Tape tape;
    CHECK(tg::dropout(x, 0.5, /*training=*/false).is(x));
    CHECK(tg::dropout(x, 0.0, /*training=*/true).is(x));
    CHECK(tape.size() == 0);
}

TEST_CASE("behaviour: dropout with p = 1 drops everything: zero output, zero gradient") {
    Tensor x(tg::Array{{1, -2}, {3, 4}}, true);
    tg::Tape tape;
    Tensor y = tg::dropout(x, 1.0, true);
    CHECK(y.value() == tg::Array{{0, 0}, {0, 0}});
    tape.backward(y, tg::Array{{1, 1}, {1, 1}});
    CHECK(x.grad() == tg::Array{{0, 0}, {0, 0}});
}

TEST_CASE("errors: dropout rejects p outside [0, 1], naming the op and p") {
    const Tensor x = Tensor::zeros({2, 3});
    CHECK(error_of([&] { tg::dropout(x, 1.5, true); }) ==
          "dropout: probability p must be in [0, 1], got 1.5 (input [2, 3])");
    CHECK(error_of([&] { tg::dropout(x, -0.1, false); }) ==
          "dropout: probability p must be in [0, 1], got -0.1 (input [2, 3])");
    CHECK(error_of([&] { tg::dropout(x, std::nan(""), true); }) ==
          "dropout: probability p must be in [0, 1], got nan (input [2, 3])");
}

TEST_CASE("gradcheck float64: dropout with a fixed mask" * doctest::skip(!tg::is_double)) {
    tg::Generator gen(1);
    Tensor x(tg::normal({4, 5}, 0, 1, gen), true);
    const tg::Array r = tg::normal({4, 5}, 0, 1, gen);
    CHECK_GRADCHECK(
        [&](const std::vector<Tensor>& in) {
            tg::Generator fixed(123);  // the same mask on every call
            return convtest::weighted_sum(tg::dropout(in[0], 0.3, true, fixed), r);
        },
        {x});
}
