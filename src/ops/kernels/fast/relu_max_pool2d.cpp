// ReLU + 2x2 max-pool in one pass: see relu_max_pool2d.hpp for why the two may be fused.
#include "relu_max_pool2d.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "tapegrad/parallel.hpp"

namespace tg::kernels::fast {

namespace {

/// relu(m) with PyTorch's NaN: 0 where m <= 0 (and for -0), m otherwise (NaN stays NaN).
inline real relu(real m) {
    return m <= real(0) ? real(0) : m;
}

/// One plane [H, W] -> [OH, OW]. Without branches on data (they mispredict): m = max(a, b,
/// c, d) and its index is the first of a, b, c, d equal to m; a plane holding a NaN is redone
/// by the general loop, as max_pool2d does.
void plane_forward(const real* x, std::size_t base, std::size_t w, std::size_t oh, std::size_t ow,
                   real* y, std::size_t* argmax) {
    unsigned nan_seen = 0;
    for (std::size_t i = 0; i < oh; ++i) {
        const real* r0 = x + base + 2 * i * w;  // rows 2i and 2i + 1
        const real* r1 = r0 + w;
        const std::size_t row_at = base + 2 * i * w;
        for (std::size_t j = 0; j < ow; ++j) {
            const real a = r0[2 * j], b = r0[2 * j + 1];
            const real c = r1[2 * j], d = r1[2 * j + 1];
            const real m = std::max(std::max(a, b), std::max(c, d));
            nan_seen |= (a != a) | (b != b) | (c != c) | (d != d);
            const unsigned not_a = a != m, not_b = b != m, not_c = c != m;
            const unsigned pos = not_a * (1 + not_b * (1 + not_c));  // window position 0..3
            y[i * ow + j] = relu(m);
            argmax[i * ow + j] = row_at + (pos >> 1) * w + 2 * j + (pos & 1u);
        }
    }
    if (!nan_seen) return;
    for (std::size_t i = 0; i < oh; ++i) {
        for (std::size_t j = 0; j < ow; ++j) {
            real best = -std::numeric_limits<real>::infinity();
            std::size_t best_at = base + 2 * i * w + 2 * j;
            for (std::size_t r = 2 * i; r < 2 * i + 2; ++r) {
                for (std::size_t c = 2 * j; c < 2 * j + 2; ++c) {
                    const std::size_t at = base + r * w + c;
                    if (x[at] > best || std::isnan(x[at])) {  // a NaN always wins
                        best = x[at];
                        best_at = at;
                    }
                }
            }
            y[i * ow + j] = relu(best);
            argmax[i * ow + j] = best_at;
        }
    }
}

}  // namespace

void relu_max_pool2x2_forward(real* y, std::size_t* argmax, const real* x, std::size_t planes,
                              std::size_t h, std::size_t w) {
    const std::size_t oh = h / 2, ow = w / 2;
    parallel_for(planes, grain_for(h * w), [&](std::size_t first, std::size_t last) {
        for (std::size_t p = first; p < last; ++p)
            plane_forward(x, p * h * w, w, oh, ow, y + p * oh * ow, argmax + p * oh * ow);
    });
}

void relu_max_pool2x2_backward(real* dx, const real* g, const real* y, const std::size_t* argmax,
                               std::size_t planes, std::size_t h, std::size_t w) {
    const std::size_t per_plane = (h / 2) * (w / 2);
    parallel_for(planes, grain_for(h * w), [&](std::size_t first, std::size_t last) {
        std::fill(dx + first * h * w, dx + last * h * w, real(0));
        for (std::size_t t = first * per_plane; t < last * per_plane; ++t) {
            const real gt = g[t];  // loaded first, then selected: a blend, not a branch
            dx[argmax[t]] = y[t] <= real(0) ? real(0) : gt;
        }
    });
}

}  // namespace tg::kernels::fast
