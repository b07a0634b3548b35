// Shape ops (src/ops/shape.cpp): reshape, flatten, transpose, permute.
//
// Sections (TEST_CASE name prefixes, e.g. ./tests_f32 -sf='*test_shape*' -tc='errors*'):
//   vs PyTorch:           tests/reference/gen_ops.py -> ops.txt
//   gradcheck float64:    central finite differences (float64 binary only)
//   errors:               bad shapes or dims name the op, the shape and what was expected
//   fast vs reference:    none here: the shape ops move values, one implementation each
#include "op_checks.hpp"
#include "tapegrad/ops/shape.hpp"

using namespace optest;

// ---------------------------------------------------------------------------------------------
// vs PyTorch
// ---------------------------------------------------------------------------------------------

TEST_CASE("vs PyTorch: reshape, flatten, transpose, permute") {
    check_against_pytorch("reshape", X, [](const In& v) { return tg::reshape(v[0], {4, 6}); });
    check_against_pytorch("flatten", X, [](const In& v) { return tg::flatten(v[0]); });
    check_against_pytorch("flatten_mid", X, [](const In& v) { return tg::flatten(v[0], 1, 2); });
    check_against_pytorch("transpose", X, [](const In& v) { return tg::transpose(v[0], 0, 2); });
    check_against_pytorch("transpose_neg", X,
                          [](const In& v) { return tg::transpose(v[0], -1, -2); });
    check_against_pytorch("permute", X, [](const In& v) { return tg::permute(v[0], {2, 0, 1}); });
}

// ---------------------------------------------------------------------------------------------
// gradcheck float64
// ---------------------------------------------------------------------------------------------

TEST_CASE("gradcheck float64: reshape, flatten, transpose, permute" *
          doctest::skip(!tg::is_double)) {
    tg::Generator gen(8);
    const In x{leaf({2, 3, 4, 5}, gen)};
    check_gradcheck(
        "reshape",
        [](const In& v) {
            return tg::reshape(v[0], {6, 20});
        },
        x);
    check_gradcheck(
        "flatten()", [](const In& v) { return tg::flatten(v[0]); }, x);
    check_gradcheck(
        "flatten(0, 2)", [](const In& v) { return tg::flatten(v[0], 0, 2); }, x);
    check_gradcheck(
        "transpose(1, 3)", [](const In& v) { return tg::transpose(v[0], 1, 3); }, x);
    check_gradcheck(
        "transpose(-1, 0)", [](const In& v) { return tg::transpose(v[0], -1, 0); }, x);
    check_gradcheck(
        "permute({3, 1, 0, 2})",
        [](const In& v) {
            return tg::permute(v[0], {3, 1, 0, 2});
        },
        x);
}

// ---------------------------------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------------------------------

TEST_CASE("errors: reshape, flatten, transpose, permute") {
    const Tensor x = Tensor::zeros({2, 3, 4});
    CHECK_THROWS_WITH_AS(
        tg::reshape(x, {5, 5}),
        "reshape: cannot reshape [2, 3, 4] (24 elements) into [5, 5] (25 elements)",
        std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::flatten(x, 2, 1),
                         "flatten: start_dim 2 comes after end_dim 1 for shape [2, 3, 4]",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::flatten(x, 3),
                         "flatten: dim 3 out of range for shape [2, 3, 4] (expected in [-3, 2])",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::transpose(x, 0, -4),
                         "transpose: dim -4 out of range for shape [2, 3, 4] (expected in [-3, 2])",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::permute(x, {0, 0, 1}),
                         "permute: dims [0, 0, 1] are not a permutation of the 3 axes of shape "
                         "[2, 3, 4]",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::permute(x, {1, 0}),
                         "permute: dims [1, 0] are not a permutation of the 3 axes of shape "
                         "[2, 3, 4]",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::permute(x, {0, 1, 3}),
                         "permute: dims [0, 1, 3] are not a permutation of the 3 axes of shape "
                         "[2, 3, 4]",
                         std::invalid_argument);
}

// ---------------------------------------------------------------------------------------------
// fast vs reference: none (one implementation per op)
// ---------------------------------------------------------------------------------------------
