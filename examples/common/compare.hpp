// examples/common/compare.hpp — how far apart two arrays are, for the programs that print it.
// Header-only, so the float64 program (ch306_tape_backprop) uses it as the float ones do.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "tapegrad/config.hpp"

namespace tg::examples {

/// max_i |a_i − b_i|, in double (a and b have the same number of elements).
inline double max_abs_diff(const Array& a, const Array& b) {
    double m = 0.0;
    for (std::size_t i = 0; i < a.size(); ++i)
        m = std::max(m, std::abs(static_cast<double>(a.flat(i)) - static_cast<double>(b.flat(i))));
    return m;
}

}  // namespace tg::examples
