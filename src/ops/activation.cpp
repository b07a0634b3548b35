// The activations: relu, y = max(x, 0), its loops in kernels/{reference,fast}/relu.cpp; tanh,
// sigmoid, leaky_relu and gelu, theirs in kernels/{reference,fast}/activation.cpp. Each op
// computes its output through kernels::in_use and records its <Op>Backward struct.
#include "tapegrad/ops/activation.hpp"

#include <stdexcept>
#include <utility>

#include "kernels/kernel_set.hpp"
#include "tapegrad/kernels.hpp"
#include "tapegrad/ops/catalog.hpp"
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

// ---- tanh, sigmoid, leaky_relu, gelu: their kernels in kernels/{reference,fast}/activation.cpp,
// the formulas and derivatives written out in the reference one.

namespace {

/// tanh's backward, the closure tg::tanh records: dx = dy · (1 - y²).
struct TanhBackward final : BackwardClosure {
    TanhBackward(const Tensor& input, const Tensor& output) : x(input), y(output) {}

    Tensor x;
    Tensor y;  // y = tanh(x), the op's output

    void operator()(const Array& dy) override {
        Array dx = new_array(dy.shape());
        kernels::in_use->tanh_backward(dx.data(), dy.data(), y.value().data(), dx.size());
        x.accumulate_grad(std::move(dx));
    }
};

/// sigmoid's backward, the closure tg::sigmoid records: dx = dy · (1 - y) · y.
struct SigmoidBackward final : BackwardClosure {
    SigmoidBackward(const Tensor& input, const Tensor& output) : x(input), y(output) {}

    Tensor x;
    Tensor y;  // y = σ(x), the op's output

    void operator()(const Array& dy) override {
        Array dx = new_array(dy.shape());
        kernels::in_use->sigmoid_backward(dx.data(), dy.data(), y.value().data(), dx.size());
        x.accumulate_grad(std::move(dx));
    }
};

/// leaky_relu's backward, the closure tg::leaky_relu records: dx = dy where x > 0, else a·dy.
/// It keeps x, not y: with a negative slope the sign of y no longer tells the side of the kink.
struct LeakyReluBackward final : BackwardClosure {
    LeakyReluBackward(const Tensor& input, real slope) : x(input), a(slope) {}

    Tensor x;
    real a;  // negative_slope

    void operator()(const Array& dy) override {
        Array dx = new_array(dy.shape());
        kernels::in_use->leaky_relu_backward(dx.data(), dy.data(), x.value().data(), dx.size(), a);
        x.accumulate_grad(std::move(dx));
    }
};

/// gelu's backward, the closure tg::gelu records: dx = dy · dy/dx, for either choice (the
/// formulas written out in kernels/reference/activation.cpp).
struct GeluBackward final : BackwardClosure {
    GeluBackward(const Tensor& input, bool tanh_approximation)
        : x(input), use_tanh(tanh_approximation) {}

    Tensor x;
    bool use_tanh;  // approximate == "tanh"

    void operator()(const Array& dy) override {
        Array dx = new_array(dy.shape());
        if (use_tanh) {
            kernels::in_use->gelu_tanh_backward(dx.data(), dy.data(), x.value().data(), dx.size());
        } else {
            kernels::in_use->gelu_backward(dx.data(), dy.data(), x.value().data(), dx.size());
        }
        x.accumulate_grad(std::move(dx));
    }
};

}  // namespace

Tensor tanh(const Tensor& x) {
    Array y = new_array(x.value().shape());
    kernels::in_use->tanh_forward(y.data(), x.value().data(), y.size());
    Tensor out(std::move(y));
    if (Tape* tape = recording_tape(x)) {
        Tensor y_handle = out;  // 1 - y² needs the output: a handle, no copy
        tape->record("tanh", {x}, out, TanhBackward(x, y_handle));
    }
    return out;
}

Tensor sigmoid(const Tensor& x) {
    Array y = new_array(x.value().shape());
    kernels::in_use->sigmoid_forward(y.data(), x.value().data(), y.size());
    Tensor out(std::move(y));
    if (Tape* tape = recording_tape(x)) {
        Tensor y_handle = out;  // y (1 - y) needs the output: a handle, no copy
        tape->record("sigmoid", {x}, out, SigmoidBackward(x, y_handle));
    }
    return out;
}

Tensor leaky_relu(const Tensor& x, double negative_slope) {
    const auto a = static_cast<real>(negative_slope);
    Array y = new_array(x.value().shape());
    kernels::in_use->leaky_relu_forward(y.data(), x.value().data(), y.size(), a);
    Tensor out(std::move(y));
    if (Tape* tape = recording_tape(x)) {
        tape->record("leaky_relu", {x}, out, LeakyReluBackward(x, a));
    }
    return out;
}

Tensor gelu(const Tensor& x, const std::string& approximate) {
    if (approximate != "none" && approximate != "tanh") {
        throw std::invalid_argument("gelu: approximate '" + approximate +
                                    "', expected 'none' or 'tanh' (as torch.nn.functional.gelu)");
    }
    const bool use_tanh = approximate == "tanh";
    Array y = new_array(x.value().shape());
    if (use_tanh) {
        kernels::in_use->gelu_tanh_forward(y.data(), x.value().data(), y.size());
    } else {
        kernels::in_use->gelu_forward(y.data(), x.value().data(), y.size());
    }
    Tensor out(std::move(y));
    if (Tape* tape = recording_tape(x)) {
        tape->record("gelu", {x}, out, GeluBackward(x, use_tanh));
    }
    return out;
}

// ---- catalog -------------------------------------------------------------------------------

// This file's ops in tg::op_catalog() (tapegrad/ops/catalog.hpp): an example puts its op in every
// test that walks the catalog.
std::vector<OpExample> catalog::activation_examples() {
    return {
        op("relu", "ReluBackward", true, {rows}, {rows0}, rows0,
           [](const In& v) { return relu(v[0]); }),
        op("tanh", "TanhBackward", true, {rows}, {rows0}, rows0,
           [](const In& v) { return tanh(v[0]); }),
        op("sigmoid", "SigmoidBackward", true, {rows}, {rows0}, rows0,
           [](const In& v) { return sigmoid(v[0]); }),
        op("leaky_relu", "LeakyReluBackward", true, {rows}, {rows0}, rows0,
           [](const In& v) { return leaky_relu(v[0], 0.2); }),
        op("gelu", "GeluBackward", true, {rows}, {rows0}, rows0,
           [](const In& v) { return gelu(v[0]); }),
        op("gelu tanh", "GeluBackward", true, {rows}, {rows0}, rows0,
           [](const In& v) { return gelu(v[0], "tanh"); }),
    };
}

}  // namespace tg
