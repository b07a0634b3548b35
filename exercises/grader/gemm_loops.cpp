// tg::detail::gemm for the grader (the reference conv2d's GEMM, and a student's if they call
// it): C = α·op(A)·op(B) + β·C as plain float64 loops, so the grader needs no BLAS. The
// library's own (src/ops/gemm.cpp) calls OpenBLAS; only the order of the sums differs.
#include <cstddef>

#include "tapegrad/ops/gemm.hpp"

namespace tg::detail {

void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, real alpha,
          const real* a, std::size_t lda, const real* b, std::size_t ldb, real beta, real* c,
          std::size_t ldc) {
    for (std::size_t i = 0; i < m; ++i)
        for (std::size_t j = 0; j < n; ++j) {
            double sum = 0.0;
            for (std::size_t p = 0; p < k; ++p)
                sum += static_cast<double>(trans_a ? a[p * lda + i] : a[i * lda + p]) *
                       (trans_b ? b[j * ldb + p] : b[p * ldb + j]);
            c[i * ldc + j] =
                static_cast<real>(alpha * sum + (beta == 0 ? 0.0 : beta * c[i * ldc + j]));
        }
}

}  // namespace tg::detail
