// Direct convolution kernels: see conv2d_direct.hpp for the maths.
//
// The one idea: lay every image out on a "padded-width grid". With the input zero-padded to
// xp [C, Hp, Wp] (Hp = H + 2 pad_h, Wp = W + 2 pad_w) and the output position (i, j) numbered
// m = i Wp + j, the convolution becomes a one-dimensional one along m:
//
//   y[o, m] = b[o] + sum_{c, p, q} W[o, c, p, q] xp[c Hp Wp + m + p Wp + q]
//
// so the inner loop runs over consecutive m with no row boundaries and vectorises plainly
// (xsimd batches of V numbers). The grid has Wp - OW columns per row that are not outputs
// (j >= OW); they are computed and thrown away (forward) or held at 0 (the gradient g laid on
// the grid, for dW). The grid is rounded up to whole register blocks, and xp has zeros after
// its end, so every load stays inside the buffer.
//
// Register blocking: the forward pass keeps OB output channels x MB vectors of positions in
// registers and streams the taps (c, p, q) past them: one load of x feeds OB fused
// multiply-adds. The weight gradient keeps OB output channels x kW taps of one filter row in
// registers and streams the positions past them.
#include "conv2d_direct.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <type_traits>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "simd_fma.hpp"
#include "tapegrad/parallel.hpp"

namespace tg::kernels::fast {

namespace {

/// Output channels per forward register block: OB x MB accumulators, MB inputs, 1 weight.
constexpr std::size_t kMaxOB = kRegisters >= 32 ? 8 : 4;
/// Vectors of positions per forward register block. With 16 registers, 4 x 3 accumulators,
/// 3 inputs and 1 weight fill them: 12 independent sums hide the multiply-add's latency
/// (8 just do, with nothing to spare), and each broadcast weight feeds 3 multiply-adds, not 2.
/// AVX-512 keeps the 8 x 2 it was measured with.
constexpr std::size_t MB = kRegisters >= 32 ? 2 : 3;
constexpr std::size_t kChunk = MB * V;  // positions per forward register block

/// The padded-width grid of one image's convolution (see the top of the file).
struct Grid {
    std::size_t hp, wp;  // padded input height and width
    std::size_t plane;   // hp wp: numbers per padded input channel
    std::size_t m;       // oh wp: grid positions holding the outputs' rows
    std::size_t mr;      // m rounded up to whole register blocks
    std::size_t mv;      // m rounded up to whole vectors (the weight gradient's loops)
    std::size_t padded;  // numbers in the padded input buffer (with zeros after its end)
};

Grid grid_of(const DirectConvShape& s) {
    Grid g{};
    g.hp = s.h + 2 * s.pad_h;
    g.wp = s.w + 2 * s.pad_w;
    g.plane = g.hp * g.wp;
    g.m = s.oh() * g.wp;
    g.mr = (g.m + kChunk - 1) / kChunk * kChunk;
    g.mv = (g.m + V - 1) / V * V;
    // The last load starts at (C-1) plane + (kH-1) wp + (kW-1) + mr - 1 and since
    // (kH-1) wp = plane - m, it ends before C plane + (mr - m) + kW.
    g.padded = s.c * g.plane + (g.mr - g.m) + s.kw;
    return g;
}

/// Scratch space of one thread, kept between calls so a training step allocates nothing.
struct Workspace {
    std::vector<real> xp;   // padded input image [C, Hp, Wp] and its tail
    std::vector<real> out;  // forward: kMaxOB output rows on the grid [kMaxOB, mr]
    std::vector<real> gg;   // weight gradient: g on the grid [O, mr]
    std::vector<real> dwv;  // weight gradient: dW and db of the block, V lanes per number
};
Workspace& workspace() {
    thread_local Workspace ws;
    return ws;
}

/// Grows `v` to at least `n` numbers plus V of slack (so whole-vector copies may run past
/// the end of the last row); never shrinks, so the steady state allocates nothing.
real* room(std::vector<real>& v, std::size_t n) {
    if (v.size() < n + V) v.resize(n + V);
    return v.data();
}

/// dst[0, n) = 0, by whole vectors (may write up to V - 1 numbers past n).
void zero(real* dst, std::size_t n) {
    for (std::size_t j = 0; j < n; j += V)
        Batch(real(0)).store_unaligned(dst + j);
}

/// dst[0, len) = src[0, len), by whole vectors. The copies are far too short for memcpy's
/// call to pay (rows of 10 to 32 numbers): the last vector may read and write up to V - 1
/// numbers past len, so callers copy rows in increasing order and write what follows
/// afterwards, and call this only where src has those numbers.
void copy_row(const real* src, real* dst, std::size_t len) {
    for (std::size_t j = 0; j < len; j += V)
        Batch::load_unaligned(src + j).store_unaligned(dst + j);
}

/// dst[0, len) = src[0, len) exactly, for the last rows of an image (nothing may be touched
/// past the end).
void copy_exact(const real* src, real* dst, std::size_t len) {
    std::size_t j = 0;
    for (; j + V <= len; j += V)
        Batch::load_unaligned(src + j).store_unaligned(dst + j);
    for (; j < len; ++j)
        dst[j] = src[j];
}

/// Lays the planes x [C, H, W] out with row stride wp, starting pad_h rows and pad_w
/// columns into each plane of `plane` numbers; everything else in dst[0, total) is 0.
/// (pad_image for the input, and g onto the grid for the weight gradient.)
void spread_rows(const real* x, std::size_t c_count, std::size_t h, std::size_t w,
                 std::size_t pad_h, std::size_t pad_w, std::size_t wp, std::size_t plane, real* dst,
                 std::size_t total) {
    zero(dst, total);
    const std::size_t image = c_count * h * w, whole = (w + V - 1) / V * V;
    for (std::size_t c = 0; c < c_count; ++c) {
        for (std::size_t i = 0; i < h; ++i) {
            const std::size_t from = (c * h + i) * w;
            real* row = dst + c * plane + (i + pad_h) * wp + pad_w;
            if (from + whole <= image) {
                copy_row(x + from, row, w);
                // the last vector wrote past the row: put back the zeros there (what lies
                // beyond them is the next rows, written next)
                Batch(real(0)).store_unaligned(row + w);
            } else {
                copy_exact(x + from, row, w);
            }
        }
    }
}

/// xp [C, Hp, Wp] (+ zeros after) = x [C, H, W] with pad_h, pad_w zeros around each plane.
void pad_image(const DirectConvShape& s, const Grid& g, const real* x, real* xp) {
    spread_rows(x, s.c, s.h, s.w, s.pad_h, s.pad_w, g.wp, g.plane, xp, g.padded);
}

/// out[ob, m] for ob < OB: output channels o0 .. o0 + OB - 1 of one padded image, on the grid,
/// for filter rows of KW = kW taps.
///   out[ob, m] = b[o0 + ob] + sum_{c, p, q} W[o0 + ob, c, p, q] xp[c plane + m + p wp + q]
template <std::size_t OB, std::size_t KW>
void forward_channels(const DirectConvShape& s, const Grid& g, const real* xp, const real* w,
                      const real* b, std::size_t o0, real* out) {
    const std::size_t taps = s.kh * KW, filter = s.c * taps;  // numbers per W[o]
    for (std::size_t m = 0; m < g.mr; m += kChunk) {
        std::array<std::array<Batch, MB>, OB> acc;
        for (std::size_t ob = 0; ob < OB; ++ob) {
            const Batch start(b ? b[o0 + ob] : real(0));
            for (std::size_t mb = 0; mb < MB; ++mb)
                acc[ob][mb] = start;
        }
        for (std::size_t c = 0; c < s.c; ++c) {
            for (std::size_t p = 0; p < s.kh; ++p) {
                const real* xrow = xp + c * g.plane + p * g.wp + m;
                const real* wrow = w + o0 * filter + c * taps + p * KW;  // W[o0, c, p, :]
                for (std::size_t q = 0; q < KW; ++q) {
                    std::array<Batch, MB> xv;
                    for (std::size_t mb = 0; mb < MB; ++mb)
                        xv[mb] = Batch::load_unaligned(xrow + q + mb * V);
                    for (std::size_t ob = 0; ob < OB; ++ob) {
                        const Batch wv(wrow[ob * filter + q]);  // W[o0 + ob, c, p, q]
                        for (std::size_t mb = 0; mb < MB; ++mb)
                            acc[ob][mb] = fma(wv, xv[mb], acc[ob][mb]);
                    }
                }
            }
        }
        for (std::size_t ob = 0; ob < OB; ++ob) {
            for (std::size_t mb = 0; mb < MB; ++mb)
                acc[ob][mb].store_unaligned(out + ob * g.mr + m + mb * V);
        }
    }
}

/// forward_channels for the widest block of filters from o0 on; returns how many it took.
template <std::size_t KW>
std::size_t forward_block(const DirectConvShape& s, const Grid& g, const real* xp, const real* w,
                          const real* b, std::size_t o0, real* out) {
    const std::size_t left = s.o - o0;
    if (left >= kMaxOB) {
        forward_channels<kMaxOB, KW>(s, g, xp, w, b, o0, out);
        return kMaxOB;
    }
    if (left >= 4) {
        forward_channels<4, KW>(s, g, xp, w, b, o0, out);
        return 4;
    }
    if (left >= 2) {
        forward_channels<2, KW>(s, g, xp, w, b, o0, out);
        return 2;
    }
    forward_channels<1, KW>(s, g, xp, w, b, o0, out);
    return 1;
}

using ForwardBlock = std::size_t (*)(const DirectConvShape&, const Grid&, const real*, const real*,
                                     const real*, std::size_t, real*);

/// forward_block for filter rows of kW taps (the taps of a row unrolled).
ForwardBlock forward_block_for(std::size_t kw) {
    switch (kw) {
        case 1:
            return forward_block<1>;
        case 2:
            return forward_block<2>;
        case 3:
            return forward_block<3>;
        case 4:
            return forward_block<4>;
        case 5:
            return forward_block<5>;
        case 6:
            return forward_block<6>;
        default:  // supports() caps kW at 7
            return forward_block<7>;
    }
}

/// y [O, OH, OW] = conv(x [C, H, W]) + b for one image.
void forward_image(const DirectConvShape& s, const Grid& g, const real* x, const real* w,
                   const real* b, real* y, Workspace& ws) {
    real* xp = room(ws.xp, g.padded);
    real* out = room(ws.out, kMaxOB * g.mr);
    pad_image(s, g, x, xp);
    const ForwardBlock block = forward_block_for(s.kw);
    const std::size_t oh = s.oh(), ow = s.ow();
    for (std::size_t o0 = 0; o0 < s.o;) {
        const std::size_t ob = block(s, g, xp, w, b, o0, out);
        // keep columns j < OW of each grid row; rows in increasing order (see copy_row),
        // exactly where a whole vector would pass the end of the image
        const std::size_t whole = (ow + V - 1) / V * V, image = s.o * oh * ow;
        for (std::size_t k = 0; k < ob; ++k) {
            for (std::size_t i = 0; i < oh; ++i) {
                const std::size_t to = ((o0 + k) * oh + i) * ow;
                if (to + whole <= image) {
                    copy_row(out + k * g.mr + i * g.wp, y + to, ow);
                } else {
                    copy_exact(out + k * g.mr + i * g.wp, y + to, ow);
                }
            }
        }
        o0 += ob;
    }
}

/// The least multiply-adds worth handing to another thread (a wake-up costs microseconds).
constexpr std::size_t kMinMacsPerThread = std::size_t{1} << 20;

std::size_t macs_per_image(const DirectConvShape& s) {
    return std::max<std::size_t>(1, s.o * s.c * s.kh * s.kw * s.oh() * s.ow());
}

/// dWv[o0 + ob, c, p, q] += gg[o0 + ob, m] xp[c plane + p wp + q + m], summed over the
/// positions m lane by lane (lane l takes m = l mod V), for every c, p and q < KW = kW,
/// ob < OB. gg is g on the grid, 0 at the positions that are not outputs. dWv holds V lane
/// sums per number of dW; they are added up once per block of images (finish_block), not
/// once per image.
template <std::size_t OB, std::size_t KW>
void weight_channels(const DirectConvShape& s, const Grid& g, const real* xp, const real* gg,
                     std::size_t o0, real* dwv) {
    const std::size_t taps = s.kh * KW, filter = s.c * taps;
    for (std::size_t c = 0; c < s.c; ++c) {
        for (std::size_t p = 0; p < s.kh; ++p) {
            const real* xrow = xp + c * g.plane + p * g.wp;
            const auto lanes = [&](std::size_t ob, std::size_t q) {  // dWv[o0 + ob, c, p, q]
                return dwv + ((o0 + ob) * filter + c * taps + p * KW + q) * V;
            };
            std::array<std::array<Batch, KW>, OB> acc;
            for (std::size_t ob = 0; ob < OB; ++ob)
                for (std::size_t q = 0; q < KW; ++q)
                    acc[ob][q] = Batch::load_unaligned(lanes(ob, q));
            for (std::size_t m = 0; m < g.mv; m += V) {  // gg is 0 from m on
                // the same multiply-adds in the same order either way; what differs is which
                // vectors stay in registers (the fewer: OB of g, or KW of x)
                if constexpr (OB <= KW) {
                    std::array<Batch, OB> gv;
                    for (std::size_t ob = 0; ob < OB; ++ob)
                        gv[ob] = Batch::load_unaligned(gg + (o0 + ob) * g.mr + m);
                    for (std::size_t q = 0; q < KW; ++q) {
                        const Batch xv = Batch::load_unaligned(xrow + m + q);
                        for (std::size_t ob = 0; ob < OB; ++ob)
                            acc[ob][q] = fma(gv[ob], xv, acc[ob][q]);
                    }
                } else {
                    std::array<Batch, KW> xv;
                    for (std::size_t q = 0; q < KW; ++q)
                        xv[q] = Batch::load_unaligned(xrow + m + q);
                    for (std::size_t ob = 0; ob < OB; ++ob) {
                        const Batch gv = Batch::load_unaligned(gg + (o0 + ob) * g.mr + m);
                        for (std::size_t q = 0; q < KW; ++q)
                            acc[ob][q] = fma(gv, xv[q], acc[ob][q]);
                    }
                }
            }
            for (std::size_t ob = 0; ob < OB; ++ob)
                for (std::size_t q = 0; q < KW; ++q)
                    acc[ob][q].store_unaligned(lanes(ob, q));
        }
    }
}

template <std::size_t KW>
void weight_image_kw(const DirectConvShape& s, const Grid& g, const real* xp, const real* gg,
                     real* dwv) {
    constexpr std::size_t OB = weight_block<KW>();
    std::size_t o0 = 0;
    for (; o0 + OB <= s.o; o0 += OB)
        weight_channels<OB, KW>(s, g, xp, gg, o0, dwv);
    if constexpr (OB > 2) {
        for (; o0 + 2 <= s.o; o0 += 2)
            weight_channels<2, KW>(s, g, xp, gg, o0, dwv);
    }
    for (; o0 < s.o; ++o0)
        weight_channels<1, KW>(s, g, xp, gg, o0, dwv);
}

/// dbv[o0 + ob] += gg[o0 + ob, m] for ob < OB, lane by lane over the positions m. The OB sums
/// run side by side: one sum alone waits for each add to finish before the next starts (for
/// conv1, 8 filters x 91 vectors a image). Each sum adds the same numbers in the same order.
template <std::size_t OB>
void bias_channels(const Grid& g, const real* gg, std::size_t o0, real* dbv) {
    std::array<Batch, OB> acc;
    for (std::size_t ob = 0; ob < OB; ++ob)
        acc[ob] = Batch::load_unaligned(dbv + (o0 + ob) * V);
    for (std::size_t m = 0; m < g.mv; m += V)
        for (std::size_t ob = 0; ob < OB; ++ob)
            acc[ob] += Batch::load_unaligned(gg + (o0 + ob) * g.mr + m);
    for (std::size_t ob = 0; ob < OB; ++ob)
        acc[ob].store_unaligned(dbv + (o0 + ob) * V);
}

/// Adds one image to the lane sums dWv [O, C, kH, kW, V] (if want_w) and dbv [O, V] (if
/// want_b) that follow each other in ws.dwv.
void weight_image(const DirectConvShape& s, const Grid& g, const real* x, const real* gy,
                  bool want_w, bool want_b, Workspace& ws) {
    real* dwv = ws.dwv.data();
    real* dbv = dwv + s.o * s.c * s.kh * s.kw * V;
    real* gg = room(ws.gg, s.o * g.mr);
    // g [O, OH, OW] onto the grid [O, mr]: row i of channel o at o mr + i wp, zeros elsewhere
    spread_rows(gy, s.o, s.oh(), s.ow(), 0, 0, g.wp, g.mr, gg, s.o * g.mr);
    if (want_b) {  // dbv[o] += gg[o, m], lane by lane
        std::size_t o0 = 0;
        for (; o0 + 8 <= s.o; o0 += 8)
            bias_channels<8>(g, gg, o0, dbv);
        for (; o0 + 4 <= s.o; o0 += 4)
            bias_channels<4>(g, gg, o0, dbv);
        for (; o0 < s.o; ++o0)
            bias_channels<1>(g, gg, o0, dbv);
    }
    if (!want_w) return;
    real* xp = room(ws.xp, g.padded);
    pad_image(s, g, x, xp);
    switch (s.kw) {
        case 1:
            weight_image_kw<1>(s, g, xp, gg, dwv);
            break;
        case 2:
            weight_image_kw<2>(s, g, xp, gg, dwv);
            break;
        case 3:
            weight_image_kw<3>(s, g, xp, gg, dwv);
            break;
        case 4:
            weight_image_kw<4>(s, g, xp, gg, dwv);
            break;
        case 5:
            weight_image_kw<5>(s, g, xp, gg, dwv);
            break;
        case 6:
            weight_image_kw<6>(s, g, xp, gg, dwv);
            break;
        default:
            weight_image_kw<7>(s, g, xp, gg, dwv);
            break;  // supports() caps kW at 7
    }
}

}  // namespace

const char* conv2d_direct_simd() {
    return xsimd::default_arch::name();
}

std::size_t conv2d_direct_simd_bytes() {
    return sizeof(Batch);
}

bool conv2d_direct_supports(const DirectConvShape& s, std::size_t stride) {
    return stride == 1 && s.kh >= 1 && s.kw >= 1 && s.kw <= kMaxDirectKw && s.pad_h < s.kh &&
           s.pad_w < s.kw && s.h + 2 * s.pad_h >= s.kh && s.w + 2 * s.pad_w >= s.kw && s.c > 0 &&
           s.o > 0;
}

void conv2d_direct_forward(const DirectConvShape& s, const real* x, const real* w, const real* b,
                           real* y) {
    const Grid g = grid_of(s);
    const std::size_t x_image = s.c * s.h * s.w, y_image = s.o * s.oh() * s.ow();
    const std::size_t grain = std::max<std::size_t>(1, kMinMacsPerThread / macs_per_image(s));
    parallel_for(s.n, grain, [&](std::size_t first, std::size_t last) {
        Workspace& ws = workspace();
        for (std::size_t n = first; n < last; ++n)
            forward_image(s, g, x + n * x_image, w, b, y + n * y_image, ws);
    });
}

void conv2d_direct_backward_input(const DirectConvShape& s, const real* g, const real* w,
                                  real* dx) {
    // dx[c, h, w] = sum_{o, p', q'} Wt[c, o, p', q'] gp[o, h + p', w + q'] with Wt the filters
    // turned 180 degrees and channels swapped, Wt[c, o, p', q'] = W[o, c, kH-1-p', kW-1-q'],
    // and gp = g padded by kH-1-pad_h, kW-1-pad_w: the forward convolution of g with Wt.
    DirectConvShape t{};
    t.n = s.n, t.c = s.o, t.h = s.oh(), t.w = s.ow();
    t.o = s.c, t.kh = s.kh, t.kw = s.kw;
    t.pad_h = s.kh - 1 - s.pad_h, t.pad_w = s.kw - 1 - s.pad_w;
    std::vector<real> wt(s.o * s.c * s.kh * s.kw);
    for (std::size_t o = 0; o < s.o; ++o)
        for (std::size_t c = 0; c < s.c; ++c)
            for (std::size_t p = 0; p < s.kh; ++p)
                for (std::size_t q = 0; q < s.kw; ++q)
                    wt[((c * s.o + o) * s.kh + p) * s.kw + q] =
                        w[((o * s.c + c) * s.kh + (s.kh - 1 - p)) * s.kw + (s.kw - 1 - q)];
    conv2d_direct_forward(t, g, wt.data(), nullptr, dx);
}

void conv2d_direct_backward_weight(const DirectConvShape& s, const real* x, const real* g, real* dw,
                                   real* db) {
    if (dw == nullptr && db == nullptr) return;
    const Grid grid = grid_of(s);
    const std::size_t x_image = s.c * s.h * s.w, y_image = s.o * s.oh() * s.ow();
    const std::size_t dw_size = s.o * s.c * s.kh * s.kw, part_size = dw_size + s.o;
    // Block k sums images [k B, (k+1) B) into partial[k] (dW then db); the blocks are added
    // in order afterwards, so the sum does not depend on which thread ran which block.
    const std::size_t blocks = (s.n + kImagesPerBlock - 1) / kImagesPerBlock;
    std::vector<real> partial(blocks * part_size, real(0));
    const std::size_t grain =
        std::max<std::size_t>(1, kMinMacsPerThread / (macs_per_image(s) * kImagesPerBlock));
    parallel_for(blocks, grain, [&](std::size_t first, std::size_t last) {
        Workspace& ws = workspace();
        for (std::size_t k = first; k < last; ++k) {
            real* dwv = room(ws.dwv, part_size * V);
            zero(dwv, part_size * V);
            const std::size_t end = std::min(s.n, (k + 1) * kImagesPerBlock);
            for (std::size_t n = k * kImagesPerBlock; n < end; ++n)
                weight_image(s, grid, x + n * x_image, g + n * y_image, dw != nullptr,
                             db != nullptr, ws);
            real* part = partial.data() + k * part_size;  // the lanes added, in lane order
            for (std::size_t i = 0; i < part_size; ++i)
                part[i] = sum_lanes(Batch::load_unaligned(dwv + i * V));
        }
    });
    add_block_partials(partial.data(), blocks, part_size, dw, dw_size, db, s.o);
}

}  // namespace tg::kernels::fast
