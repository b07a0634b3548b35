// The direct convolution fast kernels (src/ops/kernels/fast/conv2d_direct.*) against conv2d's
// reference kernels (im2col + GEMM), which test_conv.cpp checks against PyTorch and finite
// differences: forward, dx, dW and db on the chapter's layer shapes and on random shapes, in
// float32 and float64; and bit-identical results at 1 and 2 threads. The same for the kernels
// with lanes across channels (src/ops/kernels/fast/conv2d_lanes.*: forward, dW and db, dx).
#include <cstring>
#include <string>
#include <vector>

#include "../src/ops/kernels/fast/conv2d.hpp"
#include "../src/ops/kernels/fast/conv2d_direct.hpp"
#include "../src/ops/kernels/fast/conv2d_lanes.hpp"
#include "tapegrad/ops/conv.hpp"
#include "tapegrad/ops/reduce.hpp"
#include "tapegrad/parallel.hpp"
#include "tapegrad/random.hpp"
#include "tapegrad/tape.hpp"
#include "testing.hpp"
#include "thread_count.hpp"

namespace {

using tg::Array;
using tg::Tensor;
using tg::kernels::fast::DirectConvShape;

/// y, dx, dW, db of one convolution.
struct ConvResult {
    Array y, dx, dw, db;
};

/// The direct kernels' results for input x, weight w, bias b and upstream gradient gy.
ConvResult direct(const DirectConvShape& s, const Array& x, const Array& w, const Array& b,
                  const Array& gy) {
    ConvResult r;
    r.y = Array::from_shape({s.n, s.o, s.oh(), s.ow()});
    r.dx = Array::from_shape({s.n, s.c, s.h, s.w});
    r.dw = xt::zeros<tg::real>({s.o, s.c, s.kh, s.kw});
    r.db = xt::zeros<tg::real>({s.o});
    tg::kernels::fast::conv2d_direct_forward(s, x.data(), w.data(), b.data(), r.y.data());
    tg::kernels::fast::conv2d_direct_backward_input(s, gy.data(), w.data(), r.dx.data());
    tg::kernels::fast::conv2d_direct_backward_weight(s, x.data(), gy.data(), r.dw.data(),
                                                     r.db.data());
    return r;
}

/// The same from tg::conv2d with the reference kernels (im2col + GEMM; the fast kernels would
/// run the direct kernels themselves) and its tape backward.
ConvResult gemm_path(const DirectConvShape& s, const Array& x, const Array& w, const Array& b,
                     const Array& gy) {
    tgtest::KernelsGuard reference(tg::Kernels::reference);
    Tensor xt_(x, true), wt(w, true), bt(b, true);
    tg::Tape tape;
    Tensor y = tg::conv2d(xt_, wt, bt, 1, s.pad_h);
    tape.backward(y, gy);
    return {y.value(), xt_.grad(), wt.grad(), bt.grad()};
}

/// Checks the direct kernels against conv2d on one shape (square padding, as conv2d has).
void check_shape(const DirectConvShape& s, tg::Generator& gen) {
    CAPTURE(s.n);
    CAPTURE(s.c);
    CAPTURE(s.h);
    CAPTURE(s.w);
    CAPTURE(s.o);
    CAPTURE(s.kh);
    CAPTURE(s.kw);
    CAPTURE(s.pad_h);
    REQUIRE(tg::kernels::fast::conv2d_direct_supports(s, 1));
    const Array x = tg::uniform({s.n, s.c, s.h, s.w}, -1, 1, gen);
    const Array w = tg::uniform({s.o, s.c, s.kh, s.kw}, -1, 1, gen);
    const Array b = tg::uniform({s.o}, -1, 1, gen);
    const Array gy = tg::uniform({s.n, s.o, s.oh(), s.ow()}, -1, 1, gen);
    const ConvResult want = gemm_path(s, x, w, b, gy), got = direct(s, x, w, b, gy);
    // Sums of up to a few thousand products of numbers in [-1, 1]: compared against the
    // tensor's scale, with float32 (or float64) round-off for that many terms.
    const double rtol = tg::is_double ? 1e-12 : 1e-5;
    CHECK(tgtest::mismatch_scaled(got.y, want.y, rtol) == "");
    CHECK(tgtest::mismatch_scaled(got.dx, want.dx, rtol) == "");
    CHECK(tgtest::mismatch_scaled(got.dw, want.dw, rtol) == "");
    CHECK(tgtest::mismatch_scaled(got.db, want.db, rtol) == "");
}

DirectConvShape shape(std::size_t n, std::size_t c, std::size_t h, std::size_t w, std::size_t o,
                      std::size_t k, std::size_t pad, std::size_t kw = 0) {
    return {n, c, h, w, o, k, kw ? kw : k, pad, pad};
}

bool bit_identical(const Array& a, const Array& b) {
    // Empty arrays (a kernel that declined the layer: shape [0]) may hold null data, which
    // memcmp must not be given even for 0 bytes.
    return a.shape() == b.shape() &&
           (a.size() == 0 || std::memcmp(a.data(), b.data(), a.size() * sizeof(tg::real)) == 0);
}

/// The lanes kernels' y (if they take the layer's O, else empty: shape [0]), dx (if they take
/// its C), dW and db (if they take its O).
ConvResult lanes(const DirectConvShape& s, const Array& x, const Array& w, const Array& b,
                 const Array& gy) {
    using namespace tg::kernels::fast;
    ConvResult r;
    r.y = r.dx = r.dw = r.db = Array::from_shape({0});
    if (conv2d_lanes_forward_supports(s, 1)) {
        r.y = Array::from_shape({s.n, s.o, s.oh(), s.ow()});
        conv2d_lanes_forward(s, x.data(), w.data(), b.data(), r.y.data());
    }
    if (conv2d_lanes_input_supports(s, 1)) {
        r.dx = Array::from_shape({s.n, s.c, s.h, s.w});
        conv2d_lanes_backward_input(s, gy.data(), w.data(), r.dx.data());
    }
    if (conv2d_lanes_weight_supports(s, 1)) {
        r.dw = xt::zeros<tg::real>({s.o, s.c, s.kh, s.kw});
        r.db = xt::zeros<tg::real>({s.o});
        conv2d_lanes_backward_weight(s, x.data(), gy.data(), r.dw.data(), r.db.data());
    }
    return r;
}

/// How many shapes check_lanes_shape saw each lanes kernel take.
struct LanesTaken {
    int forward = 0, input = 0, weight = 0;
};

/// Checks the lanes kernels against conv2d (reference kernels) on one shape.
void check_lanes_shape(const DirectConvShape& s, tg::Generator& gen, LanesTaken& taken) {
    CAPTURE(s.n);
    CAPTURE(s.c);
    CAPTURE(s.h);
    CAPTURE(s.w);
    CAPTURE(s.o);
    CAPTURE(s.kh);
    CAPTURE(s.kw);
    CAPTURE(s.pad_h);
    const Array x = tg::uniform({s.n, s.c, s.h, s.w}, -1, 1, gen);
    const Array w = tg::uniform({s.o, s.c, s.kh, s.kw}, -1, 1, gen);
    const Array b = tg::uniform({s.o}, -1, 1, gen);
    const Array gy = tg::uniform({s.n, s.o, s.oh(), s.ow()}, -1, 1, gen);
    const ConvResult want = gemm_path(s, x, w, b, gy), got = lanes(s, x, w, b, gy);
    const double rtol = tg::is_double ? 1e-12 : 1e-5;
    if (got.y.size() > 0) {
        ++taken.forward;
        CHECK(tgtest::mismatch_scaled(got.y, want.y, rtol) == "");
    }
    if (got.dx.size() > 0) {
        ++taken.input;
        CHECK(tgtest::mismatch_scaled(got.dx, want.dx, rtol) == "");
    }
    if (got.dw.size() > 0) {
        ++taken.weight;
        CHECK(tgtest::mismatch_scaled(got.dw, want.dw, rtol) == "");
        CHECK(tgtest::mismatch_scaled(got.db, want.db, rtol) == "");
    }
}

}  // namespace

TEST_CASE("conv2d direct kernels match conv2d on the chapter's layers") {
    tg::Generator gen(14);
    check_shape(shape(5, 1, 28, 28, 6, 5, 2), gen);   // ch310_train_cnn conv1
    check_shape(shape(5, 6, 14, 14, 16, 5, 0), gen);  // ch310_train_cnn conv2
    check_shape(shape(9, 1, 28, 28, 8, 3, 0), gen);   // bench conv1
    check_shape(shape(9, 8, 13, 13, 16, 3, 0), gen);  // bench conv2
}

TEST_CASE("conv2d direct kernels match conv2d on random shapes") {
    tg::Generator gen(2026);
    const auto pick = [&gen](std::size_t lo, std::size_t hi) {
        return lo + static_cast<std::size_t>(gen.uniform01() * static_cast<double>(hi - lo + 1));
    };
    for (int i = 0; i < 60; ++i) {
        const std::size_t kh = pick(1, 5), kw = pick(1, 7);
        const std::size_t pad = pick(0, std::min(kh, kw) - 1);
        // at least as large as the kernel once padded; rectangular on purpose
        const std::size_t h = pick(kh > 2 * pad ? kh - 2 * pad : 1, 12);
        const std::size_t w = pick(kw > 2 * pad ? kw - 2 * pad : 1, 12);
        check_shape(shape(pick(1, 4), pick(1, 5), h, w, pick(1, 19), kh, pad, kw), gen);
    }
}

TEST_CASE("conv2d direct kernels: bit-identical at 1 and 2 threads") {
    tg::Generator gen(7);
    for (const DirectConvShape& s :
         {shape(40, 8, 13, 13, 16, 3, 0), shape(37, 1, 28, 28, 6, 5, 2)}) {
        CAPTURE(s.c);
        const Array x = tg::uniform({s.n, s.c, s.h, s.w}, -1, 1, gen);
        const Array w = tg::uniform({s.o, s.c, s.kh, s.kw}, -1, 1, gen);
        const Array b = tg::uniform({s.o}, -1, 1, gen);
        const Array gy = tg::uniform({s.n, s.o, s.oh(), s.ow()}, -1, 1, gen);
        ConvResult one, two;
        {
            tgtest::ThreadCount t(1);
            one = direct(s, x, w, b, gy);
        }
        {
            tgtest::ThreadCount t(2);
            two = direct(s, x, w, b, gy);
        }
        CHECK(bit_identical(one.y, two.y));
        CHECK(bit_identical(one.dx, two.dx));
        CHECK(bit_identical(one.dw, two.dw));
        CHECK(bit_identical(one.db, two.db));
    }
}

TEST_CASE("conv2d direct kernels: which shapes they take") {
    using tg::kernels::fast::conv2d_direct_supports;
    CHECK(conv2d_direct_supports(shape(1, 1, 28, 28, 6, 5, 2), 1));
    CHECK_FALSE(conv2d_direct_supports(shape(1, 1, 28, 28, 6, 5, 2), 2));     // stride 2
    CHECK_FALSE(conv2d_direct_supports(shape(1, 1, 28, 28, 6, 3, 3), 1));     // pad >= kernel
    CHECK_FALSE(conv2d_direct_supports(shape(1, 1, 28, 28, 6, 3, 0, 9), 1));  // kW > 7
    CHECK_FALSE(conv2d_direct_supports(shape(1, 1, 2, 2, 6, 3, 0), 1));       // kernel > input
}

TEST_CASE("conv2d lanes kernels match conv2d on the chapter's layers") {
    tg::Generator gen(28);
    LanesTaken taken;
    check_lanes_shape(shape(5, 1, 28, 28, 6, 5, 2), gen, taken);   // ch310_train_cnn conv1
    check_lanes_shape(shape(5, 6, 14, 14, 16, 5, 0), gen, taken);  // ch310_train_cnn conv2
    check_lanes_shape(shape(9, 1, 28, 28, 8, 3, 0), gen, taken);   // bench conv1
    check_lanes_shape(shape(9, 8, 13, 13, 16, 3, 0), gen, taken);  // bench conv2
    // every layer's dx; y, dW with O = 16 where 16 filters fit two registers (float32; float64
    // needs four with AVX2)
    const std::size_t lanes = tg::kernels::fast::conv2d_direct_simd_bytes() / sizeof(tg::real);
    CHECK(taken.input == 4);
    CHECK(taken.weight == (16 <= 2 * lanes ? 4 : 2));
    CHECK(taken.forward == taken.weight);
}

TEST_CASE("conv2d lanes forward without a bias matches conv2d without one") {
    tg::Generator gen(29);
    int taken = 0;
    for (const DirectConvShape& s : {shape(3, 8, 13, 13, 16, 3, 0), shape(2, 1, 28, 28, 6, 5, 2),
                                     shape(1, 3, 9, 17, 5, 3, 1)}) {
        CAPTURE(s.c);
        const Array x = tg::uniform({s.n, s.c, s.h, s.w}, -1, 1, gen);
        const Array w = tg::uniform({s.o, s.c, s.kh, s.kw}, -1, 1, gen);
        // 16 filters are four registers of doubles with AVX2: not the kernel's layer there
        if (!tg::kernels::fast::conv2d_lanes_forward_supports(s, 1)) continue;
        ++taken;
        Array y = Array::from_shape({s.n, s.o, s.oh(), s.ow()});
        tg::kernels::fast::conv2d_lanes_forward(s, x.data(), w.data(), nullptr, y.data());
        tgtest::KernelsGuard reference(tg::Kernels::reference);
        const Tensor want = tg::conv2d(Tensor(x), Tensor(w), Tensor{}, 1, s.pad_h);
        CHECK(tgtest::mismatch_scaled(y, want.value(), tg::is_double ? 1e-12 : 1e-5) == "");
    }
    CHECK(taken >= 2);
}

TEST_CASE("conv2d lanes kernels match conv2d on random shapes") {
    // Channels up to 19: one and two registers of lanes and the layers they do not take;
    // rows up to 30 pixels: several tiles per row of dx; batches not a multiple of the
    // 8-image blocks of dW.
    tg::Generator gen(2828);
    const auto pick = [&gen](std::size_t lo, std::size_t hi) {
        return lo + static_cast<std::size_t>(gen.uniform01() * static_cast<double>(hi - lo + 1));
    };
    LanesTaken taken;
    for (int i = 0; i < 60; ++i) {
        const std::size_t kh = pick(1, 5), kw = pick(1, 7);
        const std::size_t pad = pick(0, std::min(kh, kw) - 1);
        const std::size_t h = pick(kh > 2 * pad ? kh - 2 * pad : 1, 9);
        const std::size_t w = pick(kw > 2 * pad ? kw - 2 * pad : 1, 30);
        check_lanes_shape(shape(pick(1, 11), pick(1, 19), h, w, pick(1, 19), kh, pad, kw), gen,
                          taken);
    }
    // about 50 of the 60 shapes in float32 and 25 in float64 (two registers of 8 or 4 lanes)
    CHECK(taken.forward > 10);
    CHECK(taken.input > 10);
    CHECK(taken.weight > 10);
}

TEST_CASE("conv2d lanes kernels: the unrolled 3x3 and 5x5 tiles on random shapes") {
    // The forward and dx kernels have 3x3 and 5x5 tiles with the taps fixed at compile time,
    // and the forward's tiles run over the end of an output row; dW transposes g by 8 x 8
    // blocks when O fills whole registers (O = one or two registers of lanes). Random C, O,
    // sizes and padding with those filters: C and O up to two registers and a few more (the
    // layers the kernels decline), images a few pixels wide (fewer pixels than a tile, rows
    // narrower than a register) up to 23.
    const std::size_t lanes = tg::kernels::fast::conv2d_direct_simd_bytes() / sizeof(tg::real);
    tg::Generator gen(2829);
    const auto pick = [&gen](std::size_t lo, std::size_t hi) {
        return lo + static_cast<std::size_t>(gen.uniform01() * static_cast<double>(hi - lo + 1));
    };
    LanesTaken taken;
    for (int i = 0; i < 24; ++i) {
        const std::size_t k = i % 2 == 0 ? 3 : 5, pad = pick(0, k - 1);
        const std::size_t lo = k > 2 * pad ? k - 2 * pad : 1;
        const std::size_t o =
            i % 3 == 0 ? pick(1, 2 * lanes + 3) : (i % 3 == 1 ? lanes : 2 * lanes);
        check_lanes_shape(
            shape(pick(1, 9), pick(1, 2 * lanes + 3), pick(lo, 23), pick(lo, 23), o, k, pad), gen,
            taken);
    }
    CHECK(taken.forward > 10);
    CHECK(taken.input > 10);
    CHECK(taken.weight > 10);
}

TEST_CASE("conv2d lanes dx: the 5x5 row tiles and 3x3 grid tiles on every height and padding") {
    // dx with one register of channels and 5x5 filters runs row tiles of up to 10 pixels of
    // one row (AVX2) and skips the filter rows that read only the 4 - pad rows of zeros above
    // and below g; 3x3 runs the grid tiles. Every padding, heights from one output row up,
    // rows from one pixel to several tiles, against conv2d's reference kernels; C = one
    // register (the chapter's conv2) and fewer channels.
    const std::size_t lanes = tg::kernels::fast::conv2d_direct_simd_bytes() / sizeof(tg::real);
    tg::Generator gen(2830);
    LanesTaken taken;
    int shapes = 0;
    for (const std::size_t k : {3, 5})
        for (std::size_t pad = 0; pad < k; ++pad) {
            const std::size_t lo = k > 2 * pad ? k - 2 * pad : 1;
            for (std::size_t h = lo; h < lo + 6; ++h) {
                const std::size_t w = lo + (h * 5) % 15;  // 1 to 15 output pixels a row
                const std::size_t c = h % 2 == 0 ? lanes : lanes / 2 + 1;
                check_lanes_shape(shape(2, c, h, w, 16, k, pad), gen, taken);
                ++shapes;
            }
        }
    CHECK(taken.input == shapes);
}

TEST_CASE("conv2d lanes: the 3x3 grid tiles on every width and padding, forward and dx") {
    // With one register of output channels (the forward's O, dx's C) and 3x3 filters the
    // kernels run the grid tiles over planes whose rows share their padding columns (rows
    // W + pad apart; none of the grid's positions wasted for dx without padding), cut into
    // tiles of every size up to 12 that cover the grid exactly, each running only the filter
    // rows its output rows read numbers from. Every padding, rows narrower than a register up
    // to past two, one or two images, heights from one output row: fewer positions than a
    // tile, tiles crossing one, two or three rows.
    const std::size_t lanes = tg::kernels::fast::conv2d_direct_simd_bytes() / sizeof(tg::real);
    tg::Generator gen(2831);
    LanesTaken taken;
    int shapes = 0;
    for (std::size_t pad = 0; pad < 3; ++pad) {
        const std::size_t lo = pad < 2 ? 3 - 2 * pad : 1;
        for (std::size_t w = lo; w < lo + 2 * lanes + 3; ++w) {
            const std::size_t h = lo + w % 4, n = 1 + w % 2;
            const std::size_t c = w % 3 == 0 ? lanes : 1 + w % lanes, o = lanes + 1 - c;
            check_lanes_shape(shape(n, c, h, w, o, 3, pad), gen, taken);
            ++shapes;
        }
    }
    // every shape's dx (C <= one register); the forward where the filters have 64 numbers or
    // more is the fast kernels' rule, not the lanes kernels' own: they take every O here
    CHECK(taken.input == shapes);
    CHECK(taken.forward == shapes);
}

TEST_CASE("conv2d lanes kernels: bit-identical at 1 and 2 threads") {
    tg::Generator gen(8);
    for (const DirectConvShape& s :
         {shape(40, 8, 13, 13, 16, 3, 0), shape(37, 1, 28, 28, 6, 5, 2)}) {
        CAPTURE(s.c);
        const Array x = tg::uniform({s.n, s.c, s.h, s.w}, -1, 1, gen);
        const Array w = tg::uniform({s.o, s.c, s.kh, s.kw}, -1, 1, gen);
        const Array b = tg::uniform({s.o}, -1, 1, gen);
        const Array gy = tg::uniform({s.n, s.o, s.oh(), s.ow()}, -1, 1, gen);
        ConvResult one, two;
        {
            tgtest::ThreadCount t(1);
            one = lanes(s, x, w, b, gy);
        }
        {
            tgtest::ThreadCount t(2);
            two = lanes(s, x, w, b, gy);
        }
        // y wherever the forward kernel takes the layer: O filters in two registers
        const std::size_t lanes = tg::kernels::fast::conv2d_direct_simd_bytes() / sizeof(tg::real);
        CHECK((one.y.size() > 0) == (s.o <= 2 * lanes));
        CHECK(bit_identical(one.y, two.y));
        CHECK(bit_identical(one.dx, two.dx));
        CHECK(bit_identical(one.dw, two.dw));
        CHECK(bit_identical(one.db, two.db));
    }
}

TEST_CASE("conv2d lanes kernels: which layers conv2d's backward gives them") {
    using namespace tg::kernels::fast;
    const auto layer = [](std::size_t c, std::size_t h, std::size_t o, std::size_t k,
                          std::size_t pad) {
        tg::kernels::Conv2dShape s{};
        s.n = 4, s.c = c, s.h = h, s.w = h, s.o = o, s.kh = k, s.kw = k;
        s.oh = h + 2 * pad - k + 1, s.ow = s.oh, s.stride = 1, s.pad = pad;
        return s;
    };
    const std::size_t lanes = conv2d_direct_simd_bytes() / sizeof(tg::real);
    // bench conv2 (C kH kW = 72) and ch310_train_cnn's conv2 (150): dW where 16 filters fit
    // two registers (float32; float64 needs four with AVX2), dx with 8 and 6 channels
    CHECK(conv2d_backward_weight_takes_lanes(layer(8, 13, 16, 3, 0)) == (16 <= 2 * lanes));
    CHECK(conv2d_backward_weight_takes_lanes(layer(6, 14, 16, 5, 0)) == (16 <= 2 * lanes));
    CHECK(conv2d_backward_input_takes_lanes(layer(8, 13, 16, 3, 0)) == (8 <= 2 * lanes));
    CHECK(conv2d_backward_input_takes_lanes(layer(6, 14, 16, 5, 0)) == (12 >= lanes));
    // the forward pass of conv2 with lanes across its 16 filters (float32; float64 needs four
    // registers with AVX2)
    CHECK(conv2d_forward_takes_lanes(layer(8, 13, 16, 3, 0)) == (16 <= 2 * lanes));
    CHECK(conv2d_forward_takes_lanes(layer(6, 14, 16, 5, 0)) == (16 <= 2 * lanes));
    // conv1: filters of 9 and 25 numbers, one input channel
    CHECK_FALSE(conv2d_forward_takes_lanes(layer(1, 28, 8, 3, 0)));
    CHECK_FALSE(conv2d_forward_takes_lanes(layer(1, 28, 6, 5, 2)));
    CHECK_FALSE(conv2d_backward_weight_takes_lanes(layer(1, 28, 8, 3, 0)));
    CHECK_FALSE(conv2d_backward_weight_takes_lanes(layer(1, 28, 6, 5, 2)));
    CHECK_FALSE(conv2d_backward_input_takes_lanes(layer(1, 28, 8, 3, 0)));
    // the knob bench_tapegrad --no-lanes turns
    conv2d_use_lanes = false;
    CHECK_FALSE(conv2d_forward_takes_lanes(layer(8, 13, 16, 3, 0)));
    CHECK_FALSE(conv2d_backward_weight_takes_lanes(layer(8, 13, 16, 3, 0)));
    CHECK_FALSE(conv2d_backward_input_takes_lanes(layer(8, 13, 16, 3, 0)));
    conv2d_use_lanes = true;
}
