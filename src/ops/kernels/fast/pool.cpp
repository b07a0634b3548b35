// Max and average pooling, fast: the reference loops with planes split between threads (planes
// are independent, so the numbers do not depend on the thread count), and max pooling's common
// 2x2 window, stride 2, without branches on data.
#include "../pool.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "tapegrad/parallel.hpp"

namespace tg::kernels::fast {

namespace {

/// The shape of the planes [first, last) of s, seen as a pooling call of their own.
Pool2dShape planes_of(const Pool2dShape& s, std::size_t first, std::size_t last) {
    Pool2dShape part = s;
    part.planes = last - first;
    return part;
}

}  // namespace

void max_pool2d_forward(real* y, std::size_t* argmax, const real* x, const Pool2dShape& s) {
    parallel_for(s.planes, grain_for(s.h * s.w), [&](std::size_t first, std::size_t last) {
        for (std::size_t plane = first; plane < last; ++plane) {
            const std::size_t base = plane * s.h * s.w;   // x[n, c, 0, 0]
            const std::size_t out = plane * s.oh * s.ow;  // y[n, c, 0, 0]
            if (s.k == 2 && s.stride == 2 && s.pad == 0) {
                // The common 2x2 window, stride 2, no padding, without branches on data
                // (they mispredict): m = max(a, b, c, d), and its index is the first of
                // a, b, c, d equal to m. That is the reference's answer unless the plane
                // holds a NaN; such a (rare) plane is redone by the reference loop below.
                unsigned nan_seen = 0;
                std::size_t o = out;
                for (std::size_t i = 0; i < s.oh; ++i) {
                    const real* r0 = x + base + 2 * i * s.w;  // rows 2i and 2i + 1
                    const real* r1 = r0 + s.w;
                    const std::size_t row_at = base + 2 * i * s.w;
                    for (std::size_t j = 0; j < s.ow; ++j, ++o) {
                        const real a = r0[2 * j], b = r0[2 * j + 1];
                        const real c = r1[2 * j], d = r1[2 * j + 1];
                        const real m = std::max(std::max(a, b), std::max(c, d));
                        nan_seen |= (a != a) | (b != b) | (c != c) | (d != d);
                        // Window position 0..3 of the first value equal to m.
                        const unsigned not_a = a != m, not_b = b != m, not_c = c != m;
                        const unsigned pos = not_a * (1 + not_b * (1 + not_c));
                        y[o] = m;
                        argmax[o] = row_at + (pos >> 1) * s.w + 2 * j + (pos & 1u);
                    }
                }
                if (!nan_seen) continue;
            }
            // The general window (or a plane with a NaN): the reference loop on this plane,
            // its argmax shifted to index the whole input.
            const Pool2dShape one = planes_of(s, plane, plane + 1);
            reference::max_pool2d_forward(y + out, argmax + out, x + base, one);
            for (std::size_t o = out; o < out + s.oh * s.ow; ++o)
                argmax[o] += base;
        }
    });
}

void max_pool2d_backward(real* dx, const real* dy, const std::size_t* argmax,
                         const Pool2dShape& s) {
    // The outputs of plane p take their maxima from plane p only, so planes can be split
    // between threads.
    const std::size_t per_plane_in = s.h * s.w, per_plane_out = s.oh * s.ow;
    parallel_for(s.planes, grain_for(per_plane_in), [&](std::size_t first, std::size_t last) {
        std::fill(dx + first * per_plane_in, dx + last * per_plane_in, real(0));
        for (std::size_t t = first * per_plane_out; t < last * per_plane_out; ++t)
            dx[argmax[t]] += dy[t];
    });
}

void avg_pool2d_forward(real* y, const real* x, const Pool2dShape& s) {
    const std::size_t per_plane_in = s.h * s.w, per_plane_out = s.oh * s.ow;
    parallel_for(s.planes, grain_for(per_plane_in), [&](std::size_t first, std::size_t last) {
        reference::avg_pool2d_forward(y + first * per_plane_out, x + first * per_plane_in,
                                      planes_of(s, first, last));
    });
}

void avg_pool2d_backward(real* dx, const real* dy, const Pool2dShape& s) {
    const std::size_t per_plane_in = s.h * s.w, per_plane_out = s.oh * s.ow;
    parallel_for(s.planes, grain_for(per_plane_in), [&](std::size_t first, std::size_t last) {
        reference::avg_pool2d_backward(dx + first * per_plane_in, dy + first * per_plane_out,
                                       planes_of(s, first, last));
    });
}

}  // namespace tg::kernels::fast
