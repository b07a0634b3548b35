#include "im2col.hpp"

#include <algorithm>
#include <cstddef>

namespace tg::kernels {

namespace {

/// The output indices [lo, hi) along one axis whose input index i s + p - pad lies inside
/// [0, in), for kernel offset p; outside that range the kernel tap sees padding.
struct Span {
    std::size_t lo, hi;
};
Span inside(std::size_t p, std::size_t stride, std::size_t pad, std::size_t in, std::size_t out) {
    // i s + p - pad >= 0   <=>  i >= ceil((pad - p) / s)
    // i s + p - pad < in   <=>  i <  ceil((in + pad - p) / s)
    // A stride beyond in + 2 pad gives the same (single) output position as in + 2 pad + 1;
    // clamped, it stays a positive std::ptrdiff_t (a stride near 2^64 became negative: UB,
    // found by tests/fuzz/fuzz_shapes.cpp).
    const auto s = static_cast<std::ptrdiff_t>(std::min(stride, in + 2 * pad + 1));
    const auto first = static_cast<std::ptrdiff_t>(pad) - static_cast<std::ptrdiff_t>(p);
    const auto end = static_cast<std::ptrdiff_t>(in) + first;
    // ceil(a / s) for a > 0 as (a − 1)/s + 1: a + s − 1 overflows for a stride near 2^63
    // (found by tests/fuzz/fuzz_shapes.cpp).
    const auto ceil_div = [s](std::ptrdiff_t a) { return a <= 0 ? 0 : (a - 1) / s + 1; };
    const auto limit = static_cast<std::ptrdiff_t>(out);
    const auto lo = static_cast<std::size_t>(std::min(ceil_div(first), limit));
    const auto hi = static_cast<std::size_t>(std::min(ceil_div(end), limit));
    return {lo, std::max(lo, hi)};
}

}  // namespace

void im2col(const Conv2dShape& s, const real* x, real* cols) {
    const std::size_t l = s.l();
    for (std::size_t c = 0; c < s.c; ++c) {
        for (std::size_t p = 0; p < s.kh; ++p) {
            const Span rows = inside(p, s.stride, s.pad, s.h, s.oh);
            for (std::size_t q = 0; q < s.kw; ++q) {
                const Span cs = inside(q, s.stride, s.pad, s.w, s.ow);
                real* row = cols + ((c * s.kh + p) * s.kw + q) * l;  // cols[(c, p, q), :]
                // Positions where this tap sees padding are 0: zero the row, then copy the
                // rectangle [rows.lo, rows.hi) x [cs.lo, cs.hi) that sees the image.
                if (rows.lo > 0 || rows.hi < s.oh || cs.lo > 0 || cs.hi < s.ow) {
                    std::fill(row, row + l, real(0));
                }
                const std::size_t len = cs.hi - cs.lo;
                if (len == 0) continue;  // this tap sees only padding
                for (std::size_t i = rows.lo; i < rows.hi; ++i) {
                    // x[c, i s + p - pad, cs.lo s + q - pad]
                    // (one offset, in unsigned arithmetic, then one pointer step: with a
                    // stride near 2^63 the partial sums pass the array, UB for a pointer)
                    const real* src = x + ((c * s.h + i * s.stride + p - s.pad) * s.w +
                                           cs.lo * s.stride + q - s.pad);
                    real* dst = row + i * s.ow + cs.lo;
                    if (s.stride == 1) {  // the common case, kept apart so it vectorises
                        for (std::size_t j = 0; j < len; ++j) {
                            dst[j] = src[j];
                        }
                    } else {
                        for (std::size_t j = 0; j < len; ++j) {
                            dst[j] = src[j * s.stride];
                        }
                    }
                }
            }
        }
    }
}

void col2im(const Conv2dShape& s, const real* dcols, real* dx) {
    const std::size_t l = s.l();
    for (std::size_t c = 0; c < s.c; ++c) {
        for (std::size_t p = 0; p < s.kh; ++p) {
            const Span rows = inside(p, s.stride, s.pad, s.h, s.oh);
            for (std::size_t q = 0; q < s.kw; ++q) {
                const Span cs = inside(q, s.stride, s.pad, s.w, s.ow);
                const real* row = dcols + ((c * s.kh + p) * s.kw + q) * l;
                const std::size_t len = cs.hi - cs.lo;
                if (len == 0) continue;
                for (std::size_t i = rows.lo; i < rows.hi; ++i) {
                    real* dst = dx + ((c * s.h + i * s.stride + p - s.pad) * s.w +
                                      cs.lo * s.stride + q - s.pad);  // (as in im2col)
                    const real* src = row + i * s.ow + cs.lo;
                    if (s.stride == 1) {
                        for (std::size_t j = 0; j < len; ++j) {
                            dst[j] += src[j];
                        }
                    } else {
                        for (std::size_t j = 0; j < len; ++j) {
                            dst[j * s.stride] += src[j];
                        }
                    }
                }
            }
        }
    }
}

}  // namespace tg::kernels
