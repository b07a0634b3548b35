// tapegrad/nn/normalization.hpp — BatchNorm1d/2d, InstanceNorm2d, LayerNorm, GroupNorm, RMSNorm
// layers.
//
// Each owns γ (weight) and β (bias; RMSNorm has none) and, where it tracks them, the running
// statistics, and calls the op in tapegrad/ops/normalization.hpp, where the maths is.
#pragma once

#include <cstddef>
#include <optional>

#include "tapegrad/nn/module.hpp"

namespace tg::nn {

struct BatchNormOptions {
    double eps = 1e-5;
    /// The running statistics' update factor: running = (1 - momentum) running + momentum batch.
    /// Unset (std::nullopt): a cumulative average, factor 1 / num_batches_tracked.
    std::optional<double> momentum = 0.1;
    bool affine = true;               // learn γ (ones) and β (zeros)
    bool track_running_stats = true;  // keep running_mean/var; else batch statistics always
};

/// What BatchNorm1d and BatchNorm2d share (PyTorch's _BatchNorm); they differ only in the
/// input ranks they accept. Per channel c, over the batch (and spatial positions):
///   training: y = γ (x - μ_B) / sqrt(σ²_B + eps) + β, and running_mean/var are updated
///   eval:     y = γ (x - running_mean) / sqrt(running_var + eps) + β
///             (the batch statistics again when track_running_stats is false)
class BatchNorm : public Module {
  public:
    /// Counts the batch (training), then y = batch_norm(x, ...) as above. Inside a
    /// tg::NoStatsUpdateGuard (checkpoint recomputation) training mode normalises with the
    /// batch statistics but neither counts the batch nor updates the running statistics.
    Tensor forward(const Tensor& x) override;
    /// forward(x), then ReLU and a 2x2 max-pool (stride 2) as one op,
    /// tg::batch_norm_relu_max_pool2d, with forward's bookkeeping (the batch counted, the
    /// running statistics updated): what nn::Sequential runs for a BatchNorm2d, ReLU,
    /// MaxPool2d(2) triple with the fast kernels. Calls no forward hook.
    Tensor forward_relu_max_pool2d(const Tensor& x);
    /// Sets the mode, except that a frozen layer (freeze_batchnorm) stays in eval mode:
    /// train(true) leaves it in eval, as mmdetection's norm_eval does in PyTorch.
    Module& train(bool on = true) override;
    /// running_mean = 0, running_var = 1, num_batches_tracked = 0.
    void reset_running_stats();
    /// reset_running_stats(), γ = 1, β = 0.
    void reset_parameters();
    std::string extra_repr() const override;

    std::size_t num_features;
    BatchNormOptions options;
    Tensor weight, bias;  // γ, β [C]; undefined unless affine
    // [C], [C] and a 0-d count; undefined unless track_running_stats
    Tensor running_mean, running_var, num_batches_tracked;
    /// Set by freeze_batchnorm, cleared by unfreeze_batchnorm: the layer stays in eval mode
    /// whatever train() is called with (see train()).
    bool frozen = false;

  protected:
    /// Registers γ, β (if affine) and the running statistics (if tracked), all [C].
    BatchNorm(std::size_t num_features, BatchNormOptions options);
    /// Registers `other`'s own tensors (the same handles, requires_grad kept) with its options
    /// and mode: how SyncBatchNorm takes a BatchNorm's place (convert_sync_batchnorm).
    struct TakeOver {};
    BatchNorm(TakeOver, BatchNorm& other);
    /// In training with running statistics, counts the batch (num_batches_tracked += 1);
    /// returns the factor for the running statistics: momentum, or 1/num_batches_tracked
    /// when momentum is unset (PyTorch's exponential_average_factor).
    double count_batch();
    /// True in training with running statistics inside a tg::NoStatsUpdateGuard (checkpoint
    /// recomputation): normalise with the batch statistics, count nothing, update nothing.
    bool recomputing() const;
    /// Throws std::invalid_argument unless x has a rank this layer accepts.
    virtual void check_input_dim(const Tensor& x) const = 0;
};

/// Batch normalisation of x [N, C] or [N, C, L] (torch.nn.BatchNorm1d).
///
///     tg::nn::BatchNorm1d bn(64);   tg::nn::BatchNorm1d cumulative(64, {.momentum =
///     std::nullopt});
class BatchNorm1d : public BatchNorm {
  public:
    /// γ, β, running statistics of size C = num_features.
    explicit BatchNorm1d(std::size_t num_features, BatchNormOptions options = {});
    std::string type_name() const override { return "BatchNorm1d"; }

  protected:
    void check_input_dim(const Tensor& x) const override;
};

/// Batch normalisation of x [N, C, H, W] (torch.nn.BatchNorm2d).
///
///     tg::nn::BatchNorm2d bn(4);   tg::nn::BatchNorm2d plain(4, {.affine = false});
class BatchNorm2d : public BatchNorm {
  public:
    /// γ, β, running statistics of size C = num_features.
    explicit BatchNorm2d(std::size_t num_features, BatchNormOptions options = {});
    std::string type_name() const override { return "BatchNorm2d"; }

  protected:
    void check_input_dim(const Tensor& x) const override;
};

struct InstanceNormOptions {
    double eps = 1e-5;
    double momentum = 0.1;
    bool affine = false;  // PyTorch's InstanceNorm defaults: no γ/β, no running statistics
    bool track_running_stats = false;
};

/// Instance normalisation of x [N, C, H, W] or [C, H, W] (torch.nn.InstanceNorm2d): each
/// (n, c) plane is normalised with its own mean and biased variance.
class InstanceNorm2d : public Module {
  public:
    /// γ, β (if affine) and running statistics (if tracked) of size C = num_features.
    explicit InstanceNorm2d(std::size_t num_features, InstanceNormOptions options = {});
    /// y = instance_norm(x, ...); running statistics are used in eval when tracked.
    Tensor forward(const Tensor& x) override;
    std::string type_name() const override { return "InstanceNorm2d"; }
    std::string extra_repr() const override;

    std::size_t num_features;
    InstanceNormOptions options;
    Tensor weight, bias;                                    // undefined unless affine
    Tensor running_mean, running_var, num_batches_tracked;  // undefined unless tracked
};

struct LayerNormOptions {
    double eps = 1e-5;
    bool elementwise_affine = true;
};

/// Layer normalisation over the trailing dims `normalized_shape` (torch.nn.LayerNorm):
/// y = γ (x - μ) / sqrt(σ² + eps) + β, γ and β of shape normalized_shape.
class LayerNorm : public Module {
  public:
    /// γ (ones) and β (zeros) of shape normalized_shape, if elementwise_affine.
    explicit LayerNorm(Shape normalized_shape, LayerNormOptions options = {});
    /// y = layer_norm(x, normalized_shape, γ, β, eps).
    Tensor forward(const Tensor& x) override;
    std::string type_name() const override { return "LayerNorm"; }
    std::string extra_repr() const override;

    Shape normalized_shape;
    LayerNormOptions options;
    Tensor weight, bias;  // undefined unless elementwise_affine
};

struct RMSNormOptions {
    /// Unset (std::nullopt, PyTorch's eps=None): the float type's machine epsilon.
    std::optional<double> eps = std::nullopt;
    bool elementwise_affine = true;
};

/// RMS normalisation over the trailing dims `normalized_shape` (torch.nn.RMSNorm, PyTorch 2.4):
/// y = γ x / sqrt(mean(x²) + eps), γ of shape normalized_shape; LayerNorm without the centring
/// and without β.
class RMSNorm : public Module {
  public:
    /// γ (ones) of shape normalized_shape, if elementwise_affine.
    explicit RMSNorm(Shape normalized_shape, RMSNormOptions options = {});
    /// y = rms_norm(x, normalized_shape, γ, eps).
    Tensor forward(const Tensor& x) override;
    std::string type_name() const override { return "RMSNorm"; }
    std::string extra_repr() const override;

    Shape normalized_shape;
    RMSNormOptions options;
    Tensor weight;  // undefined unless elementwise_affine
};

struct GroupNormOptions {
    double eps = 1e-5;
    bool affine = true;
};

/// Group normalisation (torch.nn.GroupNorm): the C channels of x [N, C, *] are split into
/// num_groups groups normalised separately per example; γ, β [C].
class GroupNorm : public Module {
  public:
    /// Throws std::invalid_argument unless num_channels is divisible by num_groups.
    GroupNorm(std::size_t num_groups, std::size_t num_channels, GroupNormOptions options = {});
    /// y = group_norm(x, num_groups, γ, β, eps).
    Tensor forward(const Tensor& x) override;
    std::string type_name() const override { return "GroupNorm"; }
    std::string extra_repr() const override;

    std::size_t num_groups, num_channels;
    GroupNormOptions options;
    Tensor weight, bias;  // undefined unless affine
};

}  // namespace tg::nn
