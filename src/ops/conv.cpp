// conv2d: argument checks and the tape entry; the arithmetic (im2col + GEMM, one image at a
// time) is in kernels/reference/conv2d.cpp, and with blocks of images on threads in
// kernels/fast/conv2d.cpp.
#include "tapegrad/ops/conv.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/kernel_set.hpp"
#include "tapegrad/kernels.hpp"
#include "tapegrad/ops/catalog.hpp"
#include "tapegrad/tape.hpp"

namespace tg {

namespace {

using kernels::Conv2dShape;

Conv2dShape check_and_size(const Tensor& x, const Tensor& weight, const Tensor& bias,
                           std::size_t stride, std::size_t padding) {
    const Shape xs = x.shape(), ws = weight.shape();
    if (xs.size() != 4) {
        throw std::invalid_argument("conv2d: expected a 4-D input [N, C, H, W], got " +
                                    shape_str(xs));
    }
    if (ws.size() != 4) {
        throw std::invalid_argument("conv2d: expected a 4-D weight [O, C, kH, kW], got " +
                                    shape_str(ws));
    }
    if (xs[1] != ws[1]) {
        throw std::invalid_argument("conv2d: input " + shape_str(xs) + " has " +
                                    std::to_string(xs[1]) + " channels, weight expects " +
                                    std::to_string(ws[1]) + " (weight " + shape_str(ws) + ")");
    }
    if (bias.defined() && bias.shape() != Shape{ws[0]}) {
        throw std::invalid_argument("conv2d: bias " + shape_str(bias.shape()) +
                                    " does not match weight " + shape_str(ws) + ": expected [" +
                                    std::to_string(ws[0]) + "]");
    }
    // As PyTorch: an input may be empty only by its batch or its channels. Padding around an
    // image of 0 rows or columns would make an output from no numbers (and the fast kernels
    // read rows of an input that has none: tests/fuzz/fuzz_shapes.cpp).
    if (xs[0] > 0 && xs[1] > 0 && (xs[2] == 0 || xs[3] == 0)) {
        throw std::invalid_argument("conv2d: input " + shape_str(xs) +
                                    " has images of 0 rows or columns: only a batch of 0 images "
                                    "or 0 channels may be empty");
    }
    if (stride == 0) throw std::invalid_argument("conv2d: stride must be positive, got 0");
    // H + 2 padding must not wrap around (padding = (size_t)-1 made it H - 2).
    const std::size_t larger = std::max(xs[2], xs[3]);
    // The padded size must fit the kernels' signed index, std::ptrdiff_t (a padding near 2^62
    // overflowed im2col's signed sums: found by tests/fuzz/fuzz_shapes.cpp).
    constexpr auto kMaxIndex = static_cast<std::size_t>(std::numeric_limits<std::ptrdiff_t>::max());
    if (larger > kMaxIndex || padding > (kMaxIndex - larger) / 2) {
        throw std::invalid_argument(
            "conv2d: padding " + std::to_string(padding) + " is too large: the padded input (" +
            std::to_string(larger) +
            " + 2 x padding rows) does not fit in a std::ptrdiff_t (input " + shape_str(xs) + ")");
    }
    const std::size_t ph = xs[2] + 2 * padding, pw = xs[3] + 2 * padding;
    if (ws[2] > ph || ws[3] > pw || ws[2] == 0 || ws[3] == 0) {
        throw std::invalid_argument("conv2d: kernel " + std::to_string(ws[2]) + "x" +
                                    std::to_string(ws[3]) + " does not fit the padded input " +
                                    std::to_string(ph) + "x" + std::to_string(pw) + " (input " +
                                    shape_str(xs) + ", padding " + std::to_string(padding) + ")");
    }
    Conv2dShape s{};
    s.n = xs[0], s.c = xs[1], s.h = xs[2], s.w = xs[3];
    s.o = ws[0], s.kh = ws[2], s.kw = ws[3];
    s.stride = stride, s.pad = padding;
    s.oh = (ph - s.kh) / stride + 1;
    s.ow = (pw - s.kw) / stride + 1;
    return s;
}

/// conv2d's backward, the closure tg::conv2d records on the tape: from dy [N, O, OH, OW] the
/// backward kernel computes dx [N, C, H, W], dW [O, C, kH, kW] and db [O], each only if wanted.
struct Conv2dBackward final : BackwardClosure {
    Conv2dBackward(const Tensor& input, const Tensor& weight_, const Tensor& bias_,
                   const Conv2dShape& s_)
        : x(input), weight(weight_), bias(bias_), s(s_) {}

    Tensor x, weight, bias;
    Conv2dShape s;

    void operator()(const Array& dy) override {
        const bool want_dx = x.requires_grad(), want_dw = weight.requires_grad();
        const bool want_db = bias.defined() && bias.requires_grad();
        Array dx = want_dx ? new_array(x.shape()) : Array();
        Array dw = want_dw ? new_array(weight.shape()) : Array();
        Array db = want_db ? new_array({s.o}) : Array();
        real* dxp = want_dx ? dx.data() : nullptr;  // null: not wanted
        real* dwp = want_dw ? dw.data() : nullptr;
        real* dbp = want_db ? db.data() : nullptr;
        if (dy.size() == 0) {
            // No output (an empty batch, or no output channels): nothing flows back, every
            // gradient is 0. Checked once here, for both kernel sets: the reference kernel
            // would still size its im2col buffers for images that are not there (a batch of 0
            // images of 2^40 positions asked for 4 TiB: tests/fuzz/fuzz_shapes.cpp).
            if (want_dx) dx.fill(real(0));
            if (want_dw) dw.fill(real(0));
            if (want_db) db.fill(real(0));
        } else {
            kernels::in_use->conv2d_backward(dxp, dwp, dbp, dy.data(), x.value().data(),
                                             weight.value().data(), s);
        }
        if (want_dw) weight.accumulate_grad(std::move(dw));
        if (want_db) bias.accumulate_grad(std::move(db));
        if (want_dx) x.accumulate_grad(std::move(dx));
    }
};

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, std::size_t stride,
              std::size_t padding) {
    const Conv2dShape s = check_and_size(x, weight, bias, stride, padding);
    Array y = new_array({s.n, s.o, s.oh, s.ow});
    const real* b = bias.defined() ? bias.value().data() : nullptr;
    // An output without elements (no channels or no positions) is complete as it is: the
    // kernels would still walk every image of the batch, ~2^57 of them at most (a timeout
    // found by tests/fuzz/fuzz_shapes.cpp).
    if (y.size() > 0)
        kernels::in_use->conv2d_forward(y.data(), x.value().data(), weight.value().data(), b, s);

    Tensor out(std::move(y));
    Tape* tape = bias.defined() ? recording_tape(x, weight, bias) : recording_tape(x, weight);
    if (tape == nullptr) return out;

    std::vector<Tensor> inputs{x, weight};
    if (bias.defined()) inputs.push_back(bias);
    tape->record("conv2d", std::move(inputs), out, Conv2dBackward(x, weight, bias, s));
    return out;
}

// ---- catalog -------------------------------------------------------------------------------

// This file's ops in tg::op_catalog() (tapegrad/ops/catalog.hpp): an example puts its op in every
// test that walks the catalog.
std::vector<OpExample> catalog::conv_examples() {
    return {
        op("conv2d", "Conv2dBackward", true, {img, {3, 2, 3, 3}}, {img0, {3, 2, 3, 3}},
           {0, 3, 3, 3}, [](const In& v) { return conv2d(v[0], v[1]); }),
        op("conv2d with bias, padded", "Conv2dBackward", true, {img, {3, 2, 3, 3}, {3}},
           {img0, {3, 2, 3, 3}, {3}}, {0, 3, 5, 5},
           [](const In& v) { return conv2d(v[0], v[1], v[2], 1, 1); }),
    };
}

}  // namespace tg
