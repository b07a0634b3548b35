// Max and average pooling, one plane and one window at a time.
//
// Output (i, j) of a plane covers input rows i·s − pad ... i·s − pad + k − 1 and columns
// j·s − pad ... j·s − pad + k − 1, clipped to the plane (pool_window): the padding takes no part
// (max: it is −∞; average: it is 0 but still counted in the divisor k²).
#include "../pool.hpp"

#include <cmath>
#include <limits>

namespace tg::kernels::reference {

void max_pool2d_forward(real* y, std::size_t* argmax, const real* x, const Pool2dShape& s) {
    for (std::size_t plane = 0; plane < s.planes; ++plane) {
        const std::size_t base = plane * s.h * s.w;  // x[n, c, 0, 0]
        for (std::size_t i = 0; i < s.oh; ++i) {
            const Window rows = pool_window(i, s, s.h);
            for (std::size_t j = 0; j < s.ow; ++j) {
                const Window cols = pool_window(j, s, s.w);
                // y = max over the window, as PyTorch: from −∞, the first maximum; a NaN wins.
                real best = -std::numeric_limits<real>::infinity();
                std::size_t best_at = base + rows.begin * s.w + cols.begin;
                for (std::size_t r = rows.begin; r < rows.end; ++r) {
                    for (std::size_t c = cols.begin; c < cols.end; ++c) {
                        const std::size_t at = base + r * s.w + c;
                        if (x[at] > best || std::isnan(x[at])) {
                            best = x[at];
                            best_at = at;
                        }
                    }
                }
                const std::size_t o = (plane * s.oh + i) * s.ow + j;  // y[n, c, i, j]
                y[o] = best;
                argmax[o] = best_at;
            }
        }
    }
}

void max_pool2d_backward(real* dx, const real* dy, const std::size_t* argmax,
                         const Pool2dShape& s) {
    for (std::size_t t = 0; t < s.planes * s.h * s.w; ++t)
        dx[t] = 0;
    // Only the maximum of each window gets a gradient: dx[argmax[t]] += dy[t].
    for (std::size_t t = 0; t < s.planes * s.oh * s.ow; ++t)
        dx[argmax[t]] += dy[t];
}

void avg_pool2d_forward(real* y, const real* x, const Pool2dShape& s) {
    const real area = static_cast<real>(s.k * s.k);  // count_include_pad: always k²
    for (std::size_t plane = 0; plane < s.planes; ++plane) {
        const real* in = x + plane * s.h * s.w;
        for (std::size_t i = 0; i < s.oh; ++i) {
            const Window rows = pool_window(i, s, s.h);
            for (std::size_t j = 0; j < s.ow; ++j) {
                const Window cols = pool_window(j, s, s.w);
                real total = 0;
                for (std::size_t r = rows.begin; r < rows.end; ++r) {
                    for (std::size_t c = cols.begin; c < cols.end; ++c)
                        total += in[r * s.w + c];
                }
                y[(plane * s.oh + i) * s.ow + j] = total / area;  // y = 1/k² Σ x
            }
        }
    }
}

void avg_pool2d_backward(real* dx, const real* dy, const Pool2dShape& s) {
    const real area = static_cast<real>(s.k * s.k);
    for (std::size_t t = 0; t < s.planes * s.h * s.w; ++t)
        dx[t] = 0;
    for (std::size_t plane = 0; plane < s.planes; ++plane) {
        const real* g = dy + plane * s.oh * s.ow;  // dL/dy[n, c]
        real* d = dx + plane * s.h * s.w;          // dL/dx[n, c]
        for (std::size_t i = 0; i < s.oh; ++i) {
            const Window rows = pool_window(i, s, s.h);
            for (std::size_t j = 0; j < s.ow; ++j) {
                const Window cols = pool_window(j, s, s.w);
                const real share = g[i * s.ow + j] / area;  // dx += dy / k² over the window
                for (std::size_t r = rows.begin; r < rows.end; ++r) {
                    for (std::size_t c = cols.begin; c < cols.end; ++c)
                        d[r * s.w + c] += share;
                }
            }
        }
    }
}

}  // namespace tg::kernels::reference
