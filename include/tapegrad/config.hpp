// tapegrad/config.hpp — the one scalar type and the array type everything is built on.
//
// The whole library is compiled with one scalar alias, `tg::real`: float by default, double
// when TAPEGRAD_DOUBLE is defined (the float64 build that gradient checks run in).
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
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

/// The most elements a tensor may have, 2^63 / sizeof(real) - 1: its byte count and every
/// stride xtensor computes (signed) then fit in std::ptrdiff_t.
inline constexpr std::size_t max_numel =
    static_cast<std::size_t>(std::numeric_limits<std::ptrdiff_t>::max()) / sizeof(real);

/// The element count of a shape of `ndim` sizes, after checking it: throws std::length_error
/// naming the shape and `where` (the function that asked; __builtin_FUNCTION, which GCC and
/// clang both have, because libc++ 14 has no <source_location>) when the product of its non-zero
/// sizes exceeds max_numel (a 0 makes the count 0, but the other sizes still make the
/// strides). The one overflow check every array of the library passes (new_array, the
/// Tensor constructor, reshape, broadcasting, the file and data loaders).
std::size_t checked_numel(const std::size_t* sizes, std::size_t ndim,
                          const char* where = __builtin_FUNCTION());
inline std::size_t checked_numel(const Shape& shape, const char* where = __builtin_FUNCTION()) {
    return checked_numel(shape.data(), shape.size(), where);
}

/// An uninitialised array of `shape`, its size checked by checked_numel: how the library
/// makes every array (instead of Array::from_shape, which would overflow silently).
Array new_array(const Shape& shape, const char* where = __builtin_FUNCTION());
/// The same for an array's own shape type (another array's shape(), say).
template <class S>
requires(!std::is_same_v<S, Shape>) Array
    new_array(const S& shape, const char* where = __builtin_FUNCTION()) {
    checked_numel(shape.data(), shape.size(), where);
    return Array::from_shape(shape);
}

}  // namespace tg
