// tests/conv_helpers.hpp — shared by the tests of linear, conv2d, pooling and dropout.
#pragma once

#include <string>

#include "tapegrad/tape.hpp"
#include "testing.hpp"

namespace convtest {

/// L = sum_i y_i w_i, recorded on the tape (dL/dy = w). Turns an op's output into the one
/// number gradcheck needs; with a random w every output element has its own weight, so a
/// gradient sent to the wrong element is caught.
inline tg::Tensor weighted_sum(const tg::Tensor& y, const tg::Array& w) {
    REQUIRE(y.value().shape() == w.shape());
    double total = 0;
    for (std::size_t i = 0; i < w.size(); ++i)
        total += y.value().flat(i) * w.flat(i);
    tg::Tensor out = tg::Tensor::scalar(static_cast<tg::real>(total));
    if (tg::Tape* tape = tg::recording_tape(y)) {
        tape->record("weighted_sum", {y}, out,
                     [y, w](const tg::Array& g) { y.accumulate_grad(tg::Array(w * g.flat(0))); });
    }
    return out;
}

/// The reference tensor "<c>/<name>" of group "conv" as a leaf that requires grad.
inline tg::Tensor param(const std::string& c, const std::string& name) {
    return tg::Tensor(tgtest::reference("conv").at(c + "/" + name), /*requires_grad=*/true);
}

/// The message of the std::invalid_argument `f` throws ("" if none).
template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "";
}

}  // namespace convtest
