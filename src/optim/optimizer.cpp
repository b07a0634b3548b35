#include "tapegrad/optim/optimizer.hpp"

#include <stdexcept>
#include <utility>

namespace tg::optim {

Optimizer::Optimizer(const std::string& name, std::vector<Tensor> parameters)
    : name_(name), parameters_(std::move(parameters)) {
    if (parameters_.empty()) throw std::invalid_argument(name + ": got an empty parameter list");
    for (std::size_t i = 0; i < parameters_.size(); ++i) {
        if (!parameters_[i].defined()) {
            throw std::invalid_argument(name + ": parameter " + std::to_string(i) +
                                        " is an undefined tensor");
        }
        if (!parameters_[i].is_leaf()) {
            throw std::invalid_argument(name + ": parameter " + std::to_string(i) +
                                        " is not a leaf tensor (can't optimize a non-leaf Tensor)");
        }
    }
}

void Optimizer::check_grad_shapes() const {
    for (std::size_t i = 0; i < parameters_.size(); ++i) {
        const Tensor& p = parameters_[i];
        if (p.has_grad() && p.grad().shape() != p.value().shape()) {
            throw std::logic_error(name_ + ".step: the gradient of parameter " + std::to_string(i) +
                                   (p.name().empty() ? "" : " '" + p.name() + "'") + " has shape " +
                                   shape_str(p.grad().shape()) + ", the parameter has shape " +
                                   shape_str(p.value().shape()));
        }
    }
}

void Optimizer::zero_grad(bool set_to_none) {
    for (auto& p : parameters_)
        p.zero_grad(set_to_none);
}

}  // namespace tg::optim
