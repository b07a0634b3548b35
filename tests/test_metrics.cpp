// tg::argmax, tg::num_correct, tg::accuracy against cases worked out by hand. The tie and NaN
// rows follow torch.argmax(x, dim=1) (torch 1.13.1 gives [1, 0, 1, 0, 2] for `kRows` below).
#include <cmath>
#include <limits>
#include <stdexcept>

#include <doctest/doctest.h>

#include "tapegrad/metrics.hpp"

namespace {

constexpr tg::real kNaN = std::numeric_limits<tg::real>::quiet_NaN();
constexpr tg::real kInf = std::numeric_limits<tg::real>::infinity();

// Five rows of four logits:
//   [1, 3, 3, 0]       a tie between 1 and 2: the first, 1
//   [NaN, 5, NaN, 1]   NaN counts as the largest: the first NaN, 0
//   [-2, -1, -1.5, -3] all negative: 1
//   [2, 2, 2, 2]       all equal: 0
//   [0, inf, NaN, 1]   NaN beats inf: 2
tg::Array rows() {
    return tg::Array{{1, 3, 3, 0},
                     {kNaN, 5, kNaN, 1},
                     {-2, -1, tg::real(-1.5), -3},
                     {2, 2, 2, 2},
                     {0, kInf, kNaN, 1}};
}

}  // namespace

TEST_CASE("metrics: argmax picks the first largest entry of each row, NaN as largest") {
    CHECK(tg::argmax(rows()) == tg::Labels{1, 0, 1, 0, 2});
    CHECK(tg::argmax(tg::Tensor(rows())) == tg::Labels{1, 0, 1, 0, 2});
    CHECK(tg::argmax(tg::Array(tg::Shape{1, 1}, tg::real(7))) == tg::Labels{0});  // one class
    CHECK(tg::argmax(tg::Array::from_shape({0, 3})).empty());                     // no rows
}

TEST_CASE("metrics: num_correct and accuracy count rows whose argmax is the label") {
    // argmax is [1, 0, 1, 0, 2]; these labels match rows 0, 2 and 4.
    const tg::Labels labels{1, 3, 1, 2, 2};
    CHECK(tg::num_correct(rows(), labels) == 3);
    CHECK(tg::accuracy(rows(), labels) == doctest::Approx(0.6).epsilon(1e-15));
    CHECK(tg::accuracy(tg::Tensor(rows()), tg::Labels{1, 0, 1, 0, 2}) == 1.0);
    CHECK(tg::accuracy(tg::Tensor(rows()), tg::Labels{0, 1, 0, 1, 0}) == 0.0);
    CHECK(tg::accuracy(tg::Array::from_shape({0, 10}), tg::Labels{}) == 0.0);
}

TEST_CASE("metrics: wrong shapes are rejected with the shapes in the message") {
    CHECK_THROWS_WITH_AS(tg::argmax(tg::Array{1, 2, 3}),
                         "argmax: expected logits [N, C] with C >= 1, got [3]",
                         std::invalid_argument);
    CHECK_THROWS_AS(tg::argmax(tg::Array::from_shape({2, 0})), std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::num_correct(rows(), tg::Labels{1, 2}),
                         "num_correct: logits [5, 4] but 2 labels; expected 5",
                         std::invalid_argument);
}
