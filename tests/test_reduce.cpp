// Reductions (src/ops/reduce.cpp): sum and mean over all or some dims, with keepdim.
//
// Sections (TEST_CASE name prefixes, e.g. ./tests_f32 -sf='*test_reduce*' -tc='vs PyTorch*'):
//   vs PyTorch:           tests/reference/gen_ops.py -> ops.txt
//   gradcheck float64:    central finite differences (float64 binary only)
//   errors:               bad dims name the op, the shape and the accepted range
//   fast vs reference:    none here: sum and mean have one implementation each
#include "op_checks.hpp"

using namespace optest;

// ---------------------------------------------------------------------------------------------
// vs PyTorch
// ---------------------------------------------------------------------------------------------

TEST_CASE("vs PyTorch: sum and mean") {
    check_against_pytorch("sum_all", X, [](const In& v) { return tg::sum(v[0]); });
    check_against_pytorch("sum_dims", X, [](const In& v) { return tg::sum(v[0], {0, 2}); });
    check_against_pytorch("sum_keepdim", X, [](const In& v) { return tg::sum(v[0], {-1}, true); });
    check_against_pytorch("mean_all", X, [](const In& v) { return tg::mean(v[0]); });
    check_against_pytorch("mean_dims", X, [](const In& v) { return tg::mean(v[0], {1}); });
    check_against_pytorch("mean_keepdim", X, [](const In& v) {
        return tg::mean(v[0], {0, -1}, true);
    });
}

// ---------------------------------------------------------------------------------------------
// gradcheck float64
// ---------------------------------------------------------------------------------------------

TEST_CASE("gradcheck float64: sum and mean" * doctest::skip(!tg::is_double)) {
    tg::Generator gen(7);
    const In x{leaf({2, 3, 4}, gen)};
    check_gradcheck(
        "sum()", [](const In& v) { return tg::sum(v[0]); }, x);
    check_gradcheck(
        "sum({0, 2})",
        [](const In& v) {
            return tg::sum(v[0], {0, 2});
        },
        x);
    check_gradcheck(
        "sum({1}, keepdim)", [](const In& v) { return tg::sum(v[0], {1}, true); }, x);
    check_gradcheck(
        "sum({-1, -3}, keepdim)",
        [](const In& v) {
            return tg::sum(v[0], {-1, -3}, true);
        },
        x);
    check_gradcheck(
        "mean()", [](const In& v) { return tg::mean(v[0]); }, x);
    check_gradcheck(
        "mean({2})", [](const In& v) { return tg::mean(v[0], {2}); }, x);
    check_gradcheck(
        "mean({0, 1}, keepdim)",
        [](const In& v) {
            return tg::mean(v[0], {0, 1}, true);
        },
        x);
    check_gradcheck("sum of a 0-d tensor", [](const In& v) { return tg::sum(v[0], {0}); },
                    {leaf({}, gen)});
}

// ---------------------------------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------------------------------

TEST_CASE("errors: sum and mean dims") {
    const Tensor x = Tensor::zeros({2, 3});
    CHECK_THROWS_WITH_AS(tg::sum(x, {2}),
                         "sum: dim 2 out of range for shape [2, 3] (expected in [-2, 1])",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::mean(x, {-3}),
                         "mean: dim -3 out of range for shape [2, 3] (expected in [-2, 1])",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::sum(x, {1, -1}),
                         "sum: dim 1 appears more than once in the dims of shape [2, 3]",
                         std::invalid_argument);
}

// ---------------------------------------------------------------------------------------------
// fast vs reference: none (one implementation per op)
// ---------------------------------------------------------------------------------------------
