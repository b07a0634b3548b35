// tapegrad/ops/linalg.hpp — matrix products (BLAS GEMM underneath, see ops/gemm.hpp).
#pragma once

#include "tapegrad/tensor.hpp"

namespace tg {

/// C = A B for A [m, k], B [k, n], C [m, n]. dA = G B^T [m, k], dB = A^T G [k, n].
Tensor matmul(const Tensor& a, const Tensor& b);

}  // namespace tg
