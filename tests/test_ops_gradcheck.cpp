// Every functional op against central finite differences (float64 build only). Non-scalar
// outputs are reduced to sum(y * w) with fixed random weights w, so every output element's
// gradient matters.
#include <functional>
#include <string>
#include <vector>

#include "tapegrad/ops/activation.hpp"
#include "tapegrad/ops/elementwise.hpp"
#include "tapegrad/ops/linalg.hpp"
#include "tapegrad/ops/loss.hpp"
#include "tapegrad/ops/reduce.hpp"
#include "tapegrad/ops/shape.hpp"
#include "tapegrad/random.hpp"
#include "tapegrad/tape.hpp"
#include "testing.hpp"

using tg::Shape;
using tg::Tensor;

namespace {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;
using In = std::vector<Tensor>;

// A leaf requiring grad, uniform in [lo, hi).
Tensor leaf(const Shape& shape, tg::Generator& gen, double lo = -2.0, double hi = 2.0) {
    return Tensor(tg::uniform(shape, lo, hi, gen), true);
}

// Values with |v| in [0.5, 2] and random signs: away from relu's kink and division by 0.
Tensor leaf_away_from_zero(const Shape& shape, tg::Generator& gen) {
    tg::Array v = tg::uniform(shape, 0.5, 2.0, gen);
    for (auto& e : v)
        e *= gen.uniform01() < 0.5 ? -1 : 1;
    return Tensor(std::move(v), true);
}

// gradcheck of f, reduced to the scalar sum(f(in) * w) with w ~ N(0, 1) fixed.
void check_op(const std::string& what, const Fn& f, const In& inputs) {
    INFO(what);
    tg::Array y;
    {
        tg::NoGradGuard no_grad;
        y = f(inputs).value();
    }
    tg::Generator wgen(99);
    const Tensor w(tg::normal(Shape(y.shape().begin(), y.shape().end()), 0.0, 1.0, wgen));
    CHECK_GRADCHECK([&](const In& in) { return tg::sum(tg::mul(f(in), w)); }, inputs);
}

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

TEST_CASE("gradcheck: add, sub, mul, div with broadcasting" * doctest::skip(!tg::is_double)) {
    tg::Generator gen(1);
    for (const auto& [sa, sb] : kPairs) {
        check_op(pair_name("add", sa, sb), [](const In& v) { return tg::add(v[0], v[1]); },
                 {leaf(sa, gen), leaf(sb, gen)});
        check_op(pair_name("sub", sa, sb), [](const In& v) { return tg::sub(v[0], v[1]); },
                 {leaf(sa, gen), leaf(sb, gen)});
        check_op(pair_name("mul", sa, sb), [](const In& v) { return tg::mul(v[0], v[1]); },
                 {leaf(sa, gen), leaf(sb, gen)});
        check_op(pair_name("div", sa, sb), [](const In& v) { return tg::div(v[0], v[1]); },
                 {leaf(sa, gen), leaf_away_from_zero(sb, gen)});
        check_op(pair_name("pow", sa, sb), [](const In& v) { return tg::pow(v[0], v[1]); },
                 {leaf(sa, gen, 0.5, 2.0), leaf(sb, gen)});
    }
}

TEST_CASE("gradcheck: only one side requires grad" * doctest::skip(!tg::is_double)) {
    tg::Generator gen(2);
    Tensor c(tg::uniform({3, 1}, -1, 1, gen));  // a constant: no gradient
    check_op("mul by a constant", [c](const In& v) { return tg::mul(v[0], c); },
             {leaf({2, 3, 4}, gen)});
    check_op("constant / x", [c](const In& v) { return tg::div(c, v[0]); },
             {leaf_away_from_zero({2, 3, 4}, gen)});
}

TEST_CASE("gradcheck: ops with a number on either side, and the operators" *
          doctest::skip(!tg::is_double)) {
    tg::Generator gen(3);
    const In x{leaf({2, 3}, gen)};
    const In nz{leaf_away_from_zero({2, 3}, gen)};
    check_op(
        "add(x, s)", [](const In& v) { return tg::add(v[0], 1.5); }, x);
    check_op(
        "add(s, x)", [](const In& v) { return tg::add(1.5, v[0]); }, x);
    check_op(
        "sub(x, s)", [](const In& v) { return tg::sub(v[0], 1.5); }, x);
    check_op(
        "sub(s, x)", [](const In& v) { return tg::sub(1.5, v[0]); }, x);
    check_op(
        "mul(x, s)", [](const In& v) { return tg::mul(v[0], -2.5); }, x);
    check_op(
        "mul(s, x)", [](const In& v) { return tg::mul(-2.5, v[0]); }, x);
    check_op(
        "div(x, s)", [](const In& v) { return tg::div(v[0], 4.0); }, x);
    check_op(
        "div(s, x)", [](const In& v) { return tg::div(2.0, v[0]); }, nz);
    check_op(
        "operators", [](const In& v) { return -(2.0 * v[0] + 1.0) / (v[0] * v[0] + 3.0) - 1.0; },
        x);
    check_op("operators on tensors", [](const In& v) { return (v[0] - v[1]) * v[1] / v[1] + v[0]; },
             {leaf({2, 3}, gen), leaf_away_from_zero({3}, gen)});
}

TEST_CASE("gradcheck: a tensor used more than once" * doctest::skip(!tg::is_double)) {
    tg::Generator gen(4);
    check_op("b = a + a; c = b * b",
             [](const In& v) {
                 Tensor b = tg::add(v[0], v[0]);
                 return tg::mul(b, b);
             },
             {leaf({2, 3}, gen)});
    check_op("mul(x, x)", [](const In& v) { return tg::mul(v[0], v[0]); }, {leaf({2, 3}, gen)});
    check_op("div(x, x) + x", [](const In& v) { return tg::div(v[0], v[0]) + v[0]; },
             {leaf_away_from_zero({2, 3}, gen)});
    check_op("sub(x, x) * x", [](const In& v) { return tg::sub(v[0], v[0]) * v[0]; },
             {leaf({2, 3}, gen)});
    check_op("pow(x, x)", [](const In& v) { return tg::pow(v[0], v[0]); },
             {leaf({2, 3}, gen, 0.5, 2.0)});
    check_op("matmul(x, x)", [](const In& v) { return tg::matmul(v[0], v[0]); },
             {leaf({3, 3}, gen)});
    check_op("matmul(x, x^T)",
             [](const In& v) { return tg::matmul(v[0], tg::transpose(v[0], 0, 1)); },
             {leaf({3, 4}, gen)});
}

TEST_CASE("gradcheck: exp, log, sqrt, pow, neg" * doctest::skip(!tg::is_double)) {
    tg::Generator gen(5);
    check_op("neg", [](const In& v) { return tg::neg(v[0]); }, {leaf({2, 3}, gen)});
    check_op("exp", [](const In& v) { return tg::exp(v[0]); }, {leaf({2, 3}, gen)});
    check_op("log", [](const In& v) { return tg::log(v[0]); }, {leaf({2, 3}, gen, 0.2, 3.0)});
    check_op("sqrt", [](const In& v) { return tg::sqrt(v[0]); }, {leaf({2, 3}, gen, 0.2, 3.0)});
    check_op("pow(x, 2.5)", [](const In& v) { return tg::pow(v[0], 2.5); },
             {leaf({2, 3}, gen, 0.2, 3.0)});
    check_op("pow(x, 3)", [](const In& v) { return tg::pow(v[0], 3); }, {leaf({2, 3}, gen)});
    check_op("pow(x, -1.5)", [](const In& v) { return tg::pow(v[0], -1.5); },
             {leaf({2, 3}, gen, 0.5, 3.0)});
    check_op("pow(x, 0)", [](const In& v) { return tg::pow(v[0], 0); }, {leaf({2, 3}, gen)});
}

TEST_CASE("gradcheck: relu" * doctest::skip(!tg::is_double)) {
    tg::Generator gen(6);
    check_op("relu", [](const In& v) { return tg::relu(v[0]); },
             {leaf_away_from_zero({3, 4, 5}, gen)});
}

TEST_CASE("gradcheck: sum and mean" * doctest::skip(!tg::is_double)) {
    tg::Generator gen(7);
    const In x{leaf({2, 3, 4}, gen)};
    check_op(
        "sum()", [](const In& v) { return tg::sum(v[0]); }, x);
    check_op(
        "sum({0, 2})",
        [](const In& v) {
            return tg::sum(v[0], {0, 2});
        },
        x);
    check_op(
        "sum({1}, keepdim)", [](const In& v) { return tg::sum(v[0], {1}, true); }, x);
    check_op(
        "sum({-1, -3}, keepdim)",
        [](const In& v) {
            return tg::sum(v[0], {-1, -3}, true);
        },
        x);
    check_op(
        "mean()", [](const In& v) { return tg::mean(v[0]); }, x);
    check_op(
        "mean({2})", [](const In& v) { return tg::mean(v[0], {2}); }, x);
    check_op(
        "mean({0, 1}, keepdim)",
        [](const In& v) {
            return tg::mean(v[0], {0, 1}, true);
        },
        x);
    check_op("sum of a 0-d tensor", [](const In& v) { return tg::sum(v[0], {0}); },
             {leaf({}, gen)});
}

TEST_CASE("gradcheck: reshape, flatten, transpose, permute" * doctest::skip(!tg::is_double)) {
    tg::Generator gen(8);
    const In x{leaf({2, 3, 4, 5}, gen)};
    check_op(
        "reshape",
        [](const In& v) {
            return tg::reshape(v[0], {6, 20});
        },
        x);
    check_op(
        "flatten()", [](const In& v) { return tg::flatten(v[0]); }, x);
    check_op(
        "flatten(0, 2)", [](const In& v) { return tg::flatten(v[0], 0, 2); }, x);
    check_op(
        "transpose(1, 3)", [](const In& v) { return tg::transpose(v[0], 1, 3); }, x);
    check_op(
        "transpose(-1, 0)", [](const In& v) { return tg::transpose(v[0], -1, 0); }, x);
    check_op(
        "permute({3, 1, 0, 2})",
        [](const In& v) {
            return tg::permute(v[0], {3, 1, 0, 2});
        },
        x);
}

TEST_CASE("gradcheck: matmul" * doctest::skip(!tg::is_double)) {
    tg::Generator gen(9);
    auto mm = [](const In& v) { return tg::matmul(v[0], v[1]); };
    check_op("matmul [3, 4] x [4, 5]", mm, {leaf({3, 4}, gen), leaf({4, 5}, gen)});
    check_op("matmul [1, 6] x [6, 1]", mm, {leaf({1, 6}, gen), leaf({6, 1}, gen)});
}

TEST_CASE("gradcheck: log_softmax and softmax" * doctest::skip(!tg::is_double)) {
    tg::Generator gen(10);
    const In x{leaf({3, 4, 5}, gen)};
    for (int dim : {-1, 0, 1}) {
        check_op(
            "log_softmax dim " + std::to_string(dim),
            [dim](const In& v) { return tg::log_softmax(v[0], dim); }, x);
        check_op(
            "softmax dim " + std::to_string(dim),
            [dim](const In& v) { return tg::softmax(v[0], dim); }, x);
    }
}

TEST_CASE("gradcheck: cross_entropy and mse_loss" * doctest::skip(!tg::is_double)) {
    tg::Generator gen(11);
    const tg::Labels t{2, 0, 3, 3, 1};
    check_op("cross_entropy", [&t](const In& v) { return tg::cross_entropy(v[0], t); },
             {leaf({5, 4}, gen)});
    // Logits around 30: e^30 would lose digits without the max subtraction.
    check_op("cross_entropy, large logits",
             [&t](const In& v) { return tg::cross_entropy(v[0], t); },
             {leaf({5, 4}, gen, 28.0, 32.0)});
    auto mse = [](const In& v) { return tg::mse_loss(v[0], v[1]); };
    check_op("mse_loss", mse, {leaf({3, 4}, gen), leaf({3, 4}, gen)});
    check_op("mse_loss broadcast target", mse, {leaf({2, 3, 4}, gen), leaf({3, 1}, gen)});
}

TEST_CASE("gradcheck: a two-layer MLP with cross_entropy" * doctest::skip(!tg::is_double)) {
    tg::Generator gen(12);
    const tg::Labels t{1, 0, 2, 2};
    check_op("relu(x W1 + b1) W2 + b2",
             [&t](const In& v) {
                 Tensor h = tg::relu(tg::matmul(v[0], v[1]) + v[2]);
                 return tg::cross_entropy(tg::matmul(h, v[3]) + v[4], t);
             },
             {leaf({4, 3}, gen), leaf({3, 5}, gen), leaf_away_from_zero({5}, gen),
              leaf({5, 3}, gen), leaf({3}, gen)});
}
