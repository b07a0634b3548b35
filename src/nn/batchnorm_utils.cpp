#include "tapegrad/nn/batchnorm_utils.hpp"

#include <stdexcept>
#include <string>

#include "tapegrad/checkpoint.hpp"

namespace tg::nn {

namespace {

// Every BatchNorm layer of `model` (the model itself included), each once.
std::vector<BatchNorm*> batchnorms(Module& model) {
    std::vector<BatchNorm*> out;
    for (auto& [name, m] : model.named_modules()) {
        if (auto* bn = dynamic_cast<BatchNorm*>(m)) out.push_back(bn);
    }
    return out;
}

}  // namespace

std::size_t detail::tracked_batchnorms(Module& model) {
    std::size_t n = 0;
    for (BatchNorm* bn : batchnorms(model))
        n += bn->options.track_running_stats ? 1 : 0;
    return n;
}

void detail::refuse_empty_update_bn(std::size_t batches) {
    throw std::invalid_argument(
        "update_bn: the loader gave no examples (" + std::to_string(batches) +
        " batches, all empty); the running statistics are left as they were (PyTorch would "
        "reset them to mean 0, variance 1)");
}

detail::BatchNormRecalibration::BatchNormRecalibration(Module& model) {
    if (!running_stats_update_enabled()) {
        throw std::logic_error(
            "update_bn: called inside a tg::NoStatsUpdateGuard, where BatchNorm does not update "
            "its running statistics");
    }
    for (BatchNorm* bn : batchnorms(model)) {
        if (!bn->options.track_running_stats) continue;  // nothing to recalibrate
        saved_.push_back({bn, bn->options.momentum, bn->frozen});
    }
    if (saved_.empty()) return;  // PyTorch returns before touching the model's mode
    for (auto& [name, m] : model.named_modules())
        modes_.emplace_back(m, m->is_training());
    for (const Saved& s : saved_) {
        s.bn->reset_running_stats();
        s.bn->options.momentum = std::nullopt;  // factor 1/num_batches_tracked: equal weights
        s.bn->frozen = false;                   // recalibrate frozen layers too
    }
    model.train();
}

detail::BatchNormRecalibration::~BatchNormRecalibration() {
    for (const Saved& s : saved_) {
        s.bn->options.momentum = s.momentum;
        s.bn->frozen = s.frozen;
    }
    // Parents come before their children, so each train() call is followed by the children's
    // own: every module ends with the mode it had.
    for (auto& [m, training] : modes_)
        m->train(training);
}

std::size_t freeze_batchnorm(Module& model) {
    const auto layers = batchnorms(model);
    for (BatchNorm* bn : layers) {
        bn->frozen = true;
        bn->Module::train(false);
        for (Tensor* p : {&bn->weight, &bn->bias}) {
            if (!p->defined()) continue;  // affine = false
            p->requires_grad_(false);
            p->zero_grad(/*set_to_none=*/true);
        }
    }
    return layers.size();
}

std::size_t unfreeze_batchnorm(Module& model) {
    const auto layers = batchnorms(model);
    for (BatchNorm* bn : layers) {
        bn->frozen = false;
        bn->train(model.is_training());
        for (Tensor* p : {&bn->weight, &bn->bias}) {
            if (p->defined()) p->requires_grad_(true);
        }
    }
    return layers.size();
}

}  // namespace tg::nn
