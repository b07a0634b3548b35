// tapegrad/data/loader.hpp — DataLoader: a dataset cut into (shuffled) batches of tensors.
//
//   auto loader = tg::data::DataLoader(tg::data::bundled_mnist(tg::data::Split::train),
//                                      {.batch_size = 64, .shuffle = true, .seed = 1});
//   for (const auto& [x, y] : loader) { ... }   // x [64, 1, 28, 28], y 64 labels
//
// Like torch.utils.data.DataLoader over torchvision's MNIST with
// transforms.Compose([ToTensor(), Normalize((mean,), (std,))]).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "tapegrad/config.hpp"
#include "tapegrad/data/dataset.hpp"
#include "tapegrad/data/epoch.hpp"
#include "tapegrad/tensor.hpp"

namespace tg::data {

/// The DataLoader's settings (PyTorch's names and defaults; mean/std as in Normalize).
struct DataLoaderOptions {
    std::size_t batch_size = 1;  // examples per batch (PyTorch's default is 1)
    bool shuffle = false;        // a new random order every epoch
    std::uint64_t seed = 0;      // epoch k's order depends on (seed, k) only
    bool drop_last = false;      // drop the last batch when it is smaller than batch_size
    double mean = 0.0;           // x = (p / 255 - mean) / std for a pixel p in 0..255;
    double std = 1.0;            // the defaults give x = p / 255 in [0, 1]
    bool prefetch = false;       // assemble batch i + 1 on a thread of its own while batch i
                                 // is in use (the same batches, byte for byte, either way)
};

/// One batch: images [B, 1, rows, cols] (real) and their B labels.
struct Batch {
    Tensor images;
    Labels labels;
};

/// Cuts a dataset into batches, in file order or, with `shuffle`, in an order drawn afresh
/// for each epoch: epoch k is shuffled by a Generator seeded from (seed, k), so two runs
/// with the same seed see the same batches, and each epoch differs from the last.
///
/// With `prefetch`, each epoch's iterator starts one thread that assembles the batches in
/// order, one batch ahead of the loop (like PyTorch's num_workers=1): the next batch is
/// copied and normalised while the training step runs on the current one. The order and the
/// bytes do not change (each batch depends on (seed, k, index) only, and the thread never
/// calls parallel_for, so tg::num_threads() does not matter). The thread stops and is joined
/// when the iterator is destroyed: at the end of the epoch, on `break`, or when the loop body
/// throws; an exception while assembling a batch is rethrown by the ++ that reaches it.
class DataLoader {
  public:
    /// Owns the dataset (pass it with std::move, or a temporary).
    explicit DataLoader(Dataset data, DataLoaderOptions options = {});
    /// Shares a dataset with other loaders, without a copy.
    explicit DataLoader(std::shared_ptr<const Dataset> data, DataLoaderOptions options = {});

    /// The loop (epoch.hpp): an input iterator over one epoch's batches, the end of an epoch,
    /// and one epoch's batches as a range.
    using batch_type = Batch;
    using Iterator = EpochIterator<DataLoader>;
    using Sentinel = EpochEnd;
    using Epoch = EpochRange<DataLoader>;

    /// The batches of epoch k (the same every time it is asked for).
    Epoch epoch(std::size_t k) const { return Epoch(this, k); }
    /// Range-for over the loader: each loop is the next epoch, 0, 1, 2, ... (as each loop
    /// over a PyTorch DataLoader reshuffles).
    Iterator begin() { return Iterator(this, next_epoch_++); }
    Sentinel end() const { return {}; }
    /// The epoch the next range-for will run.
    std::size_t next_epoch() const { return next_epoch_; }
    void set_next_epoch(std::size_t k) { next_epoch_ = k; }

    /// Batches per epoch, len(loader): ceil(N / B), or floor(N / B) with drop_last.
    std::size_t num_batches() const;
    /// Example indices of epoch k in the order they are served: epoch_order(N, shuffle, seed, k).
    std::vector<std::size_t> order(std::size_t k) const;
    /// Assembles the batch of examples indices[0..count): images [count, 1, rows, cols]
    /// normalised, x = (p / 255 - mean) / std, and their labels.
    Batch make_batch(const std::size_t* indices, std::size_t count) const;

    const Dataset& dataset() const { return *data_; }
    const DataLoaderOptions& options() const { return options_; }

  private:
    friend class EpochIterator<DataLoader>;
    class Prefetcher;
    struct EpochState;
    /// Epoch k's order, and its prefetching thread with options().prefetch.
    std::shared_ptr<EpochState> start_epoch(std::size_t k) const;
    /// Batch `index` of the epoch: from the prefetching thread, or assembled here.
    Batch next_batch(EpochState& epoch, std::size_t index) const;
    /// make_batch's work without the Tensor (safe on the prefetching thread).
    void fill_batch(const std::size_t* indices, std::size_t count, Array& x, Labels& y) const;

    std::shared_ptr<const Dataset> data_;
    DataLoaderOptions options_;
    std::array<real, 256> lut_{};  // lut_[p] = (p / 255 - mean) / std
    std::size_t next_epoch_ = 0;
};

/// The order epoch k serves N examples in: 0..N-1, or with `shuffle` a Fisher–Yates permutation
/// drawn from Generator(epoch_seed(seed, k)). DataLoader and TensorDataLoader both use it.
std::vector<std::size_t> epoch_order(std::size_t n, bool shuffle, std::uint64_t seed,
                                     std::size_t k);

/// The seed of epoch k's shuffling generator: splitmix64 of seed + (k + 1) * golden ratio,
/// so nearby seeds and epochs give unrelated streams.
std::uint64_t epoch_seed(std::uint64_t seed, std::size_t k);

}  // namespace tg::data
