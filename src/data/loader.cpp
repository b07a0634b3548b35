// The DataLoader: an order per epoch, then batches copied out of the uint8 images.
#include "tapegrad/data/loader.hpp"

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

#include "tapegrad/random.hpp"

namespace tg::data {

std::uint64_t epoch_seed(std::uint64_t seed, std::size_t k) {
    // splitmix64 (Steele, Lea, Flood 2014): a bijective mix of a 64-bit counter.
    std::uint64_t z = seed + (static_cast<std::uint64_t>(k) + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

DataLoader::DataLoader(Dataset data, DataLoaderOptions options)
    : DataLoader(std::make_shared<const Dataset>(std::move(data)), options) {}

DataLoader::DataLoader(std::shared_ptr<const Dataset> data, DataLoaderOptions options)
    : data_(std::move(data)), options_(options) {
    if (!data_) throw std::invalid_argument("DataLoader: no dataset (null pointer)");
    if (options_.batch_size == 0) {
        throw std::invalid_argument("DataLoader: batch_size 0, expected at least 1");
    }
    if (!(options_.std > 0)) {
        throw std::invalid_argument("DataLoader: std " + std::to_string(options_.std) +
                                    ", expected > 0 (x = (p / 255 - mean) / std)");
    }
    try {  // a batch is at most [N, 1, rows, cols]; rows x cols itself must not wrap around
        checked_numel(Shape{data_->size(), 1, data_->rows, data_->cols});
    } catch (const std::length_error& e) {
        throw std::invalid_argument(
            "DataLoader: dataset " + data_->name + " of " + std::to_string(data_->size()) +
            " images of " + std::to_string(data_->rows) + " x " + std::to_string(data_->cols) +
            " pixels is too large (" + e.what() + ")");
    }
    if (data_->images.size() != data_->size() * data_->image_size()) {
        throw std::invalid_argument(
            "DataLoader: dataset " + data_->name + " has " + std::to_string(data_->images.size()) +
            " pixels, expected " + std::to_string(data_->size()) + " x " +
            std::to_string(data_->rows) + " x " + std::to_string(data_->cols));
    }
    // Only 256 grey levels exist, so normalisation is a table look-up per pixel.
    for (int p = 0; p < 256; ++p) {
        lut_[p] = static_cast<real>((p / 255.0 - options_.mean) / options_.std);
    }
}

std::size_t DataLoader::num_batches() const {
    const std::size_t n = data_->size(), b = options_.batch_size;
    // n / b rounded up, written so that no sum can wrap around (b may be near SIZE_MAX)
    return options_.drop_last ? n / b : n / b + (n % b != 0 ? 1 : 0);
}

std::vector<std::size_t> epoch_order(std::size_t n, bool shuffle, std::uint64_t seed,
                                     std::size_t k) {
    std::vector<std::size_t> idx(n);
    std::iota(idx.begin(), idx.end(), std::size_t{0});
    if (shuffle) {
        // Fisher–Yates: for i = N-1 .. 1, swap idx[i] with idx[j], j uniform in [0, i].
        Generator gen(epoch_seed(seed, k));
        for (std::size_t i = idx.size(); i > 1; --i) {
            const std::size_t j = gen.randint(i);
            std::swap(idx[i - 1], idx[j]);
        }
    }
    return idx;
}

std::vector<std::size_t> DataLoader::order(std::size_t k) const {
    return epoch_order(data_->size(), options_.shuffle, options_.seed, k);
}

Batch DataLoader::make_batch(const std::size_t* indices, std::size_t count) const {
    Array x;
    Labels y;
    fill_batch(indices, count, x, y);
    return Batch{Tensor(std::move(x)), std::move(y)};
}

void DataLoader::fill_batch(const std::size_t* indices, std::size_t count, Array& x,
                            Labels& y) const {
    const Dataset& d = *data_;
    const std::size_t pixels = d.image_size();
    x = new_array({count, 1, d.rows, d.cols});  // [B, 1, rows, cols]
    real* out = x.data();
    y.assign(count, 0);
    for (std::size_t b = 0; b < count; ++b) {
        const std::size_t i = indices[b];
        if (i >= d.size()) {
            throw std::out_of_range("DataLoader::make_batch: example " + std::to_string(i) +
                                    " of a dataset of " + std::to_string(d.size()));
        }
        const std::uint8_t* in = d.image(i);
        real* dst = out + b * pixels;
        for (std::size_t j = 0; j < pixels; ++j)
            dst[j] = lut_[in[j]];
        y[b] = d.labels[i];
    }
}

/// One epoch's prefetching thread: it assembles batches 0, 1, ... in order and hands each over
/// through a one-batch slot, so it works at most one batch ahead of the loop (two batches of
/// memory beside the loop's own). Only arrays cross threads; the loop's thread wraps them in
/// Tensors.
class DataLoader::Prefetcher {
  public:
    Prefetcher(const DataLoader* loader, std::shared_ptr<const std::vector<std::size_t>> order,
               std::size_t count)
        : loader_(loader), order_(std::move(order)), count_(count) {
        worker_ = std::thread([this] { run(); });
    }
    ~Prefetcher() {
        {
            const std::lock_guard<std::mutex> lock(mutex_);
            stop_ = true;
        }
        changed_.notify_all();
        worker_.join();
    }
    Prefetcher(const Prefetcher&) = delete;
    Prefetcher& operator=(const Prefetcher&) = delete;

    /// The next batch in order (waits for it); rethrows the thread's exception in its place.
    Batch take() {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [&] { return slot_.has_value() || error_; });
        if (!slot_) std::rethrow_exception(error_);
        Filled f = std::move(*slot_);
        slot_.reset();
        lock.unlock();
        changed_.notify_all();
        return Batch{Tensor(std::move(f.images)), std::move(f.labels)};
    }

  private:
    struct Filled {
        Array images;
        Labels labels;
    };

    void run() {
        const std::size_t b = loader_->options_.batch_size;
        for (std::size_t index = 0; index < count_; ++index) {
            Filled f;
            try {
                const auto [first, n] = batch_span(order_->size(), b, index);
                loader_->fill_batch(order_->data() + first, n, f.images, f.labels);
            } catch (...) {
                const std::lock_guard<std::mutex> lock(mutex_);
                error_ = std::current_exception();
                changed_.notify_all();
                return;
            }
            std::unique_lock<std::mutex> lock(mutex_);
            changed_.wait(lock, [&] { return !slot_.has_value() || stop_; });
            if (stop_) return;
            slot_ = std::move(f);
            lock.unlock();
            changed_.notify_all();
        }
    }

    const DataLoader* loader_;
    std::shared_ptr<const std::vector<std::size_t>> order_;
    std::size_t count_;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::optional<Filled> slot_;  // the next batch, ready
    std::exception_ptr error_;
    bool stop_ = false;
    std::thread worker_;  // last: started once everything it reads exists
};

struct DataLoader::EpochState {
    std::shared_ptr<const std::vector<std::size_t>> order;
    std::unique_ptr<Prefetcher> prefetcher;  // null without options().prefetch
};

std::shared_ptr<DataLoader::EpochState> DataLoader::start_epoch(std::size_t k) const {
    auto epoch = std::make_shared<EpochState>();
    epoch->order = std::make_shared<const std::vector<std::size_t>>(order(k));
    const std::size_t count = num_batches();
    if (options_.prefetch && count > 0)
        epoch->prefetcher = std::make_unique<Prefetcher>(this, epoch->order, count);
    return epoch;
}

Batch DataLoader::next_batch(EpochState& epoch, std::size_t index) const {
    if (epoch.prefetcher) return epoch.prefetcher->take();
    const auto [first, n] = batch_span(epoch.order->size(), options_.batch_size, index);
    return make_batch(epoch.order->data() + first, n);
}

}  // namespace tg::data
