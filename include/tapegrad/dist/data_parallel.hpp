// tapegrad/dist/data_parallel.hpp — data parallelism: one model per rank, the batch split
// between the ranks, gradients averaged so every rank takes the same step.
//
//     tg::dist::Context ctx(argc, argv);
//     tg::nn::Sequential model = make_cnn(gen);               // the same on every rank
//     tg::dist::DataParallel dp(ctx, model);                  // rank 0's weights everywhere
//     tg::dist::DistributedSampler sampler(train.dataset().size(), ctx, {.seed = 1});
//     for each step:
//         tg::Tape tape;  loss = cross_entropy(model(local_batch), labels);  tape.backward(loss);
//         dp.all_reduce_gradients();                           // g = 1/P Σ_ranks g_rank
//         optimiser.step();
//
// With a loss that is the mean over each rank's B/P rows, the averaged gradient is the
// gradient of the mean over all B rows, as on one process with batch B — except for
// BatchNorm, whose statistics are each rank's own unless it is a SyncBatchNorm
// (tapegrad/dist/sync_batchnorm.hpp). PyTorch: DistributedDataParallel, DistributedSampler.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tapegrad/dist/context.hpp"
#include "tapegrad/nn/module.hpp"

namespace tg::dist {

struct DataParallelOptions {
    /// Gradients are packed into buckets of at most this many bytes and each bucket is one
    /// MPI_Allreduce (a tensor larger than a bucket gets a bucket of its own). 1 MiB: large
    /// enough that a bucket's latency (≈ 2(P−1) messages) is small beside its transfer, small
    /// enough to keep the packing buffer in cache; see docs/distributed.md.
    std::size_t bucket_bytes = std::size_t{1} << 20;
};

/// Keeps one model in step across the ranks of a Context.
class DataParallel {
  public:
    /// Checks that every rank has the same parameters and buffers (names, shapes,
    /// requires_grad), throwing std::invalid_argument on every rank naming the first rank
    /// that differs from rank 0; then copies rank 0's parameters and buffers to every rank
    /// (one MPI_Bcast).
    DataParallel(const Context& ctx, nn::Module& model, DataParallelOptions options = {});

    /// g = 1/P Σ_ranks g for every parameter that requires grad, bucketed (a parameter the
    /// backward did not reach counts as a zero gradient, and then has one). A parameter frozen
    /// since construction (requires_grad off, freeze_batchnorm) is skipped: no gradient, so
    /// weight decay leaves it alone. Every rank first checks its gradients' shapes and which
    /// parameters are frozen, and all agree (Context::agree): a gradient of another shape, or
    /// frozen sets that differ, make every rank throw std::invalid_argument. Call it on every
    /// rank after tape.backward and before the optimiser's step.
    void all_reduce_gradients();

    /// Number of parameters (values) in each bucket, in the order they are reduced (the
    /// parameters in reverse registration order, as the backward produces them).
    std::vector<std::size_t> bucket_sizes() const;
    /// Seconds spent in all_reduce_gradients (packing, MPI_Allreduce, unpacking) so far.
    double all_reduce_seconds() const { return seconds_; }
    /// MPI_Allreduce calls made by all_reduce_gradients so far.
    std::size_t all_reduce_calls() const { return calls_; }

  private:
    const Context* ctx_;
    std::vector<Tensor> params_;                     // requires_grad parameters, reverse order
    std::vector<std::vector<std::size_t>> buckets_;  // indices into params_
    std::vector<real> buffer_;
    double seconds_ = 0.0;
    std::size_t calls_ = 0;
};

struct DistributedSamplerOptions {
    bool shuffle = true;     // a new order every epoch, the same on every rank
    std::uint64_t seed = 0;  // epoch k's order depends on (seed, k) only
    bool drop_last = false;  // drop the tail instead of padding it (see indices)
};

/// Each rank's share of a dataset of `size` examples (torch.utils.data.DistributedSampler).
/// Every rank draws the same permutation of 0..size−1 for epoch k (DataLoader's: Fisher–Yates
/// from Generator(epoch_seed(seed, k))); it is padded by repeating its start (or, with
/// drop_last, cut) to a multiple of P, and rank r takes positions r, r + P, r + 2P, ...
/// So the shares are disjoint (up to the padding), and steps of b examples per rank take
/// positions [s·bP, (s+1)·bP) of the permutation: the batches of a DataLoader with batch bP.
class DistributedSampler {
  public:
    DistributedSampler(std::size_t size, const Context& ctx,
                       DistributedSamplerOptions options = {});
    /// The same for an explicit rank of world_size ranks (no MPI needed).
    DistributedSampler(std::size_t size, int rank, int world_size,
                       DistributedSamplerOptions options = {});

    /// This rank's example indices for epoch k, num_samples() of them.
    std::vector<std::size_t> indices(std::size_t k) const;
    /// Examples per rank per epoch: ceil(size / P), or floor(size / P) with drop_last.
    std::size_t num_samples() const;

  private:
    std::size_t size_;
    int rank_, world_size_;
    DistributedSamplerOptions options_;
};

}  // namespace tg::dist
