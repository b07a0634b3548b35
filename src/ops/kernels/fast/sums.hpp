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
/// `real` (which the compiler vectorises; it may not reorder one running sum itself), and
/// every kChunk terms these are moved into partial sums in double.
struct Pair {
    real u, v;
};
inline constexpr std::size_t kLanes = 8;
inline constexpr std::size_t kChunk = 64;

template <class Term>
inline void add_sums(std::size_t len, const Term& term, double& su, double& sv) {
    double u[kLanes] = {}, v[kLanes] = {};
    const std::size_t whole = len - len % kLanes;
    std::size_t i = 0;
    while (i < whole) {
        const std::size_t end = std::min(whole, i + kChunk);
        real chunk_u[kLanes] = {}, chunk_v[kLanes] = {};
        for (; i < end; i += kLanes) {
            for (std::size_t k = 0; k < kLanes; ++k) {
                const Pair p = term(i + k);
                chunk_u[k] += p.u;
                chunk_v[k] += p.v;
            }
        }
        for (std::size_t k = 0; k < kLanes; ++k) {
            u[k] += chunk_u[k];
            v[k] += chunk_v[k];
        }
    }
    for (; i < len; ++i) {
        const Pair p = term(i);
        u[0] += p.u;
        v[0] += p.v;
    }
    for (std::size_t k = 0; k < kLanes; ++k) {
        su += u[k];
        sv += v[k];
    }
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
    const double mean_d = sum_d / B;  // μ − K
    const double var = sum_d2 / B - mean_d * mean_d;
    return {K + mean_d, var > 0.0 ? var : 0.0};
}

}  // namespace tg::kernels::fast
