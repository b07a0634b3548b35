// Max and average pooling over square k x k windows, stride s, padding pad (ceil_mode false):
// argument checks and the tape entries; the loops are in kernels/{reference,fast}/pool.cpp.
#include "tapegrad/ops/pool.hpp"

#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/kernel_set.hpp"
#include "tapegrad/kernels.hpp"
#include "tapegrad/ops/catalog.hpp"
#include "tapegrad/tape.hpp"

namespace tg {

namespace {

using kernels::Pool2dShape;

Pool2dShape check_and_size(const char* op, const Tensor& x, std::size_t kernel, std::size_t stride,
                           std::size_t padding) {
    const Shape xs = x.shape();
    const std::string name(op);
    if (xs.size() != 4) {
        throw std::invalid_argument(name + ": expected a 4-D input [N, C, H, W], got " +
                                    shape_str(xs));
    }
    if (kernel == 0) throw std::invalid_argument(name + ": kernel size must be positive, got 0");
    if (stride == 0) stride = kernel;  // PyTorch's stride=None
    // 2 padding > kernel, written so that it cannot wrap around (padding = 2^63 made it 0).
    if (padding > kernel / 2) {
        throw std::invalid_argument(name + ": padding " + std::to_string(padding) +
                                    " is more than half the kernel size " + std::to_string(kernel));
    }
    const std::size_t larger = std::max(xs[2], xs[3]);
    // The padded size must fit the kernels' signed index, std::ptrdiff_t (a padding near 2^62
    // overflowed im2col's signed sums: found by tests/fuzz/fuzz_shapes.cpp).
    constexpr auto kMaxIndex = static_cast<std::size_t>(std::numeric_limits<std::ptrdiff_t>::max());
    if (larger > kMaxIndex || padding > (kMaxIndex - larger) / 2) {
        throw std::invalid_argument(
            name + ": padding " + std::to_string(padding) + " is too large: the padded input (" +
            std::to_string(larger) +
            " + 2 x padding rows) does not fit in a std::ptrdiff_t (input " + shape_str(xs) + ")");
    }
    const std::size_t ph = xs[2] + 2 * padding, pw = xs[3] + 2 * padding;
    if (kernel > ph || kernel > pw) {
        throw std::invalid_argument(name + ": kernel " + std::to_string(kernel) + "x" +
                                    std::to_string(kernel) + " does not fit the padded input " +
                                    std::to_string(ph) + "x" + std::to_string(pw) + " (input " +
                                    shape_str(xs) + ", padding " + std::to_string(padding) + ")");
    }
    Pool2dShape s{};
    s.planes = xs[0] * xs[1], s.h = xs[2], s.w = xs[3];
    s.k = kernel, s.stride = stride, s.pad = padding;
    s.oh = (ph - kernel) / stride + 1;
    s.ow = (pw - kernel) / stride + 1;
    return s;
}

Shape output_shape(const Tensor& x, const Pool2dShape& s) {
    return {x.size(0), x.size(1), s.oh, s.ow};
}

/// max_pool2d's backward, the closure tg::max_pool2d records on the tape: only the maximum of
/// each window gets a gradient, dx[argmax[t]] += dy[t] (0 elsewhere).
struct MaxPool2dBackward final : BackwardClosure {
    MaxPool2dBackward(const Tensor& input, const Pool2dShape& s_, std::vector<std::size_t> argmax_)
        : x(input), s(s_), argmax(std::move(argmax_)) {}

    Tensor x;
    Pool2dShape s;
    std::vector<std::size_t> argmax;  // the flat index into x of each output's maximum

    void operator()(const Array& dy) override {
        Array dx = new_array(x.shape());
        kernels::in_use->max_pool2d_backward(dx.data(), dy.data(), argmax.data(), s);
        x.accumulate_grad(std::move(dx));
    }
};

}  // namespace

Tensor max_pool2d(const Tensor& x, std::size_t kernel, std::size_t stride, std::size_t padding) {
    const Pool2dShape s = check_and_size("max_pool2d", x, kernel, stride, padding);
    Array y = new_array(output_shape(x, s));
    std::vector<std::size_t> argmax(y.size());  // the flat index into x of each output's maximum
    kernels::in_use->max_pool2d_forward(y.data(), argmax.data(), x.value().data(), s);

    Tensor out(std::move(y));
    if (Tape* tape = recording_tape(x)) {
        tape->record("max_pool2d", {x}, out, MaxPool2dBackward(x, s, std::move(argmax)));
    }
    return out;
}

namespace {

/// avg_pool2d's backward, the closure tg::avg_pool2d records on the tape: each output's dy is
/// shared by its window, dx += dy / k² over the window (the padding counted in k²).
struct AvgPool2dBackward final : BackwardClosure {
    AvgPool2dBackward(const Tensor& input, const Pool2dShape& s_) : x(input), s(s_) {}

    Tensor x;
    Pool2dShape s;

    void operator()(const Array& dy) override {
        Array dx = new_array(x.shape());
        kernels::in_use->avg_pool2d_backward(dx.data(), dy.data(), s);
        x.accumulate_grad(std::move(dx));
    }
};

}  // namespace

Tensor avg_pool2d(const Tensor& x, std::size_t kernel, std::size_t stride, std::size_t padding) {
    const Pool2dShape s = check_and_size("avg_pool2d", x, kernel, stride, padding);
    Array y = new_array(output_shape(x, s));
    kernels::in_use->avg_pool2d_forward(y.data(), x.value().data(), s);

    Tensor out(std::move(y));
    if (Tape* tape = recording_tape(x)) {
        tape->record("avg_pool2d", {x}, out, AvgPool2dBackward(x, s));
    }
    return out;
}

// ---- catalog -------------------------------------------------------------------------------

// This file's ops in tg::op_catalog() (tapegrad/ops/catalog.hpp): an example puts its op in every
// test that walks the catalog.
std::vector<OpExample> catalog::pool_examples() {
    return {
        op("max_pool2d", "MaxPool2dBackward", true, {img}, {img0}, {0, 2, 2, 2},
           [](const In& v) { return max_pool2d(v[0], 2); }),
        op("avg_pool2d", "AvgPool2dBackward", true, {img}, {img0}, {0, 2, 2, 2},
           [](const In& v) { return avg_pool2d(v[0], 2); }),
        op("avg_pool2d padded", "AvgPool2dBackward", true, {img}, {img0}, {0, 2, 3, 3},
           [](const In& v) { return avg_pool2d(v[0], 3, 2, 1); }),
    };
}

}  // namespace tg
