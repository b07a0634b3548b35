// The convolution kernels for one input channel (src/ops/kernels/fast/conv2d_one_channel.*:
// forward, dW and db) against conv2d's reference kernels (im2col + GEMM), which test_conv.cpp
// checks against PyTorch and finite differences: on the chapter's conv1 layers and on random
// shapes (rows that are and are not a multiple of the SIMD width, every kW, padding), in
// float32 and float64; bit-identical results at 1 and 2 threads; and the rule in
// kernels/fast/conv2d.cpp that gives them conv1.
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "../src/ops/kernels/fast/conv2d.hpp"
#include "../src/ops/kernels/fast/conv2d_direct.hpp"
#include "../src/ops/kernels/fast/conv2d_one_channel.hpp"
#include "tapegrad/ops/conv.hpp"
#include "tapegrad/parallel.hpp"
#include "tapegrad/random.hpp"
#include "tapegrad/tape.hpp"
#include "testing.hpp"
#include "thread_count.hpp"

namespace {

using tg::Array;
using tg::Tensor;
using tg::kernels::fast::DirectConvShape;

struct Result {
    Array y, dw, db;
};

Array uniform_like(std::initializer_list<std::size_t> shape, tg::Generator& gen) {
    return tg::uniform(std::vector<std::size_t>(shape), -1, 1, gen);
}

/// The one-channel kernels' y, dW and db (dW and db started at 0.5: the kernel adds to them).
Result one_channel(const DirectConvShape& s, const Array& x, const Array& w, const Array& b,
                   const Array& gy, bool bias = true) {
    Result r;
    r.y = Array::from_shape({s.n, s.o, s.oh(), s.ow()});
    r.dw = xt::zeros<tg::real>({s.o, s.c, s.kh, s.kw}) + tg::real(0.5);
    r.db = xt::zeros<tg::real>({s.o}) + tg::real(0.5);
    tg::kernels::fast::conv2d_one_channel_forward(s, x.data(), w.data(), bias ? b.data() : nullptr,
                                                  r.y.data());
    tg::kernels::fast::conv2d_one_channel_backward_weight(s, x.data(), gy.data(), r.dw.data(),
                                                          r.db.data());
    return r;
}

/// tg::conv2d with the reference kernels and its tape backward (dW and db plus 0.5, as above).
Result reference(const DirectConvShape& s, const Array& x, const Array& w, const Array& b,
                 const Array& gy, bool bias = true) {
    tgtest::KernelsGuard guard(tg::Kernels::reference);
    Tensor xt_(x, false), wt(w, true), bt(b, true);
    tg::Tape tape;
    Tensor y = tg::conv2d(xt_, wt, bias ? bt : Tensor{}, 1, s.pad_h);
    tape.backward(y, gy);
    return {y.value(), wt.grad() + tg::real(0.5),
            bias ? Array(bt.grad() + tg::real(0.5)) : Array{}};
}

DirectConvShape shape(std::size_t n, std::size_t h, std::size_t w, std::size_t o, std::size_t k,
                      std::size_t pad, std::size_t kw = 0) {
    return {n, 1, h, w, o, k, kw ? kw : k, pad, pad};
}

void check_shape(const DirectConvShape& s, tg::Generator& gen, bool bias = true) {
    CAPTURE(s.n);
    CAPTURE(s.h);
    CAPTURE(s.w);
    CAPTURE(s.o);
    CAPTURE(s.kh);
    CAPTURE(s.kw);
    CAPTURE(s.pad_h);
    REQUIRE(tg::kernels::fast::conv2d_one_channel_supports(s, 1));
    const Array x = uniform_like({s.n, 1, s.h, s.w}, gen);
    const Array w = uniform_like({s.o, 1, s.kh, s.kw}, gen);
    const Array b = uniform_like({s.o}, gen);
    const Array gy = uniform_like({s.n, s.o, s.oh(), s.ow()}, gen);
    const Result want = reference(s, x, w, b, gy, bias), got = one_channel(s, x, w, b, gy, bias);
    const double rtol = tg::is_double ? 1e-12 : 1e-5;
    CHECK(tgtest::mismatch_scaled(got.y, want.y, rtol) == "");
    CHECK(tgtest::mismatch_scaled(got.dw, want.dw, rtol) == "");
    if (bias) CHECK(tgtest::mismatch_scaled(got.db, want.db, rtol) == "");
}

bool bit_identical(const Array& a, const Array& b) {
    return a.shape() == b.shape() &&
           std::memcmp(a.data(), b.data(), a.size() * sizeof(tg::real)) == 0;
}

std::size_t simd_lanes() {
    return tg::kernels::fast::conv2d_direct_simd_bytes() / sizeof(tg::real);
}

}  // namespace

TEST_CASE("conv2d one-channel kernels match conv2d on the chapter's conv1 layers") {
    tg::Generator gen(1281);
    check_shape(shape(9, 28, 28, 8, 3, 0), gen);         // bench conv1: 26 columns, 26 rows
    check_shape(shape(5, 28, 28, 6, 5, 2), gen);         // ch310_train_cnn conv1: 28 x 28, padded
    check_shape(shape(3, 28, 28, 8, 3, 0), gen, false);  // no bias
    check_shape(shape(2, 28, 28, 6, 5, 2), gen, false);
}

TEST_CASE("conv2d one-channel kernels match conv2d on random shapes") {
    // Rows of 1 to 5 SIMD vectors (a multiple of the width or not), 1 to 30 rows (fewer and
    // more than a block of rows), every kW, 1 to 19 filters, batches not a multiple of the
    // 8-image blocks of dW.
    tg::Generator gen(2828);
    const auto pick = [&gen](std::size_t lo, std::size_t hi) {
        return lo + static_cast<std::size_t>(gen.uniform01() * static_cast<double>(hi - lo + 1));
    };
    int taken = 0, filters_in_registers = 0;
    for (int i = 0; taken < 40; ++i) {
        REQUIRE(i < 400);
        const bool square = i % 3 == 0;  // 3x3 and 5x5: the forward with the filter in registers
        const std::size_t kh = square ? 3 + 2 * pick(0, 1) : pick(1, 5);
        const std::size_t kw = square ? kh : pick(1, 7);
        const std::size_t pad = pick(0, std::min(kh, kw) - 1);
        const std::size_t h = pick(kh > 2 * pad ? kh - 2 * pad : 1, 30);
        const std::size_t w = pick(kw > 2 * pad ? kw - 2 * pad : 1, 5 * simd_lanes() + 3);
        const DirectConvShape s = shape(pick(1, 11), h, w, pick(1, 19), kh, pad, kw);
        if (!tg::kernels::fast::conv2d_one_channel_supports(s, 1)) continue;  // OW < lanes
        ++taken;
        if (square) ++filters_in_registers;
        check_shape(s, gen, i % 5 != 0);
    }
    CHECK(filters_in_registers > 10);
}

TEST_CASE("conv2d one-channel kernels: dW alone and db alone") {
    tg::Generator gen(1282);
    const DirectConvShape s = shape(10, 28, 28, 8, 3, 0);
    const Array x = uniform_like({s.n, 1, s.h, s.w}, gen);
    const Array w = uniform_like({s.o, 1, s.kh, s.kw}, gen);
    const Array b = uniform_like({s.o}, gen);
    const Array gy = uniform_like({s.n, s.o, s.oh(), s.ow()}, gen);
    const Result both = one_channel(s, x, w, b, gy);
    Array dw = xt::zeros<tg::real>({s.o, s.c, s.kh, s.kw}) + tg::real(0.5);
    Array db = xt::zeros<tg::real>({s.o}) + tg::real(0.5);
    tg::kernels::fast::conv2d_one_channel_backward_weight(s, x.data(), gy.data(), dw.data(),
                                                          nullptr);
    tg::kernels::fast::conv2d_one_channel_backward_weight(s, x.data(), gy.data(), nullptr,
                                                          db.data());
    CHECK(bit_identical(dw, both.dw));
    CHECK(bit_identical(db, both.db));
}

TEST_CASE("conv2d one-channel kernels: an infinite x gives dW the reference's infinities") {
    // x[27, 20] = +inf meets only the last output row through the filter's last row: dW[o, 2, q]
    // = g[o, 25, 20 - q] * inf = ±inf, the rest finite. With 8 lanes that output row's columns
    // 18..21 are the lanes the dW kernel's last vector shares with the one before: made 0 in g,
    // they would add 0 * inf = NaN; left out, they add nothing.
    tg::Generator gen(1285);
    const DirectConvShape s = shape(3, 28, 28, 8, 3, 0);
    Array x = uniform_like({s.n, 1, s.h, s.w}, gen);
    x(1, 0, 27, 20) = std::numeric_limits<tg::real>::infinity();
    const Array w = uniform_like({s.o, 1, s.kh, s.kw}, gen);
    const Array b = uniform_like({s.o}, gen);
    const Array gy = uniform_like({s.n, s.o, s.oh(), s.ow()}, gen);
    const Result want = reference(s, x, w, b, gy), got = one_channel(s, x, w, b, gy);
    const double rtol = tg::is_double ? 1e-12 : 1e-5;
    for (std::size_t o = 0; o < s.o; ++o) {
        for (std::size_t p = 0; p < 3; ++p) {
            for (std::size_t q = 0; q < 3; ++q) {
                CAPTURE(o);
                CAPTURE(p);
                CAPTURE(q);
                const tg::real a = got.dw(o, 0, p, q), e = want.dw(o, 0, p, q);
                CHECK(std::isinf(e) == (p == 2));
                if (std::isinf(e)) {
                    CHECK(a == e);
                } else {
                    CHECK(std::abs(a - e) <= rtol * (1 + std::abs(e)));
                }
            }
        }
    }
    CHECK(tgtest::mismatch_scaled(got.db, want.db, rtol) == "");
}

TEST_CASE("conv2d one-channel kernels: bit-identical at 1 and 2 threads") {
    // batches large enough that 2 threads split both the images of y and the blocks of dW
    tg::Generator gen(1283);
    for (const DirectConvShape& s : {shape(64, 28, 28, 8, 3, 0), shape(37, 28, 28, 6, 5, 2)}) {
        CAPTURE(s.kh);
        const Array x = uniform_like({s.n, 1, s.h, s.w}, gen);
        const Array w = uniform_like({s.o, 1, s.kh, s.kw}, gen);
        const Array b = uniform_like({s.o}, gen);
        const Array gy = uniform_like({s.n, s.o, s.oh(), s.ow()}, gen);
        Result one, two;
        {
            tgtest::ThreadCount t(1);
            one = one_channel(s, x, w, b, gy);
        }
        {
            tgtest::ThreadCount t(2);
            two = one_channel(s, x, w, b, gy);
        }
        CHECK(bit_identical(one.y, two.y));
        CHECK(bit_identical(one.dw, two.dw));
        CHECK(bit_identical(one.db, two.db));
    }
}

TEST_CASE("conv2d one-channel kernels: which layers conv2d gives them") {
    using namespace tg::kernels::fast;
    const auto layer = [](std::size_t c, std::size_t h, std::size_t o, std::size_t k,
                          std::size_t pad, std::size_t stride = 1) {
        tg::kernels::Conv2dShape s{};
        s.n = 4, s.c = c, s.h = h, s.w = h, s.o = o, s.kh = k, s.kw = k;
        s.oh = (h + 2 * pad - k) / stride + 1, s.ow = s.oh, s.stride = stride, s.pad = pad;
        return s;
    };
    // the benchmark's conv1: one input channel, 3x3 filters, rows of 26 outputs; not
    // ch310_train_cnn's 5x5 conv1 (measured level with the direct kernels, which keep it)
    CHECK(conv2d_takes_one_channel(layer(1, 28, 8, 3, 0)));
    CHECK(conv2d_takes_one_channel(layer(1, 28, 6, 3, 1)));
    CHECK_FALSE(conv2d_takes_one_channel(layer(1, 28, 6, 5, 2)));
    // not: more input channels (conv2), stride 2, more filters than the direct rule takes,
    // rows shorter than one SIMD vector
    CHECK_FALSE(conv2d_takes_one_channel(layer(8, 13, 16, 3, 0)));
    CHECK_FALSE(conv2d_takes_one_channel(layer(1, 28, 8, 3, 0, 2)));
    CHECK_FALSE(conv2d_takes_one_channel(layer(1, 28, 32, 3, 0)));
    const std::size_t short_row = simd_lanes() + 1;  // OW = lanes - 1 with a 3x3 filter
    CHECK_FALSE(conv2d_takes_one_channel(layer(1, short_row, 8, 3, 0)));
    CHECK(conv2d_takes_one_channel(layer(1, short_row + 1, 8, 3, 0)));
    conv2d_use_one_channel = false;  // the knob for a before/after in one binary
    CHECK_FALSE(conv2d_takes_one_channel(layer(1, 28, 8, 3, 0)));
    conv2d_use_one_channel = true;
}

TEST_CASE("conv2d one-channel kernels: tg::conv2d runs them on conv1 with the fast kernels") {
    // The fast kernels' conv2d gives exactly the one-channel kernels' numbers. (Six images: one
    // block of dW, so dW + 0.5 rounds the same whichever side the 0.5 is added.)
    tg::Generator gen(1284);
    const DirectConvShape s = shape(6, 28, 28, 8, 3, 0);
    const Array x = uniform_like({s.n, 1, s.h, s.w}, gen);
    const Array w = uniform_like({s.o, 1, s.kh, s.kw}, gen);
    const Array b = uniform_like({s.o}, gen);
    const Array gy = uniform_like({s.n, s.o, s.oh(), s.ow()}, gen);
    const Result want = one_channel(s, x, w, b, gy);
    const auto fast_conv = [&] {
        tgtest::KernelsGuard guard(tg::Kernels::fast);
        Tensor xt_(x, false), wt(w, true), bt(b, true);
        tg::Tape tape;
        Tensor y = tg::conv2d(xt_, wt, bt, 1, 0);
        tape.backward(y, gy);
        return Result{y.value(), wt.grad() + tg::real(0.5), bt.grad() + tg::real(0.5)};
    };
    const Result got = fast_conv();
    CHECK(bit_identical(got.y, want.y));
    CHECK(bit_identical(got.dw, want.dw));
    CHECK(bit_identical(got.db, want.db));
}
