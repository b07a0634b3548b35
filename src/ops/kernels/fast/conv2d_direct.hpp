// Direct convolution (no im2col, no BLAS) for layers whose filters are small: C kH kW of a
// few dozen, as in the chapter's CNNs (conv1: [N, 1, 28, 28] with 1x3x3 or 1x5x5 filters,
// conv2: 6 or 8 input channels, 3x3 or 5x5). There the per-image GEMM of im2col is far too
// small for BLAS ([8 x 9] x [9 x 676] for conv1) and the im2col copy costs as much as the
// product.
//
// Stride 1 only, padding smaller than the kernel. The maths is conv2d's (see src/ops/conv.cpp):
//   y[n, o, i, j]   = b[o] + sum_{c, p, q} W[o, c, p, q] x[n, c, i + p - pad, j + q - pad]
//   dx[n, c, h, w]  = sum_{o, p, q} W[o, c, p, q] g[n, o, h + pad - p, w + pad - q]
//   dW[o, c, p, q] += sum_{n, i, j} g[n, o, i, j] x[n, c, i + p - pad, j + q - pad]
//   db[o]          += sum_{n, i, j} g[n, o, i, j]
// where x outside [0, H) x [0, W) is 0 and g = dL/dy.
//
// Results are the same whatever the number of threads: every output value is computed by
// one thread, in an order fixed by the shapes alone; dW and db are summed per fixed block of
// kImagesPerBlock images and the blocks are added in block order. They depend on the SIMD
// width the library was compiled for (as OpenBLAS's do on its kernels), not on the thread
// count.
#pragma once

#include <cstddef>

#include "tapegrad/config.hpp"

namespace tg::kernels::fast {

/// The sizes of one stride-1 convolution: x [N, C, H, W], W [O, C, kH, kW],
/// y [N, O, OH, OW] with OH = H + 2 pad_h - kH + 1, OW = W + 2 pad_w - kW + 1.
struct DirectConvShape {
    std::size_t n, c, h, w;
    std::size_t o, kh, kw;
    std::size_t pad_h, pad_w;
    std::size_t oh() const { return h + 2 * pad_h - kh + 1; }
    std::size_t ow() const { return w + 2 * pad_w - kw + 1; }
};

/// Images whose dW, db are summed together before the blocks are added (in block order).
inline constexpr std::size_t kImagesPerBlock = 8;

/// Adds the blocks' partial sums into dW and db in block order (what makes the sums the same at
/// any thread count): block k's are partial[k part_size ...], dW's dw_size values then db's o.
/// dw or db may be null (not wanted).
inline void add_block_partials(const real* partial, std::size_t blocks, std::size_t part_size,
                               real* dw, std::size_t dw_size, real* db, std::size_t o) {
    for (std::size_t k = 0; k < blocks; ++k) {
        const real* part = partial + k * part_size;
        if (dw != nullptr)
            for (std::size_t i = 0; i < dw_size; ++i)
                dw[i] += part[i];
        if (db != nullptr)
            for (std::size_t j = 0; j < o; ++j)
                db[j] += part[dw_size + j];
    }
}

/// The widest filter row the direct kernels handle (their weight-gradient loop is unrolled
/// over the kW taps of a row).
inline constexpr std::size_t kMaxDirectKw = 7;

/// The SIMD instruction set the direct kernels were compiled for ("avx512bw", "fma3<avx2>",
/// "sse2", ...), for benchmark tables.
const char* conv2d_direct_simd();

/// The width in bytes of the SIMD registers the direct kernels were compiled for: 16 (SSE2),
/// 32 (AVX2), 64 (AVX-512). conv2d's rule takes it into account (kernels/fast/conv2d.cpp).
std::size_t conv2d_direct_simd_bytes();

/// True if the direct kernels handle this convolution: stride 1, 1 <= kW <= kMaxDirectKw,
/// padding < kernel size on both axes, and a non-empty output.
bool conv2d_direct_supports(const DirectConvShape& s, std::size_t stride);

/// y [N, O, OH, OW] = conv(x [N, C, H, W], W [O, C, kH, kW]) + b [O] (b may be null).
/// The images are split between tg::num_threads() threads.
void conv2d_direct_forward(const DirectConvShape& s, const real* x, const real* w, const real* b,
                           real* y);

/// dx [N, C, H, W] = the input gradient from g [N, O, OH, OW] (overwritten, not added to).
void conv2d_direct_backward_input(const DirectConvShape& s, const real* g, const real* w, real* dx);

/// dW [O, C, kH, kW] += the weight gradient, db [O] += the bias gradient (either may be
/// null), summed over the N images of x [N, C, H, W] and g [N, O, OH, OW].
void conv2d_direct_backward_weight(const DirectConvShape& s, const real* x, const real* g, real* dw,
                                   real* db);

}  // namespace tg::kernels::fast
