// tapegrad/data/tensor_dataset.hpp — a student's own tensors as a dataset, served in batches.
//
//   tg::data::TensorDataset data(features, targets);         // [N, ...] and [N] or [N, ...]
//   tg::data::TensorDataLoader loader(data, {.batch_size = 16, .shuffle = true, .seed = 1});
//   for (const auto& [x, y] : loader) { ... }                 // x [16, ...], y [16, ...]
//
// Like torch.utils.data.DataLoader(TensorDataset(features, targets), ...). The image datasets'
// DataLoader (loader.hpp) turns uint8 pixels into normalised inputs and yields class labels;
// this one serves the rows of two real tensors as they are, shuffled the same way: epoch k's
// order is epoch_order(N, shuffle, seed, k), the order a DataLoader over N images serves.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "tapegrad/config.hpp"
#include "tapegrad/data/epoch.hpp"
#include "tapegrad/tensor.hpp"

namespace tg::data {

/// N examples: row i of `features` [N, ...] with row i of `targets` [N] or [N, ...]
/// (torch.utils.data.TensorDataset of two tensors). Holds copies of the values.
class TensorDataset {
  public:
    /// Throws std::invalid_argument naming both shapes unless both have at least one axis and
    /// the same N on axis 0.
    TensorDataset(const Tensor& features, const Tensor& targets);
    /// Class labels as targets [N] (what cross_entropy takes; TensorBatch::labels gives them
    /// back for a batch).
    TensorDataset(const Tensor& features, const Labels& targets);

    /// N, the number of examples.
    std::size_t size() const { return features_.shape()[0]; }
    const Array& features() const { return features_; }
    const Array& targets() const { return targets_; }

  private:
    Array features_;  // [N, ...]
    Array targets_;   // [N] or [N, ...]
};

/// One batch: features [B, ...] and targets [B] or [B, ...], new tensors that need no grad.
struct TensorBatch {
    Tensor features;
    Tensor targets;
    /// targets [B] as class indices (for cross_entropy). Throws std::invalid_argument if the
    /// targets have more than one axis or a value that is not a whole number >= 0.
    Labels labels() const;
};

/// The TensorDataLoader's settings (PyTorch's names and defaults).
struct TensorDataLoaderOptions {
    std::size_t batch_size = 1;  // examples per batch
    bool shuffle = false;        // a new random order every epoch
    std::uint64_t seed = 0;      // epoch k's order depends on (seed, k) only
    bool drop_last = false;      // drop the last batch when it is smaller than batch_size
};

/// Cuts a TensorDataset into batches, in order or, with `shuffle`, in an order drawn afresh for
/// each epoch from (seed, k): the same seed gives the same batches, at any thread count.
class TensorDataLoader {
  public:
    explicit TensorDataLoader(TensorDataset data, TensorDataLoaderOptions options = {});
    explicit TensorDataLoader(std::shared_ptr<const TensorDataset> data,
                              TensorDataLoaderOptions options = {});

    /// The loop (epoch.hpp), the same as DataLoader's.
    using batch_type = TensorBatch;
    using Iterator = EpochIterator<TensorDataLoader>;
    using Sentinel = EpochEnd;
    using Epoch = EpochRange<TensorDataLoader>;

    /// The batches of epoch k (the same every time it is asked for).
    Epoch epoch(std::size_t k) const { return Epoch(this, k); }
    /// Range-for over the loader: each loop is the next epoch, 0, 1, 2, ...
    Iterator begin() { return Iterator(this, next_epoch_++); }
    Sentinel end() const { return {}; }

    /// Batches per epoch: ceil(N / B), or floor(N / B) with drop_last.
    std::size_t num_batches() const;
    /// Example indices of epoch k in the order they are served (epoch_order, loader.hpp).
    std::vector<std::size_t> order(std::size_t k) const;
    /// The batch of examples indices[0..count): their feature rows and target rows.
    TensorBatch make_batch(const std::size_t* indices, std::size_t count) const;

    const TensorDataset& dataset() const { return *data_; }
    const TensorDataLoaderOptions& options() const { return options_; }

  private:
    friend class EpochIterator<TensorDataLoader>;
    struct EpochState;
    /// Epoch k's order.
    std::shared_ptr<EpochState> start_epoch(std::size_t k) const;
    /// Batch `index` of the epoch.
    TensorBatch next_batch(EpochState& epoch, std::size_t index) const;

    std::shared_ptr<const TensorDataset> data_;
    TensorDataLoaderOptions options_;
    std::size_t next_epoch_ = 0;
};

}  // namespace tg::data
