#include "tapegrad/nn/activation.hpp"

#include "tapegrad/ops/activation.hpp"
#include "tapegrad/ops/shape.hpp"

namespace tg::nn {

Tensor ReLU::forward(const Tensor& x) {
    return relu(x);
}

Tensor Flatten::forward(const Tensor& x) {
    return flatten(x, start_dim, end_dim);
}

std::string Flatten::extra_repr() const {
    return "start_dim=" + std::to_string(start_dim) + ", end_dim=" + std::to_string(end_dim);
}

}  // namespace tg::nn
