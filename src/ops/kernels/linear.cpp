// linear: Y = X Wᵀ + b through one GEMM each way (tapegrad/ops/gemm.hpp). Both kernel sets use
// these: BLAS does the work, and the same BLAS call is the readable version too.
#include "linear.hpp"

#include "tapegrad/ops/gemm.hpp"

namespace tg::kernels {

void linear_forward(real* y, const real* x, const real* weight, const real* bias, std::size_t M,
                    std::size_t in, std::size_t out) {
    // Y [M, out] starts as b in every row (or 0), then Y += X [M, in] Wᵀ [in, out].
    if (out == 0) return;  // Y is empty: no pass over a batch of up to 2^61 empty rows
    for (std::size_t m = 0; m < M; ++m) {
        for (std::size_t j = 0; j < out; ++j)
            y[m * out + j] = bias ? bias[j] : real(0);
    }
    if (M == 0 || in == 0 || out == 0) return;  // BLAS rejects zero-sized matrices; Y = b
    detail::gemm(false, true, M, out, in, 1, x, in, weight, in, 1, y, out);
}

void linear_backward(real* dx, real* dweight, real* dbias, const real* dy, const real* x,
                     const real* weight, std::size_t M, std::size_t in, std::size_t out) {
    const bool empty = M == 0 || in == 0 || out == 0;  // then every product is 0
    if (dx) {
        // dX [M, in] = dY [M, out] W [out, in]
        if (empty) {
            for (std::size_t i = 0; i < M * in; ++i)
                dx[i] = 0;
        } else {
            detail::gemm(false, false, M, in, out, 1, dy, out, weight, in, 0, dx, in);
        }
    }
    if (dweight) {
        // dW [out, in] = dYᵀ [out, M] X [M, in]   (a sum over the batch)
        if (empty) {
            for (std::size_t i = 0; i < out * in; ++i)
                dweight[i] = 0;
        } else {
            detail::gemm(true, false, out, in, M, 1, dy, out, x, in, 0, dweight, in);
        }
    }
    if (dbias) {
        // db [out] = Σ_m dY[m, :]
        for (std::size_t j = 0; j < out; ++j)
            dbias[j] = 0;
        for (std::size_t m = 0; m < M && out > 0; ++m) {  // (out = 0: nothing to sum)
            for (std::size_t j = 0; j < out; ++j)
                dbias[j] += dy[m * out + j];
        }
    }
}

}  // namespace tg::kernels
