// Fused ops (tapegrad/ops/fused.hpp): with the reference kernels the chapter's ops one after
// the other; with the fast kernels one kernel and one tape entry.
#include "tapegrad/ops/fused.hpp"

#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/fast/relu_max_pool2d.hpp"
#include "tapegrad/kernels.hpp"
#include "tapegrad/ops/activation.hpp"
#include "tapegrad/ops/pool.hpp"
#include "tapegrad/tape.hpp"

namespace tg {

namespace {

/// relu_max_pool2d's backward with the fast kernels, the closure tg::relu_max_pool2d records on
/// the tape: max_pool2d's backward and relu's in one pass, dx[argmax[t]] = dy[t] where y[t] is
/// not <= 0 (relu's mask, after the pool), 0 everywhere else.
struct ReluMaxPool2dBackward final : BackwardClosure {
    ReluMaxPool2dBackward(const Tensor& input, const Tensor& output, std::size_t planes_,
                          std::size_t h_, std::size_t w_, std::vector<std::size_t> argmax_)
        : x(input), y_handle(output), planes(planes_), h(h_), w(w_), argmax(std::move(argmax_)) {}

    Tensor x;
    Tensor y_handle;                  // y, read for relu's mask
    std::size_t planes, h, w;         // x seen as [planes, h, w], planes = N·C
    std::vector<std::size_t> argmax;  // flat index into x of each output's maximum

    void operator()(const Array& dy) override {
        Array dx = new_array(x.shape());
        kernels::fast::relu_max_pool2x2_backward(dy.data(), y_handle.value().data(), argmax.data(),
                                                 planes, h, w, dx.data());
        x.accumulate_grad(std::move(dx));
    }
};

}  // namespace

Tensor relu_max_pool2d(const Tensor& x) {
    if (kernels_in_use() == Kernels::reference) return max_pool2d(relu(x), 2);

    const Shape xs = x.shape();
    if (xs.size() != 4) {
        throw std::invalid_argument("relu_max_pool2d: expected a 4-D input [N, C, H, W], got " +
                                    shape_str(xs));
    }
    if (xs[2] < 2 || xs[3] < 2) {
        throw std::invalid_argument("relu_max_pool2d: the 2x2 window does not fit the input " +
                                    shape_str(xs) + ": H and W must be at least 2");
    }
    const std::size_t planes = xs[0] * xs[1], h = xs[2], w = xs[3];
    Array y = new_array({xs[0], xs[1], h / 2, w / 2});
    std::vector<std::size_t> argmax(y.size());  // flat index into x of each output's maximum
    kernels::fast::relu_max_pool2x2_forward(x.value().data(), planes, h, w, y.data(),
                                            argmax.data());
    Tensor out(std::move(y));

    if (Tape* tape = recording_tape(x)) {
        Tensor y_handle = out;  // backward passes g where y > 0 (relu's mask, after the pool)
        tape->record("relu_max_pool2d", {x}, out,
                     ReluMaxPool2dBackward(x, y_handle, planes, h, w, std::move(argmax)));
    }
    return out;
}

}  // namespace tg
