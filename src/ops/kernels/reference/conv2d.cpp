// conv2d as im2col + GEMM, one image at a time, one thread.
//
// A convolution is a matrix product once the input is unrolled. For one image x[n] [C, H, W],
// with K = C·kH·kW (the length of one filter) and L = OH·OW (its output positions):
//
//   im2col:  cols [K, L],  cols[(c, p, q), (i, j)] = x[n, c, i·s + p − pad, j·s + q − pad]
//   GEMM:    y[n] [O, L] = W [O, K] · cols [K, L] + b      (W viewed as a matrix [O, K])
//
// Backward, from G = dL/dy[n] viewed as [O, L]:
//   dW [O, K]    += G · colsᵀ        (a sum over the images and positions)
//   db [O]       += Σ_positions G
//   dcols [K, L]  = Wᵀ · G,  then dx[n] = col2im(dcols)  (every copy of im2col becomes a sum)
#include "../conv2d.hpp"

#include <algorithm>
#include <vector>

#include "../im2col.hpp"
#include "tapegrad/ops/gemm.hpp"

namespace tg::kernels::reference {

void conv2d_forward(real* y, const real* x, const real* weight, const real* bias,
                    const Conv2dShape& s) {
    const std::size_t K = s.k(), L = s.l();
    std::vector<real> cols(K * L);  // im2col of one image
    for (std::size_t n = 0; n < s.n; ++n) {
        real* yn = y + n * s.o * L;  // y[n] [O, L]
        for (std::size_t o = 0; o < s.o; ++o)
            std::fill(yn + o * L, yn + (o + 1) * L, bias ? bias[o] : real(0));  // y[n] = b
        if (L == 0 || s.o == 0 || K == 0) continue;  // an empty product (BLAS rejects those)
        im2col(s, x + n * s.c * s.h * s.w, cols.data());
        // y[n] [O, L] += W [O, K] · cols [K, L]
        detail::gemm(false, false, s.o, L, K, 1, weight, K, cols.data(), L, 1, yn, L);
    }
}

void conv2d_backward(real* dx, real* dweight, real* dbias, const real* dy, const real* x,
                     const real* weight, const Conv2dShape& s) {
    const std::size_t K = s.k(), L = s.l(), x_image = s.c * s.h * s.w;
    if (dx) std::fill(dx, dx + s.n * x_image, real(0));
    if (dweight) std::fill(dweight, dweight + s.o * K, real(0));
    if (dbias) std::fill(dbias, dbias + s.o, real(0));
    if (L == 0 || s.o == 0) return;  // no output, nothing flows back
    std::vector<real> cols(K * L), dcols(K * L);
    for (std::size_t n = 0; n < s.n; ++n) {
        const real* G = dy + n * s.o * L;  // dL/dy[n] [O, L]
        if (dbias) {
            for (std::size_t o = 0; o < s.o; ++o) {  // db [O] += Σ_positions G
                for (std::size_t l = 0; l < L; ++l)
                    dbias[o] += G[o * L + l];
            }
        }
        if (K == 0) continue;
        if (dweight) {  // dW [O, K] += G [O, L] · colsᵀ [L, K]
            im2col(s, x + n * x_image, cols.data());
            detail::gemm(false, true, s.o, K, L, 1, G, L, cols.data(), L, 1, dweight, K);
        }
        if (dx) {  // dcols [K, L] = Wᵀ [K, O] · G [O, L];  dx[n] = col2im(dcols)
            detail::gemm(true, false, K, L, s.o, 1, weight, K, G, L, 0, dcols.data(), L);
            col2im(s, dcols.data(), dx + n * x_image);
        }
    }
}

}  // namespace tg::kernels::reference
