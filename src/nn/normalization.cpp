#include "tapegrad/nn/normalization.hpp"

#include <sstream>
#include <stdexcept>

#include "tapegrad/checkpoint.hpp"
#include "tapegrad/nn/catalog.hpp"
#include "tapegrad/ops/fused.hpp"
#include "tapegrad/ops/normalization.hpp"
#include "tapegrad/ops/shape.hpp"

namespace tg::nn {

namespace {

// "BatchNorm2d 'features.1'" for error messages.
std::string who(const Module& m) {
    return m.type_name() + (m.name().empty() ? "" : " '" + m.name() + "'");
}

std::string py_bool(bool b) {
    return b ? "True" : "False";
}

// A number as Python prints it in a module repr (1e-05, 0.1).
std::string py_number(double v) {
    std::ostringstream s;
    s << v;
    return s.str();
}

/// A shape as Python writes a tuple: "(3,)", "(2, 3)".
std::string py_tuple(const Shape& dims) {
    std::string t = "(";
    for (std::size_t i = 0; i < dims.size(); ++i)
        t += (i ? ", " : "") + std::to_string(dims[i]);
    return t + (dims.size() == 1 ? ",)" : ")");
}

}  // namespace

// ---- BatchNorm1d / BatchNorm2d -------------------------------------------------------------

BatchNorm::BatchNorm(std::size_t channels, BatchNormOptions opts)
    : num_features(channels), options(opts) {
    if (options.affine) {
        weight = register_parameter("weight", Tensor::ones({channels}));
        bias = register_parameter("bias", Tensor::zeros({channels}));
    }
    if (options.track_running_stats) {
        running_mean = register_buffer("running_mean", Tensor::zeros({channels}));
        running_var = register_buffer("running_var", Tensor::ones({channels}));
        num_batches_tracked = register_buffer("num_batches_tracked", Tensor::scalar(0));
    }
}

BatchNorm::BatchNorm(TakeOver, BatchNorm& other)
    : num_features(other.num_features), options(other.options) {
    if (options.affine) {
        const bool w = other.weight.requires_grad(), b = other.bias.requires_grad();
        weight = register_parameter("weight", other.weight);
        bias = register_parameter("bias", other.bias);
        weight.requires_grad_(w);  // register_parameter turned it on; keep a frozen γ frozen
        bias.requires_grad_(b);
    }
    if (options.track_running_stats) {
        running_mean = register_buffer("running_mean", other.running_mean);
        running_var = register_buffer("running_var", other.running_var);
        num_batches_tracked = register_buffer("num_batches_tracked", other.num_batches_tracked);
    }
    frozen = other.frozen;  // a frozen layer stays frozen (and in eval mode) after train()
    train(other.is_training());
}

BatchNorm1d::BatchNorm1d(std::size_t channels, BatchNormOptions opts) : BatchNorm(channels, opts) {}

BatchNorm2d::BatchNorm2d(std::size_t channels, BatchNormOptions opts) : BatchNorm(channels, opts) {}

void BatchNorm::reset_running_stats() {
    if (!options.track_running_stats) return;
    running_mean.value().fill(0);
    running_var.value().fill(1);
    num_batches_tracked.value().fill(0);
}

void BatchNorm::reset_parameters() {
    reset_running_stats();
    if (options.affine) {
        weight.value().fill(1);
        bias.value().fill(0);
    }
}

Tensor BatchNorm::forward(const Tensor& x) {
    check_input_dim(x);
    // Batch statistics in training, and in eval when there are no running statistics.
    const bool use_batch_stats = is_training() || !options.track_running_stats;
    if (recomputing()) {
        // Recomputation under tg::checkpoint (or another NoStatsUpdateGuard): the same batch
        // statistics, but the batch was already counted; without running statistics
        // batch_norm updates nothing.
        return batch_norm(x, Tensor{}, Tensor{}, weight, bias, true, 0.0, options.eps);
    }
    // Like PyTorch, the batch is counted before batch_norm checks it, so a rejected batch
    // still counts.
    const double factor = count_batch();
    return batch_norm(x, running_mean, running_var, weight, bias, use_batch_stats, factor,
                      options.eps);
}

Tensor BatchNorm::forward_relu_max_pool2d(const Tensor& x) {
    // forward's steps with the fused op (nn::Sequential's fast path only: the reader's path,
    // forward, stays one call from the layer to tg::batch_norm).
    check_input_dim(x);
    const bool use_batch_stats = is_training() || !options.track_running_stats;
    if (recomputing())
        return batch_norm_relu_max_pool2d(x, Tensor{}, Tensor{}, weight, bias, true, 0.0,
                                          options.eps);
    const double factor = count_batch();
    return batch_norm_relu_max_pool2d(x, running_mean, running_var, weight, bias, use_batch_stats,
                                      factor, options.eps);
}

bool BatchNorm::recomputing() const {
    return is_training() && options.track_running_stats && !running_stats_update_enabled();
}

double BatchNorm::count_batch() {
    // The factor batch_norm applies to the running statistics (PyTorch's
    // exponential_average_factor).
    double factor = options.momentum.value_or(0.0);
    if (is_training() && options.track_running_stats) {
        num_batches_tracked.value() += real(1);
        factor = options.momentum ? *options.momentum
                                  : 1.0 / static_cast<double>(num_batches_tracked.item());
    }
    return factor;
}

Module& BatchNorm::train(bool on) {
    return Module::train(on && !frozen);
}

std::string BatchNorm::extra_repr() const {
    return std::to_string(num_features) + ", eps=" + py_number(options.eps) +
           ", momentum=" + (options.momentum ? py_number(*options.momentum) : "None") +
           ", affine=" + py_bool(options.affine) +
           ", track_running_stats=" + py_bool(options.track_running_stats);
}

void BatchNorm1d::check_input_dim(const Tensor& x) const {
    if (x.dim() != 2 && x.dim() != 3) {
        throw std::invalid_argument(
            who(*this) + ": expected 2D input [N, C] or 3D input [N, C, L] (got " +
            std::to_string(x.dim()) + "D input " + shape_str(x.shape()) + ")");
    }
}

void BatchNorm2d::check_input_dim(const Tensor& x) const {
    if (x.dim() != 4) {
        throw std::invalid_argument(who(*this) + ": expected 4D input [N, C, H, W] (got " +
                                    std::to_string(x.dim()) + "D input " + shape_str(x.shape()) +
                                    ")");
    }
}

// ---- InstanceNorm2d ------------------------------------------------------------------------

InstanceNorm2d::InstanceNorm2d(std::size_t channels, InstanceNormOptions opts)
    : num_features(channels), options(opts) {
    if (options.affine) {
        weight = register_parameter("weight", Tensor::ones({channels}));
        bias = register_parameter("bias", Tensor::zeros({channels}));
    }
    if (options.track_running_stats) {
        running_mean = register_buffer("running_mean", Tensor::zeros({channels}));
        running_var = register_buffer("running_var", Tensor::ones({channels}));
        // Registered as in PyTorch (so state dicts match) but never counted by InstanceNorm.
        num_batches_tracked = register_buffer("num_batches_tracked", Tensor::scalar(0));
    }
}

Tensor InstanceNorm2d::forward(const Tensor& x) {
    if (x.dim() != 3 && x.dim() != 4) {
        throw std::invalid_argument(
            who(*this) + ": expected 3D input [C, H, W] or 4D input [N, C, H, W] (got " +
            std::to_string(x.dim()) + "D input " + shape_str(x.shape()) + ")");
    }
    const std::size_t channels = x.size(-3);
    if (channels != num_features && options.affine) {
        throw std::invalid_argument(
            who(*this) + ": expected input's size at dim=" + std::to_string(x.dim() - 3) +
            " to match num_features (" + std::to_string(num_features) +
            "), but got: " + std::to_string(channels) + " (input " + shape_str(x.shape()) + ")");
    }
    // Instance statistics in training, and in eval unless running statistics are tracked.
    const bool use_input_stats = is_training() || !options.track_running_stats;
    // Inside a tg::NoStatsUpdateGuard the running statistics are left alone (instance_norm
    // updates only what it is given).
    const bool update = use_input_stats && running_stats_update_enabled();
    const Tensor mean_stat = update || !use_input_stats ? running_mean : Tensor{};
    const Tensor var_stat = update || !use_input_stats ? running_var : Tensor{};
    if (mean_stat.defined() && x.dim() == 4 && x.size(0) == 0) {
        // The op gives PyTorch 1.13's answer, running statistics of NaN (the mean over no
        // instances, written back in eval too): that destroys what the layer learnt, so the
        // layer refuses instead.
        throw std::invalid_argument(
            who(*this) + ": an empty batch " + shape_str(x.shape()) +
            " would set the tracked running statistics to NaN (as PyTorch 1.13 does); refused, "
            "the statistics are unchanged");
    }
    if (x.dim() == 3) {  // one unbatched image [C, H, W]: normalise it as a batch of one
        const Shape shape = x.shape();
        const Tensor batched = reshape(x, {1, shape[0], shape[1], shape[2]});
        return reshape(instance_norm(batched, mean_stat, var_stat, weight, bias, use_input_stats,
                                     options.momentum, options.eps),
                       shape);
    }
    return instance_norm(x, mean_stat, var_stat, weight, bias, use_input_stats, options.momentum,
                         options.eps);
}

std::string InstanceNorm2d::extra_repr() const {
    return std::to_string(num_features) + ", eps=" + py_number(options.eps) +
           ", momentum=" + py_number(options.momentum) + ", affine=" + py_bool(options.affine) +
           ", track_running_stats=" + py_bool(options.track_running_stats);
}

// ---- LayerNorm -----------------------------------------------------------------------------

LayerNorm::LayerNorm(Shape shape, LayerNormOptions opts)
    : normalized_shape(std::move(shape)), options(opts) {
    if (options.elementwise_affine) {
        weight = register_parameter("weight", Tensor::ones(normalized_shape));
        bias = register_parameter("bias", Tensor::zeros(normalized_shape));
    }
}

Tensor LayerNorm::forward(const Tensor& x) {
    return layer_norm(x, normalized_shape, weight, bias, options.eps);
}

std::string LayerNorm::extra_repr() const {
    return py_tuple(normalized_shape) + ", eps=" + py_number(options.eps) +
           ", elementwise_affine=" + py_bool(options.elementwise_affine);
}

// ---- RMSNorm -------------------------------------------------------------------------------

RMSNorm::RMSNorm(Shape shape, RMSNormOptions opts)
    : normalized_shape(std::move(shape)), options(opts) {
    if (options.elementwise_affine)
        weight = register_parameter("weight", Tensor::ones(normalized_shape));
}

Tensor RMSNorm::forward(const Tensor& x) {
    return rms_norm(x, normalized_shape, weight, options.eps);
}

std::string RMSNorm::extra_repr() const {
    return py_tuple(normalized_shape) +
           ", eps=" + (options.eps ? py_number(*options.eps) : "None") +
           ", elementwise_affine=" + py_bool(options.elementwise_affine);
}

// ---- GroupNorm -----------------------------------------------------------------------------

GroupNorm::GroupNorm(std::size_t groups, std::size_t channels, GroupNormOptions opts)
    : num_groups(groups), num_channels(channels), options(opts) {
    if (groups == 0 || channels % groups != 0) {
        throw std::invalid_argument(
            "GroupNorm: num_channels must be divisible by num_groups (got " +
            std::to_string(channels) + " channels, " + std::to_string(groups) + " groups)");
    }
    if (options.affine) {
        weight = register_parameter("weight", Tensor::ones({channels}));
        bias = register_parameter("bias", Tensor::zeros({channels}));
    }
}

Tensor GroupNorm::forward(const Tensor& x) {
    return group_norm(x, num_groups, weight, bias, options.eps);
}

std::string GroupNorm::extra_repr() const {
    return std::to_string(num_groups) + ", " + std::to_string(num_channels) +
           ", eps=" + py_number(options.eps) + ", affine=" + py_bool(options.affine);
}

// ---- catalog -------------------------------------------------------------------------------

// This file's layers in tg::nn::layer_catalog() (tapegrad/nn/catalog.hpp): an example puts its
// layer in every test that walks the catalog.
std::vector<LayerExample> catalog::normalization_layers() {
    return {
        bad_input({2, 4, 3}, "BatchNorm2d: expected 4D input [N, C, H, W] (got 3D input [2, 4, 3])",
                  layer<BatchNorm2d>(
                      "BatchNorm2d(4, eps=1e-05, momentum=0.1, affine=True, "
                      "track_running_stats=True)",
                      {2, 4, 3, 3},
                      {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}, 4)),
        layer<BatchNorm1d>(
            "BatchNorm1d(3, eps=1e-05, momentum=None, affine=False, track_running_stats=True)",
            {4, 3}, {"running_mean", "running_var", "num_batches_tracked"}, 3,
            BatchNormOptions{.momentum = std::nullopt, .affine = false}),
        layer<InstanceNorm2d>(
            "InstanceNorm2d(3, eps=1e-05, momentum=0.1, affine=False, track_running_stats=False)",
            {2, 3, 4, 4}, {}, 3),
        layer<LayerNorm>("LayerNorm((4, 4), eps=1e-05, elementwise_affine=True)", {2, 3, 4, 4},
                         {"weight", "bias"}, Shape{4, 4}),
        vs_pytorch("catalog/layer_norm",
                   layer<LayerNorm>("LayerNorm((3,), eps=1e-05, elementwise_affine=True)", {2, 3},
                                    {"weight", "bias"}, Shape{3})),
        vs_pytorch("catalog/rms_norm",
                   layer<RMSNorm>("RMSNorm((3,), eps=None, elementwise_affine=True)", {2, 3},
                                  {"weight"}, Shape{3})),
        // Values ~1e-4 in PyTorch's case: the default eps (eps=None, the float type's epsilon)
        // counts.
        bad_input({2, 6, 5},
                  "rms_norm: normalized_shape [6, 6] does not match input [2, 6, 5] (expected "
                  "input of shape [*, 6, 6])",
                  vs_pytorch("catalog/rms_norm_tiny",
                             layer<RMSNorm>("RMSNorm((6, 6), eps=None, elementwise_affine=False)",
                                            {2, 2, 6, 6}, {}, Shape{6, 6},
                                            RMSNormOptions{.elementwise_affine = false}))),
        layer<RMSNorm>("RMSNorm((2, 4), eps=1e-06, elementwise_affine=True)", {3, 2, 4}, {"weight"},
                       Shape{2, 4}, RMSNormOptions{.eps = 1e-6}),
        layer<GroupNorm>("GroupNorm(2, 4, eps=1e-05, affine=True)", {2, 4, 3}, {"weight", "bias"},
                         2, 4),
    };
}

}  // namespace tg::nn
