// `std::cout << t.value()` with the library's one header: this file includes
// <tapegrad/tapegrad.hpp> and doctest only, no xtensor header (no <xtensor/xio.hpp>), so it
// compiles only while tapegrad declares the printer itself (xt::operator<< in print.hpp).
#include <sstream>
#include <string>

#include <doctest/doctest.h>

#include "tapegrad/tapegrad.hpp"

TEST_CASE("std::cout << t.value() and << t.grad() print as xtensor's xio.hpp prints") {
    tg::Tensor t(tg::Array{{1, 2.5}, {-3, 4}}, true);
    std::ostringstream out;
    out << t.value();
    // xtensor 0.24's format (xio.hpp): columns padded to one width, rows on their own lines.
    CHECK(out.str() == "{{ 1. ,  2.5},\n {-3. ,  4. }}");
    {
        tg::Tape tape;
        tape.backward(tg::sum(tg::mul(t, t)));
    }
    std::ostringstream grad;
    grad << t.grad();  // d sum(t²) / dt = 2t
    CHECK(grad.str() == "{{ 2.,  5.},\n {-6.,  8.}}");
    std::ostringstream scalar;
    scalar << tg::Tensor::scalar(0.5).value();
    CHECK(scalar.str() == " 0.5");  // (xio pads a 0-d value as a column)
}
