// tapegrad/ops/gemm.hpp — the one door to BLAS matrix multiplication.
//
// matmul, linear and conv2d (im2col + GEMM) all multiply matrices here, so the arithmetic
// is done by OpenBLAS's sgemm/dgemm (through xtensor-blas's cxxblas bindings).
#pragma once

#include <cstddef>

#include "tapegrad/config.hpp"

namespace tg::detail {

/// C = alpha * op(A) * op(B) + beta * C on row-major raw buffers, where op(X) is X or X^T.
/// op(A) is [m, k], op(B) is [k, n], C is [m, n]; lda/ldb/ldc are the row strides of A, B, C
/// as stored (A is [m, k] stored, or [k, m] stored when trans_a).
/// Always one BLAS thread (it sets OpenBLAS to one thread if something changed that): threads
/// come from tapegrad's own fixed blocks around it, so numbers do not depend on thread counts.
void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, real alpha,
          const real* a, std::size_t lda, const real* b, std::size_t ldb, real beta, real* c,
          std::size_t ldc);

/// The name of the kernels OpenBLAS chose for this CPU, e.g. "SkylakeX" (see scripts/env.sh).
const char* blas_core();

}  // namespace tg::detail
