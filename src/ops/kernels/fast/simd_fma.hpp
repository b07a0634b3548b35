// a b + c on xsimd batches, rounded once, for the fast convolution kernels.
#pragma once

#include <xsimd/xsimd.hpp>

#include "tapegrad/config.hpp"

namespace tg::kernels::fast {

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

}  // namespace tg::kernels::fast
