// tapegrad/print.hpp — `std::cout << t.value()` (or `<< t.grad()`) with tapegrad's headers alone.
//
// A tensor's value is an xtensor array, whose printer lives in <xtensor/xio.hpp>, a header a
// reader of the chapter should not have to know about. This declares one for the library's
// array type (defined in src/core/tensor.cpp with xio.hpp's printer: the same text,
// {{1., 2.},\n {3., 4.}}). tapegrad/tapegrad.hpp includes it. It is in namespace xt, where
// argument-dependent lookup finds it; with xio.hpp included as well, this exact-type overload
// is the one chosen and prints the same text.
#pragma once

#include <iosfwd>

#include "tapegrad/config.hpp"

namespace xt {
/// Prints `a` as xtensor's xio.hpp does.
std::ostream& operator<<(std::ostream& out, const tg::Array& a);
}  // namespace xt
