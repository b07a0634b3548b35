// tapegrad/nn/batchnorm_utils.hpp — what a model's BatchNorm layers need around training:
// recalibrating their running statistics (update_bn) and freezing them for fine-tuning.
#pragma once

#include <concepts>
#include <cstddef>
#include <optional>
#include <tuple>
#include <utility>
#include <vector>

#include "tapegrad/nn/module.hpp"
#include "tapegrad/nn/normalization.hpp"
#include "tapegrad/tape.hpp"

namespace tg::nn {

namespace detail {

/// RAII for update_bn. Constructor: every BatchNorm of `model` that tracks running statistics
/// gets running_mean = 0, running_var = 1, num_batches_tracked = 0 and momentum unset (a
/// cumulative average), and the model goes to training mode (frozen BatchNorms included).
/// Destructor, also when an exception escapes: momenta, frozen flags and every module's own
/// mode back as they were. The statistics keep what the pass computed.
class BatchNormRecalibration {
  public:
    explicit BatchNormRecalibration(Module& model);
    ~BatchNormRecalibration();
    BatchNormRecalibration(const BatchNormRecalibration&) = delete;
    BatchNormRecalibration& operator=(const BatchNormRecalibration&) = delete;

    /// The number of BatchNorm layers being recalibrated.
    std::size_t size() const { return saved_.size(); }

  private:
    struct Saved {
        BatchNorm* bn;
        std::optional<double> momentum;
        bool frozen;
    };
    std::vector<Saved> saved_;
    std::vector<std::pair<Module*, bool>> modes_;  // every module, parents before children
};

/// The number of BatchNorm layers of `model` that track running statistics.
std::size_t tracked_batchnorms(Module& model);
/// Throws update_bn's std::invalid_argument for a loader that gave `batches` batches, all empty.
[[noreturn]] void refuse_empty_update_bn(std::size_t batches);

/// The model input of one loader element: a Tensor itself, a tg::data::Batch's images, or the
/// first element of a pair/tuple (input, target) — as update_bn takes input[0] in PyTorch.
template <class B>
const Tensor& batch_input(const B& batch) {
    if constexpr (std::convertible_to<const B&, const Tensor&>) {
        return batch;
    } else if constexpr (requires { batch.images; }) {
        return batch.images;
    } else {
        return std::get<0>(batch);
    }
}

}  // namespace detail

/// Recomputes the running statistics of every BatchNorm in `model` from one pass over
/// `loader` (torch.optim.swa_utils.update_bn): reset, then with momentum unset each layer's
///     running_mean = (1/K) Σ_k μ_k,   running_var = (1/K) Σ_k σ²_k · B_k/(B_k − 1)
/// over the K batches (every batch weighs the same, whatever its size). No tape is recorded.
/// Afterwards momenta, frozen flags and modes are restored (each module its own mode; PyTorch
/// calls model.train(was_training), the same when the modes were uniform). `loader` is any
/// range of Tensors, tg::data::Batch or (input, target) pairs; pass loader.epoch(k) to leave a
/// DataLoader's epoch counter alone. Does nothing for a model without BatchNorm. If a batch
/// throws (one value per channel), the statistics are left partly updated, as in PyTorch.
///
/// Unlike PyTorch, a loader with no examples is refused (std::invalid_argument) before
/// anything changes (PyTorch resets the statistics to 0 and 1 and leaves them so), and an
/// empty batch (N = 0) is skipped (it holds no statistics; counted, it would pull the average
/// towards nothing).
template <class Range>
void update_bn(Module& model, Range&& loader) {
    if (detail::tracked_batchnorms(model) == 0) return;  // as PyTorch: nothing to recalibrate
    std::optional<detail::BatchNormRecalibration> recalibration;  // reset at the first batch
    NoGradGuard no_grad;  // statistics only: nothing to differentiate
    std::size_t batches = 0;
    for (const auto& batch : loader) {
        ++batches;
        const Tensor& x = detail::batch_input(batch);
        if (x.dim() > 0 && x.shape()[0] == 0) continue;  // no examples: nothing to average in
        if (!recalibration) recalibration.emplace(model);
        model(x);
    }
    if (!recalibration) detail::refuse_empty_update_bn(batches);
}

/// Freezes every BatchNorm of `model` for fine-tuning: eval mode (normalise with the running
/// statistics, never update them), γ and β stop requiring grad and lose any gradient they had
/// (so an optimiser over model.parameters() skips them: with momentum or weight decay it would
/// still move a parameter whose gradient is merely zero-filled). The layers stay in eval mode
/// when model.train() is called (BatchNorm::train refuses while `frozen`), unlike the PyTorch
/// loop `for m in model.modules(): m.eval()`, which the next model.train() undoes. Returns the
/// number of layers frozen.
std::size_t freeze_batchnorm(Module& model);

/// The inverse: every BatchNorm of `model` follows train()/eval() again, takes the mode of
/// `model` (model.is_training()), and γ and β require grad again. Returns the number of layers.
std::size_t unfreeze_batchnorm(Module& model);

}  // namespace tg::nn
