// The fused ReLU + 2x2 max-pool fast kernel (src/ops/kernels/fast/relu_max_pool2d.*) against
// the two ops it replaces, tg::relu then tg::max_pool2d (each checked against PyTorch in
// their own tests): outputs and input gradients bit-identical on random shapes with many
// ties and non-positive windows, in float32 and float64; and its NaN rule. Then the op that
// calls it, tg::relu_max_pool2d, and nn::Sequential's use of it with the fast kernels: the same
// numbers as the two ops, one tape entry instead of two, and finite differences.
//
// Sections (TEST_CASE name prefixes, as in every op test file): vs PyTorch (the ops it fuses are
// checked against PyTorch in test_activation.cpp and test_pool.cpp; here the NaN case, checked
// by hand against torch 1.13.1), gradcheck float64, errors, fast vs reference, behaviour.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "../src/ops/kernels/fast/batch_norm_relu_max_pool2d.hpp"
#include "../src/ops/kernels/fast/relu_max_pool2d.hpp"
#include "conv_helpers.hpp"
#include "tapegrad/gradcheck.hpp"
#include "tapegrad/nn/nn.hpp"
#include "tapegrad/ops/activation.hpp"
#include "tapegrad/ops/fused.hpp"
#include "tapegrad/ops/normalization.hpp"
#include "tapegrad/ops/pool.hpp"
#include "tapegrad/ops/reduce.hpp"
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
    tg::kernels::fast::relu_max_pool2x2_forward(y.data(), argmax.data(), x.data(), planes, h, w);
    tg::kernels::fast::relu_max_pool2x2_backward(dx.data(), g.data(), y.data(), argmax.data(),
                                                 planes, h, w);
    return {y, dx};
}

}  // namespace

TEST_CASE("fast vs reference: relu_max_pool2x2 kernel equals relu then max_pool2d, bit for bit") {
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

TEST_CASE("fast vs reference: relu_max_pool2x2 kernel bit-identical at 1 and 2 threads") {
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

TEST_CASE("vs PyTorch: relu_max_pool2x2 kernel at NaN, as torch's relu then max_pool2d") {
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

// ---------------------------------------------------------------------------------------------
// The op tg::relu_max_pool2d, and nn::Sequential using it
// ---------------------------------------------------------------------------------------------

namespace {

/// The ops the tape recorded, in order.
std::vector<std::string> recorded_ops(const tg::Tape& tape) {
    std::vector<std::string> ops;
    for (const tg::TapeEntry& e : tape.entries())
        ops.emplace_back(e.op);
    return ops;
}

}  // namespace

TEST_CASE(
    "fast vs reference: tg::relu_max_pool2d, fast (one op) equals reference (relu then "
    "max_pool2d), bit for bit") {
    tg::Generator gen(77);
    const auto pick = [&gen](std::size_t lo, std::size_t hi) {
        return lo + static_cast<std::size_t>(gen.uniform01() * static_cast<double>(hi - lo + 1));
    };
    for (int i = 0; i < 40; ++i) {
        const tg::Shape xs{pick(1, 3), pick(1, 4), pick(2, 13), pick(2, 13)};  // odd H, W too
        CAPTURE(tg::shape_str(xs));
        Array x = tg::uniform(xs, -1, 1, gen);
        for (auto& v : x)  // ties and all-negative windows, as above
            if (gen.uniform01() < 0.5) v = static_cast<tg::real>(std::floor(v * 3)) / 2;
        const auto op = [](const std::vector<Tensor>& in) { return tg::relu_max_pool2d(in[0]); };
        const auto ref = tgtest::run_with_kernels(tg::Kernels::reference, {x}, op);
        const auto fast = tgtest::run_with_kernels(tg::Kernels::fast, {x}, op);
        CHECK(same_bits(fast[0], ref[0]));  // y
        CHECK(same_bits(fast[1], ref[1]));  // dx
    }
}

TEST_CASE(
    "behaviour: tg::relu_max_pool2d, one tape entry with the fast kernels, the chapter's two "
    "with the reference kernels") {
    const Tensor x(tg::normal({2, 3, 6, 6}, 0, 1), true);
    {
        tgtest::KernelsGuard k(tg::Kernels::fast);
        tg::Tape tape;
        tg::relu_max_pool2d(x);
        CHECK(recorded_ops(tape) == std::vector<std::string>{"relu_max_pool2d"});
    }
    {
        tgtest::KernelsGuard k(tg::Kernels::reference);
        tg::Tape tape;
        tg::relu_max_pool2d(x);
        CHECK(recorded_ops(tape) == std::vector<std::string>{"relu", "max_pool2d"});
    }
}

TEST_CASE("gradcheck float64: tg::relu_max_pool2d" * doctest::skip(!tg::is_double)) {
    tg::Generator gen(12);
    for (const tg::Kernels k : tgtest::kBothKernels) {
        tgtest::KernelsGuard guard(k);
        const std::string kernel_set = tg::kernels_name();
        CAPTURE(kernel_set);
        // normal values: distinct maxima and none within gradcheck's step of 0, almost surely
        const Tensor x(tg::normal({2, 3, 5, 6}, 0, 1, gen), true);
        const Array r = tg::normal({2, 3, 2, 3}, 0, 1, gen);
        CHECK_GRADCHECK(
            [&](const std::vector<Tensor>& in) {
                return convtest::weighted_sum(tg::relu_max_pool2d(in[0]), r);
            },
            {x});
    }
}

TEST_CASE("errors: tg::relu_max_pool2d rejects bad shapes with a message naming them") {
    tgtest::KernelsGuard k(tg::Kernels::fast);
    CHECK(convtest::error_of([] {
              tg::relu_max_pool2d(Tensor::zeros({3, 4, 4}));
          }) == "relu_max_pool2d: expected a 4-D input [N, C, H, W], got [3, 4, 4]");
    CHECK(convtest::error_of([] {
              tg::relu_max_pool2d(Tensor::zeros({1, 2, 1, 4}));
          }) ==
          "relu_max_pool2d: the 2x2 window does not fit the input [1, 2, 1, 4]: H and W must be "
          "at least 2");
}

TEST_CASE(
    "behaviour: nn::Sequential fuses ReLU + MaxPool2d(2) with the fast kernels only, and the "
    "numbers do not change") {
    namespace nn = tg::nn;
    tg::Generator gen(3);
    nn::Sequential model{nn::Conv2d(2, 4, 3, {.generator = &gen}),
                         nn::ReLU(),
                         nn::MaxPool2d(2),
                         nn::Conv2d(4, 4, 3, {.padding = 1, .generator = &gen}),
                         nn::ReLU(),
                         nn::MaxPool2d(2, {.stride = 1})};  // stride 1: not the fused pair
    const Array x0 = tg::normal({3, 2, 11, 12}, 0, 1, gen);

    /// The recorded ops, the output, dL/dx and every parameter's gradient for L = sum(y).
    const auto run = [&](tg::Kernels k) {
        tgtest::KernelsGuard guard(k);
        model.zero_grad(true);
        Tensor x(x0, true);
        tg::Tape tape;
        const Tensor y = model(x);
        std::vector<std::string> ops = recorded_ops(tape);  // the model's ops alone
        tape.backward(tg::sum(y));
        std::vector<Array> numbers{y.value(), x.grad()};
        for (const Tensor& p : model.parameters())
            numbers.push_back(p.grad());
        return std::make_pair(ops, numbers);
    };
    const auto [fused_ops, fused_numbers] = run(tg::Kernels::fast);
    CHECK(fused_ops ==
          std::vector<std::string>{"conv2d", "relu_max_pool2d", "conv2d", "relu", "max_pool2d"});
    const auto [ref_ops, ref_numbers] = run(tg::Kernels::reference);
    CHECK(ref_ops ==
          std::vector<std::string>{"conv2d", "relu", "max_pool2d", "conv2d", "relu", "max_pool2d"});

    // A hook on the ReLU wants its output: the pair is not fused, and the numbers are the same
    // bits as fused (the convolutions are the same fast kernels in both runs).
    std::size_t calls = 0;
    auto handle = model[1].register_forward_hook(
        [&calls](const std::string&, const Tensor&, const Tensor&) { ++calls; });
    const auto [hooked_ops, hooked_numbers] = run(tg::Kernels::fast);
    handle.remove();
    CHECK(calls == 1);
    CHECK(hooked_ops == ref_ops);
    REQUIRE(hooked_numbers.size() == fused_numbers.size());
    for (std::size_t i = 0; i < fused_numbers.size(); ++i) {
        CAPTURE(i);  // 0: y, 1: dx, then the parameters' gradients
        CHECK(same_bits(fused_numbers[i], hooked_numbers[i]));
        // and the reference kernels within their round-off (the convolutions sum differently)
        CHECK(tgtest::mismatch_scaled(fused_numbers[i], ref_numbers[i], tgtest::kKernelsRtol,
                                      tgtest::kKernelsRtol) == "");
    }
}

// ---------------------------------------------------------------------------------------------
// BatchNorm + ReLU + 2x2 max-pool: the kernel pair (src/ops/kernels/fast/
// batch_norm_relu_max_pool2d.*), the op tg::batch_norm_relu_max_pool2d, nn::Sequential using it.
// Checked against the three ops it replaces (each checked against PyTorch in its own tests):
// output, running statistics and gradients bit for bit against the fast batch_norm then
// relu_max_pool2d, and within the fast kernels' tolerance (kKernelsRtol) against the reference
// kernels' three ops.
// ---------------------------------------------------------------------------------------------

namespace {

/// x [N, C, H, W] with ties half the time (values from a small set, so normalised values tie
/// and the first maximum must win) and some -0.
Array tied_input(const tg::Shape& xs, tg::Generator& gen) {
    Array x = tg::uniform(xs, -1, 1, gen);
    for (auto& v : x) {
        if (gen.uniform01() < 0.5) v = static_cast<tg::real>(std::floor(v * 3)) / 2;
        if (gen.uniform01() < 0.05) v = -tg::real(0);
    }
    return x;
}

/// The three ops unfused: batch_norm (batch statistics), relu, max_pool2d(2).
Tensor three_ops(const std::vector<Tensor>& in) {
    return tg::max_pool2d(
        tg::relu(tg::batch_norm(in[0], Tensor{}, Tensor{}, in[1], in[2], true, 0.1, 1e-5)), 2);
}

Tensor fused_op(const std::vector<Tensor>& in) {
    return tg::batch_norm_relu_max_pool2d(in[0], Tensor{}, Tensor{}, in[1], in[2], true, 0.1, 1e-5);
}

/// Everything the kernel pair writes, for x, γ, β and ∂L/∂y g (fast kernels, called directly).
struct BnPoolRun {
    Array y, dx, dgamma, dbeta;
    std::vector<std::uint8_t> window;
    std::vector<double> mean, var, invstd;
};
BnPoolRun bn_pool_kernels(const Array& x, const Array& gamma, const Array& beta, const Array& g) {
    const std::size_t N = x.shape()[0], C = x.shape()[1], H = x.shape()[2], W = x.shape()[3];
    BnPoolRun r;
    r.y = Array::from_shape({N, C, H / 2, W / 2});
    r.dx = Array::from_shape(x.shape());
    r.dgamma = Array::from_shape({C});
    r.dbeta = Array::from_shape({C});
    r.window.resize(r.y.size());
    r.mean.resize(C), r.var.resize(C), r.invstd.resize(C);
    tg::kernels::fast::batch_norm_relu_max_pool2x2_forward(
        r.y.data(), r.window.data(), r.mean.data(), r.var.data(), r.invstd.data(), x.data(),
        gamma.data(), beta.data(), N, C, H, W, 1e-5);
    tg::kernels::fast::batch_norm_relu_max_pool2x2_backward(
        r.dx.data(), r.dgamma.data(), r.dbeta.data(), g.data(), r.window.data(), x.data(),
        r.mean.data(), r.invstd.data(), gamma.data(), N, C, H, W);
    return r;
}

/// The fused op on x with random γ (γ[0] = 0 when `zero_gamma`: every value of a window ties)
/// and β, against the three fast ops (bit for bit) and the three reference ops (within
/// kKernelsRtol): y, dx, dγ and dβ.
void check_fused_vs_three_ops(const Array& x, bool zero_gamma, tg::Generator& gen) {
    const std::size_t C = x.shape()[1];
    Array gamma = tg::uniform({C}, -2, 2, gen);  // a negative γ reverses the order
    if (zero_gamma) gamma(0) = 0;
    const Array beta = tg::uniform({C}, -1, 1, gen);
    const std::vector<Array> values{x, gamma, beta};
    const auto ref = tgtest::run_with_kernels(tg::Kernels::reference, values, three_ops);
    const auto unfused = tgtest::run_with_kernels(tg::Kernels::fast, values, three_ops);
    const auto fused = tgtest::run_with_kernels(tg::Kernels::fast, values, fused_op);
    for (std::size_t k = 0; k < ref.size(); ++k) {
        CAPTURE(k);  // 0: y, 1: dx, 2: dγ, 3: dβ
        CHECK(same_bits(fused[k], unfused[k]));
        CHECK(tgtest::mismatch_scaled(fused[k], ref[k], tgtest::kKernelsRtol,
                                      tgtest::kKernelsRtol) == "");
    }
}

}  // namespace

TEST_CASE(
    "fast vs reference: tg::batch_norm_relu_max_pool2d equals batch_norm, relu, max_pool2d: "
    "bit for bit against the fast ops, within kKernelsRtol of the reference ops") {
    tg::Generator gen(41);
    const auto pick = [&gen](std::size_t lo, std::size_t hi) {
        return lo + static_cast<std::size_t>(gen.uniform01() * static_cast<double>(hi - lo + 1));
    };
    for (int i = 0; i < 60; ++i) {
        const tg::Shape xs{pick(1, 4), pick(1, 4), pick(2, 13), pick(2, 13)};  // odd H, W too
        CAPTURE(tg::shape_str(xs));
        const Array x = tied_input(xs, gen);
        check_fused_vs_three_ops(x, i % 7 == 0, gen);
    }
}

TEST_CASE(
    "fast vs reference: batch_norm_relu_max_pool2d on wide maps (8 or more windows per row, "
    "odd sizes): bit for bit against the fast ops, within kKernelsRtol of the reference ops") {
    // The kernels' block paths: four windows at a time for OW >= 4 (the case above covers
    // OW = 4 .. 6), and in the backward's second pass dx straight from the blocks for OW >= 8;
    // a row's last block overlaps the one before unless OW is a multiple of 4; an odd H or W
    // leaves a row or column no window covers.
    tg::Generator gen(43);
    const auto pick = [&gen](std::size_t lo, std::size_t hi) {
        return lo + static_cast<std::size_t>(gen.uniform01() * static_cast<double>(hi - lo + 1));
    };
    for (int i = 0; i < 12; ++i) {
        const tg::Shape xs{pick(1, 2), pick(1, 3), pick(8, 27), pick(16, 35)};
        CAPTURE(tg::shape_str(xs));
        const Array x = tied_input(xs, gen);
        check_fused_vs_three_ops(x, i % 5 == 0, gen);
    }
}

TEST_CASE(
    "fast vs reference: batch_norm_relu_max_pool2x2 kernels at NaN on maps of 4 and more "
    "windows per row (the block paths), as the fast three ops") {
    // A NaN in channel 1 makes every normalised value of channel 1 NaN: each window takes its
    // last NaN (position 3) and passes g; channel 0 is untouched.
    const tg::real nan = std::numeric_limits<tg::real>::quiet_NaN();
    tg::Generator gen(44);
    for (const tg::Shape& xs :
         {tg::Shape{1, 2, 2, 8}, tg::Shape{2, 2, 5, 11}, tg::Shape{1, 2, 4, 19}}) {
        CAPTURE(tg::shape_str(xs));
        Array x = tg::uniform(xs, -1, 1, gen);
        x(xs[0] - 1, 1, xs[2] - 1, 3) = nan;
        const Array gamma = tg::uniform({2}, 0.5, 2, gen), beta = tg::uniform({2}, -1, 1, gen);
        const Array g = tg::uniform({xs[0], 2, xs[2] / 2, xs[3] / 2}, -1, 1, gen);
        const BnPoolRun r = bn_pool_kernels(x, gamma, beta, g);
        tgtest::KernelsGuard guard(tg::Kernels::fast);
        const Tensor xt(x, true), gt(gamma, true), bt(beta, true);
        tg::Tape tape;
        const Tensor y = three_ops({xt, gt, bt});
        tape.backward(y, g);
        const std::size_t OL = (xs[2] / 2) * (xs[3] / 2);
        for (std::size_t n = 0; n < xs[0]; ++n) {
            for (std::size_t o = 0; o < OL; ++o)
                CHECK(r.window[(n * 2 + 1) * OL + o] == 3);
        }
        const auto same = [](const Array& a, const Array& b) {  // NaN where NaN, else equal
            for (std::size_t i = 0; i < a.size(); ++i) {
                const tg::real u = a.data()[i], v = b.data()[i];
                if (std::isnan(u) != std::isnan(v) || (!std::isnan(u) && u != v)) return false;
            }
            return a.shape() == b.shape();
        };
        CHECK(same(r.y, y.value()));
        CHECK(same(r.dx, xt.grad()));
        CHECK(same(r.dgamma, gt.grad()));
        CHECK(same(r.dbeta, bt.grad()));
        CHECK(std::isnan(r.y(0, 1, 0, 0)));
        CHECK(!std::isnan(r.dbeta(1)));  // Σdz = Σg: relu's backward passes g at a NaN
    }
}

TEST_CASE(
    "fast vs reference: batch_norm_relu_max_pool2d bit for bit against the fast three ops on 2 "
    "threads, on the benchmark's two block shapes (the fused kernels split planes, the unfused "
    "channels)") {
    // Each channel's sums are made of per-plane lanes summed on whichever thread has the plane,
    // then added up in plane order (PlaneLanes in batch_norm_relu_max_pool2d.cpp): on these
    // shapes both threads get planes of every channel, so an order that depended on the split
    // would show here.
    tg::Generator gen(29);
    const std::size_t before = tg::num_threads();
    tg::set_num_threads(2);
    for (const tg::Shape& xs : {tg::Shape{24, 8, 26, 26}, tg::Shape{72, 16, 11, 11}}) {
        CAPTURE(tg::shape_str(xs));
        const std::vector<Array> values{tied_input(xs, gen), tg::uniform({xs[1]}, -2, 2, gen),
                                        tg::uniform({xs[1]}, -1, 1, gen)};
        const auto unfused = tgtest::run_with_kernels(tg::Kernels::fast, values, three_ops);
        const auto fused = tgtest::run_with_kernels(tg::Kernels::fast, values, fused_op);
        for (std::size_t k = 0; k < unfused.size(); ++k) {
            CAPTURE(k);  // 0: y, 1: dx, 2: dγ, 3: dβ
            CHECK(same_bits(fused[k], unfused[k]));
        }
    }
    tg::set_num_threads(before);
}

TEST_CASE(
    "fast vs reference: batch_norm_relu_max_pool2x2 kernels bit-identical at 1 and 2 threads") {
    tg::Generator gen(6);
    const Array x = tied_input({64, 8, 26, 26}, gen);
    const Array gamma = tg::uniform({8}, -2, 2, gen), beta = tg::uniform({8}, -1, 1, gen);
    const Array g = tg::uniform({64, 8, 13, 13}, -1, 1, gen);
    const std::size_t before = tg::num_threads();
    tg::set_num_threads(1);
    const BnPoolRun one = bn_pool_kernels(x, gamma, beta, g);
    tg::set_num_threads(2);
    const BnPoolRun two = bn_pool_kernels(x, gamma, beta, g);
    tg::set_num_threads(before);
    CHECK(same_bits(one.y, two.y));
    CHECK(one.window == two.window);
    CHECK(same_bits(one.dx, two.dx));
    CHECK(same_bits(one.dgamma, two.dgamma));
    CHECK(same_bits(one.dbeta, two.dbeta));
    CHECK(one.mean == two.mean);
    CHECK(one.var == two.var);
}

TEST_CASE(
    "fast vs reference: batch_norm_relu_max_pool2x2's window bytes: the maximum's position, plus "
    "kNoGradient where relu's output is 0, and no gradient through those windows") {
    // channel 0: μ = -0.5; window 0 {-1, -2, -3, -4} normalises to values < 0 (maximum at
    // position 0), window 1 {1, 0, 2, 3} has its maximum 3 at position 3 (row 1, column 1).
    // channel 1: γ = 0, so every z is 0: position 0, relu's output 0, no gradient.
    const Array x = {{{{-1, -2, 1, 0}, {-3, -4, 2, 3}}, {{5, 6, 7, 8}, {1, 2, 3, 4}}}};
    const Array gamma = {1, 0}, beta = {0, 0};
    const Array g = {{{{0.5, 0.25}}, {{2, 4}}}};
    const BnPoolRun r = bn_pool_kernels(x, gamma, beta, g);
    using tg::kernels::fast::kNoGradient;
    CHECK(r.window ==
          std::vector<std::uint8_t>{kNoGradient + 0, 3, kNoGradient + 0, kNoGradient + 0});
    CHECK(r.y(0, 0, 0, 0) == 0);
    CHECK(r.y(0, 0, 0, 1) > 0);
    CHECK(r.dbeta(0) == tg::real(0.25));  // Σdz: g of window 1 only
    CHECK(r.dbeta(1) == 0);
    CHECK(r.dgamma(1) == 0);
}

TEST_CASE("vs PyTorch: batch_norm_relu_max_pool2x2 kernels at NaN, as torch's three ops") {
    // torch: a NaN in channel c makes μ_B and every normalised value of c NaN; relu keeps NaN;
    // max_pool2d takes each window's last NaN; relu's backward passes g there, so dβ = Σg and
    // dx, dγ of channel c are NaN. The other channels are untouched.
    const tg::real nan = std::numeric_limits<tg::real>::quiet_NaN();
    Array x = {{{{1, 2, 3, 4}, {5, 6, 7, 8}}, {{1, nan, 2, 3}, {4, 5, 6, 7}}}};  // [1, 2, 2, 4]
    const Array gamma = {1, 1}, beta = {0, 0};
    const Array g = {{{{0.5, 0.25}}, {{0.5, 0.25}}}};
    const BnPoolRun r = bn_pool_kernels(x, gamma, beta, g);
    CHECK(r.window == std::vector<std::uint8_t>{3, 3, 3, 3});  // channel 0's maxima are last too
    CHECK(!std::isnan(r.y(0, 0, 0, 0)));
    CHECK(std::isnan(r.y(0, 1, 0, 0)));
    CHECK(std::isnan(r.y(0, 1, 0, 1)));
    CHECK(std::isnan(r.dgamma(1)));
    CHECK(r.dbeta(1) == tg::real(0.75));  // Σdz: relu's backward passes g at a NaN
    CHECK(!std::isnan(r.dgamma(0)));
    for (std::size_t h = 0; h < 2; ++h) {
        for (std::size_t w = 0; w < 4; ++w) {
            CHECK(std::isnan(r.dx(0, 1, h, w)));
            CHECK(!std::isnan(r.dx(0, 0, h, w)));
        }
    }
    // and the reference ops, from the same g: channel 0's numbers, channel 1's dβ and NaNs
    tgtest::KernelsGuard guard(tg::Kernels::reference);
    const Tensor xt(x, true), gt(gamma, true), bt(beta, true);
    tg::Tape tape;
    const Tensor ref = three_ops({xt, gt, bt});
    tape.backward(ref, g);
    CHECK(r.y(0, 0, 0, 0) == doctest::Approx(ref.value()(0, 0, 0, 0)));
    CHECK(r.y(0, 0, 0, 1) == doctest::Approx(ref.value()(0, 0, 0, 1)));
    CHECK(std::isnan(ref.value()(0, 1, 0, 0)));
    CHECK(bt.grad()(1) == r.dbeta(1));
    CHECK(r.dbeta(0) == doctest::Approx(bt.grad()(0)));
    CHECK(r.dgamma(0) == doctest::Approx(gt.grad()(0)));
    CHECK(std::isnan(gt.grad()(1)));
}

TEST_CASE("gradcheck float64: tg::batch_norm_relu_max_pool2d" * doctest::skip(!tg::is_double)) {
    tg::Generator gen(13);
    for (const tg::Kernels k : tgtest::kBothKernels) {
        tgtest::KernelsGuard guard(k);
        const std::string kernel_set = tg::kernels_name();
        CAPTURE(kernel_set);
        // normal values: distinct maxima, none within gradcheck's step of 0, almost surely
        const Tensor x(tg::normal({3, 2, 4, 5}, 0, 1, gen), true);
        const Tensor gamma(tg::uniform({2}, 0.5, 1.5, gen), true);
        const Tensor beta(tg::uniform({2}, -0.5, 0.5, gen), true);
        const Array r = tg::normal({3, 2, 2, 2}, 0, 1, gen);
        CHECK_GRADCHECK(
            [&](const std::vector<Tensor>& in) { return convtest::weighted_sum(fused_op(in), r); },
            {x, gamma, beta});
    }
}

TEST_CASE("errors: tg::batch_norm_relu_max_pool2d rejects bad input with a message naming it") {
    for (const tg::Kernels k : tgtest::kBothKernels) {
        tgtest::KernelsGuard guard(k);
        const auto call = [](const tg::Shape& xs, const Tensor& weight) {
            return convtest::error_of([&] {
                tg::batch_norm_relu_max_pool2d(Tensor::zeros(xs), Tensor{}, Tensor{}, weight,
                                               Tensor{}, true, 0.1, 1e-5);
            });
        };
        CHECK(call({3, 4, 4}, Tensor{}) ==
              "batch_norm_relu_max_pool2d: expected a 4-D input [N, C, H, W], got [3, 4, 4]");
        CHECK(call({1, 2, 1, 4}, Tensor{}) ==
              "batch_norm_relu_max_pool2d: the 2x2 window does not fit the input [1, 2, 1, 4]: "
              "H and W must be at least 2");
        CHECK(call({1, 2, 4, 4}, Tensor::ones({3})) ==
              "batch_norm_relu_max_pool2d: weight has shape [3], expected [2] (one per channel of "
              "input [1, 2, 4, 4])");
    }
}

TEST_CASE(
    "behaviour: nn::Sequential fuses BatchNorm2d + ReLU + MaxPool2d(2) with the fast kernels "
    "in training, and the numbers and running statistics do not change") {
    namespace nn = tg::nn;
    tg::Generator gen(4);
    nn::Sequential model{nn::Conv2d(2, 4, 3, {.generator = &gen}),
                         nn::BatchNorm2d(4),
                         nn::ReLU(),
                         nn::MaxPool2d(2),
                         nn::Conv2d(4, 4, 3, {.padding = 1, .generator = &gen}),
                         nn::BatchNorm2d(4),
                         nn::ReLU(),
                         nn::MaxPool2d(2, {.stride = 1})};  // stride 1: not fused
    auto& bn = model.at<nn::BatchNorm2d>(1);
    bn.weight.value() = tg::uniform({4}, 0.5, 1.5, gen);
    bn.bias.value() = tg::uniform({4}, -0.5, 0.5, gen);
    const Array x0 = tg::normal({3, 2, 11, 12}, 0, 1, gen);

    /// The recorded ops, then the output, dL/dx, every parameter's gradient and every buffer
    /// (running statistics, batches counted) after one training step from fresh statistics.
    const auto run = [&](tg::Kernels k) {
        tgtest::KernelsGuard guard(k);
        model.zero_grad(true);
        for (const std::size_t i : {std::size_t{1}, std::size_t{5}})
            model.at<nn::BatchNorm2d>(i).reset_running_stats();
        Tensor x(x0, true);
        tg::Tape tape;
        const Tensor y = model(x);
        std::vector<std::string> ops = recorded_ops(tape);
        tape.backward(tg::sum(y));
        std::vector<Array> numbers{y.value(), x.grad()};
        for (const Tensor& p : model.parameters())
            numbers.push_back(p.grad());
        for (const Tensor& b : model.buffers())
            numbers.push_back(b.value());
        return std::make_pair(ops, numbers);
    };
    const auto [fused_ops, fused_numbers] = run(tg::Kernels::fast);
    CHECK(fused_ops == std::vector<std::string>{"conv2d", "batch_norm_relu_max_pool2d", "conv2d",
                                                "batch_norm", "relu", "max_pool2d"});
    const auto [ref_ops, ref_numbers] = run(tg::Kernels::reference);
    CHECK(ref_ops == std::vector<std::string>{"conv2d", "batch_norm", "relu", "max_pool2d",
                                              "conv2d", "batch_norm", "relu", "max_pool2d"});

    // A hook on the BatchNorm wants its output: only ReLU + pool are fused.
    std::size_t calls = 0;
    auto handle = model[1].register_forward_hook(
        [&calls](const std::string&, const Tensor&, const Tensor&) { ++calls; });
    const auto [hooked_ops, hooked_numbers] = run(tg::Kernels::fast);
    handle.remove();
    CHECK(calls == 1);
    CHECK(hooked_ops == std::vector<std::string>{"conv2d", "batch_norm", "relu_max_pool2d",
                                                 "conv2d", "batch_norm", "relu", "max_pool2d"});
    REQUIRE(hooked_numbers.size() == fused_numbers.size());
    for (std::size_t i = 0; i < fused_numbers.size(); ++i) {
        CAPTURE(i);  // 0: y, 1: dx, then the parameters' gradients, then the buffers
        CHECK(same_bits(fused_numbers[i], hooked_numbers[i]));
        CHECK(tgtest::mismatch_scaled(fused_numbers[i], ref_numbers[i], tgtest::kKernelsRtol,
                                      tgtest::kKernelsRtol) == "");
    }

    // A hook on the ReLU: nothing after the BatchNorm is fused.
    auto relu_handle =
        model[2].register_forward_hook([](const std::string&, const Tensor&, const Tensor&) {});
    CHECK(run(tg::Kernels::fast).first == ref_ops);
    relu_handle.remove();

    // eval: normalising with the running statistics is not the fused kernel; ReLU + pool are.
    model.eval();
    {
        tgtest::KernelsGuard guard(tg::Kernels::fast);
        tg::Tape tape;
        model(Tensor(x0, true));
        CHECK(recorded_ops(tape) == std::vector<std::string>{"conv2d", "batch_norm",
                                                             "relu_max_pool2d", "conv2d",
                                                             "batch_norm", "relu", "max_pool2d"});
    }
    model.train();
}
