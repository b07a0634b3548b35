// tapegrad/config.hpp — the one scalar type and the array type everything is built on.
//
// The whole library is compiled with one scalar alias, `tg::real`: float by default, double
// when TAPEGRAD_DOUBLE is defined (the float64 build that gradient checks run in).
#pragma once

#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include <xtensor/xarray.hpp>

namespace tg {

#ifdef TAPEGRAD_DOUBLE
using real = double;
#else
using real = float;
#endif

/// True in the float64 build.
inline constexpr bool is_double = std::is_same_v<real, double>;

/// A dense row-major n-dimensional array of `real`: the value (and gradient) of a tensor.
using Array = xt::xarray<real>;

/// A tensor shape, outermost axis first: [N, C, H, W].
using Shape = std::vector<std::size_t>;

/// Integer class labels, one per example (what cross_entropy takes and DataLoader yields).
using Labels = std::vector<std::int64_t>;

/// Formats any shape-like container as "[2, 3, 4]" (the form used in every error message).
template <class S>
std::string shape_str(const S& shape) {
    std::ostringstream out;
    out << '[';
    bool first = true;
    for (auto d : shape) {
        if (!first) out << ", ";
        out << d;
        first = false;
    }
    out << ']';
    return out.str();
}

}  // namespace tg
