// BatchNorm + ReLU + 2x2 max-pool in one kernel pair: see
// batch_norm_relu_max_pool2d.hpp for the passes, and relu_max_pool2d.hpp for
// why ReLU and the pool may be swapped.
#include "batch_norm_relu_max_pool2d.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
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

/// z = norm(x) for the rows of one plane x [H, W] that windows cover, split by window row:
/// top[i·2OW + c] = z(2i, c), bottom[i·2OW + c] = z(2i + 1, c) for c < 2OW (a last row or
/// column no window covers, odd H or W, is left out). Window o = i·OW + j is then
/// top[2o], top[2o + 1], bottom[2o], bottom[2o + 1]: the pool runs over the whole plane in one
/// loop of OH·OW windows instead of OH loops of OW (13 and 5 in the benchmark's CNN, too few
/// for the vector loop). __restrict: the stores could otherwise alias x and the constants.
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

/// The windows of one plane, from normalise_rows' top and bottom, -> y [OH·OW] and the
/// window positions, without branches on data (they mispredict): m = max(a, b, c, d), its
/// position the first equal to m; a plane holding a NaN is redone by max_pool2d's general
/// loop (the last NaN of a window wins), as relu_max_pool2d does.
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
        window[o] = static_cast<std::uint8_t>(not_a * (1 + not_b * (1 + not_c)));
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
        window[o] = static_cast<std::uint8_t>(pos);
    }
}

/// The windows' ∂L/∂z of one plane (see the backward), in normalise_rows' split layout:
/// g_o = g[o] where y[o] is not <= 0, else 0, at window o's position window[o] in
/// top[2o], top[2o + 1], bottom[2o], bottom[2o + 1], +0 at the other three. One loop over the
/// plane's OH·OW windows (one loop per row of 13 or 5 windows stayed scalar). The selections
/// are masks on the bits: written as `?:`, GCC made them branches on the data, which
/// mispredict (the position is random). __restrict: the byte loads of `window` could
/// otherwise alias the stores.
void windows_dz(const real* __restrict g, const real* __restrict y,
                const std::uint8_t* __restrict window, std::size_t OL, real* __restrict top,
                real* __restrict bottom) {
    using Bits = std::conditional_t<sizeof(real) == 4, std::uint32_t, std::uint64_t>;
    for (std::size_t o = 0; o < OL; ++o) {
        const Bits keep = Bits(0) - Bits(!(y[o] <= real(0)));  // all ones where y is not <= 0
        const Bits g_o = std::bit_cast<Bits>(g[o]) & keep;
        const Bits pos = window[o];
        top[2 * o] = std::bit_cast<real>(g_o & (Bits(0) - Bits(pos == 0)));
        top[2 * o + 1] = std::bit_cast<real>(g_o & (Bits(0) - Bits(pos == 1)));
        bottom[2 * o] = std::bit_cast<real>(g_o & (Bits(0) - Bits(pos == 2)));
        bottom[2 * o + 1] = std::bit_cast<real>(g_o & (Bits(0) - Bits(pos == 3)));
    }
}

/// Rows `top`, `bottom` of the split layout back into a plane [H, W]: rows 2i and 2i + 1,
/// columns c < 2OW (a last row or column no window covers is not written).
void unsplit_rows(const real* __restrict top, const real* __restrict bottom, std::size_t W,
                  std::size_t OH, std::size_t OW, real* __restrict plane) {
    const std::size_t W2 = 2 * OW;
    for (std::size_t i = 0; i < OH; ++i) {
        real* __restrict r0 = plane + 2 * i * W;
        real* __restrict r1 = r0 + W;
        const real* __restrict t = top + i * W2;
        const real* __restrict b = bottom + i * W2;
        for (std::size_t c = 0; c < W2; ++c) {
            r0[c] = t[c];
            r1[c] = b[c];
        }
    }
}

}  // namespace

void batch_norm_relu_max_pool2x2_forward(real* y, std::uint8_t* window, double* mean, double* var,
                                         double* invstd, const real* x, const real* gamma,
                                         const real* beta, std::size_t N, std::size_t C,
                                         std::size_t H, std::size_t W, double eps) {
    const std::size_t L = H * W, OH = H / 2, OW = W / 2, OL = OH * OW;
    parallel_for(C, grain_for(N * L), [=](std::size_t c_begin, std::size_t c_end) {
        // One plane of γ x̂ + β, this thread's: the top rows of the windows, then the bottom ones.
        std::vector<real> z_plane(4 * OL);
        real* top = z_plane.data();
        real* bottom = top + 2 * OL;
        for (std::size_t c = c_begin; c < c_end; ++c) {
            // Pass 1: μ_B, σ²_B of channel c (N runs of L values, C·L apart).
            const Moments m = moments(x + c * L, N, L, C * L);
            mean[c] = m.mean;
            var[c] = m.var;
            const real inv = static_cast<real>(1.0 / std::sqrt(var[c] + eps));
            invstd[c] = inv;
            const Normalise z{centre(mean[c]), inv, gamma ? gamma[c] : real(1),
                              beta ? beta[c] : real(0)};
            // Pass 2: normalise, pool, relu, plane by plane.
            for (std::size_t n = 0; n < N; ++n) {
                const std::size_t p = n * C + c;
                normalise_rows(x + p * L, W, OH, OW, z, top, bottom);
                pool_windows(top, bottom, OL, y + p * OL, window + p * OL);
            }
        }
    });
}

void batch_norm_relu_max_pool2x2_backward(real* dx, real* dgamma, real* dbeta, const real* g,
                                          const real* y, const std::uint8_t* window, const real* x,
                                          const double* mean, const double* invstd,
                                          const real* gamma, std::size_t N, std::size_t C,
                                          std::size_t H, std::size_t W) {
    const std::size_t L = H * W, OH = H / 2, OW = W / 2, OL = OH * OW, B = N * L;
    parallel_for(C, grain_for(B), [=](std::size_t c_begin, std::size_t c_end) {
        // One channel of ∂L/∂z, this thread's: made once, plane by plane, in pass 1 and read
        // again in pass 2 (N·L values: 1.4 MB for conv1's block at batch 512). Making plane p
        // writes every position a window covers, so the buffer is cleared only here; a last row
        // or column no window covers (odd H or W) stays the zero it starts as.
        std::vector<real> dz(N * L, real(0));
        // dz of plane p: relu's and the pool's backward, g[o] at output o's maximum where y[o]
        // is not <= 0, 0 everywhere else (as relu_max_pool2x2_backward writes it). Written
        // window by window, all four positions, without branches or scattered stores.
        std::vector<real> split(4 * OL);  // the windows' dz, split as normalise_rows splits z
        const auto plane_dz = [&](std::size_t p, real* dzp) {
            real* top = split.data();
            real* bottom = top + 2 * OL;
            windows_dz(g + p * OL, y + p * OL, window + p * OL, OL, top, bottom);
            unsplit_rows(top, bottom, W, OH, OW, dzp);
        };
        for (std::size_t c = c_begin; c < c_end; ++c) {
            const Normalise z{centre(mean[c]), static_cast<real>(invstd[c]), real(1), real(0)};
            const real gc = gamma ? gamma[c] : real(1);

            // Pass 1 over the channel: dz, then dβ = Σdz, dγ = Σdz·x̂ (the sums of the fast
            // batch_norm_backward, in the same order).
            double sum_dy = 0.0, sum_dy_xhat = 0.0;
            for (std::size_t n = 0; n < N; ++n) {
                const std::size_t p = n * C + c;
                const real* xp = x + p * L;
                real* dzp = dz.data() + n * L;
                plane_dz(p, dzp);
                add_sums(
                    L,
                    [xp, dzp, z](std::size_t l) {
                        return Pair{dzp[l], dzp[l] * z.xhat(xp[l])};
                    },
                    sum_dy, sum_dy_xhat);
            }
            if (dgamma) dgamma[c] = static_cast<real>(sum_dy_xhat);
            if (dbeta) dbeta[c] = static_cast<real>(sum_dy);
            if (dx == nullptr) continue;

            // With dx̂ = dz·γ: Σdx̂ = γ·Σdz, Σ(dx̂·x̂) = γ·Σ(dz·x̂)
            const real sum_dxhat = static_cast<real>(gc * sum_dy);
            const real sum_dxhat_xhat = static_cast<real>(gc * sum_dy_xhat);
            const real Bf = static_cast<real>(B);  // B as a number
            const real k = z.inv / Bf;             // 1/B · invstd
            // Pass 2, plane by plane, from pass 1's dz:
            // dx = 1/B · invstd · (B·dx̂ − Σdx̂ − x̂·Σ(dx̂·x̂))
            for (std::size_t n = 0; n < N; ++n) {
                const std::size_t p = n * C + c;
                const real* xp = x + p * L;
                real* dxp = dx + p * L;
                const real* dzp = dz.data() + n * L;
                for (std::size_t l = 0; l < L; ++l) {
                    const real xhat = z.xhat(xp[l]);
                    const real dxhat = dzp[l] * gc;
                    real d = Bf * dxhat;         // term 1: B·dx̂
                    d -= sum_dxhat;              // term 2: Σdx̂
                    d -= xhat * sum_dxhat_xhat;  // term 3: x̂·Σ(dx̂·x̂)
                    dxp[l] = k * d;
                }
            }
        }
    });
}

}  // namespace tg::kernels::fast
