// tapegrad/dist/sync_batchnorm.hpp — BatchNorm whose batch is the union of every rank's batch.
//
// Under data parallelism each rank sees B/P of the B rows. A plain BatchNorm normalises them
// with its own rank's μ and σ² (noisier, and its running statistics drift apart between the
// ranks: the chapter's multi-GPU gotcha). SyncBatchNorm combines the ranks' statistics, so
// every rank normalises with the global batch's μ_B and σ²_B, exactly as one process with all
// B rows would, and updates identical running statistics.
//
//   forward   every rank's channel count C, gathered and compared (one MPI_Allgather); then
//             per channel, this rank's count n_r, mean μ_r and M2_r = Σ (x − μ_r)², gathered
//             from every rank (one MPI_Allgather) and merged in rank order (Chan et al.):
//                 n = n_a + n_b,   δ = μ_b − μ_a,   μ = μ_a + δ·n_b/n,
//                 M2 = M2_a + M2_b + δ²·n_a·n_b/n
//             then σ²_B = M2/n, x̂ = (x − μ_B)/sqrt(σ²_B + ε), y = γ x̂ + β, and
//                 running_var ← (1 − m) running_var + m · M2/(n − 1)   (unbiased, global n)
//   backward  this rank's Σdy and Σdy·x̂ per channel, summed over the ranks (one
//             MPI_Allreduce of 2C numbers), then batch_norm's formula with the global B:
//                 dx = 1/B · 1/σ · (B·dx̂ − Σdx̂ − x̂·Σ(dx̂·x̂)),   dx̂ = γ dy
//             dγ = Σdy·x̂ and dβ = Σdy stay this rank's own: DataParallel averages them with
//             the other gradients.
// Its kernels (src/dist/kernels/{reference,fast}/) follow tg::set_kernels (tapegrad/kernels.hpp).
// In training every rank must run the forward and the backward (they are collectives); in eval
// SyncBatchNorm does not communicate. A rank may have fewer rows than another, or none
// (PyTorch's SyncBatchNorm allows unequal counts).
#pragma once

#include <cstddef>
#include <memory>

#include "tapegrad/dist/context.hpp"
#include "tapegrad/kernels.hpp"
#include "tapegrad/nn/normalization.hpp"

namespace tg::dist {

/// batch_norm (tapegrad/ops/normalization.hpp) over the batch formed by x [N_r, C, *] of every
/// rank of ctx. training: statistics of the global batch as above, running statistics (if
/// defined) updated with `momentum`; eval: the running statistics, no communication (as
/// batch_norm). Throws std::invalid_argument (on every rank alike) when the global batch has
/// one value per channel in training, and for the argument errors batch_norm reports.
Tensor sync_batch_norm(const Context& ctx, const Tensor& x, const Tensor& running_mean,
                       const Tensor& running_var, const Tensor& weight, const Tensor& bias,
                       bool training, double momentum, double eps);

}  // namespace tg::dist

namespace tg::nn {

/// torch.nn.SyncBatchNorm: a BatchNorm over [N, C, *] inputs whose training statistics are
/// those of all ranks' batches together (tg::dist::sync_batch_norm). Usually made by
/// convert_sync_batchnorm from a model's BatchNorm1d/2d layers.
class SyncBatchNorm : public BatchNorm {
  public:
    /// New γ = 1, β = 0, running statistics 0 and 1, of size num_features.
    SyncBatchNorm(const dist::Context& ctx, std::size_t num_features,
                  BatchNormOptions options = {});
    /// Takes over `bn`'s options and its very tensors (weight, bias, running statistics,
    /// num_batches_tracked: the same handles, so an optimiser built on them still trains them).
    SyncBatchNorm(const dist::Context& ctx, BatchNorm& bn);

    /// Training: counts the batch, then y = sync_batch_norm(ctx, x, ...) (a collective). Eval:
    /// BatchNorm's forward, no communication (the running statistics, or without them this
    /// rank's own batch statistics), as PyTorch's SyncBatchNorm.
    Tensor forward(const Tensor& x) override;
    std::string type_name() const override { return "SyncBatchNorm"; }

  protected:
    void check_input_dim(const Tensor& x) const override;

  private:
    const dist::Context* ctx_;
};

/// Replaces every BatchNorm1d/BatchNorm2d in `model` (at any depth) by a SyncBatchNorm that
/// keeps its parameters, buffers, options and training mode (torch's
/// SyncBatchNorm.convert_sync_batchnorm). Returns how many were replaced. The model's root
/// itself cannot be replaced in place: a bare BatchNorm root throws std::invalid_argument.
std::size_t convert_sync_batchnorm(Module& model, const dist::Context& ctx);

}  // namespace tg::nn
