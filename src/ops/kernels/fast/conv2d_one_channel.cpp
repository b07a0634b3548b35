// Convolution kernels for one input channel: see conv2d_one_channel.hpp for the maths and the
// layout of the work.
//
// The "vectors" of an image: output row i holds per_row of them, at columns 0, V, ..., and
// OW - V where V does not divide OW. They are numbered k = i per_row + c, and for each the
// offset of its first input (in the possibly padded image, row stride wp) and of its first
// output (in one y plane, row stride OW) is kept in a table, so that a register block may take
// MB consecutive vectors whatever rows they lie in.
//
// Register blocking. Forward, where the filter fits the registers with at least 4 rows of
// accumulators (3x3 with 16 registers; 3x3 and 5x5 with 32): the KH KW weights of one filter in
// registers, R output rows of one column vector accumulated, and each x vector, loaded once,
// added to every row it is a tap of (forward_rows). Other filters, as the direct kernels: OB
// output channels x MB vectors in registers and the taps (p, q) streamed past them: one load of
// x feeds OB fused multiply-adds, one broadcast weight feeds MB (forward_vectors). The weight
// gradient keeps OB output channels x kW taps of one filter row in registers and streams the
// vectors of a flat run past them (see "The weight gradient on flat runs" below), V lane sums
// per number of dW, added up once per block of images.
#include "conv2d_one_channel.hpp"

#include <algorithm>
#include <array>
#include <type_traits>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "simd_fma.hpp"
#include "tapegrad/parallel.hpp"

namespace tg::kernels::fast {

namespace {

/// Forward register block: OB output channels x MB vectors of accumulators, MB inputs and one
/// broadcast weight: 4 x 3 + 3 + 1 = 16 with 16 registers (each x vector feeds 4 multiply-adds,
/// each weight 3), 8 x 2 + 2 + 1 with 32.
constexpr std::size_t kMaxOB = kRegisters >= 32 ? 8 : 4;
constexpr std::size_t MB = kRegisters >= 32 ? 2 : 3;

/// Where the vectors of one image read and write (see the top of the file).
struct Layout {
    std::size_t hp = 0, wp = 0;    // rows and row stride of the image as read (padded or not)
    std::size_t oh = 0, ow = 0;    // output rows and columns
    std::size_t plane = 0;         // oh ow: numbers per output channel
    std::size_t full = 0;          // whole vectors per row at 0, V, ...: ow / V
    std::size_t per_row = 0;       // full, plus one ending at the last column if V ∤ ow
    std::vector<std::size_t> in;   // [oh per_row] offset of each vector's first input
    std::vector<std::size_t> out;  // [oh per_row] offset of each vector's first output
    bool padded = false;           // whether the image is read from a padded copy
};

Layout layout_of(const DirectConvShape& s) {
    Layout l;
    l.hp = s.h + 2 * s.pad_h;
    l.wp = s.w + 2 * s.pad_w;
    l.oh = s.oh();
    l.ow = s.ow();
    l.plane = l.oh * l.ow;
    l.full = l.ow / V;
    l.per_row = l.full + (l.ow % V != 0 ? 1 : 0);
    l.padded = s.pad_h > 0 || s.pad_w > 0;
    l.in.reserve(l.oh * l.per_row);
    l.out.reserve(l.oh * l.per_row);
    for (std::size_t i = 0; i < l.oh; ++i) {
        for (std::size_t c = 0; c < l.per_row; ++c) {
            const std::size_t j = c < l.full ? c * V : l.ow - V;
            l.in.push_back(i * l.wp + j);
            l.out.push_back(i * l.ow + j);
        }
    }
    return l;
}

/// Scratch space of one thread, kept between calls so a training step allocates nothing.
struct Workspace {
    std::vector<real> xp;   // the padded image [Hp, Wp] (only with padding)
    std::vector<real> dwv;  // weight gradient: dW and db of the block, V lanes per number
    std::vector<real, xsimd::aligned_allocator<real, 64>> xq;  // weight gradient: xq [kW][run]
};
Workspace& workspace() {
    thread_local Workspace ws;
    return ws;
}

/// The image as the kernels read it: x itself without padding, else x [H, W] copied into the
/// middle of a zeroed [Hp, Wp] buffer.
const real* source(const DirectConvShape& s, const Layout& l, const real* x, Workspace& ws) {
    if (!l.padded) return x;
    if (ws.xp.size() < l.hp * l.wp) ws.xp.resize(l.hp * l.wp);
    real* xp = ws.xp.data();
    std::fill(xp, xp + l.hp * l.wp, real(0));
    for (std::size_t i = 0; i < s.h; ++i)
        std::copy(x + i * s.w, x + (i + 1) * s.w, xp + (i + s.pad_h) * l.wp + s.pad_w);
    return xp;
}

/// y[o0 + ob] at vectors k0 .. k0 + NB - 1 for ob < OB, filter rows of KW taps:
///   y[o, out[k] + t] = b[o] + sum_{p, q} W[o, p, q] src[in[k] + p wp + q + t],  t < V.
template <std::size_t OB, std::size_t NB, std::size_t KW>
void forward_vectors(const Layout& l, std::size_t kh, const real* src, const real* w, const real* b,
                     std::size_t o0, std::size_t k0, real* y) {
    const std::size_t taps = kh * KW;  // numbers per W[o]
    std::array<std::array<Batch, NB>, OB> acc;
    for (std::size_t ob = 0; ob < OB; ++ob) {
        const Batch start(b ? b[o0 + ob] : real(0));
        for (std::size_t mb = 0; mb < NB; ++mb)
            acc[ob][mb] = start;
    }
    for (std::size_t p = 0; p < kh; ++p) {
        const real* wrow = w + o0 * taps + p * KW;  // W[o0, p, :]
        for (std::size_t q = 0; q < KW; ++q) {
            std::array<Batch, NB> xv;
            for (std::size_t mb = 0; mb < NB; ++mb)
                xv[mb] = Batch::load_unaligned(src + l.in[k0 + mb] + p * l.wp + q);
            for (std::size_t ob = 0; ob < OB; ++ob) {
                const Batch wv(wrow[ob * taps + q]);  // W[o0 + ob, p, q]
                for (std::size_t mb = 0; mb < NB; ++mb)
                    acc[ob][mb] = fma(wv, xv[mb], acc[ob][mb]);
            }
        }
    }
    for (std::size_t ob = 0; ob < OB; ++ob)
        for (std::size_t mb = 0; mb < NB; ++mb)
            acc[ob][mb].store_unaligned(y + (o0 + ob) * l.plane + l.out[k0 + mb]);
}

/// Output channels o0 .. o0 + OB - 1 of one image, every vector.
template <std::size_t OB, std::size_t KW>
void forward_channels(const Layout& l, std::size_t kh, const real* src, const real* w,
                      const real* b, std::size_t o0, real* y) {
    const std::size_t vectors = l.in.size();
    std::size_t k = 0;
    for (; k + MB <= vectors; k += MB)
        forward_vectors<OB, MB, KW>(l, kh, src, w, b, o0, k, y);
    for (; k < vectors; ++k)
        forward_vectors<OB, 1, KW>(l, kh, src, w, b, o0, k, y);
}

/// Output rows per block of the forward pass with the filter in registers: KH KW weights, the
/// accumulators of R rows and one streamed x vector fill the registers (R = 6 for 3x3 with 16
/// registers); 0 where fewer than 4 rows fit (then the filters are broadcast from memory).
template <std::size_t KH, std::size_t KW>
constexpr std::size_t rows_block() {
    const std::size_t taps = KH * KW;
    if (taps + 1 + 4 > kRegisters) return 0;
    return std::min<std::size_t>(kRegisters - taps - 1, 8);
}

/// y[o, i0 + r, j .. j + V - 1] for r < R, with the filter W[o] in registers (wv):
/// each x vector, loaded once, feeds the rows it is a tap of. Per row the multiply-adds run in
/// the order (p, q) from b[o], as forward_vectors's do, so both give the same numbers.
template <std::size_t KH, std::size_t KW, std::size_t R>
void forward_rows(const Layout& l, const real* src, const std::array<Batch, KH * KW>& wv,
                  const Batch& start, std::size_t i0, std::size_t in_j, std::size_t out_j,
                  real* yo) {
    // (the loops unrolled in full, so that acc and wv are registers, not arrays in memory)
    std::array<Batch, R> acc;
#pragma GCC unroll 16
    for (std::size_t r = 0; r < R; ++r)
        acc[r] = start;
#pragma GCC unroll 16
    for (std::size_t t = 0; t < R + KH - 1; ++t) {  // input row i0 + t
        const real* xrow = src + (i0 + t) * l.wp + in_j;
#pragma GCC unroll 8
        for (std::size_t q = 0; q < KW; ++q) {
            const Batch xv = Batch::load_unaligned(xrow + q);
            // output row r = t - p for the filter rows p with 0 <= t - p < R
#pragma GCC unroll 8
            for (std::size_t p = 0; p < KH; ++p)
                if (p <= t && t - p < R) acc[t - p] = fma(wv[p * KW + q], xv, acc[t - p]);
        }
    }
#pragma GCC unroll 16
    for (std::size_t r = 0; r < R; ++r)
        acc[r].store_unaligned(yo + (i0 + r) * l.ow + out_j);
}

/// forward_rows for the last oh mod R rows (R2 = 1 .. R - 1 of them).
template <std::size_t KH, std::size_t KW, std::size_t R2>
void forward_rest(std::size_t rest, const Layout& l, const real* src,
                  const std::array<Batch, KH * KW>& wv, const Batch& start, std::size_t i0,
                  std::size_t in_j, std::size_t out_j, real* yo) {
    if constexpr (R2 > 0) {
        if (rest == R2) return forward_rows<KH, KW, R2>(l, src, wv, start, i0, in_j, out_j, yo);
        forward_rest<KH, KW, R2 - 1>(rest, l, src, wv, start, i0, in_j, out_j, yo);
    }
}

/// y [O, OH, OW] of one image with each filter in registers (KH x KW filters, rows_block > 0).
template <std::size_t KH, std::size_t KW>
void forward_image_rows(const DirectConvShape& s, const Layout& l, const real* src, const real* w,
                        const real* b, real* y) {
    constexpr std::size_t R = rows_block<KH, KW>();
    const std::size_t whole = l.oh / R * R, rest = l.oh - whole;
    for (std::size_t o = 0; o < s.o; ++o) {
        std::array<Batch, KH * KW> wv;
        for (std::size_t t = 0; t < KH * KW; ++t)
            wv[t] = Batch(w[o * KH * KW + t]);
        const Batch start(b ? b[o] : real(0));
        real* yo = y + o * l.plane;
        for (std::size_t c = 0; c < l.per_row; ++c) {
            const std::size_t j = c < l.full ? c * V : l.ow - V;
            for (std::size_t i0 = 0; i0 < whole; i0 += R)
                forward_rows<KH, KW, R>(l, src, wv, start, i0, j, j, yo);
            forward_rest<KH, KW, R - 1>(rest, l, src, wv, start, whole, j, j, yo);
        }
    }
}

/// y [O, OH, OW] of one image, for filter rows of KW taps.
template <std::size_t KW>
void forward_image(const DirectConvShape& s, const Layout& l, const real* src, const real* w,
                   const real* b, real* y) {
    std::size_t o0 = 0;
    for (; o0 + kMaxOB <= s.o; o0 += kMaxOB)
        forward_channels<kMaxOB, KW>(l, s.kh, src, w, b, o0, y);
    if constexpr (kMaxOB > 4) {
        for (; o0 + 4 <= s.o; o0 += 4)
            forward_channels<4, KW>(l, s.kh, src, w, b, o0, y);
    }
    for (; o0 + 2 <= s.o; o0 += 2)
        forward_channels<2, KW>(l, s.kh, src, w, b, o0, y);
    for (; o0 < s.o; ++o0)
        forward_channels<1, KW>(l, s.kh, src, w, b, o0, y);
}

/// The least multiply-adds worth handing to another thread (a wake-up costs microseconds).
constexpr std::size_t kMinMacsPerThread = std::size_t{1} << 20;

std::size_t macs_per_image(const DirectConvShape& s) {
    return std::max<std::size_t>(1, s.o * s.kh * s.kw * s.oh() * s.ow());
}

// The weight gradient on flat runs. With output position m = i OW + j (0 <= m < OH OW, the
// order of a y plane) and xq[q] = the image with its columns shifted by q and cut to rows of OW
// values (xq[q][r OW + j] = src[r wp + j + q], r < hp), filter tap (p, q) meets output m at
// xq[q][m + p OW]:
//   dW[o, p, q] = sum_{m < OH OW} g[o, m] xq[q][m + p OW],   db[o] = sum_m g[o, m]
// one flat run of OH OW products per tap, vectors at m = 0, V, 2V, ... and one ending at the
// last position, its lanes that the vector before it already covers masked to 0. (On the rows,
// 26 columns were 4 vectors of 8 with 6 lanes masked in the last: 104 vectors per tap and
// image, 85 flat.) The KW shifted copies cost KW hp OW values copied per image.

/// Where the flat runs of one image are: the copies' layout.
struct Flat {
    std::size_t plane = 0;  // OH OW positions
    std::size_t ow = 0;     // OW: the tap (p, q) reads xq[q] from p OW
    std::size_t run = 0;    // values per shifted copy, rounded up to a whole number of cache lines
};

Flat flat_of(const Layout& l) {
    constexpr std::size_t line = 64 / sizeof(real);
    return {l.plane, l.ow, (l.hp * l.ow + line - 1) / line * line};
}

/// xq [KW][run]: the KW shifted copies of the image src [hp, wp] (OW >= V: whole vectors, a
/// row's last one overlapping the one before).
void shifted_copies(const Layout& l, const Flat& f, std::size_t kw, const real* src, real* xq) {
    for (std::size_t q = 0; q < kw; ++q) {
        real* dst = xq + q * f.run;
        for (std::size_t r = 0; r < l.hp; ++r) {
            const real* from = src + r * l.wp + q;
            real* to = dst + r * l.ow;
            std::size_t j = 0;
            for (; j + V <= l.ow; j += V)
                Batch::load_unaligned(from + j).store_unaligned(to + j);
            if (j < l.ow) Batch::load_unaligned(from + l.ow - V).store_unaligned(to + l.ow - V);
        }
    }
}

/// The lanes of the last vector of a flat run that the vector before it already covers (the
/// first V - OH OW mod V) are false; all true where V divides OH OW.
xsimd::batch_bool<real> last_lanes(const Flat& f) {
    alignas(sizeof(Batch)) std::array<real, V> index;
    for (std::size_t t = 0; t < V; ++t)
        index[t] = static_cast<real>(t);
    const std::size_t skip = f.plane % V == 0 ? 0 : V - f.plane % V;
    return Batch::load_aligned(index.data()) >= Batch(static_cast<real>(skip));
}

/// The next image's g and x, brought into the cache a line at a time while the weight gradient
/// works on this image (at batch 512 g is 11 MB, read once).
struct Prefetch {
    const char* at = nullptr;
    const char* end = nullptr;
    const char* at2 = nullptr;  // then this range
    const char* end2 = nullptr;
    void line() {
        if (at >= end) return;  // done: one compare per call
        __builtin_prefetch(at);
        at += 64;
        if (at >= end) {
            at = at2, end = end2;
            at2 = end2 = nullptr;
        }
    }
};

/// dWv[o0 + ob, p, q] += g[o0 + ob, m] xq[q][m + p OW] lane by lane over the flat run (the last
/// vector's covered lanes as 0), for every p < kh, q < KW, ob < OB.
template <std::size_t OB, std::size_t KW>
void weight_channels(const Flat& f, std::size_t kh, const real* xq, const real* g, std::size_t o0,
                     xsimd::batch_bool<real> last, real* dwv, Prefetch& pf) {
    const std::size_t taps = kh * KW;
    const real* go = g + o0 * f.plane;
    for (std::size_t p = 0; p < kh; ++p) {
        const auto lanes = [&](std::size_t ob, std::size_t q) {  // dWv[o0 + ob, p, q]
            return dwv + ((o0 + ob) * taps + p * KW + q) * V;
        };
        std::array<std::array<Batch, KW>, OB> acc;
        for (std::size_t ob = 0; ob < OB; ++ob)
            for (std::size_t q = 0; q < KW; ++q)
                acc[ob][q] = Batch::load_unaligned(lanes(ob, q));
        const real* xp = xq + p * f.ow;
        // the vector at m; if `masked`, its covered lanes keep their sums (the product is left
        // out, not made 0: 0 times an infinite x would be NaN). The same multiply-adds in the
        // same order either way; what differs is which vectors stay in registers (the fewer:
        // OB of g, or KW of x)
        const auto step = [&](std::size_t m, bool masked) {
            const auto add = [&](Batch& a, const Batch& gv, const Batch& xv) {
                a = masked ? xsimd::select(last, fma(gv, xv, a), a) : fma(gv, xv, a);
            };
            if constexpr (OB <= KW) {
                std::array<Batch, OB> gv;
                for (std::size_t ob = 0; ob < OB; ++ob)
                    gv[ob] = Batch::load_unaligned(go + ob * f.plane + m);
                for (std::size_t q = 0; q < KW; ++q) {
                    const Batch xv = Batch::load_unaligned(xp + q * f.run + m);
                    for (std::size_t ob = 0; ob < OB; ++ob)
                        add(acc[ob][q], gv[ob], xv);
                }
            } else {
                std::array<Batch, KW> xv;
                for (std::size_t q = 0; q < KW; ++q)
                    xv[q] = Batch::load_unaligned(xp + q * f.run + m);
                for (std::size_t ob = 0; ob < OB; ++ob) {
                    const Batch gv = Batch::load_unaligned(go + ob * f.plane + m);
                    for (std::size_t q = 0; q < KW; ++q)
                        add(acc[ob][q], gv, xv[q]);
                }
            }
        };
        std::size_t m = 0;
        for (; m + V <= f.plane; m += V) {
            pf.line();
            step(m, false);
        }
        if (m < f.plane) step(f.plane - V, true);
        for (std::size_t ob = 0; ob < OB; ++ob)
            for (std::size_t q = 0; q < KW; ++q)
                acc[ob][q].store_unaligned(lanes(ob, q));
    }
}

template <std::size_t KW>
void weight_image(const DirectConvShape& s, const Flat& f, const real* xq, const real* g,
                  xsimd::batch_bool<real> last, real* dwv, Prefetch& pf) {
    constexpr std::size_t OB = weight_block<KW>();
    std::size_t o0 = 0;
    for (; o0 + OB <= s.o; o0 += OB)
        weight_channels<OB, KW>(f, s.kh, xq, g, o0, last, dwv, pf);
    if constexpr (OB > 2) {
        for (; o0 + 2 <= s.o; o0 += 2)
            weight_channels<2, KW>(f, s.kh, xq, g, o0, last, dwv, pf);
    }
    for (; o0 < s.o; ++o0)
        weight_channels<1, KW>(f, s.kh, xq, g, o0, last, dwv, pf);
}

/// dbv[o0 + ob] += g[o0 + ob, m] for ob < OB, lane by lane over the flat run (the last vector's
/// covered lanes as 0). The OB sums run side by side (one alone waits for each add to finish).
template <std::size_t OB>
void bias_channels(const Flat& f, const real* g, std::size_t o0, xsimd::batch_bool<real> last,
                   real* dbv) {
    std::array<Batch, OB> acc;
    for (std::size_t ob = 0; ob < OB; ++ob)
        acc[ob] = Batch::load_unaligned(dbv + (o0 + ob) * V);
    const real* go = g + o0 * f.plane;
    std::size_t m = 0;
    for (; m + V <= f.plane; m += V)
        for (std::size_t ob = 0; ob < OB; ++ob)
            acc[ob] += Batch::load_unaligned(go + ob * f.plane + m);
    if (m < f.plane) {
        for (std::size_t ob = 0; ob < OB; ++ob) {
            const Batch v = Batch::load_unaligned(go + ob * f.plane + f.plane - V);
            acc[ob] += xsimd::select(last, v, Batch(real(0)));
        }
    }
    for (std::size_t ob = 0; ob < OB; ++ob)
        acc[ob].store_unaligned(dbv + (o0 + ob) * V);
}

void bias_image(const DirectConvShape& s, const Flat& f, const real* g,
                xsimd::batch_bool<real> last, real* dbv) {
    std::size_t o0 = 0;
    for (; o0 + 8 <= s.o; o0 += 8)
        bias_channels<8>(f, g, o0, last, dbv);
    for (; o0 + 4 <= s.o; o0 += 4)
        bias_channels<4>(f, g, o0, last, dbv);
    for (; o0 < s.o; ++o0)
        bias_channels<1>(f, g, o0, last, dbv);
}

/// Calls f(std::integral_constant<std::size_t, kW>{}) for kW = 1 .. kMaxDirectKw.
template <class F>
void with_kw(std::size_t kw, const F& f) {
    switch (kw) {
        case 1:
            return f(std::integral_constant<std::size_t, 1>{});
        case 2:
            return f(std::integral_constant<std::size_t, 2>{});
        case 3:
            return f(std::integral_constant<std::size_t, 3>{});
        case 4:
            return f(std::integral_constant<std::size_t, 4>{});
        case 5:
            return f(std::integral_constant<std::size_t, 5>{});
        case 6:
            return f(std::integral_constant<std::size_t, 6>{});
        default:  // supports() caps kW at kMaxDirectKw = 7
            return f(std::integral_constant<std::size_t, 7>{});
    }
}

}  // namespace

bool conv2d_one_channel_supports(const DirectConvShape& s, std::size_t stride) {
    return conv2d_direct_supports(s, stride) && s.c == 1 && s.ow() >= V;
}

void conv2d_one_channel_forward(const DirectConvShape& s, const real* x, const real* w,
                                const real* b, real* y) {
    const Layout l = layout_of(s);
    const std::size_t x_image = s.h * s.w, y_image = s.o * l.plane;
    const std::size_t grain = std::max<std::size_t>(1, kMinMacsPerThread / macs_per_image(s));
    with_kw(s.kw, [&](auto kw) {
        parallel_for(s.n, grain, [&](std::size_t first, std::size_t last) {
            Workspace& ws = workspace();
            constexpr std::size_t KW = decltype(kw)::value;
            for (std::size_t n = first; n < last; ++n) {
                const real* src = source(s, l, x + n * x_image, ws);
                if constexpr (KW == 3 && rows_block<3, 3>() > 0) {
                    if (s.kh == 3) {
                        forward_image_rows<3, 3>(s, l, src, w, b, y + n * y_image);
                        continue;
                    }
                }
                if constexpr (KW == 5 && rows_block<5, 5>() > 0) {
                    if (s.kh == 5) {
                        forward_image_rows<5, 5>(s, l, src, w, b, y + n * y_image);
                        continue;
                    }
                }
                forward_image<KW>(s, l, src, w, b, y + n * y_image);
            }
        });
    });
}

void conv2d_one_channel_backward_weight(const DirectConvShape& s, const real* x, const real* g,
                                        real* dw, real* db) {
    if (dw == nullptr && db == nullptr) return;
    const Layout l = layout_of(s);
    const Flat f = flat_of(l);
    const xsimd::batch_bool<real> last = last_lanes(f);
    const std::size_t x_image = s.h * s.w, y_image = s.o * l.plane;
    const std::size_t dw_size = s.o * s.kh * s.kw, part_size = dw_size + s.o;
    // Block k sums images [k B, (k+1) B) into partial[k] (dW then db); the blocks are added
    // in order afterwards, so the sum does not depend on which thread ran which block.
    const std::size_t blocks = (s.n + kImagesPerBlock - 1) / kImagesPerBlock;
    std::vector<real> partial(blocks * part_size, real(0));
    const std::size_t grain =
        std::max<std::size_t>(1, kMinMacsPerThread / (macs_per_image(s) * kImagesPerBlock));
    with_kw(s.kw, [&](auto kw) {
        parallel_for(blocks, grain, [&](std::size_t first, std::size_t last_block) {
            Workspace& ws = workspace();
            if (ws.dwv.size() < part_size * V) ws.dwv.resize(part_size * V);
            if (ws.xq.size() < s.kw * f.run) ws.xq.resize(s.kw * f.run);
            real* dwv = ws.dwv.data();
            real* dbv = dwv + dw_size * V;
            const std::size_t images_end = std::min(s.n, last_block * kImagesPerBlock);
            for (std::size_t k = first; k < last_block; ++k) {
                std::fill(dwv, dwv + part_size * V, real(0));
                const std::size_t end = std::min(s.n, (k + 1) * kImagesPerBlock);
                for (std::size_t n = k * kImagesPerBlock; n < end; ++n) {
                    const real* gn = g + n * y_image;
                    if (db != nullptr) bias_image(s, f, gn, last, dbv);
                    if (dw == nullptr) continue;
                    shifted_copies(l, f, s.kw, source(s, l, x + n * x_image, ws), ws.xq.data());
                    Prefetch pf;  // this thread's next image: its g, then its x
                    if (n + 1 < images_end) {
                        pf.at = reinterpret_cast<const char*>(gn + y_image);
                        pf.end = pf.at + y_image * sizeof(real);
                        pf.at2 = reinterpret_cast<const char*>(x + (n + 1) * x_image);
                        pf.end2 = pf.at2 + x_image * sizeof(real);
                    }
                    weight_image<decltype(kw)::value>(s, f, ws.xq.data(), gn, last, dwv, pf);
                }
                real* part = partial.data() + k * part_size;  // the lanes added, in lane order
                for (std::size_t i = 0; i < part_size; ++i)
                    part[i] = sum_lanes(Batch::load_unaligned(dwv + i * V));
            }
        });
    });
    add_block_partials(partial.data(), blocks, part_size, dw, dw_size, db, s.o);
}

}  // namespace tg::kernels::fast
