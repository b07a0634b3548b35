// The fused ReLU + 2x2 max-pool fast kernel (src/ops/kernels/fast/relu_max_pool2d.*) against
// the two ops it replaces, tg::relu then tg::max_pool2d (each checked against PyTorch in
// their own tests): outputs and input gradients bit-identical on random shapes with many
// ties and non-positive windows, in float32 and float64; and its NaN rule.
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "../src/ops/kernels/fast/relu_max_pool2d.hpp"
#include "tapegrad/ops/activation.hpp"
#include "tapegrad/ops/pool.hpp"
#include "tapegrad/parallel.hpp"
#include "tapegrad/random.hpp"
#include "tapegrad/tape.hpp"
#include "testing.hpp"

namespace {

using tg::Array;
using tg::Tensor;

bool same_bits(const Array& a, const Array& b) {
    return a.shape() == b.shape() &&
           std::memcmp(a.data(), b.data(), a.size() * sizeof(tg::real)) == 0;
}

/// y and dx of the fused kernel for x [N, C, H, W] and dL/dy g.
std::pair<Array, Array> fused(const Array& x, const Array& g) {
    const std::size_t planes = x.shape()[0] * x.shape()[1], h = x.shape()[2], w = x.shape()[3];
    Array y = Array::from_shape({x.shape()[0], x.shape()[1], h / 2, w / 2});
    Array dx = Array::from_shape(x.shape());
    std::vector<std::size_t> argmax(y.size());
    tg::kernels::fast::relu_max_pool2x2_forward(x.data(), planes, h, w, y.data(), argmax.data());
    tg::kernels::fast::relu_max_pool2x2_backward(g.data(), y.data(), argmax.data(), planes, h, w,
                                                 dx.data());
    return {y, dx};
}

}  // namespace

TEST_CASE("fused relu + max_pool2d 2x2 equals relu then max_pool2d, bit for bit") {
    tg::Generator gen(31);
    const auto pick = [&gen](std::size_t lo, std::size_t hi) {
        return lo + static_cast<std::size_t>(gen.uniform01() * static_cast<double>(hi - lo + 1));
    };
    for (int i = 0; i < 100; ++i) {
        const std::size_t n = pick(1, 3), c = pick(1, 4), h = pick(2, 15), w = pick(2, 15);
        CAPTURE(h);
        CAPTURE(w);
        // Values from a small set half the time, so windows tie (first maximum wins) and many
        // are all <= 0, including -0.
        Array x = tg::uniform({n, c, h, w}, -1, 1, gen);
        for (auto& v : x) {
            if (gen.uniform01() < 0.5) v = static_cast<tg::real>(std::floor(v * 3)) / 2;
            if (gen.uniform01() < 0.05) v = -tg::real(0);
        }
        const Array g = tg::uniform({n, c, h / 2, w / 2}, -1, 1, gen);
        Tensor xt(x, true);
        tg::Tape tape;
        Tensor y = tg::max_pool2d(tg::relu(xt), 2, 2, 0);
        tape.backward(y, g);
        const auto [fy, fdx] = fused(x, g);
        CHECK(same_bits(fy, y.value()));
        CHECK(same_bits(fdx, xt.grad()));
    }
}

TEST_CASE("fused relu + max_pool2d 2x2: bit-identical at 1 and 2 threads") {
    tg::Generator gen(5);
    const Array x = tg::uniform({64, 8, 26, 26}, -1, 1, gen);
    const Array g = tg::uniform({64, 8, 13, 13}, -1, 1, gen);
    const std::size_t before = tg::num_threads();
    tg::set_num_threads(1);
    const auto one = fused(x, g);
    tg::set_num_threads(2);
    const auto two = fused(x, g);
    tg::set_num_threads(before);
    CHECK(same_bits(one.first, two.first));
    CHECK(same_bits(one.second, two.second));
}

TEST_CASE("fused relu + max_pool2d 2x2: NaN as PyTorch's relu then max_pool2d") {
    // torch: relu(NaN) = NaN; max_pool2d takes the window's last NaN; relu's backward
    // (threshold_backward: 0 where the output <= 0) passes g at a NaN.
    const tg::real nan = std::numeric_limits<tg::real>::quiet_NaN();
    Array x = {{{{nan, 1, 2, -1},
                 {3, nan, -2, -3}}}};  // [1, 1, 2, 4]: windows [nan 1 3 nan], [2 -1 -2 -3]
    const Array g = {{{{0.5, 0.25}}}};
    const auto [y, dx] = fused(x, g);
    CHECK(std::isnan(y(0, 0, 0, 0)));
    CHECK(y(0, 0, 0, 1) == 2);
    CHECK(dx(0, 0, 1, 1) == tg::real(0.5));  // the window's last NaN
    CHECK(dx(0, 0, 0, 2) == tg::real(0.25));
    tg::real total = 0;
    for (auto v : dx)
        total += v;
    CHECK(total == tg::real(0.75));  // nothing else
}
