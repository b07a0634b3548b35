#include "tapegrad/optim/optimizer.hpp"

#include <stdexcept>
#include <utility>

namespace tg::optim {

Optimizer::Optimizer(const std::string& name, std::vector<Tensor> parameters)
    : parameters_(std::move(parameters)) {
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

void Optimizer::zero_grad(bool set_to_none) {
    for (auto& p : parameters_)
        p.zero_grad(set_to_none);
}

}  // namespace tg::optim
