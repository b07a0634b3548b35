// The activations (src/ops/activation.cpp): relu, with two kernels
// (kernels/{reference,fast}/relu.cpp); tanh, sigmoid, leaky_relu and gelu, one kernel each.
//
// Sections (TEST_CASE name prefixes, e.g. ./tests_f32 -sf='*test_activation*' -tc='vs PyTorch*'):
//   vs PyTorch:           tests/reference/gen_ops.py -> ops.txt (relu with each kernel set);
//                         values and gradients at 0, ±1e-3, and |x| up to 100, the kinks
//   gradcheck float64:    central finite differences (float64 binary only)
//   errors:               gelu's `approximate`; every op takes any shape, 0-d and empty
//   fast vs reference:    relu's fast kernels against its reference kernels (the others have
//                         one kernel)
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "op_checks.hpp"
#include "tapegrad/ops/activation.hpp"
#include "tapegrad/parallel.hpp"

using namespace optest;

// ---------------------------------------------------------------------------------------------
// vs PyTorch
// ---------------------------------------------------------------------------------------------

TEST_CASE("vs PyTorch: relu, and relu'(0) = 0 (each kernel set)") {
    for (const tg::Kernels k : tgtest::kBothKernels) {
        tgtest::KernelsGuard guard(k);
        CAPTURE(tg::kernels_name(k));
        check_against_pytorch("relu", X, [](const In& v) { return tg::relu(v[0]); });
        check_against_pytorch("relu_at_zero", X, [](const In& v) { return tg::relu(v[0]); });
    }
}

TEST_CASE("vs PyTorch: tanh and sigmoid, and their gradients where they saturate") {
    check_against_pytorch("tanh", X, [](const In& v) { return tg::tanh(v[0]); });
    check_against_pytorch("tanh_edges", X, [](const In& v) { return tg::tanh(v[0]); });
    check_against_pytorch("sigmoid", X, [](const In& v) { return tg::sigmoid(v[0]); });
    check_against_pytorch("sigmoid_edges", X, [](const In& v) { return tg::sigmoid(v[0]); });
}

TEST_CASE("vs PyTorch: leaky_relu with slopes 0.01, 0.2 and -1.5, and the slope at the kink") {
    check_against_pytorch("leaky_relu", X, [](const In& v) { return tg::leaky_relu(v[0]); });
    check_against_pytorch("leaky_relu_slope_0_2", X,
                          [](const In& v) { return tg::leaky_relu(v[0], 0.2); });
    check_against_pytorch("leaky_relu_slope_neg_1_5", X,
                          [](const In& v) { return tg::leaky_relu(v[0], -1.5); });
    check_against_pytorch("leaky_relu_edges", X,
                          [](const In& v) { return tg::leaky_relu(v[0], 0.2); });
}

TEST_CASE("vs PyTorch: gelu, exact (erf) and tanh-approximated, at 0 and large |x|") {
    check_against_pytorch("gelu", X, [](const In& v) { return tg::gelu(v[0]); });
    check_against_pytorch("gelu_edges", X, [](const In& v) { return tg::gelu(v[0], "none"); });
    check_against_pytorch("gelu_tanh", X, [](const In& v) { return tg::gelu(v[0], "tanh"); });
    check_against_pytorch("gelu_tanh_edges", X, [](const In& v) { return tg::gelu(v[0], "tanh"); });
}

// ---------------------------------------------------------------------------------------------
// gradcheck float64
// ---------------------------------------------------------------------------------------------

TEST_CASE("gradcheck float64: relu (each kernel set)" * doctest::skip(!tg::is_double)) {
    for (const tg::Kernels k : tgtest::kBothKernels) {
        tgtest::KernelsGuard guard(k);
        tg::Generator gen(6);
        check_gradcheck(std::string("relu, ") + tg::kernels_name(k),
                        [](const In& v) { return tg::relu(v[0]); },
                        {leaf_away_from_zero({3, 4, 5}, gen)});
    }
}

TEST_CASE("gradcheck float64: tanh, sigmoid, gelu (both), and leaky_relu away from its kink" *
          doctest::skip(!tg::is_double)) {
    tg::Generator gen(27);
    // Smooth everywhere: values in [-3, 3], where the gradients are far from 0, with 0 itself.
    const auto smooth = [&gen] {
        Tensor x = leaf({3, 4, 5}, gen, -3.0, 3.0);
        x.value().flat(0) = 0;
        return x;
    };
    check_gradcheck("tanh", [](const In& v) { return tg::tanh(v[0]); }, {smooth()});
    check_gradcheck("sigmoid", [](const In& v) { return tg::sigmoid(v[0]); }, {smooth()});
    check_gradcheck("gelu", [](const In& v) { return tg::gelu(v[0]); }, {smooth()});
    check_gradcheck("gelu tanh", [](const In& v) { return tg::gelu(v[0], "tanh"); }, {smooth()});
    for (const double slope : {0.01, 0.2, -1.5}) {
        check_gradcheck("leaky_relu, slope " + std::to_string(slope),
                        [slope](const In& v) { return tg::leaky_relu(v[0], slope); },
                        {leaf_away_from_zero({3, 4, 5}, gen)});
    }
}

// ---------------------------------------------------------------------------------------------
// errors: relu has no bad input; a 0-d and an empty tensor go through both ways
// ---------------------------------------------------------------------------------------------

TEST_CASE("errors: none for relu, whose input may have any shape, 0-d and empty included") {
    for (const tg::Shape& shape : {tg::Shape{}, tg::Shape{0, 3}}) {
        CAPTURE(tg::shape_str(shape));
        Array ones = Array::from_shape(shape);
        ones.fill(1);
        Tensor x(ones, true);
        tg::Tape tape;
        const Tensor y = tg::relu(x);
        CHECK(y.shape() == shape);
        CHECK(y.value() == ones);
        tape.backward(y, ones);
        CHECK(x.grad().shape() == shape);
    }
}

TEST_CASE("errors: gelu's approximate is 'none' or 'tanh'; the others take any shape") {
    const Tensor x(Array{1, 2});
    CHECK_THROWS_WITH_AS(tg::gelu(x, "erf"),
                         "gelu: approximate 'erf', expected 'none' or 'tanh' (as "
                         "torch.nn.functional.gelu)",
                         std::invalid_argument);
    const std::vector<std::pair<const char*, Fn>> ops{
        {"tanh", [](const In& v) { return tg::tanh(v[0]); }},
        {"sigmoid", [](const In& v) { return tg::sigmoid(v[0]); }},
        {"leaky_relu", [](const In& v) { return tg::leaky_relu(v[0]); }},
        {"gelu", [](const In& v) { return tg::gelu(v[0]); }},
        {"gelu tanh", [](const In& v) { return tg::gelu(v[0], "tanh"); }}};
    for (const auto& [name, op] : ops) {
        const std::string op_name = name;  // (CAPTURE's lambda cannot name a structured binding)
        for (const tg::Shape& shape : {tg::Shape{}, tg::Shape{0, 3}}) {
            CAPTURE(op_name);
            CAPTURE(tg::shape_str(shape));
            Array ones = Array::from_shape(shape);
            ones.fill(1);
            Tensor in(ones, true);
            tg::Tape tape;
            const Tensor y = op({in});
            CHECK(y.shape() == shape);
            tape.backward(y, ones);
            CHECK(in.grad().shape() == shape);
        }
    }
}

TEST_CASE("NaN in, NaN out, as PyTorch (tanh, sigmoid, leaky_relu, gelu)") {
    const Tensor x(Array{std::numeric_limits<tg::real>::quiet_NaN()});
    CHECK(std::isnan(tg::tanh(x).value()(0)));
    CHECK(std::isnan(tg::sigmoid(x).value()(0)));
    CHECK(std::isnan(tg::leaky_relu(x).value()(0)));
    CHECK(std::isnan(tg::gelu(x).value()(0)));
    CHECK(std::isnan(tg::gelu(x, "tanh").value()(0)));
}

// ---------------------------------------------------------------------------------------------
// fast vs reference
// ---------------------------------------------------------------------------------------------

TEST_CASE("fast vs reference: relu on 100 random shapes, zeros included") {
    tg::Generator gen(5);
    const tgtest::OpFn relu = [](const std::vector<Tensor>& in) { return tg::relu(in[0]); };
    for (int trial = 0; trial < 100; ++trial) {
        tg::Shape shape;
        const auto rank = 1 + static_cast<std::size_t>(tg::uniform({1}, 0, 4, gen)(0));
        for (std::size_t d = 0; d < rank; ++d)
            shape.push_back(1 + static_cast<std::size_t>(tg::uniform({1}, 0, 7, gen)(0)));
        Array x = tg::normal(shape, 0.0, 1.0, gen);
        x.flat(0) = 0;  // relu'(0) = 0 on both
        CAPTURE(tg::shape_str(shape));
        CHECK_FAST_MATCHES_REFERENCE(std::vector<Array>{x}, relu);
    }
    // Large enough to be split between threads: the same numbers as the reference.
    const std::size_t saved = tg::num_threads();
    tg::set_num_threads(2);
    CHECK_FAST_MATCHES_REFERENCE(std::vector<Array>{tg::normal({4, 8, 64, 64}, 0.0, 1.0, gen)},
                                 relu);
    tg::set_num_threads(saved);
}
