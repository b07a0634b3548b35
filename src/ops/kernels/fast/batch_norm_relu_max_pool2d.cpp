// BatchNorm + ReLU + 2x2 max-pool in one kernel pair: see
// batch_norm_relu_max_pool2d.hpp for the passes, and relu_max_pool2d.hpp for
// why ReLU and the pool may be swapped.
#include "batch_norm_relu_max_pool2d.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include "sums.hpp"
#include "tapegrad/parallel.hpp"

namespace tg::kernels::fast {

namespace {

/// relu(m) with PyTorch's NaN: 0 where m <= 0 (and for -0), m otherwise (NaN
/// stays NaN).
inline real relu(real m) {
    return m <= real(0) ? real(0) : m;
}

/// z = γ x̂ + β with x̂ = (x − μ)·invstd, written as batch_norm_forward writes it
/// (fast batch_norm.cpp), so that z has the same bits as the unfused
/// BatchNorm's output.
struct Normalise {
    Centre mu;
    real inv, gamma, beta;
    real xhat(real v) const { return ((v - mu.hi) - mu.lo) * inv; }
    real operator()(real v) const { return gamma * xhat(v) + beta; }
};

/// z = norm(x) for the rows of one plane x [H, W] that windows cover, split by
/// window row: top[i·2OW + c] = z(2i, c), bottom[i·2OW + c] = z(2i + 1, c) for
/// c < 2OW (a last row or column no window covers, odd H or W, is left out).
/// Window o = i·OW + j is then top[2o], top[2o + 1], bottom[2o], bottom[2o +
/// 1]: the pool runs over the whole plane in one loop of OH·OW windows instead
/// of OH loops of OW (13 and 5 in the benchmark's CNN, too few for the vector
/// loop). __restrict: the stores could otherwise alias x and the constants.
void normalise_rows(const real* __restrict x, std::size_t W, std::size_t OH, std::size_t OW,
                    const Normalise norm, real* __restrict top, real* __restrict bottom) {
    const std::size_t W2 = 2 * OW;
    for (std::size_t i = 0; i < OH; ++i) {
        const real* __restrict x0 = x + 2 * i * W;  // rows 2i and 2i + 1
        const real* __restrict x1 = x0 + W;
        real* __restrict t = top + i * W2;
        real* __restrict b = bottom + i * W2;
        for (std::size_t c = 0; c < W2; ++c) {
            t[c] = norm(x0[c]);
            b[c] = norm(x1[c]);
        }
    }
}

/// The windows of one plane, from normalise_rows' top and bottom, -> y [OH·OW]
/// and the window bytes, without branches on data (they mispredict): m = max(a,
/// b, c, d), its position the first equal to m, plus kNoGradient where m <= 0;
/// a plane holding a NaN is redone by max_pool2d's general loop (the last NaN
/// of a window wins), as relu_max_pool2d does.
void pool_windows(const real* __restrict top, const real* __restrict bottom, std::size_t OL,
                  real* __restrict y, std::uint8_t* __restrict window) {
    unsigned nan_seen = 0;
    for (std::size_t o = 0; o < OL; ++o) {
        const real a = top[2 * o], b = top[2 * o + 1];
        const real c = bottom[2 * o], d = bottom[2 * o + 1];
        const real m = std::max(std::max(a, b), std::max(c, d));
        nan_seen |= (a != a) | (b != b) | (c != c) | (d != d);
        const unsigned not_a = a != m, not_b = b != m, not_c = c != m;
        y[o] = relu(m);
        window[o] = static_cast<std::uint8_t>(not_a * (1 + not_b * (1 + not_c)) +
                                              kNoGradient * unsigned(m <= real(0)));
    }
    if (!nan_seen) return;
    for (std::size_t o = 0; o < OL; ++o) {
        const real v[4] = {top[2 * o], top[2 * o + 1], bottom[2 * o], bottom[2 * o + 1]};
        real best = -std::numeric_limits<real>::infinity();
        unsigned pos = 0;
        for (unsigned k = 0; k < 4; ++k) {
            if (v[k] > best || std::isnan(v[k])) {  // a NaN always wins
                best = v[k];
                pos = k;
            }
        }
        y[o] = relu(best);
        window[o] = static_cast<std::uint8_t>(pos + kNoGradient * unsigned(best <= real(0)));
    }
}

/// The windows' ∂L/∂z of one plane (see the backward), in normalise_rows' split
/// layout: g[o] at window o's position window[o] in top[2o], top[2o + 1],
/// bottom[2o], bottom[2o + 1], +0 at the other three, and +0 at all four where
/// the byte has kNoGradient (the byte is then none of 0..3). One loop over the
/// plane's OH·OW windows (one loop per row of 13 or 5 windows stayed scalar).
/// The selections are masks on the bits: written as `?:`, GCC made them
/// branches on the data, which mispredict (the position is random). __restrict:
/// the byte loads of `window` could otherwise alias the stores.
void windows_dz(const real* __restrict g, const std::uint8_t* __restrict window, std::size_t OL,
                real* __restrict top, real* __restrict bottom) {
    using Bits = std::conditional_t<sizeof(real) == 4, std::uint32_t, std::uint64_t>;
    for (std::size_t o = 0; o < OL; ++o) {
        const Bits g_o = std::bit_cast<Bits>(g[o]);
        const Bits pos = window[o];
        top[2 * o] = std::bit_cast<real>(g_o & (Bits(0) - Bits(pos == 0)));
        top[2 * o + 1] = std::bit_cast<real>(g_o & (Bits(0) - Bits(pos == 1)));
        bottom[2 * o] = std::bit_cast<real>(g_o & (Bits(0) - Bits(pos == 2)));
        bottom[2 * o + 1] = std::bit_cast<real>(g_o & (Bits(0) - Bits(pos == 3)));
    }
}

/// dst[0, n) = src[0, n), not overlapping: kLanes values at a time, the last
/// kLanes again as one overlapping block; value by value below kLanes. Written
/// as one loop, GCC calls memcpy per row (26 or 10 values in the benchmark's
/// CNN), and the calls cost more than the copies (docs/performance.md).
inline void copy_row(real* __restrict dst, const real* __restrict src, std::size_t n) {
    if (n < kLanes) {
        for (std::size_t i = 0; i < n; ++i)
            dst[i] = src[i];
        return;
    }
    RealLanes v;
    for (std::size_t i = 0; i + kLanes <= n; i += kLanes) {
        __builtin_memcpy(&v, src + i, sizeof v);
        __builtin_memcpy(dst + i, &v, sizeof v);
        __asm__ volatile("" ::: "memory");
    }
    __builtin_memcpy(&v, src + n - kLanes, sizeof v);
    __builtin_memcpy(dst + n - kLanes, &v, sizeof v);
}

/// Rows `top`, `bottom` of the split layout back into a plane [H, W]: rows 2i
/// and 2i + 1, columns c < 2OW (a last row or column no window covers is not
/// written).
void unsplit_rows(const real* __restrict top, const real* __restrict bottom, std::size_t W,
                  std::size_t OH, std::size_t OW, real* __restrict plane) {
    const std::size_t W2 = 2 * OW;
    for (std::size_t i = 0; i < OH; ++i) {
        real* __restrict r0 = plane + 2 * i * W;
        real* __restrict r1 = r0 + W;
        const real* __restrict t = top + i * W2;
        const real* __restrict b = bottom + i * W2;
        copy_row(r0, t, W2);
        copy_row(r1, b, W2);
    }
}

// The row-block path, for planes with at least four windows per row (OW >= 4: conv1's block,
// OW = 13, and conv2's, OW = 5, in the benchmark's CNN). Blocks of four windows of one window
// row, straight from x (forward) or into the plane's dz (backward), as GCC/Clang vectors: a
// row's last block starts at OW − 4 and overlaps the one before (its windows are computed
// twice, with the same result), so there is no scalar tail. The split layout above stayed
// for OW < 4 and for a forward plane holding a NaN. Per window the same expressions as
// normalise_rows and pool_windows (the same bits); written that way, GCC vectorised
// pool_windows' loop with stride-2 loads and spent 11 instructions per window on it, and
// normalise_rows' 26- or 10-value rows went to scalar tails (docs/performance.md).
static_assert(kLanes == 8, "a block is 2 rows of kLanes values: 4 windows");
using Lanes4 = RealHalf;  // one value per window of a block (sums.hpp: kLanes / 2 reals)
using Mask4 = decltype(Lanes4{} < Lanes4{});
using Mask8 = decltype(RealLanes{} < RealLanes{});
using MaskLane = std::remove_cvref_t<decltype(Mask8{}[0])>;  // int32 (float) or int64 (double)
using Bytes4 = std::uint8_t __attribute__((vector_size(4)));

/// One block: windows j .. j + 3 of the window row whose top row is x0 and bottom row x1
/// (both from column 2j): y and the window bytes as pool_windows writes them; nan |= the
/// lanes that hold a NaN. (nan by reference: a returned vector wider than the target's
/// registers draws GCC's -Wpsabi warning.)
inline void pool_block(const real* __restrict x0, const real* __restrict x1, const Normalise& norm,
                       real* __restrict y, std::uint8_t* __restrict window, Mask8& nan) {
    RealLanes t, b;
    __builtin_memcpy(&t, x0, sizeof t);
    __builtin_memcpy(&b, x1, sizeof b);
    t = norm.gamma * (((t - norm.mu.hi) - norm.mu.lo) * norm.inv) + norm.beta;
    b = norm.gamma * (((b - norm.mu.hi) - norm.mu.lo) * norm.inv) + norm.beta;
    const Lanes4 a0 = __builtin_shufflevector(t, t, 0, 2, 4, 6);  // window positions 0 .. 3
    const Lanes4 a1 = __builtin_shufflevector(t, t, 1, 3, 5, 7);
    const Lanes4 a2 = __builtin_shufflevector(b, b, 0, 2, 4, 6);
    const Lanes4 a3 = __builtin_shufflevector(b, b, 1, 3, 5, 7);
    // m = std::max(std::max(a0, a1), std::max(a2, a3)), std::max(p, q) = p < q ? q : p
    // (as `?:` on the vectors, which GCC makes a max or a blend; as masks and ors it did not)
    const Lanes4 m01 = a0 < a1 ? a1 : a0, m23 = a2 < a3 ? a3 : a2;
    const Lanes4 m = m01 < m23 ? m23 : m01;
    const Mask4 not0 = a0 != m, not1 = a1 != m, not2 = a2 != m, no_gradient = m <= Lanes4{};
    // the first position equal to m: 0 - (-1 where not position 0) - (-1 where not 0 or 1) -
    // (-1 where not 0, 1 or 2), plus kNoGradient (with the NaN test below written as one
    // compare: conv1's block at batch 512, forward 15.0 -> 14.5 M instructions)
    static_assert(kNoGradient == 4);
    const Mask4 not01 = not0 & not1, not012 = not01 & not2;
    const Mask4 pos = Mask4{} - not0 - not01 - not012 - (no_gradient << 2);
    const Lanes4 relu_m = no_gradient ? Lanes4{} : m;
    // the low byte of each lane (__builtin_convertvector took GCC 14 instructions, this one
    // shuffle). __builtin_bit_cast, here and below: std::bit_cast returns the vector from a
    // function, which draws GCC's -Wpsabi where the target's registers are narrower.
    using MaskBytes = std::uint8_t __attribute__((vector_size(sizeof(Mask4))));
    constexpr int S = sizeof(Mask4) / 4,
                  low = std::endian::native == std::endian::little ? 0 : S - 1;
    const MaskBytes pos_bytes = __builtin_bit_cast(MaskBytes, pos);
    const Bytes4 bytes =
        __builtin_shufflevector(pos_bytes, pos_bytes, low, S + low, 2 * S + low, 3 * S + low);
    __builtin_memcpy(y, &relu_m, sizeof relu_m);
    __builtin_memcpy(window, &bytes, sizeof bytes);
    // a NaN in t or b makes t + b NaN (so may ±inf, a false alarm that redoes the plane)
    const RealLanes tb = t + b;
    nan |= tb != tb;
}

/// The windows of one plane x [H, W] (OW >= 4) block by block: y [OH·OW] and the window
/// bytes. Returns whether the plane holds a NaN in a window (then the caller redoes it).
inline bool pool_plane(const real* __restrict x, std::size_t W, std::size_t OH, std::size_t OW,
                       const Normalise& norm, real* __restrict y, std::uint8_t* __restrict window) {
    Mask8 nan = {};
    for (std::size_t i = 0; i < OH; ++i) {
        const real* x0 = x + 2 * i * W;
        const real* x1 = x0 + W;
        real* yi = y + i * OW;
        std::uint8_t* wi = window + i * OW;
        std::size_t j = 0;
        for (; j + 4 <= OW; j += 4)
            pool_block(x0 + 2 * j, x1 + 2 * j, norm, yi + j, wi + j, nan);
        if (j < OW) {
            j = OW - 4;
            pool_block(x0 + 2 * j, x1 + 2 * j, norm, yi + j, wi + j, nan);
        }
    }
    bool any = false;
    for (std::size_t k = 0; k < kLanes; ++k)
        any |= nan[k] != 0;
    return any;
}

/// ∂L/∂z of one plane (OW >= 4), block by block: g[o] at window o's position window[o], +0 at
/// its other three and at all four where the byte has kNoGradient, as windows_dz (the bits of
/// g, or +0). For each block, emit(at, d0, d1) with d0 = dz at plane offsets at .. at + 7 (a
/// top row of windows) and d1 at at + W .. at + W + 7 (their bottom row); a row's last block
/// overlaps the one before. A last row or column no window covers is left to the caller.
template <class Emit>
inline void dz_blocks(const real* __restrict g, const std::uint8_t* __restrict window,
                      std::size_t W, std::size_t OH, std::size_t OW, const Emit& emit) {
    const Mask8 top = {0, 1, 0, 1, 0, 1, 0, 1}, bottom = top + 2;  // positions, column by column
    // The four bytes as one 32-bit word in every lane, shifted so that column k's lane holds
    // window k/2's byte (__builtin_convertvector of the bytes took GCC 11 instructions).
    Mask8 shift;
    for (int k = 0; k < 8; ++k)
        shift[k] = 8 * (std::endian::native == std::endian::little ? k / 2 : 3 - k / 2);
    const auto block = [&](std::size_t i, std::size_t j) {
        Lanes4 g4;
        std::uint32_t b4;
        __builtin_memcpy(&g4, g + i * OW + j, sizeof g4);
        __builtin_memcpy(&b4, window + i * OW + j, sizeof b4);
        const Mask8 gv =
            __builtin_bit_cast(Mask8, __builtin_shufflevector(g4, g4, 0, 0, 1, 1, 2, 2, 3, 3));
        const Mask8 pos = ((Mask8{} + static_cast<MaskLane>(b4)) >> shift) & 0xff;
        const RealLanes d0 = __builtin_bit_cast(RealLanes, gv & (pos == top));
        const RealLanes d1 = __builtin_bit_cast(RealLanes, gv & (pos == bottom));
        emit(2 * i * W + 2 * j, d0, d1);
    };
    for (std::size_t i = 0; i < OH; ++i) {
        std::size_t j = 0;
        for (; j + 4 <= OW; j += 4)
            block(i, j);
        if (j < OW) block(i, OW - 4);
    }
}

/// Every plane's lane sums (sums.hpp's lane_sums) of x [N, C, ...], kept while
/// the planes are summed in any order on any thread, then added up per channel
/// in the order of add_sums called plane after plane (n = 0, 1, ...): the
/// channel's sums have the bits of the unfused kernels', which go over one
/// channel's planes on one thread. Lane k of plane (n, c) is at
/// [(n·kLanes + k)·C + c], so that add_up adds all channels at once (a vector
/// of channels).
class PlaneLanes {
  public:
    PlaneLanes(std::size_t N, std::size_t C)
        : N_(N), C_(C), u_(new double[N * kLanes * C]), v_(new double[N * kLanes * C]) {}

    /// The lanes of plane p = n·C + c.
    void put(std::size_t p, const LaneSums& s) {
        const std::size_t at = (p / C_) * kLanes * C_ + p % C_;
        for (std::size_t k = 0; k < kLanes; ++k) {
            u_[at + k * C_] = s.u[k];
            v_[at + k * C_] = s.v[k];
        }
    }

    /// su[c], sv[c] = channel c's two sums: 0 + plane (0, c)'s lanes in lane
    /// order + plane (1, c)'s ..., as add_sums adds them.
    void add_up(double* __restrict su, double* __restrict sv) const {
        std::fill(su, su + C_, 0.0);
        std::fill(sv, sv + C_, 0.0);
        const double* __restrict u = u_.get();
        const double* __restrict v = v_.get();
        for (std::size_t r = 0; r < N_ * kLanes; ++r) {
            for (std::size_t c = 0; c < C_; ++c) {
                su[c] += u[r * C_ + c];
                sv[c] += v[r * C_ + c];
            }
        }
    }

  private:
    std::size_t N_, C_;
    std::unique_ptr<double[]> u_,
        v_;  // not cleared: put() writes every plane's lanes
};

}  // namespace

void batch_norm_relu_max_pool2x2_forward(real* y, std::uint8_t* window, double* mean, double* var,
                                         double* invstd, const real* x, const real* gamma,
                                         const real* beta, std::size_t N, std::size_t C,
                                         std::size_t H, std::size_t W, double eps) {
    const std::size_t L = H * W, OH = H / 2, OW = W / 2, OL = OH * OW, P = N * C;
    // Pass 1, plane by plane in memory order: the lanes of Σd, Σd² with d = x −
    // K, K = the channel's first value (moments() over the channel's N runs, cut
    // at the planes).
    PlaneLanes lanes(N, C);
    parallel_for(P, grain_for(L), [=, &lanes](std::size_t p_begin, std::size_t p_end) {
        for (std::size_t p = p_begin; p < p_end; ++p) {
            const real K = x[(p % C) * L];
            const real* xp = x + p * L;
            lanes.put(p, lane_sums(L, [xp, K](std::size_t l) {
                          const real d = xp[l] - K;
                          return Pair{d, d * d};
                      }));
        }
    });
    // μ_B, σ²_B per channel
    std::vector<double> sum_d(C), sum_d2(C);
    lanes.add_up(sum_d.data(), sum_d2.data());
    std::vector<Normalise> norm(C);
    for (std::size_t c = 0; c < C; ++c) {
        if (N * L == 0) {
            mean[c] = var[c] = std::numeric_limits<double>::quiet_NaN();
        } else {
            const Moments m =
                moments_of_sums(sum_d[c], sum_d2[c], x[c * L], static_cast<double>(N * L));
            mean[c] = m.mean;
            var[c] = m.var;
        }
        const real inv = static_cast<real>(1.0 / std::sqrt(var[c] + eps));
        invstd[c] = inv;
        norm[c] = {centre(mean[c]), inv, gamma ? gamma[c] : real(1), beta ? beta[c] : real(0)};
    }
    // Pass 2, plane by plane in memory order: normalise, pool, relu.
    parallel_for(P, grain_for(L + OL), [=, &norm](std::size_t p_begin, std::size_t p_end) {
        // One plane of γ x̂ + β, this thread's: the top rows of the windows,
        // then the bottom ones.
        std::vector<real> z_plane(4 * OL);
        real* top = z_plane.data();
        real* bottom = top + 2 * OL;
        for (std::size_t p = p_begin; p < p_end; ++p) {
            const real* xp = x + p * L;
            if (OW >= 4 && !pool_plane(xp, W, OH, OW, norm[p % C], y + p * OL, window + p * OL))
                continue;
            normalise_rows(xp, W, OH, OW, norm[p % C], top, bottom);  // OW < 4, or a NaN
            pool_windows(top, bottom, OL, y + p * OL, window + p * OL);
        }
    });
}

void batch_norm_relu_max_pool2x2_backward(real* dx, real* dgamma, real* dbeta, const real* g,
                                          const std::uint8_t* window, const real* x,
                                          const double* mean, const double* invstd,
                                          const real* gamma, std::size_t N, std::size_t C,
                                          std::size_t H, std::size_t W) {
    const std::size_t L = H * W, OH = H / 2, OW = W / 2, OL = OH * OW, B = N * L, P = N * C;
    std::vector<Normalise> norm(C);  // x̂ only: γ = 1, β = 0
    for (std::size_t c = 0; c < C; ++c)
        norm[c] = {centre(mean[c]), static_cast<real>(invstd[c]), real(1), real(0)};
    // dz of plane p: relu's and the pool's backward, g[o] at output o's maximum
    // where y[o] is not <= 0 (no kNoGradient in its byte), 0 everywhere else (as
    // relu_max_pool2x2_backward writes it), into dzp [H, W]. Written window by
    // window, all four positions, without branches or scattered stores, into
    // `split`, then copied row by row into the plane. A last row or column no
    // window covers (odd H or W) is not written: it stays the zero the buffer
    // starts as.
    const auto plane_dz = [=](std::size_t p, real* split, real* dzp) {
        if (OW >= 4) {
            dz_blocks(g + p * OL, window + p * OL, W, OH, OW,
                      [dzp, W](std::size_t at, const RealLanes& d0, const RealLanes& d1) {
                          __builtin_memcpy(dzp + at, &d0, sizeof d0);
                          __builtin_memcpy(dzp + at + W, &d1, sizeof d1);
                      });
            return;
        }
        real* top = split;
        real* bottom = top + 2 * OL;
        windows_dz(g + p * OL, window + p * OL, OL, top, bottom);
        unsplit_rows(top, bottom, W, OH, OW, dzp);
    };

    // Pass 1, plane by plane in memory order: dz, and the lanes of Σdz and Σdz·x̂
    // (the sums of the fast batch_norm_backward).
    PlaneLanes lanes(N, C);
    parallel_for(
        P, grain_for(L + 2 * OL), [=, &lanes, &norm](std::size_t p_begin, std::size_t p_end) {
            std::vector<real> buffer(4 * OL + L, real(0));  // the split windows, then the plane
            for (std::size_t p = p_begin; p < p_end; ++p) {
                const real* xp = x + p * L;
                const real* dzp = buffer.data() + 4 * OL;
                plane_dz(p, buffer.data(), buffer.data() + 4 * OL);
                const Normalise z = norm[p % C];
                lanes.put(p, lane_sums(L, [xp, dzp, z](std::size_t l) {
                              return Pair{dzp[l], dzp[l] * z.xhat(xp[l])};
                          }));
            }
        });
    // dβ = Σdz, dγ = Σdz·x̂ per channel
    std::vector<double> sum_dy(C), sum_dy_xhat(C);
    lanes.add_up(sum_dy.data(), sum_dy_xhat.data());
    for (std::size_t c = 0; c < C; ++c) {
        if (dgamma) dgamma[c] = static_cast<real>(sum_dy_xhat[c]);
        if (dbeta) dbeta[c] = static_cast<real>(sum_dy[c]);
    }
    if (dx == nullptr) return;

    // Pass 2, plane by plane in memory order, dz made again (reading g and the
    // window bytes, a quarter of the plane each, instead of keeping dz:
    // docs/performance.md): dx = 1/B · invstd · (B·dx̂ − Σdx̂ − x̂·Σ(dx̂·x̂)) with dx̂
    // = dz·γ, so Σdx̂ = γ·Σdz and Σ(dx̂·x̂) = γ·Σ(dz·x̂).
    struct Terms {
        real gc, sum_dxhat, sum_dxhat_xhat, k;
    };
    const real Bf = static_cast<real>(B);  // B as a number
    std::vector<Terms> terms(C);
    for (std::size_t c = 0; c < C; ++c) {
        const real gc = gamma ? gamma[c] : real(1);
        terms[c] = {gc, static_cast<real>(gc * sum_dy[c]), static_cast<real>(gc * sum_dy_xhat[c]),
                    norm[c].inv / Bf};  // k = 1/B · invstd
    }
    parallel_for(
        P, grain_for(2 * L + 2 * OL), [=, &norm, &terms](std::size_t p_begin, std::size_t p_end) {
            std::vector<real> buffer(4 * OL + L, real(0));  // the split windows, then the plane
            for (std::size_t p = p_begin; p < p_end; ++p) {
                const real* xp = x + p * L;
                real* dxp = dx + p * L;
                const Normalise z = norm[p % C];
                const Terms t = terms[p % C];
                // out = dx from x and dz: values or vectors (by reference: a vector passed or
                // returned by value draws GCC's -Wpsabi where the target's registers are narrower)
                const auto dx_of = [z, t, Bf](const auto& xv, const auto& dz, auto& out) {
                    const auto xhat = ((xv - z.mu.hi) - z.mu.lo) * z.inv;
                    const auto dxhat = dz * t.gc;
                    auto d = Bf * dxhat;           // term 1: B·dx̂
                    d -= t.sum_dxhat;              // term 2: Σdx̂
                    d -= xhat * t.sum_dxhat_xhat;  // term 3: x̂·Σ(dx̂·x̂)
                    out = t.k * d;
                };
                if (OW >= 8) {
                    // dz block by block, in registers, and dx from it there (the blocks'
                    // rows, then the last column and row no window covers: dz = +0). Not
                    // for OW < 8: the overlapping last block computes dx again for up to 3
                    // of a row's windows; callgrind, one call at batch 512: OW = 13,
                    // 18.4 -> 17.8 M instructions, but OW = 5 (3 of 5 again) 9.9 -> 11.1 M.
                    const auto dx_row = [xp, dxp, &dx_of](std::size_t at, const RealLanes& dz) {
                        RealLanes xv;
                        __builtin_memcpy(&xv, xp + at, sizeof xv);
                        RealLanes d;
                        dx_of(xv, dz, d);
                        __builtin_memcpy(dxp + at, &d, sizeof d);
                    };
                    dz_blocks(
                        g + p * OL, window + p * OL, W, OH, OW,
                        [W, &dx_row](std::size_t at, const RealLanes& d0, const RealLanes& d1) {
                            dx_row(at, d0);
                            dx_row(at + W, d1);
                        });
                    if (W % 2 == 1)
                        for (std::size_t r = 0; r < 2 * OH; ++r)
                            dx_of(xp[r * W + W - 1], real(0), dxp[r * W + W - 1]);
                    for (std::size_t l = 2 * OH * W; l < L; ++l)  // odd H
                        dx_of(xp[l], real(0), dxp[l]);
                    continue;
                }
                const real* dzp = buffer.data() + 4 * OL;
                plane_dz(p, buffer.data(), buffer.data() + 4 * OL);
                for (std::size_t l = 0; l < L; ++l)
                    dx_of(xp[l], dzp[l], dxp[l]);
            }
        });
}

}  // namespace tg::kernels::fast
