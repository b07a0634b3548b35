// TensorDataset and TensorDataLoader: the rows of two tensors, in (shuffled) batches.
#include "tapegrad/data/tensor_dataset.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

#include "tapegrad/data/loader.hpp"

namespace tg::data {

namespace {

/// Copies rows indices[0..count) of `from` [N, ...] into a new array [count, ...].
Array gather_rows(const Array& from, const std::size_t* indices, std::size_t count) {
    Shape shape(from.shape().begin(), from.shape().end());
    const std::size_t n = shape[0];
    shape[0] = count;
    Array out = new_array(shape);
    const std::size_t row = n == 0 ? 0 : from.size() / n;  // values per example
    for (std::size_t b = 0; b < count; ++b) {
        const std::size_t i = indices[b];
        if (i >= n) {
            throw std::out_of_range("TensorDataLoader::make_batch: example " + std::to_string(i) +
                                    " of a dataset of " + std::to_string(n));
        }
        std::copy_n(from.data() + i * row, row, out.data() + b * row);
    }
    return out;
}

}  // namespace

TensorDataset::TensorDataset(const Tensor& features, const Tensor& targets)
    : features_(features.value()), targets_(targets.value()) {
    const std::string shapes =
        "features " + shape_str(features_.shape()) + " and targets " + shape_str(targets_.shape());
    if (features_.dimension() == 0 || targets_.dimension() == 0) {
        throw std::invalid_argument("TensorDataset: " + shapes +
                                    ": expected features [N, ...] and targets [N] or [N, ...]"
                                    " (a 0-d tensor holds no examples)");
    }
    if (features_.shape()[0] != targets_.shape()[0]) {
        throw std::invalid_argument("TensorDataset: " + shapes +
                                    ": expected the same N on axis 0 (" +
                                    std::to_string(features_.shape()[0]) + " features, " +
                                    std::to_string(targets_.shape()[0]) + " targets)");
    }
}

TensorDataset::TensorDataset(const Tensor& features, const Labels& targets)
    : TensorDataset(features, [&targets] {
          Array t = new_array(Shape{targets.size()});
          std::transform(targets.begin(), targets.end(), t.begin(),
                         [](std::int64_t c) { return static_cast<real>(c); });
          return Tensor(std::move(t));
      }()) {}

Labels TensorBatch::labels() const {
    const Array& t = targets.value();
    if (t.dimension() != 1) {
        throw std::invalid_argument("TensorBatch::labels: targets " + shape_str(t.shape()) +
                                    ", expected [B] class indices");
    }
    Labels out(t.size());
    for (std::size_t i = 0; i < t.size(); ++i) {
        const real v = t(i);
        if (!(v >= 0) || std::floor(v) != v) {
            throw std::invalid_argument("TensorBatch::labels: target " + std::to_string(i) +
                                        " is " + std::to_string(v) +
                                        ", expected a class index (a whole number >= 0)");
        }
        out[i] = static_cast<std::int64_t>(v);
    }
    return out;
}

TensorDataLoader::TensorDataLoader(TensorDataset data, TensorDataLoaderOptions options)
    : TensorDataLoader(std::make_shared<const TensorDataset>(std::move(data)), options) {}

TensorDataLoader::TensorDataLoader(std::shared_ptr<const TensorDataset> data,
                                   TensorDataLoaderOptions options)
    : data_(std::move(data)), options_(options) {
    if (!data_) throw std::invalid_argument("TensorDataLoader: no dataset (null pointer)");
    if (options_.batch_size == 0) {
        throw std::invalid_argument("TensorDataLoader: batch_size 0, expected at least 1");
    }
}

std::size_t TensorDataLoader::num_batches() const {
    const std::size_t n = data_->size(), b = options_.batch_size;
    return options_.drop_last ? n / b : n / b + (n % b != 0 ? 1 : 0);  // no sum to wrap around
}

std::vector<std::size_t> TensorDataLoader::order(std::size_t k) const {
    return epoch_order(data_->size(), options_.shuffle, options_.seed, k);
}

TensorBatch TensorDataLoader::make_batch(const std::size_t* indices, std::size_t count) const {
    return TensorBatch{Tensor(gather_rows(data_->features(), indices, count)),
                       Tensor(gather_rows(data_->targets(), indices, count))};
}

struct TensorDataLoader::EpochState {
    std::vector<std::size_t> order;
};

std::shared_ptr<TensorDataLoader::EpochState> TensorDataLoader::start_epoch(std::size_t k) const {
    return std::make_shared<EpochState>(EpochState{order(k)});
}

TensorBatch TensorDataLoader::next_batch(EpochState& epoch, std::size_t index) const {
    const auto [first, n] = batch_span(epoch.order.size(), options_.batch_size, index);
    return make_batch(epoch.order.data() + first, n);
}

}  // namespace tg::data
