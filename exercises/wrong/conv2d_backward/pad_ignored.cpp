// A seeded wrong solution (the grader must diagnose it as `pad_ignored`): reads x at (i·stride + p,
// j·stride + q). Exercise conv2d_backward: the gradients of a 2-D convolution (dx, dweight, dbias).
// Check it:  bash scripts/exercise.sh check conv2d_backward         (docs/exercises.md)
// Solution:  src/ops/kernels/reference/conv2d.cpp (read it after you pass, not before).
//
// Shapes (s: kernels::Conv2dShape, src/ops/kernels/shapes.hpp), all row-major:
//   x, dx     [N, C, H, W]      s.n, s.c, s.h, s.w
//   weight,   [O, C, kH, kW]    s.o, s.c, s.kh, s.kw
//     dweight
//   dbias     [O]
//   dy        [N, O, OH, OW]    s.oh, s.ow      one stride s.stride and zero padding s.pad
//
// The forward (PyTorch's conv2d, a cross-correlation: the kernel is not flipped), with x = 0
// outside the image:
//
//     y[n, o, i, j] = b[o] + Σ_{c, p, q} W[o, c, p, q] · x[n, c, i·stride + p − pad, j·stride + q −
//     pad]
//
// so every (n, o, i, j, c, p, q) with h = i·stride + p − pad in [0, H) and
// w = j·stride + q − pad in [0, W) contributes, from dy = ∂L/∂y:
//
//     dW[o, c, p, q] += dy[n, o, i, j] · x[n, c, h, w]      (summed over n, i, j)
//     dx[n, c, h, w] += dy[n, o, i, j] · W[o, c, p, q]      (summed over o, p, q: where windows
//                                                            overlap, one x gets several)
//     db[o]          += dy[n, o, i, j]                      (summed over n, i, j)
//
// dx, dweight, dbias may each be null (not wanted: e.g. no bias, or x is the network's input):
// skip it. Each is written, not accumulated into: set it to 0 first. The reference kernel does
// this as im2col + GEMM; plain loops are fine (im2col.hpp and gemm.hpp are included if you
// want them).
#include <algorithm>
#include <cstddef>

#include "src/ops/kernels/im2col.hpp"
#include "tapegrad/config.hpp"
#include "tapegrad/exercise.hpp"
#include "tapegrad/ops/gemm.hpp"

namespace tg::exercises {

void conv2d_backward(real* dx, real* dweight, real* dbias, const real* dy, const real* x,
                     const real* weight, const kernels::Conv2dShape& s) {
    const std::size_t x_size = s.n * s.c * s.h * s.w, w_size = s.o * s.c * s.kh * s.kw;
    if (dx) std::fill(dx, dx + x_size, real(0));
    if (dweight) std::fill(dweight, dweight + w_size, real(0));
    if (dbias) std::fill(dbias, dbias + s.o, real(0));
    for (std::size_t n = 0; n < s.n; ++n)
        for (std::size_t o = 0; o < s.o; ++o)
            for (std::size_t i = 0; i < s.oh; ++i)
                for (std::size_t j = 0; j < s.ow; ++j) {
                    const real g = dy[((n * s.o + o) * s.oh + i) * s.ow + j];
                    if (dbias) dbias[o] += g;
                    for (std::size_t c = 0; c < s.c; ++c)
                        for (std::size_t p = 0; p < s.kh; ++p)
                            for (std::size_t q = 0; q < s.kw; ++q) {
                                // the x this weight met: (i·stride + p − pad, j·stride + q − pad)
                                const long h = long(i * s.stride + p);
                                const long w = long(j * s.stride + q);
                                if (h < 0 || w < 0 || h >= long(s.h) || w >= long(s.w)) continue;
                                const std::size_t xi = ((n * s.c + c) * s.h + h) * s.w + w;
                                const std::size_t wi = ((o * s.c + c) * s.kh + p) * s.kw + q;
                                if (dweight) dweight[wi] += g * x[xi];
                                if (dx) dx[xi] += g * weight[wi];
                            }
                }
}

}  // namespace tg::exercises
