// relu: y = max(x, 0); the loops are in kernels/{reference,fast}/relu.cpp.
#include "tapegrad/ops/activation.hpp"

#include "kernels/kernel_set.hpp"
#include "tapegrad/kernels.hpp"
#include "tapegrad/tape.hpp"

namespace tg {

namespace {

/// relu's backward, the closure tg::relu records on the tape: dx = dy where y > 0, else 0.
struct ReluBackward final : BackwardClosure {
    ReluBackward(const Tensor& input, const Tensor& output) : x(input), y_handle(output) {}

    Tensor x;
    Tensor y_handle;  // y = relu(x), read for its mask y > 0

    void operator()(const Array& dy) override {
        Array dx = new_array(dy.shape());
        kernels::in_use->relu_backward(dx.data(), dy.data(), y_handle.value().data(), dx.size());
        x.accumulate_grad(std::move(dx));
    }
};

}  // namespace

Tensor relu(const Tensor& x) {
    Array y = new_array(x.value().shape());
    kernels::in_use->relu_forward(y.data(), x.value().data(), y.size());
    Tensor out(std::move(y));

    if (Tape* tape = recording_tape(x)) {
        Tensor y_handle = out;  // the mask y > 0 is the mask x > 0; keep y, not a copy of x
        tape->record("relu", {x}, out, ReluBackward(x, y_handle));
    }
    return out;
}

}  // namespace tg
