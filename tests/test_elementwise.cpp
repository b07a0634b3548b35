// Element-wise ops (src/ops/elementwise.cpp): add, sub, mul, div, pow with broadcasting or a
// number, neg, exp, log, sqrt, and the operators.
//
// Sections (TEST_CASE name prefixes, e.g. ./tests_f32 -sf='*test_elementwise*' -tc='errors*'):
//   vs PyTorch:           tests/reference/gen_ops.py -> ops.txt
//   gradcheck float64:    central finite differences (float64 binary only)
//   errors:               bad input names the op, the shapes and what was expected
//   fast vs reference:    none here: each op has one implementation (xtensor expressions)
#include <string>
#include <utility>
#include <vector>

#include "op_checks.hpp"

using namespace optest;

// ---------------------------------------------------------------------------------------------
// vs PyTorch
// ---------------------------------------------------------------------------------------------

TEST_CASE("vs PyTorch: element-wise tensor-tensor ops with broadcasting") {
    auto add = [](const In& v) { return tg::add(v[0], v[1]); };
    check_against_pytorch("add_same", AB, add);
    check_against_pytorch("add_bcast_col", AB, add, Grad::scaled);
    check_against_pytorch("add_bcast_row", AB, add, Grad::scaled);
    check_against_pytorch("add_bcast_scalar", AB, add, Grad::scaled);
    check_against_pytorch("add_bcast_both", AB, add, Grad::scaled);
    auto sub = [](const In& v) { return v[0] - v[1]; };  // operator-
    check_against_pytorch("sub_bcast_col", AB, sub, Grad::scaled);
    check_against_pytorch("sub_bcast_rev", AB, sub, Grad::scaled);
    auto mul = [](const In& v) { return v[0] * v[1]; };
    check_against_pytorch("mul_bcast_col", AB, mul, Grad::scaled);
    check_against_pytorch("mul_bcast_scalar", AB, mul, Grad::scaled);
    auto div = [](const In& v) { return tg::div(v[0], v[1]); };
    check_against_pytorch("div_bcast_row", AB, div, Grad::scaled);
    check_against_pytorch("div_bcast_rev", AB, div, Grad::scaled);
    check_against_pytorch(
        "pow_tensor", AB, [](const In& v) { return tg::pow(v[0], v[1]); }, Grad::scaled);
}

TEST_CASE("vs PyTorch: element-wise ops with a number") {
    check_against_pytorch("add_scalar", X, [](const In& v) { return v[0] + 1.5; });
    check_against_pytorch("sub_scalar", X, [](const In& v) { return v[0] - 1.5; });
    check_against_pytorch("rsub_scalar", X, [](const In& v) { return 1.5 - v[0]; });
    check_against_pytorch("mul_scalar", X, [](const In& v) { return v[0] * -2.5; });
    check_against_pytorch("div_scalar", X, [](const In& v) { return v[0] / 4; });
    check_against_pytorch("rdiv_scalar", X, [](const In& v) { return 2.0 / v[0]; });
}

TEST_CASE("vs PyTorch: unary ops") {
    check_against_pytorch("neg", X, [](const In& v) { return -v[0]; });
    check_against_pytorch("exp", X, [](const In& v) { return tg::exp(v[0]); });
    check_against_pytorch("log", X, [](const In& v) { return tg::log(v[0]); });
    check_against_pytorch("sqrt", X, [](const In& v) { return tg::sqrt(v[0]); });
    check_against_pytorch("pow_2_5", X, [](const In& v) { return tg::pow(v[0], 2.5); });
    check_against_pytorch("pow_3", X, [](const In& v) { return tg::pow(v[0], 3); });
    check_against_pytorch("pow_neg_1_5", X, [](const In& v) { return tg::pow(v[0], -1.5); });
}

TEST_CASE("vs PyTorch: derivatives at the edges, x^0 and 0^b") {
    check_against_pytorch("pow_0", X, [](const In& v) { return tg::pow(v[0], 0); });
    check_against_pytorch("pow_tensor_zero_base", AB,
                          [](const In& v) { return tg::pow(v[0], v[1]); });
}

// ---------------------------------------------------------------------------------------------
// gradcheck float64
// ---------------------------------------------------------------------------------------------

namespace {

// The broadcasting pairs every binary op is checked on: same shape, [2,3,4] with [3,1], [4]
// and a scalar, both orders, and both sides broadcast at once.
const std::vector<std::pair<Shape, Shape>> kPairs = {
    {{2, 3}, {2, 3}}, {{2, 3, 4}, {3, 1}}, {{3, 1}, {2, 3, 4}}, {{2, 3, 4}, {4}},
    {{4}, {2, 3, 4}}, {{2, 3, 4}, {}},     {{}, {2, 3, 4}},     {{2, 1, 4}, {3, 1}},
};

std::string pair_name(const char* op, const Shape& a, const Shape& b) {
    return std::string(op) + " " + tg::shape_str(a) + " with " + tg::shape_str(b);
}

}  // namespace

TEST_CASE("gradcheck float64: add, sub, mul, div, pow with broadcasting" *
          doctest::skip(!tg::is_double)) {
    tg::Generator gen(1);
    for (const auto& [sa, sb] : kPairs) {
        check_gradcheck(pair_name("add", sa, sb), [](const In& v) { return tg::add(v[0], v[1]); },
                        {leaf(sa, gen), leaf(sb, gen)});
        check_gradcheck(pair_name("sub", sa, sb), [](const In& v) { return tg::sub(v[0], v[1]); },
                        {leaf(sa, gen), leaf(sb, gen)});
        check_gradcheck(pair_name("mul", sa, sb), [](const In& v) { return tg::mul(v[0], v[1]); },
                        {leaf(sa, gen), leaf(sb, gen)});
        check_gradcheck(pair_name("div", sa, sb), [](const In& v) { return tg::div(v[0], v[1]); },
                        {leaf(sa, gen), leaf_away_from_zero(sb, gen)});
        check_gradcheck(pair_name("pow", sa, sb), [](const In& v) { return tg::pow(v[0], v[1]); },
                        {leaf(sa, gen, 0.5, 2.0), leaf(sb, gen)});
    }
}

TEST_CASE("gradcheck float64: only one side requires grad" * doctest::skip(!tg::is_double)) {
    tg::Generator gen(2);
    Tensor c(tg::uniform({3, 1}, -1, 1, gen));  // a constant: no gradient
    check_gradcheck("mul by a constant", [c](const In& v) { return tg::mul(v[0], c); },
                    {leaf({2, 3, 4}, gen)});
    check_gradcheck("constant / x", [c](const In& v) { return tg::div(c, v[0]); },
                    {leaf_away_from_zero({2, 3, 4}, gen)});
}

TEST_CASE("gradcheck float64: ops with a number on either side, and the operators" *
          doctest::skip(!tg::is_double)) {
    tg::Generator gen(3);
    const In x{leaf({2, 3}, gen)};
    const In nz{leaf_away_from_zero({2, 3}, gen)};
    check_gradcheck(
        "add(x, s)", [](const In& v) { return tg::add(v[0], 1.5); }, x);
    check_gradcheck(
        "add(s, x)", [](const In& v) { return tg::add(1.5, v[0]); }, x);
    check_gradcheck(
        "sub(x, s)", [](const In& v) { return tg::sub(v[0], 1.5); }, x);
    check_gradcheck(
        "sub(s, x)", [](const In& v) { return tg::sub(1.5, v[0]); }, x);
    check_gradcheck(
        "mul(x, s)", [](const In& v) { return tg::mul(v[0], -2.5); }, x);
    check_gradcheck(
        "mul(s, x)", [](const In& v) { return tg::mul(-2.5, v[0]); }, x);
    check_gradcheck(
        "div(x, s)", [](const In& v) { return tg::div(v[0], 4.0); }, x);
    check_gradcheck(
        "div(s, x)", [](const In& v) { return tg::div(2.0, v[0]); }, nz);
    check_gradcheck(
        "operators", [](const In& v) { return -(2.0 * v[0] + 1.0) / (v[0] * v[0] + 3.0) - 1.0; },
        x);
    check_gradcheck("operators on tensors",
                    [](const In& v) { return (v[0] - v[1]) * v[1] / v[1] + v[0]; },
                    {leaf({2, 3}, gen), leaf_away_from_zero({3}, gen)});
}

TEST_CASE("gradcheck float64: a tensor used more than once" * doctest::skip(!tg::is_double)) {
    tg::Generator gen(4);
    check_gradcheck("b = a + a; c = b * b",
                    [](const In& v) {
                        Tensor b = tg::add(v[0], v[0]);
                        return tg::mul(b, b);
                    },
                    {leaf({2, 3}, gen)});
    check_gradcheck("mul(x, x)", [](const In& v) { return tg::mul(v[0], v[0]); },
                    {leaf({2, 3}, gen)});
    check_gradcheck("div(x, x) + x", [](const In& v) { return tg::div(v[0], v[0]) + v[0]; },
                    {leaf_away_from_zero({2, 3}, gen)});
    check_gradcheck("sub(x, x) * x", [](const In& v) { return tg::sub(v[0], v[0]) * v[0]; },
                    {leaf({2, 3}, gen)});
    check_gradcheck("pow(x, x)", [](const In& v) { return tg::pow(v[0], v[0]); },
                    {leaf({2, 3}, gen, 0.5, 2.0)});
}

TEST_CASE("gradcheck float64: exp, log, sqrt, pow, neg" * doctest::skip(!tg::is_double)) {
    tg::Generator gen(5);
    check_gradcheck("neg", [](const In& v) { return tg::neg(v[0]); }, {leaf({2, 3}, gen)});
    check_gradcheck("exp", [](const In& v) { return tg::exp(v[0]); }, {leaf({2, 3}, gen)});
    check_gradcheck("log", [](const In& v) { return tg::log(v[0]); },
                    {leaf({2, 3}, gen, 0.2, 3.0)});
    check_gradcheck("sqrt", [](const In& v) { return tg::sqrt(v[0]); },
                    {leaf({2, 3}, gen, 0.2, 3.0)});
    check_gradcheck("pow(x, 2.5)", [](const In& v) { return tg::pow(v[0], 2.5); },
                    {leaf({2, 3}, gen, 0.2, 3.0)});
    check_gradcheck("pow(x, 3)", [](const In& v) { return tg::pow(v[0], 3); }, {leaf({2, 3}, gen)});
    check_gradcheck("pow(x, -1.5)", [](const In& v) { return tg::pow(v[0], -1.5); },
                    {leaf({2, 3}, gen, 0.5, 3.0)});
    check_gradcheck("pow(x, 0)", [](const In& v) { return tg::pow(v[0], 0); }, {leaf({2, 3}, gen)});
}

// ---------------------------------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------------------------------

TEST_CASE("errors: element-wise shapes that cannot broadcast") {
    const Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({4});
    const char* msg = ": shapes [2, 3] and [4] cannot be broadcast (axis 1: 3 vs 4)";
    CHECK_THROWS_WITH_AS(tg::add(a, b), (std::string("add") + msg).c_str(), std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::sub(a, b), (std::string("sub") + msg).c_str(), std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::mul(a, b), (std::string("mul") + msg).c_str(), std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::div(a, b), (std::string("div") + msg).c_str(), std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::pow(a, b), (std::string("pow") + msg).c_str(), std::invalid_argument);
    CHECK_THROWS_WITH_AS(a * b, (std::string("mul") + msg).c_str(), std::invalid_argument);
}

// ---------------------------------------------------------------------------------------------
// fast vs reference: none (one implementation per op; see the header comment)
// ---------------------------------------------------------------------------------------------
