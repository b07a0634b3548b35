#include "tapegrad/ops/normalization.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "batch_norm_checks.hpp"
#include "kernels/kernel_set.hpp"
#include "tape_inputs.hpp"
#include "tapegrad/kernels.hpp"
#include "tapegrad/ops/catalog.hpp"
#include "tapegrad/tape.hpp"

namespace tg {

namespace {

// ---------------------------------------------------------------------------------------------
// Shared pieces: argument checks and the per-set sums every normalisation needs.
// ---------------------------------------------------------------------------------------------

std::string rank_str(std::size_t rank) {
    return std::to_string(rank);
}

/// x must be [N, C, *].
void check_nc(const char* op, const Tensor& x) {
    if (x.dim() < 2) {
        throw std::invalid_argument(std::string(op) + ": input " + shape_str(x.shape()) +
                                    " has rank " + rank_str(x.dim()) +
                                    ", expected rank 2 or more ([N, C, *])");
    }
}

/// An optional per-channel tensor (weight, bias, running statistic) must have shape [C].
void check_per_channel(const char* op, const char* what, const Tensor& t, const Shape& x_shape) {
    const Shape expected{x_shape[1]};
    if (t.defined() && t.shape() != expected) {
        throw std::invalid_argument(std::string(op) + ": " + what + " has shape " +
                                    shape_str(t.shape()) + ", expected " + shape_str(expected) +
                                    " (one per channel of input " + shape_str(x_shape) + ")");
    }
}

void check_running_pair(const char* op, const Tensor& running_mean, const Tensor& running_var) {
    if (running_mean.defined() != running_var.defined()) {
        throw std::invalid_argument(std::string(op) +
                                    ": running_mean and running_var must be both defined or "
                                    "both undefined");
    }
}

/// The checks batch_norm and instance_norm share: x is [N, C, *], and weight, bias and the
/// running statistics are each undefined or [C], the two statistics defined together.
void check_per_channel_args(const char* op, const Tensor& x, const Tensor& weight,
                            const Tensor& bias, const Tensor& running_mean,
                            const Tensor& running_var) {
    check_nc(op, x);
    const Shape shape = x.shape();
    check_per_channel(op, "weight", weight, shape);
    check_per_channel(op, "bias", bias, shape);
    check_per_channel(op, "running_mean", running_mean, shape);
    check_per_channel(op, "running_var", running_var, shape);
    check_running_pair(op, running_mean, running_var);
}

/// Product of shape[from..]: the number of values per [n, c] for [N, C, H, W] (H·W).
std::size_t trailing_size(const Shape& shape, std::size_t from) {
    std::size_t n = 1;
    for (std::size_t i = from; i < shape.size(); ++i)
        n *= shape[i];
    return n;
}

/// The gradients a normalisation's backward kernel writes: dx [x's shape], dγ and dβ [C], each
/// allocated only when its tensor requires grad (else null, which the kernels skip);
/// accumulate() adds them into the tensors' grads. One line in the op's backward closure, so
/// that `step` from the tape reaches the kernel in a few steps (docs/debugging.md).
struct InputGrads {
    InputGrads(const Tensor& x, const Tensor& weight, const Tensor& bias)
        : x_(x), weight_(weight), bias_(bias) {
        if (x.requires_grad()) dx = allocate(x, dx_array_);
        if (weight.defined() && weight.requires_grad()) dgamma = allocate(weight, dgamma_array_);
        if (bias.defined() && bias.requires_grad()) dbeta = allocate(bias, dbeta_array_);
    }
    // By the wanted flags, not the pointers: an empty batch's dx has no data (null) but is
    // still a gradient of shape [0, C, *] to accumulate.
    void accumulate() {
        if (x_.requires_grad()) x_.accumulate_grad(std::move(dx_array_));
        if (weight_.defined() && weight_.requires_grad())
            weight_.accumulate_grad(std::move(dgamma_array_));
        if (bias_.defined() && bias_.requires_grad())
            bias_.accumulate_grad(std::move(dbeta_array_));
    }
    real* dx = nullptr;
    real* dgamma = nullptr;
    real* dbeta = nullptr;

  private:
    static real* allocate(const Tensor& t, Array& a) {
        a = new_array(t.shape());
        return a.data();
    }
    const Tensor& x_;
    const Tensor& weight_;
    const Tensor& bias_;
    Array dx_array_, dgamma_array_, dbeta_array_;
};

/// The data of an optional tensor (weight, bias), or null when it is undefined.
const real* data_or_null(const Tensor& t) {
    return t.defined() ? t.value().data() : nullptr;
}

/// What batch_norm works on: its arguments as the kernels take them — x seen as [N, C, L]
/// (L = H·W, 1 for [N, C]), channel c one set of B = N·L values, raw pointers to the data —
/// and the buffers the forward kernel fills.
struct BatchNormWork {
    std::size_t N, C, L, B;
    bool batch_stats;  // normalise with the batch's statistics (training, or no running ones)
    const real* x;
    const real* gamma;       // weight, or null (γ = 1)
    const real* beta;        // bias, or null (β = 0)
    const real* fixed_mean;  // the running statistics to normalise with, or null (batch_stats)
    const real* fixed_var;
    Array y;                                // [N, C, *], the output
    std::vector<double> mean, var, invstd;  // [C] each: μ_B, σ²_B, invstd = 1/sqrt(σ²_B + ε)
};

/// Checks batch_norm's arguments (see check_per_channel_args; a channel must have more than
/// one value when batch statistics are needed, as in PyTorch), returns them as the kernels take
/// them, with the output and statistics allocated.
BatchNormWork prepare_batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                 const Tensor& running_mean, const Tensor& running_var,
                                 bool training) {
    detail::check_batch_norm_args("batch_norm", x, weight, bias, running_mean, running_var,
                                  training);
    const Shape shape = x.shape();
    BatchNormWork bn{};
    bn.N = shape[0], bn.C = shape[1], bn.L = trailing_size(shape, 2);
    bn.B = bn.N * bn.L;
    bn.batch_stats = training || !running_mean.defined();
    bn.x = x.value().data();
    bn.gamma = data_or_null(weight);
    bn.beta = data_or_null(bias);
    bn.fixed_mean = bn.batch_stats ? nullptr : running_mean.value().data();
    bn.fixed_var = bn.batch_stats ? nullptr : running_var.value().data();
    bn.y = new_array(shape);
    bn.mean.resize(bn.C);
    bn.var.resize(bn.C);
    bn.invstd.resize(bn.C);
    return bn;
}

/// BatchNorm's backward, the closure tg::batch_norm records on the tape: from ∂L/∂y (dy) the
/// backward kernel computes ∂L/∂x, ∂L/∂γ and ∂L/∂β. A named struct rather than a lambda, like
/// PyTorch's NativeBatchNormBackward0: the tape calls it directly, so in gdb `step` from the
/// tape's loop lands here, `bt` names it, and `break BatchNormBackward::operator()` works.
struct BatchNormBackward final : BackwardClosure {
    // Saved by the forward pass: the tensors (their values are read afresh here, as a tensor's
    // value may have been replaced since) and μ_B, 1/√(σ²_B + ε) per channel, 2·C numbers
    // instead of a copy of x (x̂ is recomputed from x, which the tape keeps alive anyway).
    BatchNormBackward(const Tensor& input, const Tensor& gamma, const Tensor& beta,
                      BatchNormWork& bn)
        : x(input),
          weight(gamma),
          bias(beta),
          mean(std::move(bn.mean)),
          invstd(std::move(bn.invstd)),
          N(bn.N),
          C(bn.C),
          L(bn.L),
          batch_stats(bn.batch_stats) {}

    Tensor x, weight, bias;
    std::vector<double> mean, invstd;
    std::size_t N, C, L;  // x seen as [N, C, L]
    bool batch_stats;     // normalised with μ_B, σ²_B (else with the running estimates)

    void operator()(const Array& dy) override {
        InputGrads grads(x, weight, bias);  // dx, dγ, dβ: null where not wanted
        kernels::in_use->batch_norm_backward(grads.dx, grads.dgamma, grads.dbeta, dy.data(),
                                             x.value().data(), mean.data(), invstd.data(),
                                             data_or_null(weight), N, C, L, batch_stats);
        grads.accumulate();  // x.grad += dx, γ.grad += dγ, β.grad += dβ
    }
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// batch_norm
// ---------------------------------------------------------------------------------------------

void detail::check_batch_norm_args(const char* op, const Tensor& x, const Tensor& weight,
                                   const Tensor& bias, const Tensor& running_mean,
                                   const Tensor& running_var, bool training) {
    check_per_channel_args(op, x, weight, bias, running_mean, running_var);
    const Shape shape = x.shape();
    const bool batch_stats = training || !running_mean.defined();
    if (batch_stats && shape[0] * trailing_size(shape, 2) == 1) {
        throw std::invalid_argument(std::string(op) +
                                    ": expected more than 1 value per channel when training, "
                                    "got input size " +
                                    shape_str(shape));
    }
}

Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum,
                  double eps) {
    BatchNormWork bn = prepare_batch_norm(x, weight, bias, running_mean, running_var, training);
    kernels::in_use->batch_norm_forward(bn.y.data(), bn.mean.data(), bn.var.data(),
                                        bn.invstd.data(), bn.x, bn.gamma, bn.beta, bn.fixed_mean,
                                        bn.fixed_var, bn.N, bn.C, bn.L, eps);

    // An empty batch (B = 0) has no statistics (0/0): like PyTorch, the running estimates
    // stay as they are instead of becoming NaN for good.
    if (training && running_mean.defined() && bn.B > 0) {
        // running_mean = (1 − momentum)·running_mean + momentum·μ_B
        // running_var  = (1 − momentum)·running_var  + momentum·σ²_B·B/(B − 1)   (unbiased)
        // (one loop for every kernel set: kernels/reference/batch_norm.cpp)
        kernels::reference::batch_norm_update_running(
            Tensor(running_mean).value().data(), Tensor(running_var).value().data(), bn.mean.data(),
            bn.var.data(), bn.C, bn.B, momentum);
    }

    Tensor out(std::move(bn.y));
    std::vector<Tensor> inputs;
    if (Tape* tape = detail::recording_tape_of_defined({x, weight, bias}, inputs)) {
        tape->record("batch_norm", std::move(inputs), out, BatchNormBackward(x, weight, bias, bn));
    }
    return out;
}

// ---------------------------------------------------------------------------------------------
// layer_norm, group_norm, instance_norm: one "normalise a set" kernel pair
// (kernels/*/normalize_sets.cpp) with x seen as R sets [R, K, L], parameters p = (r mod G)·K + k;
// and rms_norm, whose pair is declared beside it, with x seen as rows [R, D].
// ---------------------------------------------------------------------------------------------

namespace {

/// The layout of x as R contiguous sets [R, K, L] (see kernels/normalize_sets.hpp).
struct SetLayout {
    std::size_t R, G, K, L;
};

/// The backward of layer_norm, group_norm and instance_norm (the closure normalize_sets
/// records): from ∂L/∂y (dy) the backward kernel computes ∂L/∂x, ∂L/∂γ and ∂L/∂β.
struct NormalizeSetsBackward final : BackwardClosure {
    NormalizeSetsBackward(const Tensor& input, const Tensor& gamma, const Tensor& beta,
                          const SetLayout& layout, bool own_stats, std::vector<double> set_mean,
                          std::vector<double> set_invstd)
        : x(input),
          weight(gamma),
          bias(beta),
          s(layout),
          set_stats(own_stats),
          mean(std::move(set_mean)),
          invstd(std::move(set_invstd)) {}

    Tensor x, weight, bias;
    SetLayout s;                       // x seen as [R, K, L], parameters p = (r mod G)·K + k
    bool set_stats;                    // normalised with each set's μ, σ² (else fixed ones)
    std::vector<double> mean, invstd;  // [R]: μ and 1/√(σ² + ε) of each set, from the forward

    void operator()(const Array& dy) override {
        InputGrads grads(x, weight, bias);  // dx, dγ, dβ: null where not wanted
        kernels::in_use->normalize_sets_backward(
            grads.dx, grads.dgamma, grads.dbeta, dy.data(), x.value().data(), mean.data(),
            invstd.data(), data_or_null(weight), s.R, s.G, s.K, s.L, set_stats);
        grads.accumulate();  // x.grad += dx, γ.grad += dγ, β.grad += dβ
    }
};

/// Normalises x by sets: runs the forward kernel (with the sets' own statistics, or the fixed
/// ones given), records the tape entry whose backward runs the backward kernel. mean and var
/// receive each set's μ and biased σ² (instance_norm's running statistics need them).
Tensor normalize_sets(const char* op, const Tensor& x, const SetLayout& s, const Tensor& weight,
                      const Tensor& bias, const real* fixed_mean, const real* fixed_var, double eps,
                      std::vector<double>& mean, std::vector<double>& var) {
    mean.assign(s.R, 0.0);
    var.assign(s.R, 0.0);
    std::vector<double> invstd(s.R);
    Array y = new_array(x.shape());
    kernels::in_use->normalize_sets_forward(
        y.data(), mean.data(), var.data(), invstd.data(), x.value().data(), data_or_null(weight),
        data_or_null(bias), fixed_mean, fixed_var, s.R, s.G, s.K, s.L, eps);

    Tensor out(std::move(y));
    std::vector<Tensor> inputs;
    if (Tape* tape = detail::recording_tape_of_defined({x, weight, bias}, inputs)) {
        const bool set_stats = fixed_mean == nullptr;
        tape->record(op, std::move(inputs), out,
                     NormalizeSetsBackward(x, weight, bias, s, set_stats, mean, std::move(invstd)));
    }
    return out;
}

/// Checks that x is [*, normalized_shape] and that weight and bias are undefined or of shape
/// normalized_shape (layer_norm, rms_norm); returns x seen as rows [R, D], D = the
/// normalized_shape's size.
std::pair<std::size_t, std::size_t> check_normalized_shape(const char* op, const Tensor& x,
                                                           const Shape& normalized_shape,
                                                           const Tensor& weight,
                                                           const Tensor& bias) {
    const Shape shape = x.shape();
    if (normalized_shape.empty()) {
        throw std::invalid_argument(std::string(op) +
                                    ": normalized_shape is empty, expected at least one dim");
    }
    const std::size_t nd = normalized_shape.size();
    const bool matches = shape.size() >= nd && std::equal(normalized_shape.begin(),
                                                          normalized_shape.end(), shape.end() - nd);
    if (!matches) {
        throw std::invalid_argument(std::string(op) + ": normalized_shape " +
                                    shape_str(normalized_shape) + " does not match input " +
                                    shape_str(shape) + " (expected input of shape [*, " +
                                    shape_str(normalized_shape).substr(1) + ")");
    }
    const auto check_param = [&](const char* name, const Tensor& t) {
        if (t.defined() && t.shape() != normalized_shape) {
            throw std::invalid_argument(std::string(op) + ": " + name + " has shape " +
                                        shape_str(t.shape()) + ", expected normalized_shape " +
                                        shape_str(normalized_shape));
        }
    };
    check_param("weight", weight);
    check_param("bias", bias);
    const std::size_t D = trailing_size(shape, shape.size() - nd);
    return {D == 0 ? 0 : x.numel() / D, D};
}

/// The backward of rms_norm: from ∂L/∂y (dy) the backward kernel computes ∂L/∂x and ∂L/∂γ.
struct RMSNormBackward final : BackwardClosure {
    RMSNormBackward(const Tensor& input, const Tensor& gamma, std::size_t rows, std::size_t size,
                    std::vector<double> row_invrms)
        : x(input), weight(gamma), R(rows), D(size), invrms(std::move(row_invrms)) {}

    Tensor x, weight;
    std::size_t R, D;            // x seen as [R, D]
    std::vector<double> invrms;  // [R]: 1/sqrt(mean(x²) + ε) of each row, from the forward

    void operator()(const Array& dy) override {
        const Tensor no_bias;
        InputGrads grads(x, weight, no_bias);  // dx, dγ: null where not wanted
        kernels::in_use->rms_norm_backward(grads.dx, grads.dgamma, dy.data(), x.value().data(),
                                           invrms.data(), data_or_null(weight), R, D);
        grads.accumulate();  // x.grad += dx, γ.grad += dγ
    }
};

}  // namespace

Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight,
                  const Tensor& bias, double eps) {
    // x [R, D]: R rows (the leading dims), each one set of D values (normalized_shape), γ and β
    // one per position in the row.
    const auto [R, D] = check_normalized_shape("layer_norm", x, normalized_shape, weight, bias);
    std::vector<double> mean, var;
    return normalize_sets("layer_norm", x, {R, 1, D, 1}, weight, bias, nullptr, nullptr, eps, mean,
                          var);
}

Tensor rms_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight,
                std::optional<double> eps) {
    const auto [R, D] = check_normalized_shape("rms_norm", x, normalized_shape, weight, Tensor{});
    std::vector<double> invrms(R);
    Array y = new_array(x.shape());
    kernels::in_use->rms_norm_forward(y.data(), invrms.data(), x.value().data(),
                                      data_or_null(weight), R, D,
                                      eps.value_or(std::numeric_limits<real>::epsilon()));
    Tensor out(std::move(y));
    std::vector<Tensor> inputs;
    if (Tape* tape = detail::recording_tape_of_defined({x, weight}, inputs))
        tape->record("rms_norm", std::move(inputs), out,
                     RMSNormBackward(x, weight, R, D, std::move(invrms)));
    return out;
}

Tensor group_norm(const Tensor& x, std::size_t num_groups, const Tensor& weight, const Tensor& bias,
                  double eps) {
    const char* op = "group_norm";
    check_nc(op, x);
    const Shape shape = x.shape();
    const std::size_t N = shape[0], C = shape[1], L = trailing_size(shape, 2);
    if (num_groups == 0 || C % num_groups != 0) {
        throw std::invalid_argument(
            std::string(op) + ": input " + shape_str(shape) + " has " + std::to_string(C) +
            " channels, expected a number divisible by num_groups = " + std::to_string(num_groups));
    }
    check_per_channel(op, "weight", weight, shape);
    check_per_channel(op, "bias", bias, shape);

    // x [N, C, L] as N·G sets (n, g) of C/G channels × L values; γ_c, β_c per channel.
    const std::size_t G = num_groups;
    std::vector<double> mean, var;
    return normalize_sets(op, x, {N * G, G, C / G, L}, weight, bias, nullptr, nullptr, eps, mean,
                          var);
}

Tensor instance_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                     const Tensor& weight, const Tensor& bias, bool use_input_stats,
                     double momentum, double eps) {
    const char* op = "instance_norm";
    check_per_channel_args(op, x, weight, bias, running_mean, running_var);
    const Shape shape = x.shape();
    const std::size_t N = shape[0], C = shape[1], L = trailing_size(shape, 2);
    if (use_input_stats && L == 1) {
        throw std::invalid_argument(std::string(op) +
                                    ": expected more than 1 spatial element when training, "
                                    "got input size " +
                                    shape_str(shape));
    }
    if (!use_input_stats && !running_mean.defined()) {
        throw std::invalid_argument(std::string(op) +
                                    ": running_mean and running_var must be defined when "
                                    "use_input_stats is false");
    }
    if (N == 0 && (weight.defined() || bias.defined())) {  // PyTorch 1.13: IndexError
        throw std::invalid_argument(std::string(op) +
                                    ": expected at least one example when weight or bias is "
                                    "given (PyTorch raises here too), got input " +
                                    shape_str(shape));
    }

    // x [N, C, L] as N·C sets (n, c) of L values: group norm with one channel per group (G = C).
    std::vector<double> mean, var;
    Tensor out =
        normalize_sets(op, x, {N * C, C, 1, L}, weight, bias,
                       use_input_stats ? nullptr : running_mean.value().data(),
                       use_input_stats ? nullptr : running_var.value().data(), eps, mean, var);
    if (N == 0 && running_mean.defined()) {
        // An empty batch. PyTorch 1.13 sets the running statistics to the mean over the batch
        // of its instances' statistics, which for no instances is NaN, and it does so in eval
        // too (it writes them back after every call). Matched here; batch_norm, like PyTorch's,
        // leaves them alone instead.
        Tensor(running_mean).value().fill(std::numeric_limits<real>::quiet_NaN());
        Tensor(running_var).value().fill(std::numeric_limits<real>::quiet_NaN());
        return out;
    }
    if (use_input_stats && running_mean.defined()) {
        // The running statistics track the mean over n of the instances' μ and unbiased σ²:
        // BatchNorm's update (kernels/reference/batch_norm.cpp) with μ_B = 1/N Σ_n μ_nc,
        // σ²_B = 1/N Σ_n σ²_nc and B = L, since 1/N Σ_n σ²_nc·L/(L − 1) = σ²_B·L/(L − 1).
        std::vector<double> mean_c(C, 0.0), var_c(C, 0.0);
        for (std::size_t c = 0; c < C; ++c) {
            for (std::size_t n = 0; n < N; ++n) {
                mean_c[c] += mean[n * C + c] / static_cast<double>(N);
                var_c[c] += var[n * C + c] / static_cast<double>(N);
            }
        }
        kernels::reference::batch_norm_update_running(Tensor(running_mean).value().data(),
                                                      Tensor(running_var).value().data(),
                                                      mean_c.data(), var_c.data(), C, L, momentum);
    }
    return out;
}

// ---- catalog -------------------------------------------------------------------------------

// This file's ops in tg::op_catalog() (tapegrad/ops/catalog.hpp): an example puts its op in every
// test that walks the catalog.
std::vector<OpExample> catalog::normalization_examples() {
    return {
        op("batch_norm (training, running statistics)", "BatchNormBackward", true, {img, {2}, {2}},
           {img0, {2}, {2}}, img0,
           [](const In& v) {
               const Tensor rm = Tensor::zeros({v[0].shape()[1]}),
                            rv = Tensor::ones({v[0].shape()[1]});
               return batch_norm(v[0], rm, rv, v[1], v[2], true, 0.1, 1e-5);
           }),
        op("batch_norm (eval)", "BatchNormBackward", true, {img, {2}, {2}}, {img0, {2}, {2}}, img0,
           [](const In& v) {
               const Tensor rm = Tensor::zeros({v[0].shape()[1]}),
                            rv = Tensor::ones({v[0].shape()[1]});
               return batch_norm(v[0], rm, rv, v[1], v[2], false, 0.1, 1e-5);
           }),
        bad_call({{2, 4}, {3}, {3}},
                 "layer_norm: normalized_shape [3] does not match input [2, 4] (expected input of "
                 "shape [*, 3])",
                 vs_pytorch("catalog/layer_norm",
                            op("layer_norm", "NormalizeSetsBackward", true, {rows, {3}, {3}},
                               {rows0, {3}, {3}}, rows0,
                               [](const In& v) { return layer_norm(v[0], {3}, v[1], v[2]); }))),
        bad_call({{2, 4}, {3}},
                 "rms_norm: normalized_shape [3] does not match input [2, 4] (expected input of "
                 "shape [*, 3])",
                 vs_pytorch("catalog/rms_norm",
                            op("rms_norm", "RMSNormBackward", true, {rows, {3}}, {rows0, {3}},
                               rows0, [](const In& v) { return rms_norm(v[0], {3}, v[1]); }))),
        // Values ~1e-4 in PyTorch's case: the default eps (the float type's epsilon) counts.
        vs_pytorch("catalog/rms_norm_tiny", op("rms_norm over [H, W], no weight", "RMSNormBackward",
                                               true, {img}, {{0, 2, 6, 6}}, {0, 2, 6, 6},
                                               [](const In& v) {
                                                   return rms_norm(v[0], {6, 6});
                                               })),
        op("group_norm", "NormalizeSetsBackward", true, {{2, 4, 3}, {4}, {4}},
           {{0, 4, 3}, {4}, {4}}, {0, 4, 3},
           [](const In& v) { return group_norm(v[0], 2, v[1], v[2]); }),
        // instance_norm without weight and bias on an empty batch: PyTorch raises with them.
        op("instance_norm", "NormalizeSetsBackward", true, {{2, 2, 3}}, {{0, 2, 3}}, {0, 2, 3},
           [](const In& v) { return instance_norm(v[0], {}, {}, {}, {}, true, 0.1, 1e-5); }),
    };
}

}  // namespace tg
