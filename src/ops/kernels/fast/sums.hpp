// Fast sums for the normalisation kernels: float lanes flushed to double, and a centre μ kept
// as hi + lo. Only the fast kernels use these; the reference kernels sum in double directly.
#pragma once

#include <algorithm>
#include <cstddef>
#include <limits>

#include "tapegrad/config.hpp"

namespace tg::kernels::fast {

/// μ held as the `real` nearest it plus the rest, μ = hi + lo, so that x − μ computed as
/// (x − hi) − lo keeps full precision in float even when |μ| ≫ σ (x − hi is then exact);
/// a plain float μ would be off by up to 1/2 ulp of μ, magnified by 1/σ.
struct Centre {
    real hi, lo;
};
inline Centre centre(double mu) {
    const real hi = static_cast<real>(mu);
    return {hi, static_cast<real>(mu - hi)};
}

/// Two sums over i < len: su += Σ u_i, sv += Σ v_i, where {u_i, v_i} = term(i).
/// Speed without losing accuracy: the terms are added in kLanes interleaved partial sums in
/// `real` (lane k takes the terms i ≡ k mod kLanes), and every kChunk terms these are moved
/// into partial sums in double; the last len mod kLanes terms go into lane 0's double.
/// The lanes are a GCC/Clang vector (`vector_size`): written as an array of scalars the
/// compiler left the adds scalar, 4x slower (batch_norm's forward at batch 512 ran at a fifth
/// of the cache's rate); as a vector each lane still gets exactly the same adds in the same
/// order, so the sums are bit for bit what the scalar lanes gave.
struct Pair {
    real u, v;
};
inline constexpr std::size_t kLanes = 8;
inline constexpr std::size_t kChunk = 64;
using RealLanes = real __attribute__((vector_size(kLanes * sizeof(real))));
using DoubleLanes = double __attribute__((vector_size(kLanes * sizeof(double))));

/// The kLanes double partial sums of add_sums before they are added up: lane k holds the terms
/// i ≡ k mod kLanes of the whole lanes, lane 0 also the last len mod kLanes terms. A kernel that
/// computes many runs' lanes out of order (on other threads) keeps them and adds them up later
/// in the order add_sums would have, with the same bits (batch_norm_relu_max_pool2d.cpp).
struct LaneSums {
    DoubleLanes u, v;
};

/// Half of a RealLanes or a DoubleLanes: the double lanes are added up as two halves of
/// kLanes / 2. Kept as one vector of kLanes doubles (64 bytes, two AVX2 registers), GCC 12
/// moved it through the stack lane by lane at every flush, about 45 instructions per kChunk
/// terms where the flush needs 6 (batch_norm_relu_max_pool2d's forward at batch 512, 20% of
/// its instructions); the adds are the same ones, so the sums keep their bits.
using RealHalf = real __attribute__((vector_size(kLanes / 2 * sizeof(real))));
using DoubleHalf = double __attribute__((vector_size(kLanes / 2 * sizeof(double))));

/// lanes += the kLanes real lanes of `chunk` in double, lane by lane.
static_assert(kLanes == 8, "the shuffles below name the lanes 0..7");
inline void add_chunk(DoubleHalf& lo, DoubleHalf& hi, const RealLanes& chunk) {
    const RealHalf c_lo = __builtin_shufflevector(chunk, chunk, 0, 1, 2, 3);
    const RealHalf c_hi = __builtin_shufflevector(chunk, chunk, 4, 5, 6, 7);
    lo += __builtin_convertvector(c_lo, DoubleHalf);
    hi += __builtin_convertvector(c_hi, DoubleHalf);
}

template <class Term>
inline LaneSums lane_sums(std::size_t len, const Term& term) {
    DoubleHalf u_lo = {}, u_hi = {}, v_lo = {}, v_hi = {};
    const std::size_t whole = len - len % kLanes;
    std::size_t i = 0;
    while (i < whole) {
        const std::size_t end = std::min(whole, i + kChunk);
        RealLanes chunk_u = {}, chunk_v = {};
        const auto add_terms = [&term, &chunk_u, &chunk_v](std::size_t at) {
            RealLanes tu, tv;  // the kLanes terms from `at`, one per lane
            for (std::size_t k = 0; k < kLanes; ++k) {
                const Pair p = term(at + k);
                tu[k] = p.u;
                tv[k] = p.v;
            }
            chunk_u += tu;
            chunk_v += tv;
        };
        if (end - i == kChunk) {
            // a whole chunk, unrolled: the loop's own instructions were a third of the
            // forward's statistics pass in batch_norm_relu_max_pool2d (callgrind)
#pragma GCC unroll 8
            for (std::size_t k = 0; k < kChunk; k += kLanes)
                add_terms(i + k);
            i = end;
        }
        for (; i < end; i += kLanes)
            add_terms(i);
        add_chunk(u_lo, u_hi, chunk_u);
        add_chunk(v_lo, v_hi, chunk_v);
    }
    double u0 = u_lo[0], v0 = v_lo[0];
    for (; i < len; ++i) {
        const Pair p = term(i);
        u0 += p.u;
        v0 += p.v;
    }
    u_lo[0] = u0;
    v_lo[0] = v0;
    return {__builtin_shufflevector(u_lo, u_hi, 0, 1, 2, 3, 4, 5, 6, 7),
            __builtin_shufflevector(v_lo, v_hi, 0, 1, 2, 3, 4, 5, 6, 7)};
}

/// su += the lanes of s.u one by one in lane order, sv likewise.
inline void add_lanes(const LaneSums& s, double& su, double& sv) {
    for (std::size_t k = 0; k < kLanes; ++k) {
        su += s.u[k];
        sv += s.v[k];
    }
}

template <class Term>
inline void add_sums(std::size_t len, const Term& term, double& su, double& sv) {
    add_lanes(lane_sums(len, term), su, sv);
}

/// Mean μ and biased variance σ² of one set of B = runs·len values: `runs` contiguous runs of
/// `len` values starting `stride` apart (batch_norm's channel c of [N, C, L]: N runs of L,
/// C·L apart; one run for the other normalisations).
///
/// One pass, with the sums of d = x − K shifted by K = the set's first value:
///     μ = K + Σd/B,    σ² = Σd²/B − (Σd/B)²
/// Shifting by a value of the set keeps both terms of the size of σ², so the subtraction loses
/// nothing (the unshifted Σx²/B − μ² cancels badly when |μ| ≫ σ). Sums are in double.
struct Moments {
    double mean, var;
};

/// μ and σ² from the sums of d = x − K over B values (B > 0), as moments() computes them.
inline Moments moments_of_sums(double sum_d, double sum_d2, real K, double B) {
    const double mean_d = sum_d / B;  // μ − K
    const double var = sum_d2 / B - mean_d * mean_d;
    return {K + mean_d, var > 0.0 ? var : 0.0};
}

inline Moments moments(const real* p, std::size_t runs, std::size_t len, std::size_t stride) {
    const double B = static_cast<double>(runs * len);
    if (runs * len == 0) {
        const double nan = std::numeric_limits<double>::quiet_NaN();
        return {nan, nan};
    }
    const real K = p[0];
    double sum_d = 0.0, sum_d2 = 0.0;
    for (std::size_t r = 0; r < runs; ++r) {
        const real* q = p + r * stride;
        add_sums(
            len,
            [q, K](std::size_t i) {
                const real d = q[i] - K;
                return Pair{d, d * d};
            },
            sum_d, sum_d2);
    }
    return moments_of_sums(sum_d, sum_d2, K, B);
}

}  // namespace tg::kernels::fast
