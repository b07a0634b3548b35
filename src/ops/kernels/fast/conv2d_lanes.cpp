// Convolution kernels with SIMD lanes across channels: see conv2d_lanes.hpp for the maths and
// the idea.
//
// Weight gradient, one image at a time, added to the block's dWt [C kH, kW, O'] (dW with the
// filters last, O' = O rounded up to whole vectors, lanes o >= O held at 0):
//   gt [L, O'] = g [O, L] transposed (zeros in lanes o >= O; by V x V register blocks when O
//   fills whole vectors)
//   dWt[c kH + p, q, :] += sum_{i, j} xp[c, i + p, j + q] gt[i OW + j, :]
// A tile is PB filter rows (c, p) x QB taps q of each: PB QB x O'/V accumulators stay in
// registers while the positions stream past; each position loads O'/V vectors of gt and
// broadcasts PB QB numbers of xp, so each load feeds O'/V to PB QB multiply-adds.
//
// Forward pass and input gradient: both are a convolution whose output channels sit in the
// lanes (LanesConv below), one image at a time. For the forward pass the filters are laid
// out with the output channels last, wl[c, p, q, :] = W[:, c, p, q] (O' = O rounded up to
// whole vectors, zeros past O), and x is padded by pad to xp:
//   yt[h OW + w, :] = sum_{c, p, q} xp[c, h + p, w + q] wl[c, p, q, :]
// For dx the filters are turned 180 degrees with the channels last, wl[o, p', q', :] =
// W[o, :, kH-1-p', kW-1-q'] (C' = C rounded up), and g is padded by kH-1-pad_h rows and
// kW-1-pad_w columns to gp:
//   dxt[h W + w, :] = sum_{o, p', q'} gp[o, h + p', w + q'] wl[o, p', q', :]
// A tile is RB output pixels, consecutive in [OH, OW] order (a tile may run from the end of
// one row into the next): RB x K'/V accumulators (K' = O' or C'); each tap loads K'/V
// vectors of wl and broadcasts RB numbers of the input, K'/V + RB loads for K'/V x RB
// multiply-adds. For 3x3 and 5x5 filters the taps are unrolled at compile time (with the
// filter size read at run time GCC kept the accumulators on the stack). With one vector of
// channels the tile runs along the grid of the padded rows instead (the rows sharing their
// padding columns, so no position is wasted for dx without padding) and shares each broadcast
// between the kW taps that need it; for 5x5 filters (conv2's dx in ch310_train_cnn) it runs
// along one output row (row tiles: no position past OW, and no filter row that reads only
// the padding rows of g). The channels-last result is transposed back to
// [K, OH, OW] by V x V blocks in registers.
#include "conv2d_lanes.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "simd_fma.hpp"
#include "tapegrad/parallel.hpp"

namespace tg::kernels::fast {

namespace {

/// The most channel vectors a kernel handles (O' or C' <= 2 V).
constexpr std::size_t kMaxChannelVectors = 2;
/// Weight-gradient tiles: at most kMaxPB filter rows x kMaxQB taps.
constexpr std::size_t kMaxPB = 4, kMaxQB = 7;
/// Forward and input-gradient tiles: at most kMaxRB pixels.
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
    std::vector<real> gp;   // forward and dx: the padded input planes (x, or g for dx)
    std::vector<real> dxt;  // forward and dx: the output pixels with channels last
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
        for (std::size_t i = 0; i < h; ++i) {
            const real* from = src + (c * h + i) * w;
            real* to = dst + (c * hp + i + pad_h) * wp + pad_w;
            if (w < V) {
                std::memcpy(to, from, w * sizeof(real));
                continue;
            }
            // rows of a dozen numbers: whole vectors (the last overlapping the one before it)
            // instead of a call to memcpy per row
            for (std::size_t j0 = 0; j0 < w; j0 += V) {
                const std::size_t j = std::min(j0, w - V);
                Batch::load_unaligned(from + j).store_unaligned(to + j);
            }
        }
}

/// dst [planes, h + 2 pad_h, w + pad_w] = src [planes, h, w] with zeros around each plane, the
/// rows sharing their padding columns: number (i, j) of a plane at (i + pad_h) rs + pad_w + j
/// (rs = w + pad_w), so the pad_w zeros after a row are the pad_w zeros before the next one,
/// and the last row's come after the last plane (the caller's zeros). The grid tiles read
/// this layout: a grid of rs positions per output row instead of w + 2 pad_w.
void pad_planes_shared(const real* src, std::size_t planes, std::size_t h, std::size_t w,
                       std::size_t pad_h, std::size_t pad_w, real* dst) {
    const std::size_t rs = w + pad_w, plane = (h + 2 * pad_h) * rs;
    std::fill(dst, dst + planes * plane, real(0));
    for (std::size_t c = 0; c < planes; ++c)
        for (std::size_t i = 0; i < h; ++i) {
            const real* from = src + (c * h + i) * w;
            real* to = dst + c * plane + (i + pad_h) * rs + pad_w;
            if (w < V) {
                for (std::size_t j = 0; j < w; ++j)
                    to[j] = from[j];
                continue;
            }
            // whole vectors, the last overlapping the one before it (as pad_planes)
            for (std::size_t j0 = 0; j0 < w; j0 += V) {
                const std::size_t j = std::min(j0, w - V);
                Batch::load_unaligned(from + j).store_unaligned(to + j);
            }
        }
}

/// r[a] lane b <- r[b] lane a: the V x V block of numbers in r transposed. With AVX (8 floats
/// or 4 doubles a register) by shuffles in registers; otherwise through memory. (A template so
/// that only the branch for the compiled width and type is instantiated.)
template <class B>
void transpose_block(std::array<B, B::size>& r) {
    using T = typename B::value_type;
    constexpr std::size_t N = B::size;
#if defined(__AVX__)
    if constexpr (sizeof(B) == 32 && std::is_same_v<T, float>) {
        const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
        const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
        const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
        const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
        const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
        const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
        const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
        const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
        r[0] = B(_mm256_permute2f128_ps(s0, s4, 0x20));
        r[1] = B(_mm256_permute2f128_ps(s1, s5, 0x20));
        r[2] = B(_mm256_permute2f128_ps(s2, s6, 0x20));
        r[3] = B(_mm256_permute2f128_ps(s3, s7, 0x20));
        r[4] = B(_mm256_permute2f128_ps(s0, s4, 0x31));
        r[5] = B(_mm256_permute2f128_ps(s1, s5, 0x31));
        r[6] = B(_mm256_permute2f128_ps(s2, s6, 0x31));
        r[7] = B(_mm256_permute2f128_ps(s3, s7, 0x31));
        return;
    } else if constexpr (sizeof(B) == 32 && std::is_same_v<T, double>) {
        const __m256d t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
        const __m256d t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
        r[0] = B(_mm256_permute2f128_pd(t0, t2, 0x20));
        r[1] = B(_mm256_permute2f128_pd(t1, t3, 0x20));
        r[2] = B(_mm256_permute2f128_pd(t0, t2, 0x31));
        r[3] = B(_mm256_permute2f128_pd(t1, t3, 0x31));
        return;
    }
#endif
    alignas(sizeof(B)) std::array<T, N * N> block;
    for (std::size_t a = 0; a < N; ++a)
        r[a].store_aligned(block.data() + a * N);
    for (std::size_t a = 0; a < N; ++a)
        for (std::size_t b = a + 1; b < N; ++b)
            std::swap(block[a * N + b], block[b * N + a]);
    for (std::size_t a = 0; a < N; ++a)
        r[a] = B::load_aligned(block.data() + a * N);
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

/// gt [L, op] = g [O, L] transposed, zeros in lanes o >= O. By V x V blocks in registers where
/// O fills whole vectors and L >= V (the last block of positions overlapping the one before
/// it: it writes the same numbers again), number by number otherwise.
void lanes_from_planes(const real* g, std::size_t o_count, std::size_t L, std::size_t op,
                       real* gt) {
    if (o_count == op && L >= V) {
        std::array<Batch, V> r;
        for (std::size_t l0 = 0; l0 < L; l0 += V) {
            const std::size_t l = std::min(l0, L - V);
            for (std::size_t o0 = 0; o0 < o_count; o0 += V) {
                for (std::size_t a = 0; a < V; ++a)
                    r[a] = Batch::load_unaligned(g + (o0 + a) * L + l);
                transpose_block(r);  // r[a]: position l + a, filters o0 .. o0 + V - 1
                for (std::size_t a = 0; a < V; ++a)
                    r[a].store_unaligned(gt + (l + a) * op + o0);
            }
        }
        return;
    }
    for (std::size_t l = 0; l < L; ++l) {
        for (std::size_t o = 0; o < o_count; ++o)
            gt[l * op + o] = g[o * L + l];
        for (std::size_t o = o_count; o < op; ++o)
            gt[l * op + o] = 0;
    }
}

/// Adds one image to dWt [C kH, kW, O'] (if dwt) and dbt [O'] (if dbt).
void weight_image(const DirectConvShape& s, const WeightTiling& tiling, std::size_t obv,
                  const real* x, const real* g, real* dwt, real* dbt, Workspace& ws) {
    const std::size_t op = obv * V, oh = s.oh(), ow = s.ow(), L = oh * ow;
    real* gt = room(ws.gt, L * op);
    lanes_from_planes(g, s.o, L, op, gt);
    if (dbt) {  // dbt[o] += sum_l gt[l, o], position by position; the two vectors side by side
        Batch first = Batch::load_unaligned(dbt), second(real(0));
        if (obv > 1) second = Batch::load_unaligned(dbt + V);
        for (std::size_t l = 0; l < L; ++l) {
            first += Batch::load_unaligned(gt + l * op);
            if (obv > 1) second += Batch::load_unaligned(gt + l * op + V);
        }
        first.store_unaligned(dbt);
        if (obv > 1) second.store_unaligned(dbt + V);
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

// ---- convolutions with lanes across output channels: the forward pass and dx ----

/// The sizes of one image's convolution with lanes across its output channels:
///   out[k, h, w] = sum_{i, p, q} inp[i, h + p, w + q] wl[i, p, q, k]
/// for the I input planes [I, IH, IW] padded by (ph, pw) to inp, and filters with their
/// output channel last, wl [I, kH, kW, K'] (K' = kv V, zeros in lanes k >= K). The forward
/// pass is one (inp = x padded by pad, wl[c, p, q, o] = W[o, c, p, q]), and so is dx (inp = g
/// padded by k - 1 - pad, wl[o, p', q', c] = W[o, c, kH-1-p', kW-1-q']: conv2d_direct.cpp).
struct LanesConv {
    std::size_t in, ih, iw;  // input planes [in, ih, iw]
    std::size_t ph, pw;      // zeros around each plane
    std::size_t kh, kw;
    std::size_t out, kv;  // output channels, and the vectors holding them
    std::size_t oh() const { return ih + 2 * ph - kh + 1; }
    std::size_t ow() const { return iw + 2 * pw - kw + 1; }
};

struct LanesTile {
    const real* inp;  // grid tiles: the tile's first pixel, tap (0, 0), plane 0; pixel tiles: inp
    std::size_t plane, wpi;  // numbers per plane of inp, row stride of inp
    std::size_t in, kh, kw;
    const real* wl;                       // wl [I, kH, kW, KV V]
    real* out;                            // the tile's pixels, channels last [RB, KV V]
    std::array<std::size_t, kMaxRB> off;  // pixel tiles: pixel r's tap (0, 0) at inp + off[r]
    std::size_t p_lo, p_hi;               // row tiles: the filter rows [p_lo, p_hi) to run
};

/// out[r, :] = sum_{i, p, q} inp[off[r] + i plane + p wpi + q] wl[i, p, q, :] for r < RB: any
/// RB output pixels (consecutive in [OH, OW] order, so a tile may run over the end of a row).
/// KH and KW are the filter's size when fixed at compile time (the chapter's 3x3 and 5x5: the
/// taps unrolled, every accumulator, the KV filter vectors and the broadcast in registers), 0
/// when read from the tile.
template <std::size_t KV, std::size_t RB, std::size_t KH, std::size_t KW>
void lanes_tile(const LanesTile& t) {
    constexpr std::size_t KP = KV * V;
    const std::size_t kh = KH > 0 ? KH : t.kh, kw = KW > 0 ? KW : t.kw;
    std::array<std::size_t, RB> off;
    for (std::size_t r = 0; r < RB; ++r)
        off[r] = t.off[r];
    std::array<std::array<Batch, KV>, RB> acc;
    for (std::size_t r = 0; r < RB; ++r)
        for (std::size_t v = 0; v < KV; ++v)
            acc[r][v] = Batch(real(0));
    const real* wr = t.wl;
    for (std::size_t i = 0; i < t.in; ++i) {
        const real* xi = t.inp + i * t.plane;
#pragma GCC unroll 8
        for (std::size_t p = 0; p < kh; ++p) {
            const real* xr = xi + p * t.wpi;
#pragma GCC unroll 8
            for (std::size_t q = 0; q < kw; ++q) {
                std::array<Batch, KV> wv;
                for (std::size_t v = 0; v < KV; ++v)
                    wv[v] = Batch::load_unaligned(wr + q * KP + v * V);
                for (std::size_t r = 0; r < RB; ++r) {
                    const Batch xv(xr[off[r] + q]);
                    for (std::size_t v = 0; v < KV; ++v)
                        acc[r][v] = fma(xv, wv[v], acc[r][v]);
                }
            }
            wr += kw * KP;
        }
    }
    for (std::size_t r = 0; r < RB; ++r)
        for (std::size_t v = 0; v < KV; ++v)
            acc[r][v].store_unaligned(t.out + r * KP + v * V);
}

using LanesTileKernel = void (*)(const LanesTile&);

template <std::size_t KV, std::size_t KH, std::size_t KW, std::size_t... I>
constexpr std::array<LanesTileKernel, sizeof...(I)> lanes_tiles(std::index_sequence<I...>) {
    return {&lanes_tile<KV, I + 1, KH, KW>...};
}

/// lanes_tile<kv, rb, ...>: the unrolled 3x3 and 5x5 kernels for those filters, the general
/// one otherwise.
LanesTileKernel lanes_kernel(std::size_t kv, std::size_t rb, std::size_t kh, std::size_t kw) {
    using Seq = std::make_index_sequence<kMaxRB>;
    static constexpr auto one = lanes_tiles<1, 0, 0>(Seq{});
    static constexpr auto two = lanes_tiles<2, 0, 0>(Seq{});
    static constexpr auto two3 = lanes_tiles<2, 3, 3>(Seq{});
    static constexpr auto two5 = lanes_tiles<2, 5, 5>(Seq{});
    if (kv == 2 && kh == 3 && kw == 3) return two3[rb - 1];
    if (kv == 2 && kh == 5 && kw == 5) return two5[rb - 1];
    return (kv == 1 ? one : two)[rb - 1];
}

/// Pixels per tile of the one-register kernel with filter rows of KW taps: RB accumulators,
/// the KW vectors of a filter row and one broadcast number in the registers.
template <std::size_t KW>
constexpr std::size_t grid_tile() {
    return std::min(kMaxRB, kRegisters - KW - 1);
}

/// The kernel with K' = one register, on the grid of inp's rows (inp in pad_planes_shared's
/// layout, rows rs apart: position m = h rs + w; the rs - OW = kW - 1 - pw positions per row
/// with w >= OW are computed and dropped, none when pw = kW - 1 as for dx without padding):
/// out[r, :] = sum_{i, p} sum_q inp[i, m0 + r + p rs + q] wl[i, p, q, :] for r < RB.
/// Each number of inp is broadcast once per filter row and feeds the up to KW pixels that
/// need it, so RB + KW - 1 broadcasts and KW loads of wl feed RB KW multiply-adds.
/// KH is the filter height when fixed at compile time (3, with KW the same: the filter rows
/// unrolled), 0 when read from the tile. RB is grid_tile<KW>() but for 3x3, which has a kernel
/// for every RB up to it so that the tiles cover the grid exactly, and for every range of
/// filter rows [PL, PH) that a tile's output rows read numbers from (the others read only
/// the padding rows of inp: the tiles on the first and last two output rows of conv2's dx run
/// one or two filter rows of three). (With the range read at run time the filter-row loop is
/// no longer unrolled, and the tile ran more instructions, not fewer.)
template <std::size_t KW, std::size_t KH = 0, std::size_t RB = grid_tile<KW>(), std::size_t PL = 0,
          std::size_t PH = KH>
void lanes_grid_tile(const LanesTile& t) {
    const std::size_t kh = KH > 0 ? KH : t.kh, p_lo = KH > 0 ? PL : 0, p_hi = KH > 0 ? PH : kh;
    std::array<Batch, RB> acc;
    for (std::size_t r = 0; r < RB; ++r)
        acc[r] = Batch(real(0));
    for (std::size_t i = 0; i < t.in; ++i) {
#pragma GCC unroll 8
        for (std::size_t p = p_lo; p < p_hi; ++p) {
            const real* xr = t.inp + i * t.plane + p * t.wpi;
            const real* wr = t.wl + (i * kh + p) * KW * V;
            std::array<Batch, KW> wv;
            for (std::size_t q = 0; q < KW; ++q)
                wv[q] = Batch::load_unaligned(wr + q * V);
#pragma GCC unroll 32
            for (std::size_t u = 0; u < RB + KW - 1; ++u) {
                const Batch xv(xr[u]);
#pragma GCC unroll 8
                for (std::size_t q = 0; q < KW; ++q) {
                    if (u >= q && u - q < RB) acc[u - q] = fma(xv, wv[q], acc[u - q]);
                }
            }
        }
    }
    for (std::size_t r = 0; r < RB; ++r)
        acc[r].store_unaligned(t.out + r * V);
}

/// Row tiles, the kernel with K' = one register for K x K filters (the taps fixed at compile
/// time; 5x5): T pixels of one output row, out[r, :] = sum_{i, p, q} inp[i plane + p wpi + r +
/// q] wl[i, p, q, :]. As on the grid, each number of a row of inp is broadcast once per filter
/// row and feeds the up to K pixels that need it (T + K - 1 broadcasts and K loads of wl for
/// T K multiply-adds), but the tile ends where the output row ends: none of the K - 1
/// positions per row past OW is computed. Filter rows [p_lo, p_hi) only: the others read rows
/// of padding. T accumulators, K filter vectors and one broadcast number in the registers.
template <std::size_t K, std::size_t T>
void lanes_row_tile(const LanesTile& t) {
    std::array<Batch, T> acc;
    for (std::size_t r = 0; r < T; ++r)
        acc[r] = Batch(real(0));
    for (std::size_t i = 0; i < t.in; ++i) {
        const real* xi = t.inp + i * t.plane;
        const real* wi = t.wl + i * K * K * V;
        for (std::size_t p = t.p_lo; p < t.p_hi; ++p) {
            std::array<Batch, K> wv;
            for (std::size_t q = 0; q < K; ++q)
                wv[q] = Batch::load_unaligned(wi + (p * K + q) * V);
            const real* xr = xi + p * t.wpi;
#pragma GCC unroll 32
            for (std::size_t u = 0; u < T + K - 1; ++u) {
                const Batch xv(xr[u]);
#pragma GCC unroll 8
                for (std::size_t q = 0; q < K; ++q) {
                    if (u >= q && u - q < T) acc[u - q] = fma(xv, wv[q], acc[u - q]);
                }
            }
        }
    }
    for (std::size_t r = 0; r < T; ++r)
        acc[r].store_unaligned(t.out + r * V);
}

/// Row tiles of 5x5 filters: at most this many pixels (the accumulators, 5 filter vectors and
/// one broadcast in the registers: 10 with AVX2's 16).
constexpr std::size_t kRowTileK = 5, kMaxRowTile = std::min<std::size_t>(12, kRegisters - 6);

template <std::size_t... I>
constexpr std::array<LanesTileKernel, sizeof...(I)> row_tiles(std::index_sequence<I...>) {
    return {&lanes_row_tile<kRowTileK, I + 1>...};
}

/// lanes_row_tile<5, width>.
LanesTileKernel row_kernel(std::size_t width) {
    static constexpr auto kernels = row_tiles(std::make_index_sequence<kMaxRowTile>{});
    return kernels[width - 1];
}

/// The filter rows [p_lo, p_hi) that read a row of inp that is not padding for some output
/// row in [first, last]: filter row p reads rows h + p of the padded planes, of which
/// [ph, ph + ih) hold numbers.
std::pair<std::size_t, std::size_t> filter_rows(std::size_t first, std::size_t last, std::size_t ph,
                                                std::size_t ih, std::size_t kh) {
    return {last >= ph ? 0 : ph - last, std::min(kh, ph + ih - std::min(first, ph + ih))};
}

/// lanes_grid_tile<kW> (the filter height fixed at compile time for 3x3) and its tile size:
/// run(rb, p_lo, p_hi) is the kernel for tiles of rb <= most pixels that need the filter rows
/// [p_lo, p_hi) (3x3: any rb and range; the others: rb = most and all kH filter rows, their
/// tiles all of that size, the last running past the grid).
struct GridKernel {
    LanesTileKernel (*run)(std::size_t rb, std::size_t p_lo, std::size_t p_hi);
    std::size_t most;
    bool exact;  // tiles of any size, cut to cover the grid exactly
};

template <std::size_t KW>
LanesTileKernel grid_full(std::size_t, std::size_t, std::size_t) {
    return lanes_grid_tile<KW>;
}

/// The ranges [p_lo, p_hi) of a 3x3 filter's rows a grid tile may run: range j is
/// [kRangeLo[j], kRangeHi[j]), j = p_lo (7 - p_lo) / 2 + p_hi - p_lo - 1.
constexpr std::array<std::size_t, 6> kRangeLo{0, 0, 0, 1, 1, 2}, kRangeHi{1, 2, 3, 2, 3, 3};

/// The 3x3 grid tiles: index j most + rb - 1 for rb <= most pixels and filter-row range j.
template <std::size_t... I>
constexpr std::array<LanesTileKernel, sizeof...(I)> grid_tiles3(std::index_sequence<I...>) {
    constexpr std::size_t most = grid_tile<3>();
    return {&lanes_grid_tile<3, 3, I % most + 1, kRangeLo[I / most], kRangeHi[I / most]>...};
}

LanesTileKernel grid3(std::size_t rb, std::size_t p_lo, std::size_t p_hi) {
    constexpr std::size_t most = grid_tile<3>();
    static constexpr auto kernels = grid_tiles3(std::make_index_sequence<6 * most>{});
    return kernels[(p_lo * (7 - p_lo) / 2 + p_hi - p_lo - 1) * most + rb - 1];
}

GridKernel grid_kernel(std::size_t kh, std::size_t kw) {
    if (kh == 3 && kw == 3) return {grid3, grid_tile<3>(), true};
    switch (kw) {
        case 1:
            return {grid_full<1>, grid_tile<1>(), false};
        case 2:
            return {grid_full<2>, grid_tile<2>(), false};
        case 3:
            return {grid_full<3>, grid_tile<3>(), false};
        case 4:
            return {grid_full<4>, grid_tile<4>(), false};
        case 5:
            return {grid_full<5>, grid_tile<5>(), false};
        case 6:
            return {grid_full<6>, grid_tile<6>(), false};
        default:  // supports() caps kW at kMaxDirectKw = 7
            return {grid_full<7>, grid_tile<7>(), false};
    }
}

/// out[k, h, w] = rows[(h rs + w) kp + k] (+ bias[k] if bias) for k < K, h < OH, w < OW: the
/// tiles' pixels with channels last, rs pixels a row, back to planes [K, OH, OW]. By V x V
/// blocks of (pixels of one row) x (channels), the last block of a row overlapping the one
/// before it (it writes the same numbers again); rows narrower than V number by number.
void planes_from_lanes(const real* rows, std::size_t kp, std::size_t rs, std::size_t k_count,
                       std::size_t oh, std::size_t ow, const real* bias, real* out) {
    const std::size_t pixels = oh * ow;
    if (ow >= V) {
        std::array<Batch, V> r;
        for (std::size_t h = 0; h < oh; ++h) {
            for (std::size_t w0 = 0; w0 < ow; w0 += V) {
                const std::size_t w = std::min(w0, ow - V);
                for (std::size_t k0 = 0; k0 < k_count; k0 += V) {
                    for (std::size_t a = 0; a < V; ++a)
                        r[a] = Batch::load_unaligned(rows + (h * rs + w + a) * kp + k0);
                    transpose_block(r);  // r[a]: channel k0 + a at pixels w .. w + V - 1
                    for (std::size_t a = 0; a < V && k0 + a < k_count; ++a) {
                        const Batch v = bias ? r[a] + Batch(bias[k0 + a]) : r[a];
                        v.store_unaligned(out + (k0 + a) * pixels + h * ow + w);
                    }
                }
            }
        }
        return;
    }
    for (std::size_t k = 0; k < k_count; ++k)
        for (std::size_t h = 0; h < oh; ++h)
            for (std::size_t w = 0; w < ow; ++w)
                out[k * pixels + h * ow + w] =
                    rows[(h * rs + w) * kp + k] + (bias ? bias[k] : real(0));
}

/// out [K, OH, OW] (+ bias[k], if bias) of one image from the planes inp [I, IH, IW]. With
/// one vector of output channels the grid tiles run; otherwise the row tiles, each output
/// row cut into near-equal tiles the registers hold.
void lanes_image(const LanesConv& t, const real* inp, const real* wl, const real* bias, real* out,
                 Workspace& ws) {
    const std::size_t hpi = t.ih + 2 * t.ph, wpi = t.iw + 2 * t.pw, kp = t.kv * V;
    const std::size_t oh = t.oh(), ow = t.ow();
    LanesTile tile{};
    tile.plane = hpi * wpi, tile.wpi = wpi, tile.in = t.in, tile.kh = t.kh, tile.kw = t.kw;
    tile.wl = wl;
    if (t.kv == 1 && t.kh == kRowTileK && t.kw == kRowTileK) {
        // 5x5: each output row cut into near-equal row tiles
        const real* padded = inp;
        if (t.ph > 0 || t.pw > 0) {
            real* buffer = room(ws.gp, t.in * hpi * wpi);
            pad_planes(inp, t.in, t.ih, t.iw, t.ph, t.pw, buffer);
            padded = buffer;
        }
        real* rows = room(ws.dxt, oh * ow * V);
        const std::size_t parts = (ow + kMaxRowTile - 1) / kMaxRowTile;
        for (std::size_t h = 0; h < oh; ++h) {
            std::tie(tile.p_lo, tile.p_hi) = filter_rows(h, h, t.ph, t.ih, t.kh);
            for (std::size_t k = 0; k < parts; ++k) {
                const auto [w0, tb] = part_of(ow, parts, k);
                tile.inp = padded + h * wpi + w0;
                tile.out = rows + (h * ow + w0) * V;
                row_kernel(tb)(tile);
            }
        }
        planes_from_lanes(rows, V, ow, t.out, oh, ow, bias, out);
        return;
    }
    if (t.kv == 1) {
        // the grid of rs = iw + pw positions per output row (pad_planes_shared: the rows
        // share their padding columns; for conv2's dx, g 11 wide with 2 padding columns, that
        // is 13 positions a row, all of them outputs, where rows padded on both sides made 15)
        const GridKernel kernel = grid_kernel(t.kh, t.kw);
        const std::size_t rs = t.iw + t.pw, m = oh * rs;
        const std::size_t tiles = (m + kernel.most - 1) / kernel.most;
        // past the last plane: its last row's pw padding columns, and what the last tile
        // reads beyond the grid (up to most + kW - 1 numbers): zeros
        const std::size_t size = t.in * hpi * rs, slack = kernel.most + t.kw + t.pw;
        real* padded = room(ws.gp, size + slack);
        pad_planes_shared(inp, t.in, t.ih, t.iw, t.ph, t.pw, padded);
        std::fill(padded + size, padded + size + slack, real(0));
        tile.plane = hpi * rs, tile.wpi = rs;
        real* rows = room(ws.dxt, tiles * kernel.most * V);
        for (std::size_t k = 0; k < tiles; ++k) {
            // 3x3: near-equal tiles that cover the m positions exactly (169 = 4 x 12 + 11 x
            // 11); the others: tiles of `most`, the last one past the grid
            const auto [m0, rb] =
                kernel.exact ? part_of(m, tiles, k) : std::pair{k * kernel.most, kernel.most};
            const auto [p_lo, p_hi] = filter_rows(m0 / rs, (m0 + rb - 1) / rs, t.ph, t.ih, t.kh);
            tile.inp = padded + m0;
            tile.out = rows + m0 * V;
            kernel.run(rb, p_lo, p_hi)(tile);
        }
        planes_from_lanes(rows, V, rs, t.out, oh, ow, bias, out);
        return;
    }
    const real* padded = inp;  // without padding the planes are their own padded planes
    if (t.ph > 0 || t.pw > 0) {
        real* buffer = room(ws.gp, t.in * hpi * wpi);
        pad_planes(inp, t.in, t.ih, t.iw, t.ph, t.pw, buffer);
        padded = buffer;
    }
    // the OH OW pixels in [OH, OW] order cut into near-equal tiles the registers hold (a
    // tile may run from one row into the next: 121 pixels are 21 tiles of 5 or 6, not 11
    // rows of 6 + 5)
    const std::size_t most = std::min(kMaxRB, max_tile(t.kv)), pixels = oh * ow;
    const std::size_t tiles = (pixels + most - 1) / most;
    real* rows = room(ws.dxt, pixels * kp);
    tile.inp = padded;
    for (std::size_t k = 0; k < tiles; ++k) {
        const auto [l0, rb] = part_of(pixels, tiles, k);
        for (std::size_t r = 0; r < rb; ++r)
            tile.off[r] = (l0 + r) / ow * wpi + (l0 + r) % ow;
        tile.out = rows + l0 * kp;
        lanes_kernel(t.kv, rb, t.kh, t.kw)(tile);
    }
    planes_from_lanes(rows, kp, ow, t.out, oh, ow, bias, out);
}

/// lanes_image for each of the N images of a batch, shared between the threads (each image's
/// numbers are computed by one thread, in an order fixed by the shapes).
void lanes_batch(const LanesConv& t, std::size_t n, const real* inp, const real* wl,
                 const real* bias, real* out, std::size_t image_macs) {
    const std::size_t in_image = t.in * t.ih * t.iw, out_image = t.out * t.oh() * t.ow();
    const std::size_t grain = std::max<std::size_t>(1, kMinMacsPerThread / image_macs);
    parallel_for(n, grain, [&](std::size_t first, std::size_t last) {
        Workspace& ws = workspace();
        for (std::size_t k = first; k < last; ++k)
            lanes_image(t, inp + k * in_image, wl, bias, out + k * out_image, ws);
    });
}

}  // namespace

bool conv2d_lanes_weight_supports(const DirectConvShape& s, std::size_t stride) {
    return conv2d_direct_supports(s, stride) && vectors_for(s.o) <= kMaxChannelVectors;
}

bool conv2d_lanes_input_supports(const DirectConvShape& s, std::size_t stride) {
    return conv2d_direct_supports(s, stride) && vectors_for(s.c) <= kMaxChannelVectors;
}

bool conv2d_lanes_forward_supports(const DirectConvShape& s, std::size_t stride) {
    return conv2d_direct_supports(s, stride) && vectors_for(s.o) <= kMaxChannelVectors;
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
    const std::size_t cv = vectors_for(s.c), cp = cv * V;
    // wl [O, kH, kW, C'] = W [O, C, kH, kW] turned 180 degrees, channels last, zeros past C
    std::vector<real> wl(s.o * s.kh * s.kw * cp, real(0));
    for (std::size_t o = 0; o < s.o; ++o)
        for (std::size_t c = 0; c < s.c; ++c)
            for (std::size_t p = 0; p < s.kh; ++p)
                for (std::size_t q = 0; q < s.kw; ++q)
                    wl[((o * s.kh + p) * s.kw + q) * cp + c] =
                        w[((o * s.c + c) * s.kh + (s.kh - 1 - p)) * s.kw + (s.kw - 1 - q)];
    // dx [C, H, W] = g [O, OH, OW] padded by k - 1 - pad, convolved with wl
    const LanesConv t{.in = s.o,
                      .ih = s.oh(),
                      .iw = s.ow(),
                      .ph = s.kh - 1 - s.pad_h,
                      .pw = s.kw - 1 - s.pad_w,
                      .kh = s.kh,
                      .kw = s.kw,
                      .out = s.c,
                      .kv = cv};
    lanes_batch(t, s.n, g, wl.data(), nullptr, dx, macs_per_image(s));
}

void conv2d_lanes_forward(const DirectConvShape& s, const real* x, const real* w, const real* b,
                          real* y) {
    const std::size_t ov = vectors_for(s.o), op = ov * V;
    // wl [C, kH, kW, O'] = W [O, C, kH, kW] with the filters last, zeros past O
    std::vector<real> wl(s.c * s.kh * s.kw * op, real(0));
    for (std::size_t o = 0; o < s.o; ++o)
        for (std::size_t c = 0; c < s.c; ++c)
            for (std::size_t p = 0; p < s.kh; ++p)
                for (std::size_t q = 0; q < s.kw; ++q)
                    wl[((c * s.kh + p) * s.kw + q) * op + o] =
                        w[((o * s.c + c) * s.kh + p) * s.kw + q];
    const LanesConv t{s.c, s.h, s.w, s.pad_h, s.pad_w, s.kh, s.kw, s.o, ov};
    lanes_batch(t, s.n, x, wl.data(), b, y, macs_per_image(s));
}

}  // namespace tg::kernels::fast
