// Max and average pooling over square k x k windows, stride s, padding pad (ceil_mode false).
//
// Output (i, j) of a plane x[n, c] [H, W] covers input rows i s - pad ... i s - pad + k - 1 and
// columns j s - pad ... j s - pad + k - 1, clipped to the plane: the padding takes no part
// (max: it is -inf; average: it is 0 but still counted in the divisor k^2).
#include "tapegrad/ops/pool.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include <xtensor/xbuilder.hpp>

#include "tapegrad/parallel.hpp"
#include "tapegrad/tape.hpp"

namespace tg {

namespace {

struct PoolShape {
    std::size_t planes, h, w;  // input [N, C, H, W] as N C planes [H, W]
    std::size_t oh, ow;        // output planes [OH, OW]
    std::size_t k, stride, pad;
};

/// The window of output index i along an axis of size `in`: [begin, end) after clipping.
struct Window {
    std::size_t begin, end;
};
Window window(std::size_t i, const PoolShape& s, std::size_t in) {
    const std::size_t start = i * s.stride;  // window start + pad (kept unsigned)
    const std::size_t begin = start < s.pad ? 0 : start - s.pad;
    const std::size_t end = std::min(start + s.k - s.pad, in);  // k > pad, so no underflow
    return {begin, end};
}

PoolShape check_and_size(const char* op, const Tensor& x, std::size_t kernel, std::size_t stride,
                         std::size_t padding) {
    const Shape xs = x.shape();
    const std::string name(op);
    if (xs.size() != 4) {
        throw std::invalid_argument(name + ": expected a 4-D input [N, C, H, W], got " +
                                    shape_str(xs));
    }
    if (kernel == 0) throw std::invalid_argument(name + ": kernel size must be positive, got 0");
    if (stride == 0) stride = kernel;  // PyTorch's stride=None
    // 2 padding > kernel, written so that it cannot wrap around (padding = 2^63 made it 0).
    if (padding > kernel / 2) {
        throw std::invalid_argument(name + ": padding " + std::to_string(padding) +
                                    " is more than half the kernel size " + std::to_string(kernel));
    }
    const std::size_t larger = std::max(xs[2], xs[3]);
    if (padding > (std::numeric_limits<std::size_t>::max() - larger) / 2) {
        throw std::invalid_argument(name + ": padding " + std::to_string(padding) +
                                    " is too large: the padded input (" + std::to_string(larger) +
                                    " + 2 x padding rows) does not fit in a size_t (input " +
                                    shape_str(xs) + ")");
    }
    const std::size_t ph = xs[2] + 2 * padding, pw = xs[3] + 2 * padding;
    if (kernel > ph || kernel > pw) {
        throw std::invalid_argument(name + ": kernel " + std::to_string(kernel) + "x" +
                                    std::to_string(kernel) + " does not fit the padded input " +
                                    std::to_string(ph) + "x" + std::to_string(pw) + " (input " +
                                    shape_str(xs) + ", padding " + std::to_string(padding) + ")");
    }
    PoolShape s{};
    s.planes = xs[0] * xs[1], s.h = xs[2], s.w = xs[3];
    s.k = kernel, s.stride = stride, s.pad = padding;
    s.oh = (ph - kernel) / stride + 1;
    s.ow = (pw - kernel) / stride + 1;
    return s;
}

Shape output_shape(const Tensor& x, const PoolShape& s) {
    return {x.size(0), x.size(1), s.oh, s.ow};
}

}  // namespace

Tensor max_pool2d(const Tensor& x, std::size_t kernel, std::size_t stride, std::size_t padding) {
    const PoolShape s = check_and_size("max_pool2d", x, kernel, stride, padding);
    Array y = Array::from_shape(output_shape(x, s));
    // argmax[o] = the flat index into x of the maximum that output o took.
    std::vector<std::size_t> argmax(y.size());

    const real* xp = x.value().data();
    real* yp = y.data();
    // Planes (n, c) are independent: split them between threads when each gets enough.
    parallel_for(s.planes, grain_for(s.h * s.w), [&](std::size_t first, std::size_t last) {
        for (std::size_t plane = first; plane < last; ++plane) {
            const std::size_t base = plane * s.h * s.w;  // x[n, c, 0, 0]
            std::size_t o = plane * s.oh * s.ow;         // flat output index of y[n, c, 0, 0]
            if (s.k == 2 && s.stride == 2 && s.pad == 0) {
                // The common 2x2 window, stride 2, no padding, without branches on data
                // (they mispredict): m = max(a, b, c, d), and its index is the first of
                // a, b, c, d equal to m. That is the general loop's answer unless the plane
                // holds a NaN; such a (rare) plane is redone by the general loop below.
                unsigned nan_seen = 0;
                for (std::size_t i = 0; i < s.oh; ++i) {
                    const real* r0 = xp + base + 2 * i * s.w;  // rows 2i and 2i + 1
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
                        yp[o] = m;
                        argmax[o] = row_at + (pos >> 1) * s.w + 2 * j + (pos & 1u);
                    }
                }
                if (!nan_seen) continue;
                o = plane * s.oh * s.ow;  // a NaN: redo this plane as PyTorch does, below
            }
            for (std::size_t i = 0; i < s.oh; ++i) {
                const Window rows = window(i, s, s.h);
                for (std::size_t j = 0; j < s.ow; ++j, ++o) {
                    const Window cols = window(j, s, s.w);
                    // As PyTorch: start from -inf at the first element; a NaN always wins.
                    real best = -std::numeric_limits<real>::infinity();
                    std::size_t best_at = base + rows.begin * s.w + cols.begin;
                    for (std::size_t r = rows.begin; r < rows.end; ++r) {
                        for (std::size_t c = cols.begin; c < cols.end; ++c) {
                            const std::size_t at = base + r * s.w + c;
                            if (xp[at] > best || std::isnan(xp[at])) {
                                best = xp[at];
                                best_at = at;
                            }
                        }
                    }
                    yp[o] = best;
                    argmax[o] = best_at;
                }
            }
        }
    });

    Tensor out(std::move(y));
    if (Tape* tape = recording_tape(x)) {
        tape->record("max_pool2d", {x}, out, [x, s, argmax = std::move(argmax)](const Array& g) {
            // dx[argmax[t]] += dy[t] for every output t: only the maximum of each window
            // gets a gradient.
            // The outputs of plane p take their maxima from plane p only, so planes can be
            // split between threads.
            Array dx = xt::zeros<real>(x.shape());
            real* dxp = dx.data();
            const real* gp = g.data();
            const std::size_t per_plane = s.oh * s.ow;
            parallel_for(s.planes, grain_for(s.h * s.w), [&](std::size_t first, std::size_t last) {
                for (std::size_t t = first * per_plane; t < last * per_plane; ++t)
                    dxp[argmax[t]] += gp[t];
            });
            x.accumulate_grad(std::move(dx));
        });
    }
    return out;
}

Tensor avg_pool2d(const Tensor& x, std::size_t kernel, std::size_t stride, std::size_t padding) {
    const PoolShape s = check_and_size("avg_pool2d", x, kernel, stride, padding);
    Array y = Array::from_shape(output_shape(x, s));
    // count_include_pad: the divisor is always k^2, padding included.
    const real area = static_cast<real>(s.k * s.k);

    const real* xp = x.value().data();
    real* yp = y.data();
    std::size_t o = 0;
    for (std::size_t plane = 0; plane < s.planes; ++plane) {
        const real* in = xp + plane * s.h * s.w;
        for (std::size_t i = 0; i < s.oh; ++i) {
            const Window rows = window(i, s, s.h);
            for (std::size_t j = 0; j < s.ow; ++j, ++o) {
                const Window cols = window(j, s, s.w);
                real total = 0;
                for (std::size_t r = rows.begin; r < rows.end; ++r) {
                    for (std::size_t c = cols.begin; c < cols.end; ++c)
                        total += in[r * s.w + c];
                }
                yp[o] = total / area;
            }
        }
    }

    Tensor out(std::move(y));
    if (Tape* tape = recording_tape(x)) {
        tape->record("avg_pool2d", {x}, out, [x, s, area](const Array& g) {
            // dx[r, c] += dy[i, j] / k^2 for every (r, c) in window (i, j)
            Array dx = xt::zeros<real>(x.shape());
            for (std::size_t plane = 0; plane < s.planes; ++plane) {
                const real* dy = g.data() + plane * s.oh * s.ow;  // dL/dy[n, c]
                real* d = dx.data() + plane * s.h * s.w;          // dL/dx[n, c]
                for (std::size_t i = 0; i < s.oh; ++i) {
                    const Window rows = window(i, s, s.h);
                    for (std::size_t j = 0; j < s.ow; ++j) {
                        const Window cols = window(j, s, s.w);
                        const real share = dy[i * s.ow + j] / area;
                        for (std::size_t r = rows.begin; r < rows.end; ++r) {
                            for (std::size_t c = cols.begin; c < cols.end; ++c) {
                                d[r * s.w + c] += share;
                            }
                        }
                    }
                }
            }
            x.accumulate_grad(std::move(dx));
        });
    }
    return out;
}

}  // namespace tg
