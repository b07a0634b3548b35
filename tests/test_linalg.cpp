// matmul (src/ops/linalg.cpp): C = A B through one GEMM (detail::gemm, tests/test_gemm.cpp).
//
// Sections (TEST_CASE name prefixes, e.g. ./tests_f32 -sf='*test_linalg*' -tc='vs PyTorch*'):
//   vs PyTorch:           tests/reference/gen_ops.py -> ops.txt
//   gradcheck float64:    central finite differences (float64 binary only)
//   errors:               bad shapes name the op, the shapes and what was expected
//   fast vs reference:    none here: matmul is one BLAS call, the same on either kernel set
#include "op_checks.hpp"
#include "tapegrad/ops/linalg.hpp"
#include "tapegrad/ops/shape.hpp"

using namespace optest;

// ---------------------------------------------------------------------------------------------
// vs PyTorch
// ---------------------------------------------------------------------------------------------

TEST_CASE("vs PyTorch: matmul") {
    check_against_pytorch(
        "matmul", AB, [](const In& v) { return tg::matmul(v[0], v[1]); }, Grad::scaled);
}

// ---------------------------------------------------------------------------------------------
// gradcheck float64
// ---------------------------------------------------------------------------------------------

TEST_CASE("gradcheck float64: matmul" * doctest::skip(!tg::is_double)) {
    tg::Generator gen(9);
    auto mm = [](const In& v) { return tg::matmul(v[0], v[1]); };
    check_gradcheck("matmul [3, 4] x [4, 5]", mm, {leaf({3, 4}, gen), leaf({4, 5}, gen)});
    check_gradcheck("matmul [1, 6] x [6, 1]", mm, {leaf({1, 6}, gen), leaf({6, 1}, gen)});
}

TEST_CASE("gradcheck float64: matmul of a tensor with itself" * doctest::skip(!tg::is_double)) {
    tg::Generator gen(4);
    check_gradcheck("matmul(x, x)", [](const In& v) { return tg::matmul(v[0], v[0]); },
                    {leaf({3, 3}, gen)});
    check_gradcheck("matmul(x, x^T)",
                    [](const In& v) { return tg::matmul(v[0], tg::transpose(v[0], 0, 1)); },
                    {leaf({3, 4}, gen)});
}

// ---------------------------------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------------------------------

TEST_CASE("errors: matmul") {
    CHECK_THROWS_WITH_AS(tg::matmul(Tensor::zeros({2, 3}), Tensor::zeros({4, 5})),
                         "matmul: [2, 3] x [4, 5]: inner dimensions 3 and 4 differ",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::matmul(Tensor::zeros({2, 3, 4}), Tensor::zeros({4, 5})),
                         "matmul: expected 2-D tensors [m, k] x [k, n], got [2, 3, 4] x [4, 5]",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::matmul(Tensor::zeros({3}), Tensor::zeros({3})),
                         "matmul: expected 2-D tensors [m, k] x [k, n], got [3] x [3]",
                         std::invalid_argument);
}

// ---------------------------------------------------------------------------------------------
// fast vs reference: none (one BLAS call)
// ---------------------------------------------------------------------------------------------
