// Convolution backward kernels with SIMD lanes across channels: see conv2d_lanes.hpp for the
// maths and the idea.
//
// Weight gradient, one image at a time, added to the block's dWt [C kH, kW, O'] (dW with the
// filters last, O' = O rounded up to whole vectors, lanes o >= O held at 0):
//   gt [L, O'] = g [O, L] transposed (zeros in lanes o >= O)
//   dWt[c kH + p, q, :] += sum_{i, j} xp[c, i + p, j + q] gt[i OW + j, :]
// A tile is PB filter rows (c, p) x QB taps q of each: PB QB x O'/V accumulators stay in
// registers while the positions stream past; each position loads O'/V vectors of gt and
// broadcasts PB QB numbers of xp, so each load feeds O'/V to PB QB multiply-adds.
//
// Input gradient, one image at a time, with the filters turned 180 degrees and the channels
// last, Wt[o, p', q', c] = W[o, c, kH-1-p', kW-1-q'] (C' = C rounded up to whole vectors), and
// g padded by kH-1-pad_h rows and kW-1-pad_w columns to gp:
//   dxt[h W + w, :] = sum_{o, p', q'} gp[o, h + p', w + q'] Wt[o, p', q', :]
// A tile is RB pixels of one row: RB x C'/V accumulators; each tap loads C'/V vectors of Wt
// and broadcasts RB numbers of gp. dxt [H W, C'] is then transposed into dx [C, H, W].
#include "conv2d_lanes.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "simd_fma.hpp"
#include "tapegrad/parallel.hpp"

namespace tg::kernels::fast {

namespace {

using Batch = xsimd::batch<real>;
constexpr std::size_t V = Batch::size;  // numbers per SIMD register
/// SIMD registers the compiler can keep accumulators in (AVX-512 has 32, AVX2 and SSE 16).
constexpr std::size_t kRegisters = sizeof(Batch) >= 64 ? 32 : 16;
/// The most channel vectors a kernel handles (O' or C' <= 2 V).
constexpr std::size_t kMaxChannelVectors = 2;
/// Weight-gradient tiles: at most kMaxPB filter rows x kMaxQB taps.
constexpr std::size_t kMaxPB = 4, kMaxQB = 7;
/// Input-gradient tiles: at most kMaxRB pixels.
constexpr std::size_t kMaxRB = 12;
/// The least multiply-adds worth handing to another thread (a wake-up costs microseconds).
constexpr std::size_t kMinMacsPerThread = std::size_t{1} << 20;

std::size_t macs_per_image(const DirectConvShape& s) {
    return std::max<std::size_t>(1, s.o * s.c * s.kh * s.kw * s.oh() * s.ow());
}

std::size_t vectors_for(std::size_t channels) {
    return (channels + V - 1) / V;
}

/// Accumulators a tile may hold with `vectors` channel vectors each: the rest of the
/// registers hold one vector per channel vector and one broadcast number.
std::size_t max_tile(std::size_t vectors) {
    return (kRegisters - vectors - 1) / vectors;
}

/// [first, first + size) of part k when `total` is cut into `parts` near-equal parts (the
/// first total % parts of them one longer).
std::pair<std::size_t, std::size_t> part_of(std::size_t total, std::size_t parts, std::size_t k) {
    const std::size_t base = total / parts, extra = total % parts;
    return {k * base + std::min(k, extra), base + (k < extra ? 1 : 0)};
}

/// Scratch space of one thread, kept between calls so a training step allocates nothing.
struct Workspace {
    std::vector<real> xp;   // weight gradient: padded input image [C, Hp, Wp]
    std::vector<real> gt;   // weight gradient: g transposed [L, O']
    std::vector<real> dwt;  // weight gradient: the block's dWt [C kH, kW, O'] and db [O']
    std::vector<real> gp;   // input gradient: padded g [O, H + kH - 1, W + kW - 1]
    std::vector<real> dxt;  // input gradient: dx with channels last [H W, C']
};
Workspace& workspace() {
    thread_local Workspace ws;
    return ws;
}

real* room(std::vector<real>& v, std::size_t n) {
    if (v.size() < n) v.resize(n);
    return v.data();
}

/// dst [planes, h + 2 pad_h, w + 2 pad_w] = src [planes, h, w] with zeros around each plane.
void pad_planes(const real* src, std::size_t planes, std::size_t h, std::size_t w,
                std::size_t pad_h, std::size_t pad_w, real* dst) {
    const std::size_t hp = h + 2 * pad_h, wp = w + 2 * pad_w;
    std::fill(dst, dst + planes * hp * wp, real(0));
    for (std::size_t c = 0; c < planes; ++c)
        for (std::size_t i = 0; i < h; ++i)
            std::memcpy(dst + (c * hp + i + pad_h) * wp + pad_w, src + (c * h + i) * w,
                        w * sizeof(real));
}

// ---- weight gradient ----

struct WeightTile {
    std::array<const real*, kMaxPB> rows;  // xp at (c, p, q0) of each filter row of the tile
    std::array<real*, kMaxPB> dwt;         // dWt[c kH + p, q0, :] of each filter row
    std::size_t wp;                        // row stride of xp
    std::size_t oh, ow;
    const real* gt;  // [OH OW, OBV V]
};

/// dWt[row pb, q0 + qb, :] += sum_{i, j} rows[pb][i wp + j + qb] gt[i OW + j, :] for the
/// tile's PB rows and QB taps, OBV vectors of filters.
template <std::size_t OBV, std::size_t QB, std::size_t PB>
void weight_tile(const WeightTile& t) {
    constexpr std::size_t OP = OBV * V;
    std::array<std::array<std::array<Batch, OBV>, QB>, PB> acc;
    for (std::size_t pb = 0; pb < PB; ++pb)
        for (std::size_t qb = 0; qb < QB; ++qb)
            for (std::size_t v = 0; v < OBV; ++v)
                acc[pb][qb][v] = Batch::load_unaligned(t.dwt[pb] + qb * OP + v * V);
    for (std::size_t i = 0; i < t.oh; ++i) {
        std::array<const real*, PB> xr;
        for (std::size_t pb = 0; pb < PB; ++pb)
            xr[pb] = t.rows[pb] + i * t.wp;
        const real* gr = t.gt + i * t.ow * OP;
        for (std::size_t j = 0; j < t.ow; ++j) {
            std::array<Batch, OBV> gv;
            for (std::size_t v = 0; v < OBV; ++v)
                gv[v] = Batch::load_unaligned(gr + j * OP + v * V);
            for (std::size_t pb = 0; pb < PB; ++pb)
                for (std::size_t qb = 0; qb < QB; ++qb) {
                    const Batch xv(xr[pb][j + qb]);
                    for (std::size_t v = 0; v < OBV; ++v)
                        acc[pb][qb][v] = fma(xv, gv[v], acc[pb][qb][v]);
                }
        }
    }
    for (std::size_t pb = 0; pb < PB; ++pb)
        for (std::size_t qb = 0; qb < QB; ++qb)
            for (std::size_t v = 0; v < OBV; ++v)
                acc[pb][qb][v].store_unaligned(t.dwt[pb] + qb * OP + v * V);
}

using WeightTileKernel = void (*)(const WeightTile&);

/// weight_tile<OBV, QB, PB> at index (QB - 1) kMaxPB + PB - 1.
template <std::size_t OBV, std::size_t... I>
constexpr std::array<WeightTileKernel, sizeof...(I)> weight_tiles(std::index_sequence<I...>) {
    return {&weight_tile<OBV, I / kMaxPB + 1, I % kMaxPB + 1>...};
}

WeightTileKernel weight_kernel(std::size_t obv, std::size_t qb, std::size_t pb) {
    static constexpr auto one = weight_tiles<1>(std::make_index_sequence<kMaxQB * kMaxPB>{});
    static constexpr auto two = weight_tiles<2>(std::make_index_sequence<kMaxQB * kMaxPB>{});
    return (obv == 1 ? one : two)[(qb - 1) * kMaxPB + pb - 1];
}

/// How the weight gradient's taps are cut into tiles: the C kH filter rows into p_parts
/// parts, the kW taps of each into q_parts parts, each part at most the registers allow.
struct WeightTiling {
    std::size_t p_parts, q_parts;
};

WeightTiling weight_tiling(const DirectConvShape& s, std::size_t obv) {
    const std::size_t most = max_tile(obv), rows = s.c * s.kh;
    const std::size_t longest = std::min({s.kw, kMaxQB, most});  // taps per part, at most
    const std::size_t q_parts = (s.kw + longest - 1) / longest;
    const std::size_t qb = (s.kw + q_parts - 1) / q_parts;  // the longest part
    const std::size_t pb = std::min({kMaxPB, std::max<std::size_t>(1, most / qb), rows});
    return {(rows + pb - 1) / pb, q_parts};
}

/// Adds one image to dWt [C kH, kW, O'] (if dwt) and dbt [O'] (if dbt).
void weight_image(const DirectConvShape& s, const WeightTiling& tiling, std::size_t obv,
                  const real* x, const real* g, real* dwt, real* dbt, Workspace& ws) {
    const std::size_t op = obv * V, oh = s.oh(), ow = s.ow(), L = oh * ow;
    real* gt = room(ws.gt, L * op);
    for (std::size_t l = 0; l < L; ++l) {  // gt [L, O'] = g [O, L] transposed, zeros past O
        for (std::size_t o = 0; o < s.o; ++o)
            gt[l * op + o] = g[o * L + l];
        for (std::size_t o = s.o; o < op; ++o)
            gt[l * op + o] = 0;
    }
    if (dbt) {  // dbt[o] += sum_l gt[l, o], position by position
        for (std::size_t v = 0; v < obv; ++v) {
            Batch acc = Batch::load_unaligned(dbt + v * V);
            for (std::size_t l = 0; l < L; ++l)
                acc += Batch::load_unaligned(gt + l * op + v * V);
            acc.store_unaligned(dbt + v * V);
        }
    }
    if (!dwt) return;
    const std::size_t hp = s.h + 2 * s.pad_h, wp = s.w + 2 * s.pad_w;
    const real* xp = x;  // without padding the image is its own padded image
    if (s.pad_h > 0 || s.pad_w > 0) {
        real* buffer = room(ws.xp, s.c * hp * wp);
        pad_planes(x, s.c, s.h, s.w, s.pad_h, s.pad_w, buffer);
        xp = buffer;
    }
    WeightTile t{};
    t.wp = wp, t.oh = oh, t.ow = ow, t.gt = gt;
    for (std::size_t pk = 0; pk < tiling.p_parts; ++pk) {
        const auto [r0, pb] = part_of(s.c * s.kh, tiling.p_parts, pk);
        for (std::size_t qk = 0; qk < tiling.q_parts; ++qk) {
            const auto [q0, qb] = part_of(s.kw, tiling.q_parts, qk);
            for (std::size_t k = 0; k < pb; ++k) {
                const std::size_t row = r0 + k, c = row / s.kh, p = row % s.kh;
                t.rows[k] = xp + (c * hp + p) * wp + q0;
                t.dwt[k] = dwt + (row * s.kw + q0) * op;
            }
            weight_kernel(obv, qb, pb)(t);
        }
    }
}

// ---- input gradient ----

struct InputTile {
    const real* gp;  // gp[0, h, w0]: the tile's first pixel, filter tap (0, 0), channel o = 0
    std::size_t plane, wpg;  // numbers per channel of gp, row stride of gp
    std::size_t o, kh, kw;
    const real* wt;  // Wt [O, kH, kW, CBV V]
    real* out;       // dxt at the tile's first pixel [RB, CBV V]
};

/// out[r, :] = sum_{o, p', q'} gp[o, h + p', w0 + r + q'] Wt[o, p', q', :] for r < RB.
template <std::size_t CBV, std::size_t RB>
void input_tile(const InputTile& t) {
    constexpr std::size_t CP = CBV * V;
    std::array<std::array<Batch, CBV>, RB> acc;
    for (std::size_t r = 0; r < RB; ++r)
        for (std::size_t v = 0; v < CBV; ++v)
            acc[r][v] = Batch(real(0));
    for (std::size_t o = 0; o < t.o; ++o) {
        for (std::size_t p = 0; p < t.kh; ++p) {
            const real* gr = t.gp + o * t.plane + p * t.wpg;
            const real* wr = t.wt + (o * t.kh + p) * t.kw * CP;
            for (std::size_t q = 0; q < t.kw; ++q) {
                std::array<Batch, CBV> wv;
                for (std::size_t v = 0; v < CBV; ++v)
                    wv[v] = Batch::load_unaligned(wr + q * CP + v * V);
                for (std::size_t r = 0; r < RB; ++r) {
                    const Batch gv(gr[q + r]);
                    for (std::size_t v = 0; v < CBV; ++v)
                        acc[r][v] = fma(gv, wv[v], acc[r][v]);
                }
            }
        }
    }
    for (std::size_t r = 0; r < RB; ++r)
        for (std::size_t v = 0; v < CBV; ++v)
            acc[r][v].store_unaligned(t.out + r * CP + v * V);
}

using InputTileKernel = void (*)(const InputTile&);

template <std::size_t CBV, std::size_t... I>
constexpr std::array<InputTileKernel, sizeof...(I)> input_tiles(std::index_sequence<I...>) {
    return {&input_tile<CBV, I + 1>...};
}

InputTileKernel input_kernel(std::size_t cbv, std::size_t rb) {
    static constexpr auto one = input_tiles<1>(std::make_index_sequence<kMaxRB>{});
    static constexpr auto two = input_tiles<2>(std::make_index_sequence<kMaxRB>{});
    return (cbv == 1 ? one : two)[rb - 1];
}

/// Pixels per tile of the one-register input gradient with filter rows of KW taps: RB
/// accumulators, the KW vectors of a filter row and one broadcast number in the registers.
template <std::size_t KW>
constexpr std::size_t grid_tile() {
    return std::min(kMaxRB, kRegisters - KW - 1);
}

/// The input gradient with C' = one register, on the grid of gp's rows (position m = h wpg + w;
/// the kW - 1 positions per row with w >= W are computed and dropped): out[r, :] = sum_{o, p'}
/// sum_{q'} gp[o, m0 + r + p' wpg + q'] Wt[o, p', q', :] for r < RB = grid_tile<KW>(). Each
/// number of gp is broadcast once per filter row and feeds the up to KW pixels that need it, so
/// RB + KW - 1 broadcasts and KW loads of Wt feed RB KW multiply-adds.
template <std::size_t KW>
void input_grid_tile(const InputTile& t) {
    constexpr std::size_t RB = grid_tile<KW>();
    std::array<Batch, RB> acc;
    for (std::size_t r = 0; r < RB; ++r)
        acc[r] = Batch(real(0));
    for (std::size_t o = 0; o < t.o; ++o) {
        for (std::size_t p = 0; p < t.kh; ++p) {
            const real* gr = t.gp + o * t.plane + p * t.wpg;
            const real* wr = t.wt + (o * t.kh + p) * KW * V;
            std::array<Batch, KW> wv;
            for (std::size_t q = 0; q < KW; ++q)
                wv[q] = Batch::load_unaligned(wr + q * V);
#pragma GCC unroll 32
            for (std::size_t u = 0; u < RB + KW - 1; ++u) {
                const Batch gv(gr[u]);
#pragma GCC unroll 8
                for (std::size_t q = 0; q < KW; ++q) {
                    if (u >= q && u - q < RB) acc[u - q] = fma(gv, wv[q], acc[u - q]);
                }
            }
        }
    }
    for (std::size_t r = 0; r < RB; ++r)
        acc[r].store_unaligned(t.out + r * V);
}

/// input_grid_tile<kW> and its tile size.
struct GridKernel {
    InputTileKernel run;
    std::size_t rb;
};

GridKernel grid_kernel(std::size_t kw) {
    switch (kw) {
        case 1:
            return {input_grid_tile<1>, grid_tile<1>()};
        case 2:
            return {input_grid_tile<2>, grid_tile<2>()};
        case 3:
            return {input_grid_tile<3>, grid_tile<3>()};
        case 4:
            return {input_grid_tile<4>, grid_tile<4>()};
        case 5:
            return {input_grid_tile<5>, grid_tile<5>()};
        case 6:
            return {input_grid_tile<6>, grid_tile<6>()};
        default:  // supports() caps kW at kMaxDirectKw = 7
            return {input_grid_tile<7>, grid_tile<7>()};
    }
}

/// dx [C, H, W] of one image from g [O, OH, OW] and Wt [O, kH, kW, V], C <= V: the grid tiles.
void input_image_grid(const DirectConvShape& s, const real* g, const real* wt, real* dx,
                      Workspace& ws) {
    const std::size_t ph = s.kh - 1 - s.pad_h, pw = s.kw - 1 - s.pad_w;
    const std::size_t hpg = s.oh() + 2 * ph, wpg = s.ow() + 2 * pw;  // H + kH - 1, W + kW - 1
    const GridKernel kernel = grid_kernel(s.kw);
    const std::size_t m = s.h * wpg, tiles = (m + kernel.rb - 1) / kernel.rb;
    // the last tile reads up to rb + kW - 1 numbers past the last plane: zeros
    const std::size_t gp_size = s.o * hpg * wpg, slack = kernel.rb + s.kw;
    real* gp = room(ws.gp, gp_size + slack);
    pad_planes(g, s.o, s.oh(), s.ow(), ph, pw, gp);
    std::fill(gp + gp_size, gp + gp_size + slack, real(0));
    real* dxg = room(ws.dxt, tiles * kernel.rb * V);
    InputTile t{};
    t.plane = hpg * wpg, t.wpg = wpg, t.o = s.o, t.kh = s.kh, t.kw = s.kw, t.wt = wt;
    for (std::size_t k = 0; k < tiles; ++k) {
        t.gp = gp + k * kernel.rb;
        t.out = dxg + k * kernel.rb * V;
        kernel.run(t);
    }
    const std::size_t pixels = s.h * s.w;
    for (std::size_t c = 0; c < s.c; ++c)  // dx [C, H, W] = the grid's columns w < W
        for (std::size_t h = 0; h < s.h; ++h)
            for (std::size_t w = 0; w < s.w; ++w)
                dx[c * pixels + h * s.w + w] = dxg[(h * wpg + w) * V + c];
}

/// dx [C, H, W] of one image from g [O, OH, OW] and Wt [O, kH, kW, C'].
void input_image(const DirectConvShape& s, std::size_t cbv, std::size_t row_parts, const real* g,
                 const real* wt, real* dx, Workspace& ws) {
    const std::size_t cp = cbv * V, ph = s.kh - 1 - s.pad_h, pw = s.kw - 1 - s.pad_w;
    const std::size_t hpg = s.oh() + 2 * ph, wpg = s.ow() + 2 * pw;  // H + kH - 1, W + kW - 1
    real* gp = room(ws.gp, s.o * hpg * wpg);
    pad_planes(g, s.o, s.oh(), s.ow(), ph, pw, gp);
    const std::size_t pixels = s.h * s.w;
    real* dxt = room(ws.dxt, pixels * cp);
    InputTile t{};
    t.plane = hpg * wpg, t.wpg = wpg, t.o = s.o, t.kh = s.kh, t.kw = s.kw, t.wt = wt;
    for (std::size_t h = 0; h < s.h; ++h) {
        for (std::size_t k = 0; k < row_parts; ++k) {
            const auto [w0, rb] = part_of(s.w, row_parts, k);
            t.gp = gp + h * wpg + w0;
            t.out = dxt + (h * s.w + w0) * cp;
            input_kernel(cbv, rb)(t);
        }
    }
    for (std::size_t c = 0; c < s.c; ++c)  // dx [C, H W] = dxt [H W, C'] transposed
        for (std::size_t l = 0; l < pixels; ++l)
            dx[c * pixels + l] = dxt[l * cp + c];
}

}  // namespace

bool conv2d_lanes_weight_supports(const DirectConvShape& s, std::size_t stride) {
    return conv2d_direct_supports(s, stride) && vectors_for(s.o) <= kMaxChannelVectors;
}

bool conv2d_lanes_input_supports(const DirectConvShape& s, std::size_t stride) {
    return conv2d_direct_supports(s, stride) && vectors_for(s.c) <= kMaxChannelVectors;
}

void conv2d_lanes_backward_weight(const DirectConvShape& s, const real* x, const real* g, real* dw,
                                  real* db) {
    if (dw == nullptr && db == nullptr) return;
    const std::size_t obv = vectors_for(s.o), op = obv * V, rows = s.c * s.kh;
    const std::size_t x_image = s.c * s.h * s.w, y_image = s.o * s.oh() * s.ow();
    const std::size_t dwt_size = rows * s.kw * op, dw_size = s.o * rows * s.kw;
    const std::size_t part_size = dw_size + s.o;
    const WeightTiling tiling = weight_tiling(s, obv);
    // Block k sums images [k B, (k+1) B) into partial[k] (dW then db); the blocks are added
    // in order afterwards, so the sum does not depend on which thread ran which block.
    const std::size_t blocks = (s.n + kImagesPerBlock - 1) / kImagesPerBlock;
    std::vector<real> partial(blocks * part_size, real(0));
    const std::size_t grain =
        std::max<std::size_t>(1, kMinMacsPerThread / (macs_per_image(s) * kImagesPerBlock));
    parallel_for(blocks, grain, [&](std::size_t first, std::size_t last) {
        Workspace& ws = workspace();
        for (std::size_t k = first; k < last; ++k) {
            real* dwt = room(ws.dwt, dwt_size + op);
            real* dbt = dwt + dwt_size;
            std::fill(dwt, dwt + dwt_size + op, real(0));
            const std::size_t end = std::min(s.n, (k + 1) * kImagesPerBlock);
            for (std::size_t n = k * kImagesPerBlock; n < end; ++n)
                weight_image(s, tiling, obv, x + n * x_image, g + n * y_image, dw ? dwt : nullptr,
                             db ? dbt : nullptr, ws);
            real* part = partial.data() + k * part_size;  // dWt [C kH kW, O'] -> dW [O, C kH kW]
            for (std::size_t o = 0; o < s.o; ++o)
                for (std::size_t i = 0; i < rows * s.kw; ++i)
                    part[o * rows * s.kw + i] = dwt[i * op + o];
            for (std::size_t o = 0; o < s.o; ++o)
                part[dw_size + o] = dbt[o];
        }
    });
    add_block_partials(partial.data(), blocks, part_size, dw, dw_size, db, s.o);
}

void conv2d_lanes_backward_input(const DirectConvShape& s, const real* g, const real* w, real* dx) {
    const std::size_t cbv = vectors_for(s.c), cp = cbv * V;
    // Wt [O, kH, kW, C'] = W [O, C, kH, kW] turned 180 degrees, channels last, zeros past C
    std::vector<real> wt(s.o * s.kh * s.kw * cp, real(0));
    for (std::size_t o = 0; o < s.o; ++o)
        for (std::size_t c = 0; c < s.c; ++c)
            for (std::size_t p = 0; p < s.kh; ++p)
                for (std::size_t q = 0; q < s.kw; ++q)
                    wt[((o * s.kh + p) * s.kw + q) * cp + c] =
                        w[((o * s.c + c) * s.kh + (s.kh - 1 - p)) * s.kw + (s.kw - 1 - q)];
    const std::size_t most = std::min(kMaxRB, max_tile(cbv));
    const std::size_t row_parts = (s.w + most - 1) / most;
    const std::size_t x_image = s.c * s.h * s.w, y_image = s.o * s.oh() * s.ow();
    const std::size_t grain = std::max<std::size_t>(1, kMinMacsPerThread / macs_per_image(s));
    parallel_for(s.n, grain, [&](std::size_t first, std::size_t last) {
        Workspace& ws = workspace();
        for (std::size_t n = first; n < last; ++n) {
            if (cbv == 1)
                input_image_grid(s, g + n * y_image, wt.data(), dx + n * x_image, ws);
            else
                input_image(s, cbv, row_parts, g + n * y_image, wt.data(), dx + n * x_image, ws);
        }
    });
}

}  // namespace tg::kernels::fast
