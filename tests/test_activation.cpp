// relu (src/ops/activation.cpp): against PyTorch (tests/test_ops_reference.cpp, "unary ops",
// and "derivatives at the edges"), gradcheck (tests/test_ops_gradcheck.cpp), and here the fast
// kernels against the reference kernels.
#include <vector>

#include "tapegrad/ops/activation.hpp"
#include "tapegrad/parallel.hpp"
#include "tapegrad/random.hpp"
#include "testing.hpp"

using tg::Array;
using tg::Tensor;

// ---------------------------------------------------------------------------------------------
// Fast kernels against the reference kernels
// ---------------------------------------------------------------------------------------------

TEST_CASE("relu: fast kernels match the reference kernels on 100 random shapes, zeros included") {
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
