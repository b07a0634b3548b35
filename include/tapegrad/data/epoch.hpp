// tapegrad/data/epoch.hpp — the one loop over a loader's batches: DataLoader (loader.hpp) and
// TensorDataLoader (tensor_dataset.hpp) both serve an epoch through EpochIterator and
// EpochRange; each loader says only how an epoch starts and how it makes batch i.
#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>
#include <utility>

namespace tg::data {

/// The end of an epoch.
struct EpochEnd {};

/// Batch `index` of an epoch whose order has `n` examples: where it starts in the order, and how
/// many examples it has (batch_size, or fewer in the last batch).
inline std::pair<std::size_t, std::size_t> batch_span(std::size_t n, std::size_t batch_size,
                                                      std::size_t index) {
    const std::size_t first = index * batch_size;
    return {first, std::min(batch_size, n - first)};
}

/// An input iterator over the batches of epoch k of a loader; dereferencing gives the current
/// batch. The loader (a friend) provides
///   batch_type                                       what a batch is,
///   std::size_t num_batches() const                  batches per epoch,
///   std::shared_ptr<EpochState> start_epoch(k) const epoch k's order (and its prefetching
///                                                    thread, if any),
///   batch_type next_batch(EpochState&, i) const      batch i of it, asked for in order.
/// Copies share the epoch's state (an input iterator: advance only one copy); the state is
/// released, and a prefetching thread joined, when the epoch ends or the last copy goes.
template <class Loader>
class EpochIterator {
  public:
    using value_type = typename Loader::batch_type;
    using difference_type = std::ptrdiff_t;

    EpochIterator(const Loader* loader, std::size_t epoch)
        : loader_(loader), state_(loader->start_epoch(epoch)), count_(loader->num_batches()) {
        load();
    }

    const value_type& operator*() const { return batch_; }
    const value_type* operator->() const { return &batch_; }
    EpochIterator& operator++() {
        ++index_;
        load();
        return *this;
    }
    void operator++(int) { ++*this; }
    /// Index of the current batch within the epoch, 0..num_batches()-1.
    std::size_t index() const { return index_; }
    friend bool operator==(const EpochIterator& it, EpochEnd) { return it.index_ >= it.count_; }

  private:
    void load() {
        if (index_ >= count_) {
            batch_ = value_type{};
            state_.reset();  // a prefetching thread has finished the epoch: join it now
            return;
        }
        batch_ = loader_->next_batch(*state_, index_);
    }

    const Loader* loader_;
    std::shared_ptr<typename Loader::EpochState> state_;
    std::size_t index_ = 0;
    std::size_t count_ = 0;
    value_type batch_;
};

/// The batches of epoch k of a loader, as a range: loader.epoch(k).
template <class Loader>
class EpochRange {
  public:
    EpochRange(const Loader* loader, std::size_t k) : loader_(loader), k_(k) {}
    EpochIterator<Loader> begin() const { return EpochIterator<Loader>(loader_, k_); }
    EpochEnd end() const { return {}; }

  private:
    const Loader* loader_;
    std::size_t k_;
};

}  // namespace tg::data
