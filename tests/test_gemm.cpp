// detail::gemm (src/ops/gemm.cpp), the one door to BLAS that matmul, linear and conv2d use.
//
// Sections (TEST_CASE name prefixes):
//   vs PyTorch:           none here: gemm is not an op; its numbers reach PyTorch's through
//                         matmul, linear and conv2d (test_linalg, test_linear, test_conv)
//   gradcheck float64:    none: gemm records nothing on a tape
//   errors:               none: gemm is internal, its callers check shapes
//   fast vs reference:    none: one implementation (OpenBLAS)
//   behaviour:            against a plain triple loop, every transpose combination
#include <xtensor/xmath.hpp>

#include "tapegrad/ops/gemm.hpp"
#include "tapegrad/random.hpp"
#include "testing.hpp"

TEST_CASE("behaviour: gemm matches a plain triple loop for every transpose combination") {
    tg::Generator gen(1);
    const std::size_t m = 5, n = 7, k = 3;
    for (bool ta : {false, true}) {
        for (bool tb : {false, true}) {
            tg::Array a = tg::normal(ta ? tg::Shape{k, m} : tg::Shape{m, k}, 0, 1, gen);
            tg::Array b = tg::normal(tb ? tg::Shape{n, k} : tg::Shape{k, n}, 0, 1, gen);
            tg::Array c = tg::normal({m, n}, 0, 1, gen);
            tg::Array expected = 0.5 * c;
            for (std::size_t i = 0; i < m; ++i)
                for (std::size_t j = 0; j < n; ++j)
                    for (std::size_t p = 0; p < k; ++p)
                        expected(i, j) += 2 * (ta ? a(p, i) : a(i, p)) * (tb ? b(j, p) : b(p, j));
            tg::detail::gemm(ta, tb, m, n, k, 2, a.data(), ta ? m : k, b.data(), tb ? k : n, 0.5,
                             c.data(), n);
            CHECK(tgtest::mismatch(c, expected, tg::is_double ? 1e-12 : 1e-5, 1e-6).empty());
        }
    }
}
