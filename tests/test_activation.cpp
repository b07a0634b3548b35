// relu (src/ops/activation.cpp): y = max(x, 0), two kernels (kernels/{reference,fast}/relu.cpp).
//
// Sections (TEST_CASE name prefixes, e.g. ./tests_f32 -sf='*test_activation*' -tc='vs PyTorch*'):
//   vs PyTorch:           tests/reference/gen_ops.py -> ops.txt, with each kernel set
//   gradcheck float64:    central finite differences (float64 binary only)
//   errors:               none: relu takes a tensor of any shape (checked below)
//   fast vs reference:    the fast kernels against the reference kernels
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
