// Helpers for the tg::dist tests (tests/dist/).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "tapegrad/dist/context.hpp"
#include "tapegrad/tensor.hpp"

/// The job's Context (made by tests/dist/main.cpp).
const tg::dist::Context& test_ctx();

/// The tolerance the issue sets: 1e-6 relative in float32, 1e-12 in float64.
inline constexpr double kRelTol = tg::is_double ? 1e-12 : 1e-6;

/// max_i |a_i − b_i| / max_i |b_i|: the error relative to the tensor's scale (an element-wise
/// relative error is meaningless for values that are zero up to rounding, like Σ dx).
inline double rel_error(const double* a, const double* b, std::size_t n) {
    double diff = 0.0, scale = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
        diff = std::max(diff, std::abs(a[i] - b[i]));
        scale = std::max(scale, std::abs(b[i]));
    }
    return scale == 0.0 ? diff : diff / scale;
}

inline std::vector<double> to_doubles(const tg::Array& a) {
    return std::vector<double>(a.begin(), a.end());
}

inline double rel_error(const tg::Array& a, const tg::Array& b) {
    const auto x = to_doubles(a), y = to_doubles(b);
    return x.size() == y.size() ? rel_error(x.data(), y.data(), x.size()) : INFINITY;
}
