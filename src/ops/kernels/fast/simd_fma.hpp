// The SIMD basics the fast convolution kernels share (conv2d_direct, conv2d_lanes,
// conv2d_one_channel): the register type and its width, how many registers there are, a b + c
// rounded once, the sum of a register's lanes in lane order, and the weight gradient's register
// block.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>

#include <xsimd/xsimd.hpp>

#include "tapegrad/config.hpp"

namespace tg::kernels::fast {

using Batch = xsimd::batch<real>;
constexpr std::size_t V = Batch::size;  // numbers per SIMD register
/// SIMD registers the compiler can keep accumulators in (AVX-512 has 32, AVX2 and SSE 16).
constexpr std::size_t kRegisters = sizeof(Batch) >= 64 ? 32 : 16;

/// xsimd 8.1 (Debian 12) has no AVX-512 fused multiply-add and falls back to a multiply and an
/// add there (twice the instructions, rounded twice), so the AVX-512 instruction is named
/// here; every other target goes through xsimd::fma.
#if defined(__AVX512F__)
inline __m512 fma512(__m512 a, __m512 b, __m512 c) {
    return _mm512_fmadd_ps(a, b, c);
}
inline __m512d fma512(__m512d a, __m512d b, __m512d c) {
    return _mm512_fmadd_pd(a, b, c);
}
#endif
inline xsimd::batch<real> fma(const xsimd::batch<real>& a, const xsimd::batch<real>& b,
                              const xsimd::batch<real>& c) {
#if defined(__AVX512F__)
    if constexpr (sizeof(xsimd::batch<real>) == 64) return xsimd::batch<real>(fma512(a, b, c));
#endif
    return xsimd::fma(a, b, c);
}

/// The sum of the V lanes of `v`, in lane order. (Not xsimd::hadd: GCC 12 warns inside its
/// AVX-512 double version, and the order of a written-out loop is plain to see.)
inline real sum_lanes(const Batch& v) {
    alignas(sizeof(Batch)) std::array<real, V> lanes;
    v.store_aligned(lanes.data());
    real total = 0;
    for (real lane : lanes)
        total += lane;
    return total;
}

/// Output channels per weight-gradient register block for filter rows of KW taps: OB x KW
/// accumulators and, held while they are used, min(OB, KW) vectors (OB of g, or KW of x) and
/// one streamed vector (of the other) must fit the registers. With AVX2, 3 taps take 4
/// filters (12 accumulators, 3 of x, 1 of g).
template <std::size_t KW>
constexpr std::size_t weight_block() {
    if (4 * KW + std::min<std::size_t>(4, KW) + 1 <= kRegisters) return 4;
    if (2 * KW + std::min<std::size_t>(2, KW) + 1 <= kRegisters) return 2;
    return 1;
}

}  // namespace tg::kernels::fast
