// tapegrad/ops/normalization.hpp — batch, layer, group, instance and RMS normalisation.
//
// Every one of them normalises a set of B values and then scales and shifts per channel:
//
//     μ = 1/B Σ x        σ² = 1/B Σ (x − μ)²   (the biased variance)
//     x̂ = (x − μ) / sqrt(σ² + ε)
//     y = γ x̂ + β
//
// They differ only in which values form one set:
//   batch_norm     one set per channel c: all x[n, c, *] over the batch  (B = N·H·W)
//   instance_norm  one set per (n, c):    x[n, c, *]                     (B = H·W)
//   group_norm     one set per (n, g):    x[n, channels of group g, *]   (B = C/G·H·W)
//   layer_norm     one set per leading index: the trailing normalized_shape dims
//
// rms_norm is layer_norm without the centring (μ = 0, no β): y = γ x / sqrt(mean(x²) + ε).
//
// Semantics (defaults, running statistics, error conditions) are PyTorch's
// torch.nn.functional ones. An optional tensor is passed as an undefined `Tensor{}`.
#pragma once

#include <cstddef>
#include <optional>

#include "tapegrad/tensor.hpp"

namespace tg {

/// Batch normalisation of x [N, C, *]: y = γ (x − μ_B) / sqrt(σ²_B + ε) + β per channel.
///
/// training: μ_B, σ²_B are the batch mean and biased variance of each channel over the B =
/// N·H·W values it has; if running_mean/running_var are defined they are updated in place:
///     running_mean = (1 − momentum) running_mean + momentum μ_B
///     running_var  = (1 − momentum) running_var  + momentum σ²_B · B/(B − 1)   (unbiased)
/// (no gradient flows into them; `momentum` is the factor applied, the module passes
/// 1/num_batches_tracked for a cumulative average).
/// eval (training = false): normalises with running_mean/running_var; if they are undefined
/// the batch statistics are used (PyTorch's track_running_stats=False).
/// weight (γ), bias (β), running_mean, running_var have shape [C], or are undefined.
/// Throws if the input has rank < 2, a parameter or running statistic is not [C],
/// or a channel has one value when batch statistics are needed.
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum,
                  double eps);

/// Layer normalisation: y = γ (x − μ) / sqrt(σ² + ε) + β, with μ, σ² (biased) taken over the
/// trailing dims of x given by normalized_shape (x is [*, normalized_shape]). weight (γ) and
/// bias (β) have shape normalized_shape, or are undefined.
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = {},
                  const Tensor& bias = {}, double eps = 1e-5);

/// RMS normalisation (torch.nn.functional.rms_norm, PyTorch 2.4): y = γ x / sqrt(1/D Σ x² + ε),
/// the mean of the squares over the trailing dims of x given by normalized_shape (D values; x is
/// [*, normalized_shape]), no centring. weight (γ) has shape normalized_shape, or is undefined.
/// eps unset: the machine epsilon of the library's float type (torch.finfo(x.dtype).eps).
Tensor rms_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = {},
                std::optional<double> eps = std::nullopt);

/// Group normalisation of x [N, C, *]: the C channels are split into num_groups groups of
/// C/num_groups consecutive channels; μ, σ² (biased) are taken per (n, group) and
/// y = γ_c x̂ + β_c per channel. weight (γ) and bias (β) have shape [C], or are undefined.
/// Throws unless C is divisible by num_groups.
Tensor group_norm(const Tensor& x, std::size_t num_groups, const Tensor& weight = {},
                  const Tensor& bias = {}, double eps = 1e-5);

/// Instance normalisation of x [N, C, *]: μ, σ² (biased) per (n, c) over the spatial values,
/// y = γ_c x̂ + β_c. use_input_stats = true normalises with each instance's own statistics and,
/// if running_mean/running_var [C] are defined, updates them like batch_norm with the mean
/// over n of the instance means and unbiased variances; use_input_stats = false normalises
/// with running_mean/running_var (then required).
/// An empty batch (N = 0), as in PyTorch 1.13: the output is empty; running_mean/running_var,
/// if given, become NaN (the mean over no instances), in eval too; with weight or bias it
/// throws (PyTorch raises an IndexError there).
Tensor instance_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                     const Tensor& weight, const Tensor& bias, bool use_input_stats,
                     double momentum, double eps);

}  // namespace tg
