#include "tapegrad/optim/sgd.hpp"

#include <cmath>
#include <stdexcept>
#include <utility>

#include "sgd_step.hpp"

namespace tg::optim {

SGD::SGD(std::vector<Tensor> parameters, SGDOptions options)
    : Optimizer("SGD", std::move(parameters)), options_(options), buffers_(parameters_.size()) {
    const auto invalid = [](const std::string& what, double v) {
        throw std::invalid_argument("SGD: invalid " + what + ": " + std::to_string(v));
    };
    if (std::isnan(options.lr)) {
        throw std::invalid_argument(
            "SGD: options.lr is required (SGD has no default learning rate)");
    }
    if (options.lr < 0) invalid("learning rate", options.lr);
    if (options.momentum < 0) invalid("momentum value", options.momentum);
    if (options.weight_decay < 0) invalid("weight_decay value", options.weight_decay);
    if (options.nesterov && (options.momentum <= 0 || options.dampening != 0)) {
        throw std::invalid_argument(
            "SGD: Nesterov momentum requires a momentum and zero dampening");
    }
}

void SGD::step() {
    check_grad_shapes();  // every gradient is read as numel() values below
    for (std::size_t i = 0; i < parameters_.size(); ++i) {
        Tensor& param = parameters_[i];
        if (!param.has_grad()) continue;
        real* buffer = nullptr;
        const bool first = !buffers_[i].has_value();
        if (options_.momentum != 0) {
            if (first) buffers_[i] = new_array(param.shape());
            buffer = buffers_[i]->data();
        }
        // The update itself, one parameter at a time: src/optim/sgd_step.cpp.
        kernels::reference::sgd_step(
            param.value().data(), buffer, param.grad().data(), param.numel(), options_.lr,
            options_.momentum, options_.dampening, options_.weight_decay, options_.nesterov, first);
    }
}

}  // namespace tg::optim
