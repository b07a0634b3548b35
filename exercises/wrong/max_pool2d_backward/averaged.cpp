// A seeded wrong solution (the grader must diagnose it as `averaged`): spreads dy over the window,
// as average pooling does. Exercise max_pool2d_backward: the gradient of max pooling. Check it:
// bash scripts/exercise.sh check max_pool2d_backward     (docs/exercises.md) Solution:
// src/ops/kernels/reference/pool.cpp (read it after you pass, not before).
//
// The forward pooled x [planes, H, W] (planes = N·C) into y [planes, OH, OW], window k×k,
// stride, padding pad (s.planes, s.h, s.w, s.oh, s.ow, s.k, s.stride, s.pad), and stored in
// argmax [planes, OH, OW] the flat index into x of each output's maximum. y_t = x[argmax[t]],
// so ∂y_t/∂x_j = 1 if j = argmax[t], else 0:
//
//     dx = 0;   dx[argmax[t]] += dy[t]   for every output t
//
// Windows overlap when stride < k: one x can be the maximum of several windows, and its
// gradient is the sum. dx [planes, H, W]: write every element.
#include <cstddef>

#include <cmath>
#include <limits>
#include "src/ops/kernels/shapes.hpp"
#include "tapegrad/config.hpp"
#include "tapegrad/exercise.hpp"

namespace tg::exercises {

void max_pool2d_backward(real* dx, const real* dy, const std::size_t* argmax,
                         const kernels::Pool2dShape& s) {
    for (std::size_t t = 0; t < s.planes * s.h * s.w; ++t)
        dx[t] = 0;
    // Only the maximum of each window gets a gradient: dx[argmax[t]] += dy[t].
    for (std::size_t plane = 0; plane < s.planes; ++plane)
        for (std::size_t i = 0; i < s.oh; ++i)
            for (std::size_t j = 0; j < s.ow; ++j) {
                const kernels::Window rows = kernels::pool_window(i, s, s.h);
                const kernels::Window cols = kernels::pool_window(j, s, s.w);
                for (std::size_t r = rows.begin; r < rows.end; ++r)
                    for (std::size_t c = cols.begin; c < cols.end; ++c)
                        dx[(plane * s.h + r) * s.w + c] +=
                            dy[(plane * s.oh + i) * s.ow + j] / static_cast<real>(s.k * s.k);
            }
}

}  // namespace tg::exercises
