#include "tapegrad/optim/sgd.hpp"

#include <cmath>
#include <stdexcept>
#include <utility>

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
    // The coefficients in the parameters' precision, as PyTorch applies them.
    const real lr = static_cast<real>(options_.lr);
    const real momentum = static_cast<real>(options_.momentum);
    const real keep = static_cast<real>(1.0 - options_.dampening);
    const real wd = static_cast<real>(options_.weight_decay);
    const bool use_momentum = options_.momentum != 0;

    check_grad_shapes();  // every gradient is read as numel() values below
    for (std::size_t i = 0; i < parameters_.size(); ++i) {
        Tensor& param = parameters_[i];
        if (!param.has_grad()) continue;
        real* p = param.value().data();
        const real* g = param.grad().data();
        const std::size_t n = param.numel();

        real* b = nullptr;
        const bool first = !buffers_[i].has_value();
        if (use_momentum) {
            if (first) buffers_[i] = new_array(param.shape());
            b = buffers_[i]->data();
        }
        for (std::size_t k = 0; k < n; ++k) {
            real d = g[k];
            if (wd != 0) d = d + wd * p[k];  // L2 penalty: d(wd/2 |p|^2)/dp = wd p
            if (use_momentum) {
                b[k] = first ? d : b[k] * momentum + keep * d;
                d = options_.nesterov ? d + momentum * b[k] : b[k];
            }
            p[k] = p[k] - lr * d;
        }
    }
}

}  // namespace tg::optim
