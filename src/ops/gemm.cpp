#include "tapegrad/ops/gemm.hpp"

#include <xtensor-blas/xblas.hpp>

// OpenBLAS's own control functions (not part of the cblas interface xtensor-blas declares;
// OpenBLAS's cblas.h would clash with those declarations, so they are declared here).
extern "C" void openblas_set_num_threads(int num_threads);
extern "C" int openblas_get_num_threads(void);
extern "C" char* openblas_get_corename(void);

namespace tg::detail {

const char* blas_core() {
    return openblas_get_corename();
}

void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, real alpha,
          const real* a, std::size_t lda, const real* b, std::size_t ldb, real beta, real* c,
          std::size_t ldc) {
    // BLAS runs single-threaded, whatever OPENBLAS_NUM_THREADS says: the fast kernels call it
    // inside their own fixed blocks of work (tapegrad/parallel.hpp), and OpenBLAS's threads
    // split one product differently for 1 and 2 threads (measured: 1,874 of 7,680 outputs of
    // a 64×120×400 sgemm differ), which would make the numbers depend on the thread count.
    if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
    using idx = xt::blas_index_t;
    cxxblas::gemm<idx>(cxxblas::StorageOrder::RowMajor,
                       trans_a ? cxxblas::Transpose::Trans : cxxblas::Transpose::NoTrans,
                       trans_b ? cxxblas::Transpose::Trans : cxxblas::Transpose::NoTrans,
                       static_cast<idx>(m), static_cast<idx>(n), static_cast<idx>(k), alpha, a,
                       static_cast<idx>(lda), b, static_cast<idx>(ldb), beta, c,
                       static_cast<idx>(ldc));
}

}  // namespace tg::detail
