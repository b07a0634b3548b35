// Fused ops (tapegrad/ops/fused.hpp): with the reference kernels the chapter's ops one after
// the other; with the fast kernels one kernel and one tape entry.
#include "tapegrad/ops/fused.hpp"

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "batch_norm_checks.hpp"
#include "kernels/batch_norm.hpp"
#include "kernels/fast/batch_norm_relu_max_pool2d.hpp"
#include "kernels/fast/relu_max_pool2d.hpp"
#include "tape_inputs.hpp"
#include "tapegrad/kernels.hpp"
#include "tapegrad/ops/activation.hpp"
#include "tapegrad/ops/catalog.hpp"
#include "tapegrad/ops/normalization.hpp"
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
        kernels::fast::relu_max_pool2x2_backward(dx.data(), dy.data(), y_handle.value().data(),
                                                 argmax.data(), planes, h, w);
        x.accumulate_grad(std::move(dx));
    }
};

/// x must be [N, C, H, W] with H, W >= 2 for a 2x2 pooling window.
void check_pool2x2_input(const char* op, const Shape& xs) {
    if (xs.size() != 4) {
        throw std::invalid_argument(std::string(op) + ": expected a 4-D input [N, C, H, W], got " +
                                    shape_str(xs));
    }
    if (xs[2] < 2 || xs[3] < 2) {
        throw std::invalid_argument(std::string(op) + ": the 2x2 window does not fit the input " +
                                    shape_str(xs) + ": H and W must be at least 2");
    }
}

/// The data of an optional tensor (weight, bias), or null when it is undefined.
const real* data_or_null(const Tensor& t) {
    return t.defined() ? t.value().data() : nullptr;
}

/// batch_norm_relu_max_pool2d's backward with the fast kernels, the closure it records on the
/// tape: from ∂L/∂y, relu's and the pool's backward (dz, non-zero only at the windows' maxima)
/// and BatchNorm's (dx, dγ, dβ) in one pass over x.
struct BatchNormReluMaxPool2dBackward final : BackwardClosure {
    BatchNormReluMaxPool2dBackward(const Tensor& input, const Tensor& gamma, const Tensor& beta,
                                   std::vector<std::uint8_t> window_, std::vector<double> mean_,
                                   std::vector<double> invstd_, const Shape& xs)
        : x(input),
          weight(gamma),
          bias(beta),
          window(std::move(window_)),
          mean(std::move(mean_)),
          invstd(std::move(invstd_)),
          N(xs[0]),
          C(xs[1]),
          H(xs[2]),
          W(xs[3]) {}

    Tensor x, weight, bias;
    // per output: its maximum's position 0..3 in its window, + kNoGradient where y <= 0
    std::vector<std::uint8_t> window;
    std::vector<double> mean, invstd;  // μ_B, 1/√(σ²_B + ε) per channel
    std::size_t N, C, H, W;

    void operator()(const Array& dy) override {
        const bool want_dgamma = weight.defined() && weight.requires_grad();
        const bool want_dbeta = bias.defined() && bias.requires_grad();
        Array dx = x.requires_grad() ? new_array(x.shape()) : Array{};
        Array dgamma = want_dgamma ? new_array(weight.shape()) : Array{};
        Array dbeta = want_dbeta ? new_array(bias.shape()) : Array{};
        kernels::fast::batch_norm_relu_max_pool2x2_backward(
            x.requires_grad() ? dx.data() : nullptr, want_dgamma ? dgamma.data() : nullptr,
            want_dbeta ? dbeta.data() : nullptr, dy.data(), window.data(), x.value().data(),
            mean.data(), invstd.data(), data_or_null(weight), N, C, H, W);
        if (x.requires_grad()) x.accumulate_grad(std::move(dx));
        if (want_dgamma) weight.accumulate_grad(std::move(dgamma));
        if (want_dbeta) bias.accumulate_grad(std::move(dbeta));
    }
};

}  // namespace

Tensor relu_max_pool2d(const Tensor& x) {
    if (kernels_in_use() == Kernels::reference) return max_pool2d(relu(x), 2);

    const Shape xs = x.shape();
    check_pool2x2_input("relu_max_pool2d", xs);
    const std::size_t planes = xs[0] * xs[1], h = xs[2], w = xs[3];
    Array y = new_array({xs[0], xs[1], h / 2, w / 2});
    std::vector<std::size_t> argmax(y.size());  // flat index into x of each output's maximum
    kernels::fast::relu_max_pool2x2_forward(y.data(), argmax.data(), x.value().data(), planes, h,
                                            w);
    Tensor out(std::move(y));

    if (Tape* tape = recording_tape(x)) {
        Tensor y_handle = out;  // backward passes g where y > 0 (relu's mask, after the pool)
        tape->record("relu_max_pool2d", {x}, out,
                     ReluMaxPool2dBackward(x, y_handle, planes, h, w, std::move(argmax)));
    }
    return out;
}

Tensor batch_norm_relu_max_pool2d(const Tensor& x, const Tensor& running_mean,
                                  const Tensor& running_var, const Tensor& weight,
                                  const Tensor& bias, bool training, double momentum, double eps) {
    const char* op = "batch_norm_relu_max_pool2d";
    check_pool2x2_input(op, x.shape());
    detail::check_batch_norm_args(op, x, weight, bias, running_mean, running_var, training);
    const bool batch_stats = training || !running_mean.defined();
    if (kernels_in_use() == Kernels::reference) {
        return max_pool2d(
            relu(batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)),
            2);
    }
    if (!batch_stats) {  // eval: normalising with fixed statistics is elementwise; pair the rest
        return relu_max_pool2d(
            batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps));
    }

    const Shape xs = x.shape();
    const std::size_t N = xs[0], C = xs[1], H = xs[2], W = xs[3];
    Array y = new_array({N, C, H / 2, W / 2});
    std::vector<std::uint8_t> window(y.size());
    std::vector<double> mean(C), var(C), invstd(C);
    kernels::fast::batch_norm_relu_max_pool2x2_forward(
        y.data(), window.data(), mean.data(), var.data(), invstd.data(), x.value().data(),
        data_or_null(weight), data_or_null(bias), N, C, H, W, eps);

    // The running statistics, as batch_norm updates them (an empty batch leaves them alone).
    const std::size_t B = N * H * W;
    if (running_mean.defined() && B > 0) {
        kernels::reference::batch_norm_update_running(Tensor(running_mean).value().data(),
                                                      Tensor(running_var).value().data(),
                                                      mean.data(), var.data(), C, B, momentum);
    }

    Tensor out(std::move(y));
    std::vector<Tensor> inputs;
    if (Tape* tape = detail::recording_tape_of_defined({x, weight, bias}, inputs)) {
        tape->record(op, std::move(inputs), out,
                     BatchNormReluMaxPool2dBackward(x, weight, bias, std::move(window),
                                                    std::move(mean), std::move(invstd), xs));
    }
    return out;
}

// ---- catalog -------------------------------------------------------------------------------

// This file's ops in tg::op_catalog() (tapegrad/ops/catalog.hpp): an example puts its op in every
// test that walks the catalog.
std::vector<OpExample> catalog::fused_examples() {
    return {
        // The reference kernels run it as relu, then max_pool2d: two entries.
        op("relu_max_pool2d", "ReluMaxPool2dBackward", false, {img}, {img0}, {0, 2, 2, 2},
           [](const In& v) { return relu_max_pool2d(v[0]); }),
    };
}

}  // namespace tg
